"""Fit and score rows under one honest protocol: folds by track, out-of-fold predictions.

This is what ``specgenre reproduce`` runs; it is usable from Python too
(:mod:`specgenre.report` tabulates and writes the results)::

    from specgenre.evaluation import evaluate_rows
    from specgenre.report import format_table, write_results
    results = evaluate_rows(["xgboost_30s", "cnn_30s_mel"], X, y, cv=5)
    print(format_table(results))
    write_results(results, "results")

Within one :func:`evaluate_rows` call two things are computed once instead of
once per fold and row, neither of which changes a result:

* the front step of a row (:class:`~specgenre.SpectrogramTransformer`,
  :class:`~specgenre.FeatureExtractor`, :class:`~specgenre.musicnn.MusicnnEmbedding`)
  learns nothing from the data, so its output for a clip (or a 3 s segment)
  is computed once per setting and reused by every fold and every row with
  the same setting (:mod:`specgenre._cache`). It is computed before the
  row's first fold, 32 clips at a time, and the folds are then fed item
  numbers instead of waveforms: no fold copies the waveforms or cuts them
  into segments, so the run holds the waveforms given to it (none but those
  being turned into outputs when given a :class:`~specgenre.Waveforms`), the
  outputs of the settings still to be used, and one fold's model;
* rows that fit the same model on the same samples share one fit per fold:
  ``3 s + MV`` and ``3 s + Prob`` of the same network (the voting rule acts
  at prediction time only), and ``xgboost_3s`` with ``xgboost_3s_mv`` (the
  same XGBoost on the same segments, scored per segment or voted per clip).

What the harness needs to know about a row is declared by its
:class:`~specgenre.study.StudyRow` (``weights``, ``predict_is_proba_argmax``)
or by the built estimator's own parameters (``ResNet18Classifier.pretrained``),
never guessed from names.
"""

import os
import re
import time
import warnings
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ._cache import (
    _CachedFront,
    _caches_in,
    _front_inputs,
    _front_path,
    _Items,
    _KeyedFront,
    _KeyedSegmenter,
    _setting,
    _TransformCache,
)
from .aggregate import _groups_fit_param
from .study import ALL_ROWS, SR, classifier_of, make_row

__all__ = ["RowResult", "accepted_params", "check_params", "evaluate_row", "evaluate_rows"]


def _mean(values):
    return float(np.mean(values)) if values else float("nan")


def _std(values):
    return float(np.std(values)) if len(values) > 1 else float("nan")


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
        Wall time of the row, from its start to its last fold scored. With
        ``fold_jobs``, the next row's folds are handed to the process pool
        while this row's last ones run, so the rows' times can overlap.
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
    balanced_accuracy_scores : list of float
        Balanced accuracy of each fold (mean recall over the genres of the
        fold's test set, :func:`sklearn.metrics.balanced_accuracy_score`).
    macro_f1_scores : list of float
        Macro-averaged F1 of each fold (:func:`sklearn.metrics.f1_score` with
        ``average="macro"``, over the genres in the fold's true or predicted
        labels; 0 for a genre never predicted).
    """

    #: What the study's figures were measured on (the source of a study row's figure).
    STUDY_SOURCE: ClassVar[str] = "study, 10-genre GTZAN"

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
    balanced_accuracy_scores: list = field(default_factory=list)
    macro_f1_scores: list = field(default_factory=list)

    @property
    def mean(self):
        """Mean accuracy over folds (NaN when the row did not run)."""
        return _mean(self.scores)

    @property
    def std(self):
        """Standard deviation of the fold accuracies (NaN with fewer than 2 folds)."""
        return _std(self.scores)

    @property
    def balanced_accuracy_mean(self):
        """Mean balanced accuracy over folds (NaN when the row did not run)."""
        return _mean(self.balanced_accuracy_scores)

    @property
    def balanced_accuracy_std(self):
        """Standard deviation of the fold balanced accuracies (NaN with fewer than 2 folds)."""
        return _std(self.balanced_accuracy_scores)

    @property
    def macro_f1_mean(self):
        """Mean macro-F1 over folds (NaN when the row did not run)."""
        return _mean(self.macro_f1_scores)

    @property
    def macro_f1_std(self):
        """Standard deviation of the fold macro-F1 scores (NaN with fewer than 2 folds)."""
        return _std(self.macro_f1_scores)

    @property
    def published(self):
        """``(figure, source)``: the published figure the row is read against, and whence.

        The study's figure for a study row; for a row beyond the study its
        ``reference_accuracy`` (None when there is none), the source being
        the first words of ``reference``.
        """
        if self.beyond_study:
            if self.reference_accuracy is None:
                return None, "beyond the study; none published"
            source = re.split(r"[,:(]", self.reference)[0].strip() or "see the notes"
            return self.reference_accuracy, f"reference: {source}"
        return self.study_accuracy, self.STUDY_SOURCE

    def as_dict(self):
        """The row's summary as flat, printable values: one line of ``results.csv``."""
        published, source = self.published
        return {
            "row": self.row, "title": self.title, "status": self.status,
            "n_tracks": self.n_tracks, "n_classes": self.n_classes,
            "majority_class": "" if self.majority is None else f"{self.majority:.4f}",
            "accuracy_mean": f"{self.mean:.4f}", "accuracy_std": f"{self.std:.4f}",
            "balanced_accuracy_mean": f"{self.balanced_accuracy_mean:.4f}",
            "balanced_accuracy_std": f"{self.balanced_accuracy_std:.4f}",
            "macro_f1_mean": f"{self.macro_f1_mean:.4f}",
            "macro_f1_std": f"{self.macro_f1_std:.4f}",
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


# --------------------------------------------------------------------------- folds
def _splits(y, cv, split, random_state, track_ids=None):
    """The folds: ``[(train indices, test indices)]``, disjoint by track.

    Stratified K-fold over clips; when ``track_ids`` repeats an id (several
    clips of one track), stratified group K-fold over tracks instead, so
    that no track is both trained on and tested on. A given ``split`` is
    checked for the same.
    """
    if split is not None:
        train, test = (np.asarray(part) for part in split)
        if track_ids is not None:
            both = np.intersect1d(track_ids[train], track_ids[test])
            if len(both):
                raise ValueError(
                    f"split: {len(both)} track(s) in both its training and test parts, "
                    f"e.g. {both[0]!r}.")
        return [(train, test)]
    if track_ids is not None and len(np.unique(track_ids)) < len(track_ids):
        from sklearn.model_selection import StratifiedGroupKFold

        sgkf = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=random_state)
        return list(sgkf.split(np.zeros(len(y)), y, groups=track_ids))
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    return list(skf.split(np.zeros(len(y)), y))


def _protocol(row, cv, split):
    how = "fault-filtered split (train+valid -> test)" if split is not None else (
        f"{cv}-fold stratified CV by track")
    segments = "3 s segments" if row.hop_seconds is None else (
        f"3 s segments every {row.hop_seconds:g} s")
    unit = "segment accuracy" if row.level == "segment" else {
        None: "clip accuracy", "hard": f"clip accuracy, majority vote of {segments}",
        "soft": f"clip accuracy, mean probability of {segments}"}[row.voting]
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


# --------------------------------------------------------------------------- shared fits
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


def _fitted_part(model, kind, row):
    """The fitted model another row with the same key can reuse (``kind``: of
    :func:`_shared_model`, found before the front step was replaced)."""
    return model.estimator_ if kind == "segments" and row.level != "segment" else model


def _reuse(fitted, est, kind, row, X_train, y_train):
    """A fitted row built around ``fitted`` (from a row with the same key), without refitting."""
    from sklearn.frozen import FrozenEstimator

    if kind == "segments" and row.level != "segment":
        # the voting wrapper only segments the clips and learns the labels: the
        # frozen per-segment model is not refitted
        return clone(est).set_params(estimator=FrozenEstimator(fitted)).fit(X_train, y_train)
    return fitted


# --------------------------------------------------------------------------- one fold
def _predict(est, X, proba_argmax):
    """``(labels, proba or None)`` of a fitted row.

    ``proba_argmax`` (the row's declared ``predict_is_proba_argmax``): labels
    are the argmax of the probabilities, so ``predict`` need not run too.
    """
    if not hasattr(est, "predict_proba"):
        return np.asarray(est.predict(X)), None
    proba = np.asarray(est.predict_proba(X), dtype=float)
    if proba_argmax:
        return np.asarray(est.classes_)[np.argmax(proba, axis=1)], proba
    return np.asarray(est.predict(X)), proba


def _fold_metrics(y_true, y_pred):
    """``(accuracy, balanced accuracy, macro-F1)`` of one fold's predictions."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    with warnings.catch_warnings():
        # a genre predicted but absent from a small fold's test set is left out of
        # the balanced accuracy, as documented; the warning would repeat per fold
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(y_true, y_pred))
    macro_f1 = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    return float(np.mean(y_pred == y_true)), balanced, macro_f1


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
    pred, proba = _predict(model, X_test, row.predict_is_proba_argmax)
    return model, pred, proba


def _fit_fold_timed(est, row, train, X_test, threads=None, tables=None):
    """:func:`_fit_fold` in a worker: ``(its output, CPU seconds, (computed, reused))``.

    ``tables`` (:meth:`_TransformCache.tables_for`) are the front-step outputs
    of the fold's samples, computed by the parent: they fill the worker's
    cache, which arrived empty (a cache pickles as its token). The last item
    counts the samples the worker's front step computed and looked up. The
    worker's tables are dropped before the model is returned (a model
    pickles its cache as a token anyway).

    An exception is returned, not raised: raised, it would make joblib end
    the worker processes, and the next row would wait for new ones to start.
    """
    cpu = time.process_time()
    caches = _caches_in(est)
    for cache in caches:
        cache.update(tables or {})
    before = [(c.computed, c.reused) for c in caches]
    try:
        out = _fit_fold(est, row, train, X_test, threads)
    except Exception as exc:  # raised again in the parent
        out = exc
    counts = (sum(c.computed - b[0] for c, b in zip(caches, before)),
              sum(c.reused - b[1] for c, b in zip(caches, before)))
    for cache in caches:
        if cache.received:  # the worker's copy, never the parent's own cache
            cache.keep(set())
    return out, time.process_time() - cpu, counts


def _fit_on_cluster(client, est, row, folds):
    """:func:`_fit_fold_timed` of each fold on the Dask cluster of ``client``, in order.

    ``folds`` holds each fold's ``(train, X_test, tables)``; they are scattered
    to the workers (one task per fold, all submitted at once). Each task caps
    torch at the threads its worker has per task it gets (at least one).
    """
    slots = client.nthreads()
    if not slots:
        raise RuntimeError(f"the Dask cluster of {client.scheduler.address} has no workers")
    per_worker = -(-len(folds) // len(slots))
    threads = max(1, min(slots.values()) // per_worker)
    futures = []
    for train, X_test, tables in folds:
        train, X_test, tables = client.scatter([train, X_test, tables], hash=False)
        futures.append(client.submit(_fit_fold_timed, est, row, train, X_test, threads,
                                     tables, pure=False))
    return client.gather(futures)


def _weights_needed(row, est):
    """The pretrained weights fitting ``est`` loads: ``[(kind, part)]``, kind "imagenet"/"musicnn".

    ImageNet weights: for each :class:`ResNet18Classifier` in ``est`` whose own
    ``pretrained`` parameter is True, whatever the row declares (an override
    ``pretrained=True`` turns them on for a scratch row, ``False`` off for a
    pretrained one). MSD_musicnn weights: for a row that declares
    ``weights="musicnn"``, each step that runs the pretrained network
    (:class:`~specgenre.musicnn.MusicnnEmbedding`, or the
    :class:`~specgenre.musicnn.MusicnnClassifier` fine-tuning it), with its
    ``model`` and ``weights_dir``.
    """
    from .networks import ResNet18Classifier

    parts = [est, *est.get_params(deep=True).values()]
    needed = [("imagenet", p) for p in parts
              if isinstance(p, ResNet18Classifier) and p.pretrained]
    if row.weights == "musicnn":
        from .musicnn import MusicnnClassifier, MusicnnEmbedding

        needed += [("musicnn", p) for p in parts
                   if isinstance(p, (MusicnnEmbedding, MusicnnClassifier))]
    return needed


def _require_weights(row, est):
    """Load the pretrained weights a row needs once, here, before any fold is fitted.

    A missing weights file then skips the row at once (instead of in every fold
    or fold worker), and a download happens once, not once per worker process.
    """
    for kind, part in _weights_needed(row, est):
        if kind == "imagenet":
            from .networks._weights import load_resnet18_imagenet

            load_resnet18_imagenet()
        else:
            from .musicnn import load_musicnn

            load_musicnn(part.model, weights_dir=part.weights_dir)


# --------------------------------------------------------------------------- a run
class _Run:
    """State shared by the rows of one :func:`evaluate_rows` call."""

    def __init__(self, X, y, *, cv, split, random_state, n_jobs, params, progress,
                 track_ids, cache, fold_jobs=None, client=None, memory_saving=False):
        self.X, self.y = X, np.asarray(y)
        self.memory_saving = memory_saving
        if memory_saving:  # as specgenre train: freed blocks go back to the system
            from .training import return_freed_memory

            return_freed_memory()
        self.cv, self.split, self.random_state = cv, split, random_state
        self.n_jobs, self.params, self.progress = n_jobs, params, progress
        self.fold_jobs, self.client = fold_jobs, client
        self.track_ids = (np.arange(len(self.y)) if track_ids is None
                          else np.asarray(track_ids))
        if len(self.track_ids) != len(self.y):
            raise ValueError(f"track_ids has {len(self.track_ids)} entries for "
                             f"{len(self.y)} clips.")
        self.cache = _TransformCache() if cache else None
        self.items = {}  # (front setting, cutting) -> _Items of the rows fed item numbers
        self.fitted = {}  # fit key -> fitted estimator of each fold
        self.folds = _splits(self.y, cv, split, random_state,
                             None if track_ids is None else self.track_ids)

    def build(self, name):
        """``(estimator, applied params)`` of a row."""
        row = _row(name)
        params = self.params(row) if callable(self.params) else dict(self.params or {})
        accepted = accepted_params(name)
        applied = {k: v for k, v in params.items() if k in accepted}
        est = make_row(name, random_state=self.random_state, n_jobs=self.n_jobs, **applied)
        if self.memory_saving:  # recorded with the row's parameters
            from .training import memory_saving_params

            saving = memory_saving_params(est)
            est.set_params(**saving)
            applied.update(saving)
        return est, applied

    def front_setting(self, name, est):
        """``(setting, input shape)`` of the row's cacheable front step, or None.

        The input shape is that of what the front step is given: a whole clip,
        or a 3 s segment (cut by the row's samples or its voting wrapper).
        """
        front = _front_path(est)[1]
        if front is None:
            return None
        try:
            inputs = _front_inputs(est, _row(name).samples(self.X[:1])[0])[0]
        except ValueError:  # clips shorter than a segment: the row fails on its own
            return _setting(front), None
        return _setting(front), inputs.shape[1:]

    def fold_data(self, row):
        """Each fold's ``((X, y, clip) of training samples, (X, y, clip) of test samples)``.

        ``clip`` is the position, within the fold's training (or test) clips,
        of the clip each sample comes from (:meth:`StudyRow.samples`).
        """
        return [self._fold_samples(row, i) for i in range(len(self.folds))]

    def _fold_samples(self, row, i, items=None, cut=False):
        """Fold ``i`` of :meth:`fold_data`; fed item numbers when ``items`` is given.

        With ``items`` (:meth:`_items`) a sample is the column of its item
        number (``cut=False``: a clip's, or a segment's for a segment-level
        row) or, for a row whose voting wrapper cuts the clips (``cut=True``),
        of the clip's position, which :class:`~specgenre._cache._KeyedSegmenter`
        turns into its segments' item numbers.
        """
        def samples(clips):
            if items is None:
                return row.samples(self.X[clips], self.y[clips])
            y = self.y[clips]
            if row.level == "segment":
                clip = np.repeat(np.arange(len(clips)), items.counts[clips])
                return items.of_clips(clips)[:, None], y[clip], clip
            stand_in = clips if cut else items.starts[clips]
            return stand_in[:, None], y, np.arange(len(clips))

        train, test = self.folds[i]
        return samples(train), samples(test)

    def _items(self, row, est, front, block=32):
        """Compute what the front step of ``est`` is ever given, once: ``(items, cut)``.

        The outputs of every input (a clip, or a 3 s segment) of the clips the
        folds use go into the cache, ``block`` clips at a time; ``items``
        (:class:`~specgenre._cache._Items`) says which input of which clip is
        which. ``cut`` is the parameter path of the segmenter of the voting
        wrapper that cuts the clips (None when the row itself cuts, or nothing
        does). ``(None, None)`` for an estimator whose front step is reached
        through more than one such wrapper, cut by both the row and a wrapper,
        or by a segmenter without parameters to compare: its folds are fed
        waveforms.
        """
        from .aggregate import TrackAggregator
        from .segment import ClipSegmenter

        cuts, step, prefix = [], est, ""
        while not isinstance(step, Pipeline):  # _front_path found the way to it
            if isinstance(step, TrackAggregator) and not isinstance(step.segmenter, str):
                cuts.append((prefix + "segmenter", step.segmenter))
            prefix += "estimator__"
            step = step.estimator
        if len(cuts) > 1 or (cuts and row.level == "segment") or (
                cuts and cuts[0][1] is not None and not hasattr(cuts[0][1], "get_params")):
            return None, None
        if cuts:
            segmenter = cuts[0][1]
            segmenter = ClipSegmenter(segment_seconds=3.0) if segmenter is None else segmenter
        else:
            segmenter = (ClipSegmenter(3.0, sr=SR, hop_seconds=row.hop_seconds)
                         if row.level == "segment" else None)
        cutting = None if segmenter is None else (
            type(segmenter).__qualname__, sorted(segmenter.get_params().items()))
        cut = cuts[0][0] if cuts else None
        memo = (_setting(front), repr(cutting))
        if memo in self.items:  # rows with the same front step on the same inputs
            return self.items[memo], cut
        used = np.unique(np.concatenate([np.concatenate(f) for f in self.folds]))
        transformer, table_key, keys, counts = None, None, [], np.zeros(len(self.X), np.int64)
        for start in range(0, len(used), block):
            part = used[start:start + block]
            contiguous = part[-1] - part[0] == len(part) - 1
            clips = self.X[part[0]:part[-1] + 1] if contiguous else self.X[part]
            samples, _, sample_clip = row.samples(clips)
            inputs, source = _front_inputs(est, samples)
            del clips, samples  # a block's waveforms are not held beside their segments
            clip_of = np.asarray(sample_clip)[source]
            if np.any(np.diff(clip_of) < 0):  # not cut clip after clip: fed waveforms
                return None, None
            if transformer is None:
                transformer = clone(front).fit(inputs[:1])
            keys += self.cache.fill(transformer, inputs)
            counts[part] += np.bincount(clip_of, minlength=len(part))
            table_key = (_setting(transformer), inputs.shape[1:])
            del inputs
        starts = np.cumsum(counts) - counts
        items = _Items(table_key, np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(
            len(keys), -1), starts, counts)
        self.items[memo] = items
        return items, cut

    def evaluate(self, name, est, applied, *, key=None, shared_with=None, keep_fit=False):
        """Fit and score one row: :meth:`start` then :meth:`finish`."""
        return self.finish(self.start(name, est, applied, key=key, shared_with=shared_with,
                                      keep_fit=keep_fit))

    def start(self, name, est, applied, *, key=None, shared_with=None, keep_fit=False):
        """Begin a row: its result, its front step set up and, with ``fold_jobs``, its
        folds handed to the process pool (:meth:`_submit`), which fits them while
        this process goes on. :meth:`finish` collects and scores them."""
        row = _row(name)
        result = RowResult(name, row.title, row.study_accuracy,
                           _protocol(row, self.cv, self.split), params=applied,
                           beyond_study=row.beyond_study,
                           reference_accuracy=row.reference_accuracy,
                           reference=row.reference)
        used = np.unique(np.concatenate([test for _, test in self.folds]
                                        + [train for train, _ in self.folds]))
        counts = np.unique(self.y[used], return_counts=True)[1]
        result.n_tracks, result.n_classes = len(np.unique(self.track_ids[used])), len(counts)
        result.majority = float(counts.max() / counts.sum())
        note = _voting_note(est, self.X.shape[1])
        if note:
            result.notes.append(note)
        if shared_with is not None:
            result.notes.append(
                f"reuses the models fitted for {shared_with} in each fold (the same "
                "model on the same samples; only the voting or scoring differs)")
        started = _Started(result, row, est, key, keep_fit, time.perf_counter())
        with started.timed(self.cache):
            try:
                _require_weights(row, est)
                started.kind, _ = _shared_model(est, row)  # before its segmenter is replaced
                path, front = _front_path(est)
                started.front = front
                if self.cache is not None and path is not None:
                    started.items, started.cut = self._items(row, est, front)
                    if started.items is None:  # fed waveforms, the front step looks them up
                        est.set_params(**{path: _CachedFront(front, self.cache)})
                    else:  # fed item numbers
                        est.set_params(**{path: _KeyedFront(front, self.cache, started.items)})
                        if started.cut is not None:
                            est.set_params(**{started.cut: _KeyedSegmenter(started.items)})
                self._submit(started)
            except Exception as exc:  # one row's failure must not hide the others
                started.fail(exc)
        return started

    def finish(self, started):
        """The row's :class:`RowResult`: its folds fitted (here, or collected from
        the pool) and scored."""
        result = started.result
        if result.status == "ok":
            with started.timed(self.cache):
                try:
                    result.predictions = self._score(started)
                except Exception as exc:
                    started.fail(exc)
        result.seconds = time.perf_counter() - started.began
        return result

    def _handover(self, row, est, front, todo, block=32):
        """Front-step outputs of each fold to fit in a worker: ``{fold: tables}``.

        Computes here, once, exactly what the front step of each fold will be
        given (:func:`~specgenre._cache._front_inputs`: whole clips, or the 3 s
        segments a voting row cuts inside), in blocks of ``block`` clips, and
        hands each fold only the outputs of its own clips.
        """
        used = np.unique(np.concatenate([np.concatenate(f) for f in self.folds]))
        transformer, first, keys, clips = None, None, [], []
        for start in range(0, len(used), block):
            part = used[start:start + block]
            samples, _, sample_clip = row.samples(self.X[part])
            inputs, source = _front_inputs(est, samples)
            if transformer is None:
                first = inputs[:1]
                transformer = clone(front).fit(first)
            keys += self.cache.fill(transformer, inputs)
            clips.append(part[np.asarray(sample_clip)[source]])
        clips = np.concatenate(clips)
        tables = {}
        for i in todo:
            needed = np.flatnonzero(np.isin(clips, np.concatenate(self.folds[i])))
            tables[i] = self.cache.tables_for(transformer, first, [keys[j] for j in needed])
        return tables

    def _submit(self, started):
        """Hand the folds to fit to the run's process pool (``fold_jobs``) or the Dask
        cluster, with each fold's samples and front-step outputs; in-process fits
        wait for :meth:`_score`."""
        row, est = started.row, started.est
        items, cut = started.items, started.cut
        fitted = self.fitted.get(started.key, []) if started.key is not None else []
        started.todo = todo = [i for i in range(len(self.folds)) if i >= len(fitted)]
        workers = _fold_workers(self.fold_jobs, len(todo))
        remote = self.client is not None and bool(todo)
        if not (remote or workers > 1):
            return
        started.data = {i: self._fold_samples(row, i, items, cut is not None) for i in todo}
        # the front step runs once here, for all folds; each worker gets the
        # outputs of its fold's samples (its cache arrives empty)
        if items is not None:
            tables = {i: self.cache.table_part(items.table_key, [
                k.tobytes() for k in items.keys[items.of_clips(np.concatenate(
                    self.folds[i]))]]) for i in todo}
        elif started.front is not None and self.cache is not None:
            tables = self._handover(row, est, started.front, todo)
        else:
            tables = {}
        fold_args = [(started.data[i][0], started.data[i][1][0], tables.pop(i, None))
                     for i in todo]
        for i in todo:  # what scoring needs: the test labels and clips
            (_, y_test, clip) = started.data[i][1]
            started.data[i] = ((None, None, None), (None, y_test, clip))
        if remote:
            started.jobs = iter(_fit_on_cluster(self.client, est, row, fold_args))
        else:
            from joblib import Parallel, delayed

            # the pool's workers are the same for every row (loky's reusable executor,
            # as wide as the run's fold_jobs allow): the next row's folds are handed
            # over while this row's last ones run, so no core waits for a row to end
            workers = _fold_workers(self.fold_jobs, len(self.folds))
            threads = max(1, (os.cpu_count() or 1) // workers)
            started.jobs = Parallel(n_jobs=workers, backend="loky", return_as="generator",
                                    pre_dispatch="all")(
                delayed(_fit_fold_timed)(est, row, train, X_test, threads, table)
                for train, X_test, table in fold_args)
            started.workers = workers

    def _score(self, started):
        from tqdm.auto import tqdm

        row, est, kind, key, result = (started.row, started.est, started.kind, started.key,
                                       started.result)
        items, cut, data = started.items, started.cut, started.data
        parts = []
        fitted = self.fitted.get(key, []) if key is not None else []
        fits = {}
        if started.jobs is not None:
            jobs = started.collect()
            # CPU of the workers, which time.process_time() of this process leaves out
            result.cpu_seconds += sum(cpu for _, cpu, _ in jobs)
            if self.cache is not None:
                self.cache.worker_computed += sum(c for _, _, (c, _) in jobs)
                self.cache.worker_reused += sum(r for _, _, (_, r) in jobs)
            for fit, _, _ in jobs:
                if isinstance(fit, Exception):
                    raise fit
            fits = {i: fit for i, (fit, _, _) in zip(started.todo, jobs)}
        for i, (_train, test) in enumerate(tqdm(self.folds, desc=row.name,
                                               disable=not self.progress, leave=False)):
            # one fold's samples at a time (the item numbers, or copies of its waveforms)
            (X_train, y_train, clip_train), (X_test, y_test, clip) = (
                data.pop(i) if i in data else self._fold_samples(row, i, items,
                                                                 cut is not None))
            if i < len(fitted):
                model = _reuse(fitted[i], est, kind, row, X_train, y_train)
                pred, proba = _predict(model, X_test, row.predict_is_proba_argmax)
            else:
                model, pred, proba = fits.get(i) or _fit_fold(
                    est, row, (X_train, y_train, clip_train), X_test)
                if started.keep_fit:
                    fitted.append(_fitted_part(model, kind, row))
            accuracy, balanced, macro_f1 = _fold_metrics(y_test, pred)
            result.scores.append(accuracy)
            result.balanced_accuracy_scores.append(balanced)
            result.macro_f1_scores.append(macro_f1)
            result.classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
            index = test[clip]
            parts.append({
                "index": index, "track": self.track_ids[index],
                "segment": _segment_numbers(clip) if row.level == "segment" else None,
                "fold": np.full(len(index), i), "y_true": y_test, "y_pred": pred,
                "proba": proba})
            del X_train, X_test, model  # not held while the next fold's are made
        if started.keep_fit and key is not None:
            self.fitted[key] = fitted

        def cat(k):
            values = [p[k] for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        return {k: cat(k) for k in parts[0]}


class _Started:
    """A row between :meth:`_Run.start` and :meth:`_Run.finish`.

    ``jobs`` yields the pool's ``(fit, CPU seconds, cache counts)`` of each
    fold in ``todo``, in order (None: the folds are fitted in
    :meth:`_Run._score`); ``outputs`` holds those already taken from it.
    """

    def __init__(self, result, row, est, key, keep_fit, began):
        self.result, self.row, self.est, self.key, self.keep_fit = (
            result, row, est, key, keep_fit)
        self.began = began
        self.kind = self.front = self.items = self.cut = None
        self.todo, self.data, self.jobs, self.outputs, self.workers = [], {}, None, [], 1

    @property
    def pooled(self):
        """Whether its folds are being fitted in the process pool."""
        return self.jobs is not None and self.workers > 1

    def collect(self, n=None):
        """Take the pool's outputs until ``n`` are held (all by default)."""
        n = len(self.todo) if n is None else n
        while len(self.outputs) < n:
            self.outputs.append(next(self.jobs))
        return self.outputs

    def fail(self, exc):
        from .networks import PretrainedWeightsNotFoundError

        result = self.result
        result.status = ("skipped" if isinstance(exc, PretrainedWeightsNotFoundError)
                         else "failed")
        result.message = f"{type(exc).__name__}: {exc}"
        result.scores, result.predictions = [], None
        result.balanced_accuracy_scores, result.macro_f1_scores = [], []
        self.jobs, self.outputs, self.todo = None, [], []

    @contextmanager
    def timed(self, cache):
        """Adds this process's CPU time and the front step's time in the block."""
        cpu = time.process_time()
        spent = cache.seconds if cache is not None else 0.0
        try:
            yield
        finally:
            self.result.cpu_seconds += time.process_time() - cpu
            if cache is not None:
                self.result.transform_seconds += cache.seconds - spent


def evaluate_row(name, X, y, *, cv=5, split=None, random_state=0, n_jobs=None,
                 fold_jobs=None, params=None, progress=False, track_ids=None, client=None,
                 memory_saving=False):
    """Fit and score one row on waveforms.

    Parameters
    ----------
    name : str
        A key of :data:`~specgenre.study.ALL_ROWS`.
    X : ndarray of shape (n_clips, n_samples), or Waveforms
        Waveforms at 22050 Hz. A :class:`~specgenre.Waveforms`
        (``Collection.load(lazy=True)``, what ``specgenre reproduce`` passes)
        decodes the clips when they are needed instead of holding them all:
        once per front-step setting, block by block, for the rows whose front
        step is cached, and once per fold for the others. The results are
        the same.
    y : array-like of shape (n_clips,)
        Genres.
    cv : int, default=5
        Folds of stratified K-fold over clips (ignored when ``split`` is given);
        over tracks when ``track_ids`` repeats an id (stratified group K-fold),
        so that folds are always disjoint by track.
    split : (train_indices, test_indices), optional
        A fixed split (e.g. the fault-filtered one) instead of CV; a track in
        both parts raises ``ValueError``.
    random_state : int, default=0
        Seed of the folds and of the models.
    n_jobs : int or None
        Workers for the feature/spectrogram steps.
    fold_jobs : int or None, default=None
        Processes fitting the folds in parallel (joblib's loky backend; -1:
        all cores; at most one per fold to fit; None or 1: one after the
        other in this process). :func:`evaluate_rows` keeps one pool of them
        for all rows and hands a row's folds to it as soon as the previous
        row's last folds are running (a row that reuses another's models
        waits for them), so that no worker idles while a row's last fold
        runs; the rows' ``seconds`` then overlap. Each process caps torch at ``cpu_count //
        processes`` threads: small networks gain little from more threads,
        so two processes of one thread use two cores better than one of two.
        The front step (spectrograms, features) of the row is computed once in
        this process, on exactly what each fold's front step is given (whole
        clips, or the 3 s segments of a voting row), and each worker is handed
        the outputs of its fold's clips only; the fitted models coming back
        carry none of them. For a fixed ``random_state`` the scores and
        predictions are those of ``None`` in a process with torch at the same
        thread count (torch's sums, hence a network's weights, can differ in
        the last bits between thread counts).
    client : dask.distributed.Client or str, optional
        Fit the folds on this Dask cluster instead (a client, or a scheduler's
        address such as ``"tcp://10.0.0.5:8786"``, connected to and closed at
        the end; ``fold_jobs`` is then ignored). As with ``fold_jobs``, the
        front step runs here and each fold's training and test samples (or
        front-step outputs) are sent to the workers, one task per fold, all
        submitted at once; each task caps torch at its worker's threads per
        task (at least one). The workers need specgenre, and the pretrained
        weights of the rows that load them. The scores and predictions are
        those of ``fold_jobs`` with the same torch thread count.
    params : dict or callable, optional
        Overrides of the row's estimator (see :func:`accepted_params`); keys
        the row does not take are left out (:attr:`RowResult.params` lists
        those applied). A callable is called with the row's
        :class:`~specgenre.study.StudyRow` and returns the dict (e.g. to set
        ``freq_pool`` on the dB rows only).
    progress : bool, default=False
        Show a progress bar over folds.
    track_ids : array-like of shape (n_clips,), optional
        Track of each clip, written with the out-of-fold predictions (default:
        positions, one track per clip).
    memory_saving : bool, default=False
        Fit the networks as ``specgenre train`` does
        (:func:`~specgenre.training.memory_saving`): float16 spectrograms and
        ``checkpointing=True``, for less memory and more compute; freed memory
        is returned to the system (:func:`~specgenre.training.return_freed_memory`,
        process-wide). The models differ from the row's by float round-off and
        the float16 rounding of the spectrograms, so the figures may differ
        slightly.

    Returns
    -------
    result : RowResult
    """
    return evaluate_rows([name], X, y, cv=cv, split=split, random_state=random_state,
                         n_jobs=n_jobs, fold_jobs=fold_jobs, params=params,
                         progress=progress, track_ids=track_ids, client=client,
                         memory_saving=memory_saving)[0]


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
        Compute each clip's spectrogram, features or embedding once per setting
        for all folds and rows (32 clips at a time, before the first fold of
        the first row that needs them; dropped after the last), feed the folds
        item numbers instead of copies of the waveforms, and fit rows that fit
        the same model on the same samples (``3 s + MV`` and ``3 s + Prob`` of
        one network, ``xgboost_3s`` and ``xgboost_3s_mv``) once per fold. False
        recomputes everything in every fold and row, each fold holding copies
        of its waveforms (the scores are the same; only time and memory
        differ).
    **kwargs
        ``cv``, ``split``, ``random_state``, ``n_jobs``, ``fold_jobs``,
        ``params``, ``progress``, ``track_ids``, ``client`` and
        ``memory_saving`` of :func:`evaluate_row`. With a dict ``params``, a key that none of the
        rows takes raises ``ValueError``. A scheduler's address as ``client``
        is connected to once for all rows.

    Returns
    -------
    results : list of RowResult
        In the order of ``rows``.
    """
    if isinstance(kwargs.get("client"), str):
        from .filejobs import cluster

        with cluster(kwargs.pop("client")) as client:
            return evaluate_rows(rows, X, y, callback=callback, cache=cache, client=client,
                                 **kwargs)
    kwargs.setdefault("cv", 5)
    for key in ("split", "n_jobs", "fold_jobs", "params", "track_ids", "client"):
        kwargs.setdefault(key, None)
    kwargs.setdefault("memory_saving", False)
    kwargs.setdefault("random_state", 0)
    kwargs.setdefault("progress", False)
    rows = list(rows)
    for name in rows:
        _row(name)
    if isinstance(kwargs["params"], dict):
        check_params(rows, kwargs["params"])
    run = _Run(X, y, cache=cache, **kwargs)
    built, keys, settings = [], [], []
    for name in rows:
        try:
            est, applied = run.build(name)
        except Exception as exc:  # reported as the row's failure below
            built.append(exc)
            keys.append(None)
            settings.append(None)
            continue
        built.append((est, applied))
        keys.append(_fit_key(est, _row(name)) if cache else None)
        settings.append(run.front_setting(name, est))

    # rows whose front step has the same setting and input run one after the other,
    # so that the cache holds few spectrograms or features at a time
    first = {}
    for i, key in enumerate(settings):
        first.setdefault(key, i)
    order = sorted(range(len(rows)),
                   key=lambda i: first[settings[i]] if cache and settings[i] is not None else i)
    results, first_fit = [None] * len(rows), {}
    pending = deque()  # rows whose folds the process pool is fitting, oldest first

    def done(i, result):
        results[i] = result
        if callback is not None:
            callback(result)

    def finish(i, started, later):
        result = run.finish(started)
        if result.status == "ok" and keys[i] is not None:
            first_fit.setdefault(keys[i], rows[i])
        if keys[i] not in later:
            run.fitted.pop(keys[i], None)
        return result

    def drain(keep=0):  # finish the oldest pooled rows until ``keep`` are left
        while len(pending) > keep:
            i, started, later = pending.popleft()
            done(i, finish(i, started, later))

    def forget(pos):  # nothing kept after the last row that needs it
        if run.cache is not None:
            kept = {settings[j] for j in order[pos + 1:]}
            run.cache.keep(kept)
            run.items = {m: v for m, v in run.items.items() if v.table_key in kept}

    for pos, i in enumerate(order):
        name = rows[i]
        if isinstance(built[i], Exception):
            row = _row(name)
            done(i, RowResult(name, row.title, row.study_accuracy,
                              _protocol(row, run.cv, run.split), status="failed",
                              message=f"{type(built[i]).__name__}: {built[i]}"))
            continue
        est, applied = built[i]
        later = [keys[j] for j in order[pos + 1:]]
        key = keys[i]
        if key is not None and any(keys[j] == key for j, _, _ in pending):
            drain()  # it reuses the models of a row still being fitted
        # the rows before are collected up to their last round of folds: the pool
        # then has a free worker for this row's first folds, and none of theirs waits
        # behind this row's
        for _, before, _ in pending:
            try:
                before.collect(max(0, len(before.todo) - before.workers))
            except Exception as exc:  # a worker lost: that row's failure
                before.fail(exc)
        started = run.start(name, est, applied, key=key,
                            shared_with=first_fit.get(key) if key is not None else None,
                            keep_fit=key is not None and key in later)
        if started.pooled:  # its workers hold what they need: the cache can go
            forget(pos)
            pending.append((i, started, later))
            drain(keep=1)
        else:  # fitted in this process: after the pool's rows, not beside them
            drain()
            result = finish(i, started, later)
            forget(pos)
            done(i, result)
    drain()
    return results
