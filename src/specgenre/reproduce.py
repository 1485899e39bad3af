"""Run rows under one honest protocol, tabulate them and write what a reader looks at next.

This is what ``specgenre reproduce`` runs; it is usable from Python too::

    from specgenre.reproduce import evaluate_rows, format_table, write_results
    results = evaluate_rows(["xgboost_30s", "cnn_30s_mel"], X, y, cv=5)
    print(format_table(results))
    write_results(results, "results")

Within one :func:`evaluate_rows` call two things are computed once instead of
once per fold and row, neither of which changes a result:

* the front step of a row (:class:`~specgenre.SpectrogramTransformer`,
  :class:`~specgenre.FeatureExtractor`) learns nothing from the data, so its
  output for a clip (or a 3 s segment) is computed once per setting and
  reused by every fold and every row with the same setting;
* rows that fit the same model on the same samples share one fit per fold:
  ``3 s + MV`` and ``3 s + Prob`` of the same network (the voting rule acts
  at prediction time only), and ``xgboost_3s`` with ``xgboost_3s_mv`` (the
  same XGBoost on the same segments, scored per segment or voted per clip).
"""

import csv
import hashlib
import io
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.model_selection import StratifiedKFold

from .aggregate import _groups_fit_param
from .segment import ClipSegmenter
from .study import ALL_ROWS, SR, classifier_of, make_row

__all__ = ["RowResult", "accepted_params", "check_params", "evaluate_row", "evaluate_rows",
           "format_table", "write_results"]

_STUDY_SOURCE = "study, 10-genre GTZAN"


@dataclass
class RowResult:
    """Outcome of one row: scores per fold and out-of-fold predictions, or why it did not run.

    Parameters
    ----------
    row, title : str
        The row's name and human-readable title.
    study_accuracy : float or None
        The study's figure for this row (measured on 10-genre GTZAN), None if
        the study has none.
    protocol : str
        How the scores were obtained (folds, and what one prediction is).
    status : {"ok", "skipped", "failed"}
        "skipped" only when pretrained weights were not available
        (:class:`~specgenre.PretrainedWeightsNotFoundError`).
    scores : list of float
        Accuracy of each fold.
    message : str
        Why the row was skipped or failed.
    seconds : float
        Wall time of the row.
    cpu_seconds : float
        CPU time of the process (all its threads) during the row, plus that of
        the worker processes fitting its folds (``fold_jobs``): with
        ``seconds``, says how well the row used the cores (about ``2 *
        seconds`` when it kept two cores busy).
    transform_seconds : float
        Part of ``seconds`` spent computing spectrograms or features (zero
        when a previous row of the run had computed them already).
    n_tracks : int
        Tracks used (training and test tracks of all folds).
    n_classes : int
        Genres among them.
    majority : float or None
        Share of the most frequent genre among the tracks used: the accuracy
        of always predicting it.
    beyond_study : bool
        True for a row that is not the study's (:data:`~specgenre.study.BEYOND_ROWS`).
    reference_accuracy : float or None
        A published figure for a row beyond the study, ``reference`` its source.
    reference : str
        Source of ``reference_accuracy`` (shown as a note under the table).
    params : dict
        Overrides applied to this row's estimator.
    notes : list of str
        Remarks on how to read the row's figure (e.g. when voting rules coincide).
    predictions : dict of ndarray or None
        Out-of-fold predictions: ``index`` (position of the clip in ``X``),
        ``track`` (its id), ``segment`` (segment number, segment-level rows
        only), ``fold``, ``y_true``, ``y_pred`` and ``proba`` (class
        probabilities, columns in the order of ``classes``; None when the row
        has none, e.g. a majority vote).
    classes : list
        Genres known to the fitted models.
    """

    row: str
    title: str
    study_accuracy: float | None
    protocol: str
    status: str = "ok"
    scores: list = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    transform_seconds: float = 0.0
    n_tracks: int = 0
    n_classes: int = 0
    majority: float | None = None
    beyond_study: bool = False
    reference_accuracy: float | None = None
    reference: str = ""
    params: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    predictions: dict | None = None
    classes: list = field(default_factory=list)

    @property
    def mean(self):
        """Mean accuracy over folds (NaN when the row did not run)."""
        return float(np.mean(self.scores)) if self.scores else float("nan")

    @property
    def std(self):
        """Standard deviation of the fold accuracies (NaN with fewer than 2 folds)."""
        return float(np.std(self.scores)) if len(self.scores) > 1 else float("nan")

    def as_dict(self):
        """The row's summary as flat, printable values: one line of ``results.csv``."""
        published, source = _published(self)
        return {
            "row": self.row, "title": self.title, "status": self.status,
            "n_tracks": self.n_tracks, "n_classes": self.n_classes,
            "majority_class": "" if self.majority is None else f"{self.majority:.4f}",
            "accuracy_mean": f"{self.mean:.4f}", "accuracy_std": f"{self.std:.4f}",
            "n_folds": len(self.scores),
            "fold_scores": " ".join(f"{s:.4f}" for s in self.scores),
            "published_accuracy": "" if published is None else published,
            "published_source": source,
            "study_accuracy": "" if self.study_accuracy is None else self.study_accuracy,
            "protocol": self.protocol, "notes": " ".join(self.notes),
            "params": " ".join(f"{k}={v!r}" for k, v in self.params.items()),
            "message": self.message, "seconds": f"{self.seconds:.1f}",
            "cpu_seconds": f"{self.cpu_seconds:.1f}",
            "transform_seconds": f"{self.transform_seconds:.1f}",
        }


def _published(result):
    """``(figure, source)`` of the published figure a row is read against."""
    if result.beyond_study:
        if result.reference_accuracy is None:
            return None, "beyond the study; none published"
        source = re.split(r"[,:(]", result.reference)[0].strip() or "see the notes"
        return result.reference_accuracy, f"reference: {source}"
    return result.study_accuracy, _STUDY_SOURCE


# --------------------------------------------------------------------------- parameters
def _row(name):
    try:
        return ALL_ROWS[name]
    except KeyError:
        raise ValueError(f"unknown row {name!r}; choose from {list(ALL_ROWS)}.") from None


def accepted_params(name):
    """Names :func:`evaluate_row` can override on a row.

    Plain names are the parameters of the row's classifier (``max_epochs``,
    ``n_estimators``...); names with ``__`` are paths into the row's whole
    estimator (``spectrogram__n_mels``, ``estimator__spectrogram__n_mels``).

    Parameters
    ----------
    name : str
        A row, key of :data:`~specgenre.study.ALL_ROWS`.

    Returns
    -------
    names : frozenset of str
    """
    _row(name)
    est = make_row(name)
    plain = classifier_of(est).get_params(deep=False)
    nested = [k for k in est.get_params(deep=True) if "__" in k]
    return frozenset(plain) | frozenset(nested)


def check_params(rows, params):
    """Which of ``rows`` take each of ``params``; an error for a key that none takes.

    Parameters
    ----------
    rows : list of str
        Row names.
    params : iterable of str
        Parameter names (e.g. the keys of ``--param KEY=VALUE``).

    Returns
    -------
    taken_by : dict
        ``key -> [rows that take it]``, for every key.

    Raises
    ------
    ValueError
        If a key is taken by none of the rows, naming the key and the rows.
    """
    accepted = {name: accepted_params(name) for name in rows}
    taken_by = {key: [n for n in rows if key in accepted[n]] for key in params}
    unknown = [key for key, taken in taken_by.items() if not taken]
    if unknown:
        raise ValueError(
            f"parameter(s) {', '.join(unknown)} taken by none of the rows "
            f"{', '.join(rows)} (plain names are classifier parameters, e.g. max_epochs, "
            "n_estimators; nested ones paths such as spectrogram__n_mels)")
    return taken_by


# --------------------------------------------------------------------------- caching
def _front_types():
    from .features import FeatureExtractor
    from .spectrogram import SpectrogramTransformer

    types = [SpectrogramTransformer, FeatureExtractor]
    try:  # the musicnn embedding is computed per clip from fixed pretrained weights
        from .musicnn import MusicnnEmbedding
    except ImportError:
        pass
    else:
        types.append(MusicnnEmbedding)
    return tuple(types)


def _front_path(est):
    """``(param path, transformer)`` of a row's cacheable front step, or ``(None, None)``."""
    from sklearn.pipeline import Pipeline

    prefix = ""
    while not isinstance(est, Pipeline):
        if "estimator" not in est.get_params(deep=False):
            return None, None
        prefix += "estimator__"
        est = est.estimator
    name, step = est.steps[0]
    if isinstance(step, _front_types()):
        return prefix + name, step
    return None, None


def _setting(transformer):
    """What a front step's output depends on: its type and parameters (not its workers)."""
    params = transformer.get_params(deep=False)
    kept = tuple(sorted((k, repr(v)) for k, v in params.items() if k not in ("n_jobs",
                                                                             "progress")))
    return (type(transformer).__module__, type(transformer).__qualname__, kept)


class _TransformCache:
    """Outputs of stateless front steps, per sample and setting, shared within one run."""

    def __init__(self):
        self._tables = {}
        self.seconds = 0.0
        self.computed = 0
        self.reused = 0

    def __deepcopy__(self, memo):  # clone() of the estimators holding it shares it
        return self

    def transform(self, transformer, X):
        X = np.asarray(X)
        table = self._tables.setdefault((_setting(transformer), X.shape[1:]), {})
        keys = [hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16,
                                person=str(x.dtype).encode()[:16]).digest() for x in X]
        todo = {}
        for i, key in enumerate(keys):
            if key not in table:
                todo.setdefault(key, i)
        if todo:
            start = time.perf_counter()
            out = transformer.transform(X[list(todo.values())])
            self.seconds += time.perf_counter() - start
            table.update(zip(todo, out))
        self.computed += len(todo)
        self.reused += len(keys) - len(todo)
        return np.stack([table[key] for key in keys])

    def keep(self, settings):
        """Forget every ``(setting, input shape)`` not in ``settings``."""
        for key in [k for k in self._tables if k not in settings]:
            del self._tables[key]


class _CachedFront(TransformerMixin, BaseEstimator):
    """A stateless front step whose output is looked up in a :class:`_TransformCache`."""

    def __init__(self, transformer, cache):
        self.transformer = transformer
        self.cache = cache

    def fit(self, X, y=None):
        self.transformer_ = clone(self.transformer).fit(X)
        return self

    def transform(self, X):
        return self.cache.transform(self.transformer_, X)


# --------------------------------------------------------------------------- evaluation
def _splits(y, cv, split, random_state):
    if split is not None:
        train, test = split
        return [(np.asarray(train), np.asarray(test))]
    skf = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    return list(skf.split(np.zeros(len(y)), y))


def _protocol(row, cv, split):
    how = "fault-filtered split (train+valid -> test)" if split is not None else (
        f"{cv}-fold stratified CV by track")
    unit = "segment accuracy" if row.level == "segment" else {
        None: "clip accuracy", "hard": "clip accuracy, majority vote of 3 s segments",
        "soft": "clip accuracy, mean probability of 3 s segments"}[row.voting]
    return f"{how}; {unit}"


def _voting_note(est, n_samples):
    """Why MV and Prob (nearly) coincide on short clips, or None."""
    segmenter = getattr(est, "segmenter", None)
    if getattr(est, "voting", None) is None or not hasattr(segmenter, "n_segments"):
        return None
    n = segmenter.n_segments(n_samples)
    if n == 1:
        return "1 segment per clip: voting changes nothing (MV = Prob = the segment's label)"
    if n == 2:
        return ("2 segments per clip: a majority vote of two is a tie whenever they "
                "disagree, broken by the larger summed probability, so MV equals Prob "
                "except when a third genre has the highest mean probability")
    return None


def _shared_model(est, row):
    """What a row fits, for sharing fits between rows: ``(kind, estimator)``.

    ``("segments", inner)``: ``inner`` fitted on the 3 s segments of the training
    clips, labelled by clip, with the clip of each segment as ``groups`` where it
    takes them; true of the segment-level row (``est`` itself) and of a
    :class:`TrackAggregator` row cutting 3 s segments (its ``estimator``), whose
    voting rule only acts at prediction time. ``("clips", est)`` otherwise.
    """
    from .aggregate import TrackAggregator
    from .segment import ClipSegmenter

    if row.level == "segment":
        return "segments", est
    if (isinstance(est, TrackAggregator) and isinstance(est.segmenter, ClipSegmenter)
            and est.segmenter.get_params() == ClipSegmenter(3.0, sr=SR).get_params()):
        return "segments", est.estimator
    return "clips", est


def _fit_key(est, row):
    """Rows with equal keys fit the same model on the same samples: one fit serves all.

    None (no sharing) for an estimator that cannot be hashed (e.g. a class
    defined inside a function cannot be pickled).
    """
    import joblib

    try:
        return joblib.hash(_shared_model(est, row))
    except Exception:
        return None


def _fitted_part(model, est, row):
    """The fitted model another row with the same key can reuse."""
    kind, _ = _shared_model(est, row)
    return model.estimator_ if kind == "segments" and row.level != "segment" else model


def _reuse(fitted, est, row, X_train, y_train):
    """A fitted row built around ``fitted`` (from a row with the same key), without refitting."""
    from sklearn.frozen import FrozenEstimator

    kind, _ = _shared_model(est, row)
    if kind == "segments" and row.level != "segment":
        # the voting wrapper only segments the clips and learns the labels: the
        # frozen per-segment model is not refitted
        return clone(est).set_params(estimator=FrozenEstimator(fitted)).fit(X_train, y_train)
    return fitted


def _proba_is_argmax(est):
    """True when ``predict`` is the argmax of ``predict_proba`` (so it need not run twice)."""
    from sklearn.pipeline import Pipeline

    from .aggregate import TrackAggregator
    from .boosting import XGBoostClassifier

    if isinstance(est, TrackAggregator):
        return est.voting == "soft"
    if isinstance(est, Pipeline):
        est = est.steps[-1][1]
    names = {c.__name__ for c in type(est).__mro__}
    return isinstance(est, XGBoostClassifier) or "_SpectrogramClassifier" in names


def _predict(est, X):
    """``(labels, proba or None)`` of a fitted row."""
    if not hasattr(est, "predict_proba"):
        return np.asarray(est.predict(X)), None
    proba = np.asarray(est.predict_proba(X), dtype=float)
    if _proba_is_argmax(est):
        return np.asarray(est.classes_)[np.argmax(proba, axis=1)], proba
    return np.asarray(est.predict(X)), proba


def _segment_numbers(clip_index):
    clip_index = np.asarray(clip_index)
    return np.arange(len(clip_index)) - np.searchsorted(clip_index, clip_index)


def _fold_workers(fold_jobs, n_fits):
    """Processes to fit ``n_fits`` folds in: ``fold_jobs`` (-1: all cores), at most ``n_fits``."""
    if fold_jobs is None or n_fits < 2:
        return 1
    if fold_jobs < 0:
        fold_jobs = max(1, (os.cpu_count() or 1) + 1 + fold_jobs)
    return max(1, min(int(fold_jobs), n_fits))


def _fit_fold(est, row, train, X_test, threads=None):
    """Fit a clone of ``est`` on one fold's training samples: ``(model, labels, proba)``.

    ``threads`` (in a worker process) caps torch's intra-op threads, so that
    the workers share the cores instead of each taking all of them.
    """
    if threads is not None:
        try:
            import torch
        except ImportError:
            pass
        else:
            torch.set_num_threads(threads)
    X_train, y_train, clip_train = train
    model = clone(est)
    fit_params = {}
    groups_key = _groups_fit_param(model) if row.level == "segment" else None
    if groups_key is not None:  # as TrackAggregator does: a clip's segments
        fit_params[groups_key] = clip_train  # stay together in inner splits
    model.fit(X_train, y_train, **fit_params)
    pred, proba = _predict(model, X_test)
    return model, pred, proba


def _fit_fold_timed(*args):
    """:func:`_fit_fold` in a worker: ``(its output, CPU seconds of the worker)``.

    An exception is returned, not raised: raised, it would make joblib end
    the worker processes, and the next row would wait for new ones to start.
    """
    cpu = time.process_time()
    try:
        out = _fit_fold(*args)
    except Exception as exc:  # raised again in the parent
        out = exc
    return out, time.process_time() - cpu


def _require_weights(est):
    """Load the pretrained weights a row needs once, here, before any fold is fitted.

    A missing weights file then skips the row at once (instead of in every fold
    or fold worker), and a download happens once, not once per worker process.
    """
    from .musicnn import load_musicnn
    from .networks import ResNet18Classifier
    from .networks._weights import load_resnet18_imagenet

    parts = [est, *est.get_params(deep=True).values()]
    for part in parts:
        if isinstance(part, ResNet18Classifier) and part.pretrained:
            load_resnet18_imagenet()
            return
        if type(part).__module__.startswith("specgenre.musicnn") and hasattr(part, "weights_dir"):
            load_musicnn(part.model, weights_dir=part.weights_dir)
            return


class _Run:
    """State shared by the rows of one :func:`evaluate_rows` call."""

    def __init__(self, X, y, *, cv, split, random_state, n_jobs, params, progress,
                 track_ids, cache, fold_jobs=None):
        self.X, self.y = X, np.asarray(y)
        self.cv, self.split, self.random_state = cv, split, random_state
        self.n_jobs, self.params, self.progress = n_jobs, params, progress
        self.fold_jobs = fold_jobs
        self.track_ids = (np.arange(len(self.y)) if track_ids is None
                          else np.asarray(track_ids))
        if len(self.track_ids) != len(self.y):
            raise ValueError(f"track_ids has {len(self.track_ids)} entries for "
                             f"{len(self.y)} clips.")
        self.cache = _TransformCache() if cache else None
        self.fitted = {}  # fit key -> fitted estimator of each fold
        self.folds = _splits(self.y, cv, split, random_state)

    def build(self, name):
        """``(estimator, applied params)`` of a row."""
        row = _row(name)
        params = self.params(row) if callable(self.params) else dict(self.params or {})
        accepted = accepted_params(name)
        applied = {k: v for k, v in params.items() if k in accepted}
        est = make_row(name, random_state=self.random_state, n_jobs=self.n_jobs, **applied)
        return est, applied

    def evaluate(self, name, est, applied, *, key=None, shared_with=None, keep_fit=False):
        row = _row(name)
        result = RowResult(name, row.title, row.study_accuracy,
                           _protocol(row, self.cv, self.split), params=applied,
                           beyond_study=getattr(row, "beyond_study", False),
                           reference_accuracy=getattr(row, "reference_accuracy", None),
                           reference=getattr(row, "reference", ""))
        used = np.unique(np.concatenate([test for _, test in self.folds]
                                        + [train for train, _ in self.folds]))
        counts = np.unique(self.y[used], return_counts=True)[1]
        result.n_tracks, result.n_classes = len(used), len(counts)
        result.majority = float(counts.max() / counts.sum())
        note = _voting_note(est, self.X.shape[1])
        if note:
            result.notes.append(note)
        start, cpu = time.perf_counter(), time.process_time()
        spent = self.cache.seconds if self.cache is not None else 0.0
        try:
            if shared_with is not None:
                result.notes.append(
                    f"reuses the models fitted for {shared_with} in each fold (the same "
                    "model on the same samples; only the voting or scoring differs)")
            _require_weights(est)
            path, front = _front_path(est)
            if self.cache is not None and path is not None:
                est.set_params(**{path: _CachedFront(front, self.cache)})
            result.predictions = self._folds(row, est, key, result, keep_fit, front)
        except Exception as exc:  # one row's failure must not hide the others
            from .networks import PretrainedWeightsNotFoundError

            result.status = ("skipped" if isinstance(exc, PretrainedWeightsNotFoundError)
                             else "failed")
            result.message = f"{type(exc).__name__}: {exc}"
            result.scores, result.predictions = [], None
        result.seconds = time.perf_counter() - start
        result.cpu_seconds += time.process_time() - cpu
        if self.cache is not None:
            result.transform_seconds = self.cache.seconds - spent
        return result

    def _folds(self, row, est, key, result, keep_fit, front=None):
        from tqdm.auto import tqdm

        parts = []
        fitted = self.fitted.get(key, []) if key is not None else []
        data = [(row.samples(self.X[train], self.y[train]),
                 row.samples(self.X[test], self.y[test])) for train, test in self.folds]
        todo = [i for i in range(len(data)) if i >= len(fitted)]
        workers = _fold_workers(self.fold_jobs, len(todo))
        fits = {}
        if workers > 1:
            from joblib import Parallel, delayed

            if front is not None and self.cache is not None:
                # the front step runs once here, for all folds: each worker gets the
                # filled cache instead of recomputing it
                used = np.unique(np.concatenate([np.concatenate(f) for f in self.folds]))
                samples = row.samples(self.X[used], self.y[used])[0]
                self.cache.transform(clone(front).fit(samples[:1]), samples)
            threads = max(1, (os.cpu_count() or 1) // workers)
            jobs = Parallel(n_jobs=workers, backend="loky")(
                delayed(_fit_fold_timed)(est, row, data[i][0], data[i][1][0], threads)
                for i in todo)
            # CPU of the workers, which time.process_time() of this process leaves out
            result.cpu_seconds += sum(cpu for _, cpu in jobs)
            for fit, _ in jobs:
                if isinstance(fit, Exception):
                    raise fit
            fits = {i: fit for i, (fit, _) in zip(todo, jobs)}
        for i, (_train, test) in enumerate(tqdm(self.folds, desc=row.name,
                                               disable=not self.progress, leave=False)):
            (X_train, y_train, clip_train), (X_test, y_test, clip) = data[i]
            if i < len(fitted):
                model = _reuse(fitted[i], est, row, X_train, y_train)
                pred, proba = _predict(model, X_test)
            else:
                model, pred, proba = fits.get(i) or _fit_fold(
                    est, row, (X_train, y_train, clip_train), X_test)
                if keep_fit:
                    fitted.append(_fitted_part(model, est, row))
            result.scores.append(float(np.mean(pred == y_test)))
            result.classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
            index = test[clip]
            parts.append({
                "index": index, "track": self.track_ids[index],
                "segment": _segment_numbers(clip) if row.level == "segment" else None,
                "fold": np.full(len(index), i), "y_true": y_test, "y_pred": pred,
                "proba": proba})
        if keep_fit and key is not None:
            self.fitted[key] = fitted

        def cat(k):
            values = [p[k] for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        return {k: cat(k) for k in parts[0]}


def evaluate_row(name, X, y, *, cv=5, split=None, random_state=0, n_jobs=None,
                 fold_jobs=None, params=None, progress=False, track_ids=None):
    """Fit and score one row on waveforms.

    Parameters
    ----------
    name : str
        A key of :data:`~specgenre.study.ALL_ROWS`.
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
    fold_jobs : int or None, default=None
        Processes fitting the folds in parallel (joblib's loky backend; -1:
        all cores; at most one per fold to fit; None or 1: one after the
        other in this process). Each process caps torch at ``cpu_count //
        processes`` threads: small networks gain little from more threads,
        so two processes of one thread use two cores better than one of two.
        The front step (spectrograms, features) of the row is computed once in
        this process and handed to the workers. For a fixed ``random_state``
        the scores and predictions are those of ``None`` in a process with
        torch at the same thread count (torch's sums, hence a network's
        weights, can differ in the last bits between thread counts).
    params : dict or callable, optional
        Overrides of the row's estimator (see :func:`accepted_params`); keys
        the row does not take are left out (:attr:`RowResult.params` lists
        those applied). A callable is called with the row's
        :class:`~specgenre.study.StudyRow` and returns the dict (e.g. to set
        ``freq_pool`` on the dB rows only).
    progress : bool, default=False
        Show a progress bar over folds.
    track_ids : array-like of shape (n_clips,), optional
        Ids written with the out-of-fold predictions (default: positions).

    Returns
    -------
    result : RowResult
    """
    return evaluate_rows([name], X, y, cv=cv, split=split, random_state=random_state,
                         n_jobs=n_jobs, fold_jobs=fold_jobs, params=params,
                         progress=progress, track_ids=track_ids)[0]


def evaluate_rows(rows, X, y, *, callback=None, cache=True, **kwargs):
    """Fit and score several rows on the same folds.

    Parameters
    ----------
    rows : list of str
        Keys of :data:`~specgenre.study.ALL_ROWS`.
    X, y
        As in :func:`evaluate_row`.
    callback : callable, optional
        Called with each :class:`RowResult` as soon as its row is done. Rows
        with the same spectrogram or feature setting run one after the other
        (so that only one setting's outputs are held at a time), which may
        differ from the order of ``rows``.
    cache : bool, default=True
        Compute each clip's spectrogram or features once per setting for all
        folds and rows, and fit rows that fit the same model on the same
        samples (``3 s + MV`` and ``3 s + Prob`` of one network, ``xgboost_3s``
        and ``xgboost_3s_mv``) once per fold. False recomputes everything in
        every fold and row (the scores are the same; only the time differs).
    **kwargs
        ``cv``, ``split``, ``random_state``, ``n_jobs``, ``fold_jobs``,
        ``params``, ``progress`` and ``track_ids`` of :func:`evaluate_row`. With a dict
        ``params``, a key that none of the rows takes raises ``ValueError``.

    Returns
    -------
    results : list of RowResult
        In the order of ``rows``.
    """
    kwargs.setdefault("cv", 5)
    for key in ("split", "n_jobs", "fold_jobs", "params", "track_ids"):
        kwargs.setdefault(key, None)
    kwargs.setdefault("random_state", 0)
    kwargs.setdefault("progress", False)
    rows = list(rows)
    for name in rows:
        _row(name)
    if isinstance(kwargs["params"], dict):
        check_params(rows, kwargs["params"])
    run = _Run(X, y, cache=cache, **kwargs)
    built, keys, settings, inputs = [], [], [], []
    for name in rows:
        try:
            est, applied = run.build(name)
        except Exception as exc:  # reported as the row's failure below
            built.append(exc)
            keys.append(None)
            settings.append(None)
            inputs.append(None)
            continue
        built.append((est, applied))
        keys.append(_fit_key(est, _row(name)) if cache else None)
        front = _front_path(est)[1]
        # the front step's setting and the shape of what it is given: whole clips or
        # their 3 s segments
        kind = _shared_model(est, _row(name))[0]
        try:
            shape = (run.X.shape[1:] if kind == "clips" else ClipSegmenter(
                3.0, sr=SR).fit(run.X[:1]).segment(run.X[:1])[0].shape[1:])
        except ValueError:  # clips shorter than a segment: the row fails on its own
            shape = None
        settings.append(None if front is None else (_setting(front), shape))
        inputs.append(settings[-1])

    # rows whose front step has the same setting and input run one after the other,
    # so that the cache holds few spectrograms or features at a time
    first = {}
    for i, key in enumerate(inputs):
        first.setdefault(key, i)
    order = sorted(range(len(rows)),
                   key=lambda i: first[inputs[i]] if cache and inputs[i] is not None else i)
    results, first_fit = [None] * len(rows), {}
    for pos, i in enumerate(order):
        name = rows[i]
        if isinstance(built[i], Exception):
            row = _row(name)
            result = RowResult(name, row.title, row.study_accuracy,
                               _protocol(row, run.cv, run.split), status="failed",
                               message=f"{type(built[i]).__name__}: {built[i]}")
        else:
            est, applied = built[i]
            later = [keys[j] for j in order[pos + 1:]]
            key = keys[i]
            result = run.evaluate(name, est, applied, key=key,
                                  shared_with=first_fit.get(key) if key is not None else None,
                                  keep_fit=key is not None and key in later)
            if result.status == "ok" and keys[i] is not None:
                first_fit.setdefault(keys[i], name)
            if keys[i] not in later:
                run.fitted.pop(keys[i], None)
            if run.cache is not None:
                run.cache.keep({settings[j] for j in order[pos + 1:]})
        results[i] = result
        if callback is not None:
            callback(result)
    return results


# --------------------------------------------------------------------------- tables
def _pct(x):
    return "--" if x is None or np.isnan(x) else f"{100 * x:.1f}%"


def _notes(results):
    """Numbered notes, each once: ``(note text, [rows])`` in order of first use."""
    notes = {}
    for r in results:
        for text in _note_texts(r):
            notes.setdefault(text, []).append(r.row)
    return list(notes.items())


def _note_texts(result):
    texts = list(result.notes)
    if result.status != "ok":
        texts.insert(0, f"{result.status}: {' '.join(result.message.split())}")
    if result.beyond_study and result.reference:
        texts.append(f"published figure: {' '.join(result.reference.split())}")
    return texts


def _note_numbers(result, notes):
    texts = _note_texts(result)
    numbers = {text: i + 1 for i, (text, _) in enumerate(notes)}
    return "".join(f"[{numbers[t]}]" for t in texts)


_HEADER = ["row", "tracks", "accuracy (mean +- std)", "majority class", "published figure",
           "protocol", "notes", "seconds (CPU)"]


def _table_rows(results, notes):
    for r in results:
        if r.status == "ok":
            ours = _pct(r.mean) if len(r.scores) < 2 else f"{_pct(r.mean)} +- {100 * r.std:.1f}"
        else:
            ours = r.status
        figure, source = _published(r)
        missing = "--" if r.beyond_study else "not measured"
        published = (missing if figure is None else _pct(figure)) + f" ({source})"
        yield [r.row, str(r.n_tracks) if r.n_tracks else "--", ours, _pct(r.majority),
               published, r.protocol, _note_numbers(r, notes),
               f"{r.seconds:.0f} ({r.cpu_seconds:.0f})"]


def format_table(results, *, markdown=False, links=None):
    """The results as an aligned text table (or a Markdown table), then its notes.

    Each note (why rows were skipped or failed, how to read a figure) is
    printed once, naming every row it applies to.

    Parameters
    ----------
    results : list of RowResult
    markdown : bool, default=False
        A Markdown table instead of aligned text.
    links : dict, optional
        ``row -> Markdown text`` of a last column (``write_results`` links
        each row's files there).

    Returns
    -------
    text : str
    """
    notes = _notes(results)
    header = list(_HEADER)
    body = [list(r) for r in _table_rows(results, notes)]
    if links is not None:
        header.append("files")
        for cells, r in zip(body, results):
            cells.append(links.get(r.row, ""))
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in body]
    else:
        widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*r).rstrip() for r in body]
    lines += ["", f"published figure: '{_STUDY_SOURCE}' is the study's accuracy on GTZAN's "
              "1000 tracks of 10 genres under its own protocol; compare it only with a run "
              "on the same data. majority class: accuracy of always predicting the most "
              "frequent genre of the tracks used."]
    for i, (text, rows) in enumerate(notes):
        lines.append(f"[{i + 1}] {', '.join(rows)}: {text}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- files
def _write_predictions(result, path):
    p = result.predictions
    header = ["track", "true_genre", "predicted_genre", "fold"]
    if p["segment"] is not None:
        header.insert(1, "segment")
    if p["proba"] is not None:
        header += [f"proba_{c}" for c in result.classes]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for j in range(len(p["y_true"])):
            line = [p["track"][j], p["y_true"][j], p["y_pred"][j], p["fold"][j]]
            if p["segment"] is not None:
                line.insert(1, p["segment"][j])
            if p["proba"] is not None:
                line += [f"{v:.6g}" for v in p["proba"][j]]
            writer.writerow(line)


def _write_report(result, path):
    from sklearn.metrics import classification_report

    p = result.predictions
    unit = "segments" if p["segment"] is not None else "clips"
    labels = sorted(set(result.classes) | set(p["y_true"].tolist()))
    text = classification_report(p["y_true"], p["y_pred"], labels=labels, digits=3,
                                 zero_division=0)
    path.write_text(f"{result.row} ({result.title}): out-of-fold predictions of "
                    f"{len(p['y_true'])} {unit}; {result.protocol}\n\n{text}")


def _write_confusion(result, path):
    """Write the confusion-matrix PNG; False when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    from .plotting import plot_confusion_matrix

    p = result.predictions
    labels = sorted(set(result.classes) | set(p["y_true"].tolist()))
    fig = Figure(figsize=(7, 6))
    unit = "segments" if p["segment"] is not None else "clips"
    plot_confusion_matrix(p["y_true"], p["y_pred"], labels=labels, ax=fig.subplots(),
                          title=f"{result.row}: {np.mean(p['y_true'] == p['y_pred']):.1%} "
                                f"of {len(p['y_true'])} {unit} (out of fold)")
    fig.savefig(path, dpi=100)
    return True


def write_results(results, out_dir, *, meta=None):
    """Write the results table and each row's out-of-fold files into ``out_dir``.

    Files written:

    - ``results.csv``: one line per row (:meth:`RowResult.as_dict`);
    - ``results.md``: ``meta``, the table with its notes, linking each row's files;
    - ``<row>/predictions.csv``: the out-of-fold predictions (track id, segment
      for segment-level rows, true and predicted genre, fold, class
      probabilities where the row has them);
    - ``<row>/classification_report.txt``: precision, recall and F1 per genre
      (:func:`sklearn.metrics.classification_report`);
    - ``<row>/confusion_matrix.png``: :func:`~specgenre.plot_confusion_matrix`
      (needs matplotlib; left out without it).

    Parameters
    ----------
    results : list of RowResult
    out_dir : str or path
        Created if missing.
    meta : dict, optional
        ``name -> value`` lines written above the table in ``results.md``.

    Returns
    -------
    paths : list of Path
        Every file written, ``results.csv`` and ``results.md`` first.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, links = [], {}
    for r in results:
        if r.status != "ok" or not r.predictions:
            continue
        folder = out / r.row
        folder.mkdir(exist_ok=True)
        _write_predictions(r, folder / "predictions.csv")
        _write_report(r, folder / "classification_report.txt")
        files = [("predictions", "predictions.csv"), ("report", "classification_report.txt")]
        if _write_confusion(r, folder / "confusion_matrix.png"):
            files.append(("confusion", "confusion_matrix.png"))
        written += [folder / f for _, f in files]
        links[r.row] = " ".join(f"[{label}]({r.row}/{f})" for label, f in files)

    buf = io.StringIO()
    records = [r.as_dict() for r in results]
    writer = csv.DictWriter(buf, fieldnames=list(records[0]) if records else ["row"])
    writer.writeheader()
    writer.writerows(records)
    csv_path = out / "results.csv"
    csv_path.write_text(buf.getvalue())
    md_path = out / "results.md"
    header = "".join(f"- {k}: {v}\n" for k, v in (meta or {}).items())
    md_path.write_text((header + "\n" if header else "")
                       + format_table(results, markdown=True, links=links) + "\n")
    return [csv_path, md_path] + written
