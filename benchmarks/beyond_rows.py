"""Rows beyond the study on unbalanced data, with and without class weighting.

Measures, with :func:`specgenre.evaluation.evaluate_rows` (3-fold stratified CV
by track, ``random_state=0``), every row beyond the study on a folder of
tracks in genre folders (default: the 51 GTZAN dev tracks of the shared data,
10 each of classical, jazz and rock, 3 each of 7 other genres), once with
``class_weight="balanced"`` and once with ``class_weight=None``, and prints
accuracy, balanced accuracy and macro-F1 (mean +- std over folds). With
``--kaggle``, also XGBoost (the study's ``xgboost_30s`` settings) on Kaggle's
balanced ``features_30_sec.csv``, with and without class weighting, by
stratified K-fold over its tracks (one row per track).

The rule that picked :data:`specgenre.study.RECOMMENDED_ROW` is applied to the
printed dev-track figures (``--rule``): the highest mean balanced accuracy
over every fold printed (with ``--random-state 0 1 2``: 3-fold CV repeated
with three seeds, 9 folds), ties (within 0.0005) broken by the higher mean
accuracy, among the rows with their default class weighting.

Usage (from the repository root; the machine's load affects the times only)::

    OMP_NUM_THREADS=1 python benchmarks/beyond_rows.py --random-state 0 1 2 --rule
    OMP_NUM_THREADS=1 python benchmarks/beyond_rows.py --rows musicnn_finetune_3s_prob
    OMP_NUM_THREADS=1 python benchmarks/beyond_rows.py --rows none --kaggle
"""

import argparse
import os
import sys
import time

DEV = "/work/shared/data/gtzan_dev"
FEATURES = "/work/shared/data/gtzan_features/features_30_sec.csv"
WEIGHTINGS = {"balanced": "balanced", "none": None}


def _fmt(mean, std):
    return f"{mean:.3f} +- {std:.3f}"


def _table(lines):
    header = ("row", "class_weight", "accuracy", "balanced accuracy", "macro-F1", "seconds")
    rows = [header] + lines
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    out = []
    for k, r in enumerate(rows):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def load(data):
    """``(X, y, track_ids)`` of the tracks in genre folders under ``data``."""
    import numpy as np

    import specgenre

    X, y, track_ids = specgenre.load_collection(data).load()
    genres, counts = np.unique(y, return_counts=True)
    print(f"{len(y)} tracks from {data}: "
          + ", ".join(f"{g} {c}" for g, c in zip(genres, counts)), flush=True)
    return X, y, track_ids


def dev_rows(rows, tracks, cv, random_state, weightings, max_epochs=None):
    """``[(row, weighting, RowResult)]`` of ``rows`` on ``tracks``, ``(X, y, track_ids)``."""
    from specgenre.evaluation import evaluate_rows

    X, y, track_ids = tracks
    out = []
    for weighting in weightings:
        params = {"class_weight": WEIGHTINGS[weighting]}
        if max_epochs is not None:
            params["max_epochs"] = max_epochs
        results = evaluate_rows(rows, X, y, cv=cv, random_state=random_state,
                                params=params, track_ids=track_ids)
        for result in results:
            if result.status != "ok":
                print(f"{result.row} ({weighting}): {result.status}: {result.message}",
                      file=sys.stderr)
            out.append((result.row, weighting, result))
    return out


def kaggle_xgboost(path, cv, random_state, weightings, n_jobs=1):
    """``[(weighting, scores dict, seconds)]`` of ``xgboost_30s`` on Kaggle's 30 s table."""
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from specgenre import load_gtzan_features, make_row

    table = load_gtzan_features(path)
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    out = []
    for weighting in weightings:
        est = make_row("xgboost_30s", source="features", random_state=random_state,
                       n_jobs=n_jobs, class_weight=WEIGHTINGS[weighting])
        start = time.perf_counter()
        scores = cross_validate(est, table.data, table.target, cv=folds,
                                scoring=("accuracy", "balanced_accuracy", "f1_macro"))
        out.append((weighting, scores, time.perf_counter() - start))
    return out


def pooled(measured):
    """``{(row, weighting): (accuracy, balanced accuracy, macro-F1 fold scores)}`` over seeds."""
    out = {}
    for row, weighting, r in measured:
        if r.status != "ok":
            continue
        acc, bal, f1 = out.setdefault((row, weighting), ([], [], []))
        acc += r.scores
        bal += r.balanced_accuracy_scores
        f1 += r.macro_f1_scores
    return out


def pick(scores):
    """The rule: highest mean balanced accuracy (ties within 0.0005: higher mean accuracy).

    ``scores``: ``{row: (accuracy, balanced accuracy, macro-F1 fold scores)}``.
    """
    import numpy as np

    return max(scores, key=lambda row: (round(float(np.mean(scores[row][1])), 3),
                                        float(np.mean(scores[row][0]))))


def main(argv=None):
    from specgenre.study import BEYOND_ROWS, select_rows

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEV, help=f"tracks in genre folders (default {DEV})")
    parser.add_argument("--rows", nargs="+", default=None,
                        help="rows or groups (default: every row beyond the study but the "
                             "fine-tuned one, which takes longest); 'none' for no rows")
    parser.add_argument("--weighting", nargs="+", choices=list(WEIGHTINGS),
                        default=list(WEIGHTINGS), help="class weightings to run")
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--random-state", type=int, nargs="+", default=[0],
                        help="seeds of the folds and models; several: the CV is repeated "
                             "once per seed and the figures are also pooled over all folds")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="epochs of the fine-tuned row (its default otherwise)")
    parser.add_argument("--kaggle", action="store_true",
                        help="also XGBoost on Kaggle's balanced features_30_sec.csv")
    parser.add_argument("--features", default=FEATURES)
    parser.add_argument("--kaggle-cv", type=int, default=5)
    parser.add_argument("--rule", action="store_true",
                        help="print the row the recommended-row rule picks")
    args = parser.parse_args(argv)

    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    if args.rows == ["none"]:
        rows = []
    elif args.rows is None:
        rows = [r for r in BEYOND_ROWS if BEYOND_ROWS[r].head != "finetune"]
    else:
        rows = select_rows(args.rows)
    if rows:
        import numpy as np

        measured, tracks = [], load(args.data)
        for seed in args.random_state:
            part = dev_rows(rows, tracks, args.cv, seed, args.weighting, args.max_epochs)
            measured += part
            print(f"\nDev tracks, {args.cv}-fold stratified CV by track, random_state={seed}:")
            print(_table([
                (row, weighting, _fmt(r.mean, r.std),
                 _fmt(r.balanced_accuracy_mean, r.balanced_accuracy_std),
                 _fmt(r.macro_f1_mean, r.macro_f1_std), f"{r.seconds:.0f}")
                for row, weighting, r in part]), flush=True)
        scores = pooled(measured)
        if len(args.random_state) > 1:
            n = len(args.random_state) * args.cv
            print(f"\nPooled over the {n} folds of random_state="
                  f"{' '.join(map(str, args.random_state))} (mean +- std over folds):")
            print(_table([
                (row, weighting, *(_fmt(np.mean(v), np.std(v)) for v in values), "")
                for (row, weighting), values in scores.items()]))
        if args.rule:
            default = {row: values for (row, weighting), values in scores.items()
                       if row in BEYOND_ROWS
                       and WEIGHTINGS[weighting] == BEYOND_ROWS[row].class_weight}
            if default:
                print(f"\nrule (highest mean balanced accuracy over all folds printed, ties "
                      f"by mean accuracy, default class weighting): {pick(default)}")
    if args.kaggle:
        measured = kaggle_xgboost(args.features, args.kaggle_cv, args.random_state[0],
                                  args.weighting)
        print(f"\nxgboost_30s on {args.features}, {args.kaggle_cv}-fold stratified CV by "
              f"track, random_state={args.random_state[0]}:")
        print(_table([
            ("xgboost_30s", weighting,
             _fmt(s["test_accuracy"].mean(), s["test_accuracy"].std()),
             _fmt(s["test_balanced_accuracy"].mean(), s["test_balanced_accuracy"].std()),
             _fmt(s["test_f1_macro"].mean(), s["test_f1_macro"].std()), f"{sec:.0f}")
            for weighting, s, sec in measured]))
    print(f"\nload average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
