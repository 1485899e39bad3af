"""The study's XGBoost rows on Kaggle's GTZAN feature tables, with and without leakage.

Rows (``specgenre.make_row(..., source="features")``, the study's XGBoost
settings ``n_estimators=1000, learning_rate=0.05, max_depth=6`` unless
``--xgb default``):

* ``xgboost_30s`` -- one row per 30 s clip (``features_30_sec.csv``),
  stratified K-fold CV over the 1000 clips: clip accuracy.
* ``xgboost_3s``, the study's protocol -- rows of 3 s segments
  (``features_3_sec.csv``) split at random, ignoring the track they came
  from, so segments of one track land in both train and test (leakage):

  - ``notebook 70/30``: the single split of the Kaggle notebook the study
    followed, ``train_test_split(test_size=0.3, random_state=42)``;
  - ``random K-fold``: stratified K-fold over segment rows (the same leak,
    averaged over K splits).

* ``xgboost_3s`` by track -- the same model and segment accuracy, but
  stratified K-fold over *tracks* (all segments of a track on one side).
* ``xgboost_3s_mv`` -- ``TrackAggregator(XGBoostClassifier(),
  segmenter="precomputed")`` on the per-track form of the 3 s table
  (``group_segments``): clip accuracy of the majority vote of a track's
  segments, and of their mean probability (soft vote). These come from the
  very models (same folds) as the by-track segment accuracy.

The gap between "random" and "by track" is the leakage in the study's
90.4 % figure. The 3 s table here may be the partial one
(``features_3_sec_classical_jazz_rock.csv``: classical, jazz and rock only,
2996 rows): 3-class accuracies are NOT comparable with the study's 10-class
figures; the script says which table it used. With the full 9990-row
``features_3_sec.csv`` in ``--features-dir`` it runs all 10 genres.

Features: the 57 Kaggle columns (``filename``, ``length`` and ``label``
dropped). The notebook also min-max scaled the table and kept ``length``;
trees are unaffected by per-feature monotone rescaling, and ``length`` is
constant in the 3 s table.

Usage::

    python benchmarks/xgboost_rows.py [--features-dir DIR] [--n-jobs 2] [--folds 10]
        [--n-estimators N] [--xgb study|default] [--results-dir DIR]

``--features-dir`` defaults to ``$SPECGENRE_SHARED/data/gtzan_features`` or
``../shared/data/gtzan_features`` next to the repository; the script exits
without running when the tables are absent. Results are printed and written
to ``<results-dir>/xgboost_rows.csv`` and ``.md`` (default ``results/`` in
the repository, ignored by git).
"""

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def default_features_dir():
    shared = Path(os.environ.get("SPECGENRE_SHARED", REPO.parent / "shared"))
    return shared / "data" / "gtzan_features"


def read_table(path):
    """(X (n, 57), labels, track ids) of a Kaggle feature table."""
    from specgenre import load_gtzan_features

    bunch = load_gtzan_features(path)
    return np.asarray(bunch.data), np.asarray(bunch.target), np.asarray(bunch.groups)


def find_tables(features_dir):
    d = Path(features_dir)
    t30 = d / "features_30_sec.csv"
    full3 = d / "features_3_sec.csv"
    part3 = d / "features_3_sec_classical_jazz_rock.csv"
    t3 = full3 if full3.exists() else (part3 if part3.exists() else None)
    return (t30 if t30.exists() else None), t3


def make_xgb(args, name, random_state):
    from specgenre import make_row

    overrides = {}
    if args.xgb == "default":
        from specgenre import XGBoostClassifier

        defaults = XGBoostClassifier().get_params()
        overrides.update({k: defaults[k] for k in (
            "n_estimators", "max_depth", "learning_rate", "subsample", "colsample_bytree",
            "min_child_weight", "reg_lambda", "tree_method")})
    if args.n_estimators is not None:
        overrides["n_estimators"] = args.n_estimators
    # one thread per model; folds run in parallel (n_jobs workers)
    return make_row(name, source="features", random_state=random_state, n_jobs=1, **overrides)


def summarise(label, scores, seconds, *, table, n_classes, unit, protocol):
    scores = np.asarray(scores, dtype=float)
    return {
        "experiment": label,
        "table": table,
        "classes": n_classes,
        "unit": unit,
        "protocol": protocol,
        "folds": len(scores),
        "accuracy_mean": float(scores.mean()),
        "accuracy_std": float(scores.std()) if len(scores) > 1 else float("nan"),
        "fold_scores": " ".join(f"{s:.4f}" for s in scores),
        "seconds": round(seconds, 1),
    }


def run_30s(args, path):
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X, y, _ = read_table(path)
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    start = time.perf_counter()
    scores = cross_val_score(make_xgb(args, "xgboost_30s", args.seed), X, y, cv=cv,
                             n_jobs=args.n_jobs)
    return [summarise("xgboost_30s", scores, time.perf_counter() - start, table=path.name,
                      n_classes=len(np.unique(y)), unit="clip",
                      protocol=f"stratified {args.folds}-fold CV over clips")]


def _segment_scorers():
    """Scorers of a fitted precomputed TrackAggregator: vote, mean-probability, segment."""
    from specgenre.aggregate import _stack_tracks, soft_vote

    def mv(est, X, y):
        return float(np.mean(est.predict(X) == np.asarray(y)))

    def prob(est, X, y):
        segments, clip_index = _stack_tracks(X)
        proba = est.estimator_.predict_proba(segments)
        clip = soft_vote(proba, clip_index).argmax(axis=1)
        return float(np.mean(est.estimator_.classes_[clip] == np.asarray(y)))

    def segment(est, X, y):
        segments, clip_index = _stack_tracks(X)
        return float(np.mean(est.estimator_.predict(segments) == np.asarray(y)[clip_index]))

    return {"mv": mv, "prob": prob, "segment": segment}


def run_3s(args, path):
    from sklearn.model_selection import (
        StratifiedKFold,
        cross_val_score,
        cross_validate,
        train_test_split,
    )

    from specgenre import group_segments

    X, y, groups = read_table(path)
    n_classes = len(np.unique(y))
    common = dict(table=path.name, n_classes=n_classes)
    out = []

    # 1. the notebook's single random 70/30 split of segment rows (leaky)
    start = time.perf_counter()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=42)
    score = make_xgb(args, "xgboost_3s", args.seed).fit(X_tr, y_tr).score(X_te, y_te)
    out.append(summarise("xgboost_3s, notebook 70/30", [score], time.perf_counter() - start,
                         unit="segment", protocol="train_test_split(test_size=0.3, "
                         "random_state=42) over segment rows (leaky: study protocol)",
                         **common))

    # 2. stratified K-fold over segment rows (the same leak, K splits)
    start = time.perf_counter()
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    scores = cross_val_score(make_xgb(args, "xgboost_3s", args.seed), X, y, cv=cv,
                             n_jobs=args.n_jobs)
    out.append(summarise("xgboost_3s, random K-fold", scores, time.perf_counter() - start,
                         unit="segment", protocol=f"stratified {args.folds}-fold CV over "
                         "segment rows (leaky)", **common))

    # 3. + 4. stratified K-fold over tracks: segment, majority-vote and mean-probability
    # accuracy of the same models
    X_tracks, y_tracks, _ = group_segments(X, y, groups)
    start = time.perf_counter()
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    res = cross_validate(make_xgb(args, "xgboost_3s_mv", args.seed), X_tracks, y_tracks,
                         cv=cv, scoring=_segment_scorers(), n_jobs=args.n_jobs)
    seconds = time.perf_counter() - start
    protocol = f"stratified {args.folds}-fold CV over tracks ({len(y_tracks)} tracks)"
    out.append(summarise("xgboost_3s, by track", res["test_segment"], seconds,
                         unit="segment", protocol=protocol + "; same models as below", **common))
    out.append(summarise("xgboost_3s_mv (hard vote)", res["test_mv"], seconds, unit="clip",
                         protocol=protocol, **common))
    out.append(summarise("xgboost_3s + mean prob (soft vote)", res["test_prob"], seconds,
                         unit="clip", protocol=protocol + "; same models", **common))
    return out


STUDY = {"xgboost_30s": 0.74, "xgboost_3s, notebook 70/30": 0.904}


def to_markdown(results, header_lines):
    cols = ["experiment", "table", "classes", "unit", "accuracy", "study", "protocol", "seconds"]
    lines = list(header_lines) + ["", "| " + " | ".join(cols) + " |",
                                  "|" + "---|" * len(cols)]
    for r in results:
        acc = f"{100 * r['accuracy_mean']:.1f}%"
        if r["folds"] > 1:
            acc += f" +- {100 * r['accuracy_std']:.1f}"
        study = STUDY.get(r["experiment"])
        lines.append("| " + " | ".join([
            r["experiment"], r["table"], str(r["classes"]), r["unit"], acc,
            "--" if study is None else f"{100 * study:.1f}%", r["protocol"],
            str(r["seconds"])]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features-dir", type=Path, default=default_features_dir())
    parser.add_argument("--n-jobs", type=int, default=2, help="folds fitted in parallel")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--n-estimators", type=int, default=None,
                        help="override the number of boosting rounds")
    parser.add_argument("--xgb", choices=["study", "default"], default="study",
                        help="the study's XGBoost settings or XGBoostClassifier's defaults")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=REPO / "results")
    parser.add_argument("--only", choices=["30s", "3s"], default=None)
    args = parser.parse_args(argv)

    t30, t3 = find_tables(args.features_dir)
    if t30 is None and t3 is None:
        print(f"no Kaggle feature tables in {args.features_dir}; nothing to run "
              "(pass --features-dir)")
        return 0
    import sklearn
    import xgboost

    from specgenre import XGBoostClassifier
    from specgenre.study import STUDY_XGBOOST_PARAMS

    params = (dict(STUDY_XGBOOST_PARAMS) if args.xgb == "study" else
              {k: v for k, v in XGBoostClassifier().get_params().items()
               if k in STUDY_XGBOOST_PARAMS})
    if args.n_estimators is not None:
        params["n_estimators"] = args.n_estimators
    header = [
        "# XGBoost rows on Kaggle's GTZAN feature tables",
        "",
        f"- command: `python benchmarks/xgboost_rows.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- XGBoost ({args.xgb} settings): "
        + ", ".join(f"{k}={v}" for k, v in params.items()),
        f"- folds: {args.folds}, seed: {args.seed}, folds in parallel: {args.n_jobs}, "
        "1 XGBoost thread each",
        f"- xgboost {xgboost.__version__}, scikit-learn {sklearn.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs",
    ]
    results = []
    if t30 is not None and args.only in (None, "30s"):
        print(f"30 s table: {t30}", flush=True)
        res = run_30s(args, t30)
        results += res
        print(f"  {res[0]['accuracy_mean']:.4f} +- {res[0]['accuracy_std']:.4f} "
              f"({res[0]['seconds']} s)", flush=True)
    if t3 is not None and args.only in (None, "3s"):
        print(f"3 s table: {t3}", flush=True)
        res = run_3s(args, t3)
        results += res
        if t3.name != "features_3_sec.csv":
            header.append(
                f"- 3 s table: {t3.name} holds only {res[0]['classes']} genres: its "
                "accuracies are NOT comparable with the study's 10-genre figures")

    md = to_markdown(results, header)
    print()
    print(md)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    with open(args.results_dir / "xgboost_rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    (args.results_dir / "xgboost_rows.md").write_text(md)
    print(f"written: {args.results_dir / 'xgboost_rows.csv'} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
