"""Run the study's rows under one honest protocol and tabulate the results.

This is what ``specgenre reproduce`` runs; it is usable from Python too::

    from specgenre.reproduce import evaluate_rows, format_table
    results = evaluate_rows(["xgboost_30s", "cnn_30s_mel"], X, y, cv=5)
    print(format_table(results))
"""

import csv
import io
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from .study import STUDY_ROWS, make_row

__all__ = ["RowResult", "evaluate_row", "evaluate_rows", "format_table", "write_results"]



@dataclass
class RowResult:
    """Outcome of one row: scores per fold, or why it did not run."""

    row: str
    title: str
    study_accuracy: float | None
    protocol: str
    status: str = "ok"  # "ok", "skipped" or "failed"
    scores: list = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0

    @property
    def mean(self):
        return float(np.mean(self.scores)) if self.scores else float("nan")

    @property
    def std(self):
        return float(np.std(self.scores)) if len(self.scores) > 1 else float("nan")

    def as_dict(self):
        d = asdict(self)
        d.update(accuracy_mean=self.mean, accuracy_std=self.std)
        return d


def _missing_weights(exc):
    """True for the error raised when ImageNet weights are neither cached nor downloadable."""
    return isinstance(exc, FileNotFoundError)


def _splits(y, cv, split, random_state):
    if split is not None:
        train, test = split
        return [(np.asarray(train), np.asarray(test))]
    skf = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    return list(skf.split(np.zeros(len(y)), y))


def _fit_score(est, row, X, y, train, test):
    """Accuracy of one fold: per clip, or per segment for the segment-level row."""
    if row.input == "3s" and row.voting is None:
        # segment-level row (xgboost_3s): segments of training clips only, so no
        # segment of a test clip is trained on; scored per segment
        from .segment import ClipSegmenter

        seg = ClipSegmenter(3.0).fit(X[train])
        S_train, i_train = seg.segment(X[train])
        S_test, i_test = seg.segment(X[test])
        est.fit(S_train, y[train][i_train])
        return float(np.mean(est.predict(S_test) == y[test][i_test]))
    est.fit(X[train], y[train])
    return float(np.mean(est.predict(X[test]) == y[test]))


def _protocol(row, cv, split):
    how = "fault-filtered split (train+valid -> test)" if split is not None else (
        f"{cv}-fold stratified CV by track")
    unit = "segment accuracy" if (row.input == "3s" and row.voting is None) else {
        None: "clip accuracy", "hard": "clip accuracy, majority vote of 3 s segments",
        "soft": "clip accuracy, mean probability of 3 s segments"}[row.voting]
    return f"{how}; {unit}"


def evaluate_row(name, X, y, *, cv=5, split=None, random_state=0, n_jobs=None,
                 params=None, progress=False):
    """Fit and score one study row on waveforms.

    Parameters
    ----------
    name : str
        A key of :data:`~specgenre.study.STUDY_ROWS`.
    X : ndarray of shape (n_clips, n_samples)
        Waveforms at 22050 Hz.
    y : array-like of shape (n_clips,)
        Genres.
    cv : int, default=5
        Folds of stratified K-fold over clips (ignored when ``split`` is given).
    split : (train_indices, test_indices), optional
        A fixed split (e.g. the fault-filtered one) instead of CV.
    random_state : int, default=0
        Seed of the folds and of the models.
    n_jobs : int or None
        Workers for the feature/spectrogram steps.
    params : dict or callable, optional
        Overrides for the row's classifier (see :func:`~specgenre.study.make_row`);
        keys that the classifier lacks (e.g. ``max_epochs`` for XGBoost) are dropped.
        A callable is called with the row's :class:`~specgenre.study.StudyRow`
        and returns the dict (e.g. to set ``freq_pool`` on the dB rows only).
    progress : bool, default=False
        Show a progress bar over folds.

    Returns
    -------
    result : RowResult
    """
    from tqdm.auto import tqdm

    row = STUDY_ROWS[name]
    y = np.asarray(y)
    result = RowResult(name, row.title, row.study_accuracy, _protocol(row, cv, split))
    start = time.perf_counter()
    try:
        est = make_row(name, random_state=random_state, n_jobs=n_jobs)
        clf_params = _classifier_of(est).get_params(deep=False)
        if callable(params):
            params = params(row)
        kept = {k: v for k, v in (params or {}).items() if k in clf_params}
        _classifier_of(est).set_params(**kept)
        folds = _splits(y, cv, split, random_state)
        for train, test in tqdm(folds, desc=name, disable=not progress, leave=False):
            result.scores.append(_fit_score(clone(est), row, X, y, train, test))
    except Exception as exc:  # one row's failure must not hide the others
        result.status = "skipped" if _missing_weights(exc) else "failed"
        result.message = f"{type(exc).__name__}: {exc}"
        result.scores = []
    result.seconds = time.perf_counter() - start
    return result


def _classifier_of(est):
    """The classifier inside a row's estimator (through TrackAggregator and Pipeline)."""
    while True:
        if hasattr(est, "steps"):
            est = est.steps[-1][1]
        elif "estimator" in est.get_params(deep=False):
            est = est.estimator
        else:
            return est


def evaluate_rows(rows, X, y, *, callback=None, **kwargs):
    """:func:`evaluate_row` for each row; ``callback(result)`` after each one."""
    results = []
    for name in rows:
        result = evaluate_row(name, X, y, **kwargs)
        results.append(result)
        if callback is not None:
            callback(result)
    return results


def _pct(x):
    return "--" if x is None or np.isnan(x) else f"{100 * x:.1f}%"


def _short(message, width=90):
    """A failure or skip message cut to fit a table cell (the CSV keeps all of it)."""
    message = " ".join(message.split())
    return message if len(message) <= width else message[: width - 3] + "..."


def _rows_for_table(results):
    for r in results:
        if r.status == "ok":
            ours = _pct(r.mean) if len(r.scores) < 2 else f"{_pct(r.mean)} +- {100 * r.std:.1f}"
        else:
            ours = r.status
        study = "not measured" if r.study_accuracy is None else _pct(r.study_accuracy)
        yield [r.row, ours, study, r.protocol if r.status == "ok" else _short(r.message),
               f"{r.seconds:.0f}"]


_HEADER = ["row", "ours (mean +- std)", "study", "protocol / note", "seconds"]


def format_table(results, *, markdown=False):
    """The results as an aligned text table (or a Markdown table)."""
    body = list(_rows_for_table(results))
    if markdown:
        lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(_HEADER, *body)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*_HEADER), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in body]
    return "\n".join(lines)


def write_results(results, out_dir, *, meta=None):
    """Write ``results.csv`` and ``results.md`` into ``out_dir``; return their paths."""
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    fields = ["row", "title", "status", "accuracy_mean", "accuracy_std", "n_folds",
              "fold_scores", "study_accuracy", "protocol", "message", "seconds"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for r in results:
        writer.writerow({
            "row": r.row, "title": r.title, "status": r.status,
            "accuracy_mean": f"{r.mean:.4f}", "accuracy_std": f"{r.std:.4f}",
            "n_folds": len(r.scores), "fold_scores": " ".join(f"{s:.4f}" for s in r.scores),
            "study_accuracy": "" if r.study_accuracy is None else r.study_accuracy,
            "protocol": r.protocol, "message": r.message, "seconds": f"{r.seconds:.1f}",
        })
    csv_path = out / "results.csv"
    csv_path.write_text(buf.getvalue())
    md_path = out / "results.md"
    header = "".join(f"- {k}: {v}\n" for k, v in (meta or {}).items())
    md_path.write_text((header + "\n" if header else "") + format_table(results, markdown=True)
                       + "\n")
    return csv_path, md_path
