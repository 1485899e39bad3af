"""Clip-level predictions from segment-level models: majority vote or mean probability.

The study cut each 30 s clip into ten 3 s segments, trained on the segments
and predicted a clip's genre either by the majority vote of its segments
("3 s + MV") or by the argmax of their mean class probabilities
("3 s + Prob"). :class:`TrackAggregator` does this as one scikit-learn
classifier over whole clips, so that every split made by
:func:`~sklearn.model_selection.cross_val_score` or
:class:`~sklearn.model_selection.GridSearchCV` keeps all segments of a clip on
the same side.
"""

from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    column_or_1d,
    has_fit_parameter,
)

from ._validation import HasMethods, StrOptions, validate_params

__all__ = ["SegmentVote", "TrackAggregator", "group_segments", "hard_vote", "soft_vote"]


class SegmentVote(NamedTuple):
    """What :meth:`TrackAggregator.vote` returns (see there)."""

    labels: np.ndarray
    scores: np.ndarray
    segment_labels: np.ndarray
    segment_proba: np.ndarray | None


# --------------------------------------------------------------------------
# voting: pure functions over segment-level predictions
# --------------------------------------------------------------------------

def _check_clip_index(clip_index, n_segments, n_clips):
    clip_index = np.asarray(clip_index)
    if clip_index.ndim != 1 or len(clip_index) != n_segments:
        raise ValueError(
            f"clip_index must be 1-D with one entry per segment ({n_segments}); "
            f"got shape {clip_index.shape}."
        )
    if not np.issubdtype(clip_index.dtype, np.integer):
        raise ValueError(f"clip_index must hold integers; got dtype {clip_index.dtype}.")
    if n_segments and clip_index.min() < 0:
        raise ValueError("clip_index must be non-negative.")
    if n_clips is None:
        n_clips = int(clip_index.max()) + 1 if n_segments else 0
    elif n_segments and clip_index.max() >= n_clips:
        raise ValueError(
            f"clip_index holds clip {int(clip_index.max())}, but n_clips={n_clips}."
        )
    per_clip = np.bincount(clip_index, minlength=n_clips)
    if np.any(per_clip == 0):
        raise ValueError(
            f"every clip needs at least one segment; clip(s) "
            f"{np.flatnonzero(per_clip == 0)[:10].tolist()} have none."
        )
    return clip_index, n_clips, per_clip


def soft_vote(proba, clip_index, *, n_clips=None):
    """Mean class probabilities of each clip's segments.

    Parameters
    ----------
    proba : array-like of shape (n_segments, n_classes)
        Class probabilities of every segment.
    clip_index : array-like of int, shape (n_segments,)
        Clip each segment belongs to, in ``0 .. n_clips - 1``.
    n_clips : int, optional
        Number of clips (default ``max(clip_index) + 1``). Every clip must
        have at least one segment.

    Returns
    -------
    clip_proba : ndarray of shape (n_clips, n_classes), float64
        Mean probability of each class over the clip's segments; rows sum to
        1 when the segments' rows do. The clip's prediction is the argmax of
        its row (ties go to the first class, in column order).
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-D (n_segments, n_classes); got shape {proba.shape}.")
    clip_index, n_clips, per_clip = _check_clip_index(clip_index, len(proba), n_clips)
    sums = np.zeros((n_clips, proba.shape[1]))
    np.add.at(sums, clip_index, proba)
    return sums / per_clip[:, None]


def hard_vote(labels, clip_index, *, n_clips=None, n_classes=None, proba=None):
    """Majority vote of each clip's segment labels, with a deterministic tie-break.

    Parameters
    ----------
    labels : array-like of int, shape (n_segments,)
        Predicted class of every segment, as an index into the classes
        (``0 .. n_classes - 1``).
    clip_index : array-like of int, shape (n_segments,)
        Clip each segment belongs to, in ``0 .. n_clips - 1``.
    n_clips : int, optional
        Number of clips (default ``max(clip_index) + 1``). Every clip must
        have at least one segment.
    n_classes : int, optional
        Number of classes (default ``max(labels) + 1``, or ``proba``'s columns).
    proba : array-like of shape (n_segments, n_classes), optional
        Class probabilities of the segments, used only to break ties.

    Returns
    -------
    winners : ndarray of int, shape (n_clips,)
        The class with the most votes in each clip. Among classes tied for
        the most votes, the one with the largest summed probability over the
        clip's segments wins when ``proba`` is given; remaining ties (or
        all ties without ``proba``) go to the tied class that comes first
        (lowest index).
    votes : ndarray of int, shape (n_clips, n_classes)
        Number of segments of each clip predicted as each class.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {labels.shape}.")
    if len(labels) and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be class indices (integers); got dtype {labels.dtype}."
        )
    labels = labels.astype(np.intp, copy=False)
    clip_index, n_clips, _ = _check_clip_index(clip_index, len(labels), n_clips)
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2 or len(proba) != len(labels):
            raise ValueError(
                f"proba must have shape (n_segments, n_classes) = ({len(labels)}, ...); "
                f"got {proba.shape}."
            )
        if n_classes is None:
            n_classes = proba.shape[1]
    if n_classes is None:
        n_classes = int(labels.max()) + 1 if len(labels) else 0
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in 0 .. {n_classes - 1}.")
    votes = np.zeros((n_clips, n_classes), dtype=np.intp)
    np.add.at(votes, (clip_index, labels), 1)
    if proba is None:
        return np.argmax(votes, axis=1), votes
    if proba.shape[1] != n_classes:
        raise ValueError(f"proba has {proba.shape[1]} columns for {n_classes} classes.")
    tied = votes == votes.max(axis=1, keepdims=True)
    summed = np.zeros((n_clips, n_classes))
    np.add.at(summed, clip_index, proba)
    return np.argmax(np.where(tied, summed, -np.inf), axis=1), votes


# --------------------------------------------------------------------------
# pre-segmented tables
# --------------------------------------------------------------------------

def group_segments(X, y, groups):
    """Turn a table of segment rows into one sample per track.

    Kaggle's 3 s GTZAN table has one row per 3 s segment and the track in
    its file name. :class:`TrackAggregator` with ``segmenter="precomputed"``
    takes one sample per *track*: the 2-D array of that track's segment rows.
    This function makes that form, so cross-validation splits by track.

    Parameters
    ----------
    X : array-like of shape (n_segments, n_features)
        Segment features (numbers only; NaN is kept for estimators that
        accept it).
    y : array-like of shape (n_segments,) or None
        Label of each segment. All segments of a track must share one label.
    groups : array-like of shape (n_segments,)
        Track of each segment (e.g. ``"blues.00000"``).

    Returns
    -------
    X_tracks : ndarray of object, shape (n_tracks,)
        ``X_tracks[i]`` is the float array ``(n_segments_i, n_features)`` of
        track ``i``'s rows, in their order in ``X``; tracks may have
        different numbers of segments.
    y_tracks : ndarray of shape (n_tracks,) or None
        Each track's label (None when ``y`` is None).
    track_ids : ndarray of shape (n_tracks,)
        Each track's group value. Tracks are in order of first appearance.

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre import group_segments
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> Xt, yt, ids = group_segments(X, ["a", "a", "b", "b", "b"], [7, 7, 3, 3, 3])
    >>> [x.shape for x in Xt], yt.tolist(), ids.tolist()
    ([(2, 2), (3, 2)], ['a', 'b'], [7, 3])
    """
    X = check_array(X, dtype="numeric", ensure_all_finite=False, input_name="X")
    n = X.shape[0]
    groups = column_or_1d(np.asarray(groups), warn=False)
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} rows of X.")
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(first, kind="stable")  # track ranks in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    track_of_row = rank[inverse]
    rows = np.argsort(track_of_row, kind="stable")  # rows grouped by track, order kept
    bounds = np.cumsum(np.bincount(track_of_row, minlength=len(order)))[:-1]
    row_blocks = np.split(rows, bounds)
    track_ids = groups[np.sort(first)]

    X_tracks = np.empty(len(row_blocks), dtype=object)
    for i, block in enumerate(row_blocks):
        X_tracks[i] = X[block]
    if y is None:
        return X_tracks, None, track_ids
    y = column_or_1d(np.asarray(y), warn=False)
    if len(y) != n:
        raise ValueError(f"y has {len(y)} entries for {n} rows of X.")
    y_tracks = y[np.sort(first)]
    for i, block in enumerate(row_blocks):
        labels = np.unique(y[block])
        if len(labels) > 1:
            raise ValueError(
                f"track {_plain(track_ids[i])!r} has segments with different labels "
                f"{labels.tolist()}; a track must have a single label."
            )
    return X_tracks, y_tracks, track_ids


def _plain(value):
    """A NumPy scalar as the Python value it holds (for readable messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _stack_tracks(X):
    """Segments and clip index of pre-segmented tracks (see ``segmenter="precomputed"``)."""
    if hasattr(X, "iloc") or (hasattr(X, "ndim") and X.ndim == 2 and X.dtype != object):
        raise ValueError(
            "segmenter='precomputed' takes one sample per track: a 2-D array of that "
            "track's segment rows (a list or 1-D object array of 2-D arrays, or a 3-D "
            "array). Got a 2-D table; turn a table of segment rows into that form "
            "with specgenre.group_segments(X, y, groups)."
        )
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim != 3:
            raise ValueError(
                "segmenter='precomputed' expects a 3-D array (n_tracks, n_segments, "
                f"n_features) or a list of 2-D arrays; got an array of shape {X.shape}."
            )
        n, s, f = X.shape
        if n == 0 or s == 0 or f == 0:
            raise ValueError(f"Found array with shape {X.shape}; need at least 1 track, "
                             "1 segment and 1 feature.")
        return X.reshape(n * s, f), np.repeat(np.arange(n), s)
    try:
        tracks = [np.asarray(t) for t in X]
    except TypeError:
        raise ValueError(
            f"segmenter='precomputed' expects a sequence of 2-D arrays; got {type(X).__name__}."
        ) from None
    if not tracks:
        raise ValueError("Found 0 tracks; need at least 1.")
    n_features = None
    for i, t in enumerate(tracks):
        if t.ndim != 2 or t.shape[0] == 0:
            raise ValueError(
                f"track {i} of X must be a 2-D array (n_segments, n_features) with at "
                f"least one segment; got shape {t.shape}."
            )
        if n_features is None:
            n_features = t.shape[1]
        elif t.shape[1] != n_features:
            raise ValueError(
                f"track {i} has {t.shape[1]} features per segment, track 0 has {n_features}."
            )
    lengths = [len(t) for t in tracks]
    return np.concatenate(tracks, axis=0), np.repeat(np.arange(len(tracks)), lengths)


def _n_rows(x):
    """Number of rows (samples) of an array-like, sparse matrix or DataFrame; None if 0-d."""
    if not hasattr(x, "shape") and not hasattr(x, "__len__"):
        x = np.asarray(x)  # e.g. an object with only __array__
    shape = getattr(x, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    return len(x)


def _take_rows(x, rows):
    """Rows ``rows`` (an integer array) of an array, sparse matrix, DataFrame, Series or list."""
    if hasattr(x, "iloc"):
        return x.iloc[rows]
    if hasattr(x, "shape"):
        return x[rows]
    return [x[i] for i in rows]


def _search_classes():
    """scikit-learn's public searches: their ``fit`` passes ``groups`` on to their ``cv``.

    GridSearchCV and RandomizedSearchCV, and the halving searches once
    ``sklearn.experimental.enable_halving_search_cv`` has made them public.
    """
    import sklearn.model_selection as model_selection

    names = ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV",
             "HalvingRandomSearchCV")
    # vars(): until enabled, the module's __getattr__ raises ImportError for the halving ones
    found = vars(model_selection)
    return tuple(found[n] for n in names if n in found)


def _groups_fit_param(estimator):
    """Name of the fit parameter through which ``estimator`` takes groups, or None.

    A Pipeline routes to its last step (``"<name>__groups"``, recursively); a
    scikit-learn search (GridSearchCV, RandomizedSearchCV, and their
    subclasses; the halving searches once enabled) takes ``groups`` through
    ``**params`` for its splitter; any other estimator takes them if its
    ``fit`` has a ``groups`` parameter (as third-party searches built on
    scikit-learn's search base class commonly do).

    No public scikit-learn API says whether a meta-estimator's ``fit`` hands
    ``groups`` to its splitter when metadata routing is off: a ``cv``
    parameter with ``fit(**params)`` is not enough (CalibratedClassifierCV or
    LogisticRegressionCV would pass them to the wrong place, or refuse them),
    so the searches are named.
    """
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        if last is None or (isinstance(last, str) and last == "passthrough"):
            return None
        inner = _groups_fit_param(last)
        return None if inner is None else f"{name}__{inner}"
    if isinstance(estimator, _search_classes()):
        return "groups"
    try:
        return "groups" if has_fit_parameter(estimator, "groups") else None
    except (TypeError, ValueError):  # fit without an inspectable signature
        return None


# --------------------------------------------------------------------------
# the meta-estimator
# --------------------------------------------------------------------------

def _soft_voting_available(self):
    if self.voting != "soft":
        raise AttributeError(
            f"predict_proba is only available with voting='soft' (voting={self.voting!r}); "
            "with hard voting use predict_votes for the vote counts."
        )
    est = getattr(self, "estimator_", self.estimator)
    if not hasattr(est, "predict_proba"):
        raise AttributeError(
            f"predict_proba needs an estimator with predict_proba; "
            f"{type(est).__name__} has none."
        )
    return True


class TrackAggregator(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Classify whole clips with a model trained on their segments, by voting.

    :meth:`fit` cuts each clip into segments (a clone of ``segmenter``),
    gives every segment its clip's label and fits a clone of ``estimator`` on
    the segments. :meth:`predict` cuts the clips the same way and combines
    each clip's segment predictions: by majority vote (``voting="hard"``,
    the study's "3 s + MV") or by the largest mean class probability
    (``voting="soft"``, "3 s + Prob").

    Because each sample of ``X`` is a whole clip, any scikit-learn
    splitter splits by clip: no segment of a test clip is ever trained on.
    For the same reason inside the inner estimator, the segments' clip
    numbers are passed as ``groups`` to its ``fit`` when it takes them
    (a ``fit(X, y, groups=None)`` parameter, a :class:`~sklearn.pipeline.Pipeline`
    whose last step has one, or a search such as
    :class:`~sklearn.model_selection.GridSearchCV` whose ``cv`` uses groups),
    so an inner validation split can keep the segments of a clip together.

    Parameters
    ----------
    estimator : classifier
        Model of one segment, e.g. ``Pipeline([SpectrogramTransformer(),
        ResNet18Classifier()])`` for waveform segments, or
        :class:`XGBoostClassifier` for rows of segment features.
    segmenter : transformer, "precomputed" or None, default=None
        How clips become segments:

        - ``None``: ``ClipSegmenter(segment_seconds=3.0)`` (22050 Hz);
        - a transformer with ``fit(X)`` and ``segment(X) -> (segments,
          clip_index)``, such as :class:`ClipSegmenter`; ``X`` is then
          ``(n_clips, n_samples)`` waveforms;
        - ``"precomputed"``: the clips are already segmented; each sample of
          ``X`` is a 2-D array ``(n_segments_i, n_features)`` of one track's
          segment rows (``X`` a list or 1-D object array of such arrays,
          ragged allowed, or a 3-D array). :func:`group_segments` makes this
          form from a table of segment rows with track ids.
    voting : {"hard", "soft"}, default="hard"
        ``"hard"``: each clip gets the label most of its segments were
        predicted as; among labels tied for the most votes, the one with the
        largest summed probability over the clip's segments wins when the
        estimator has ``predict_proba`` (computed for tied clips only), else
        the first in ``classes_`` order. ``"soft"``: each clip gets the argmax
        of its segments' mean probabilities (ties: first in ``classes_``);
        needs an estimator with ``predict_proba``.

    Attributes
    ----------
    estimator_ : classifier
        The clone of ``estimator`` fitted on the training segments (with
        the original labels).
    segmenter_ : transformer or None
        The fitted clone of ``segmenter`` (None when ``"precomputed"``).
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    le_ : LabelEncoder
        Encoder of the labels into column indices of ``predict_proba``.
    n_features_in_ : int
        Samples per clip (waveforms) or features per segment row
        (``"precomputed"``) seen in :meth:`fit`.

    See Also
    --------
    ClipSegmenter : cuts clips into segments.
    group_segments : one sample per track from a table of segment rows.
    hard_vote, soft_vote : the voting rules as functions.
    sklearn.ensemble.VotingClassifier : votes over several models instead of
        several segments.

    Notes
    -----
    With ``voting="hard"`` :meth:`predict_proba` is not available (vote
    fractions are not probabilities, and argmax of them would disagree with
    the tie-break); :meth:`predict_votes` gives the vote counts instead.

    Parameters given to :meth:`fit` as ``**fit_params`` go to the inner
    estimator's ``fit``; those with one entry per clip (such as
    ``sample_weight``) are repeated for each of the clip's segments. Under
    scikit-learn's metadata routing (``enable_metadata_routing=True``) pass
    ``groups`` explicitly instead of relying on the automatic routing.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from specgenre import TrackAggregator, group_segments
    >>> rng = np.random.default_rng(0)
    >>> y_seg = np.repeat(["jazz", "rock"], 20)          # 40 segment rows
    >>> X_seg = rng.normal(size=(40, 3)) + (y_seg == "rock")[:, None]
    >>> tracks = np.repeat(np.arange(8), 5)             # 8 tracks of 5 segments
    >>> X, y, ids = group_segments(X_seg, y_seg, tracks)
    >>> clf = TrackAggregator(LogisticRegression(), segmenter="precomputed").fit(X, y)
    >>> clf.predict(X).tolist() == y.tolist()
    True
    """

    _constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "segmenter": [HasMethods(["fit", "segment"]), StrOptions({"precomputed"}), None],
        "voting": [StrOptions({"hard", "soft"})],
    }

    def __init__(self, estimator, *, segmenter=None, voting="hard"):
        self.estimator = estimator
        self.segmenter = segmenter
        self.voting = voting

    def _segment(self, X, *, fit):
        """Return ``(segments, clip_index, n_clips)``."""
        if isinstance(self.segmenter, str):  # "precomputed"
            segments, clip_index = _stack_tracks(X)
            n_features = segments.shape[1]
            if fit:
                self.segmenter_ = None
                self.n_features_in_ = n_features
            elif n_features != self.n_features_in_:
                raise ValueError(
                    f"X has {n_features} features per segment, but TrackAggregator was "
                    f"fitted with {self.n_features_in_}."
                )
            return segments, clip_index, int(clip_index[-1]) + 1
        if fit:
            if self.segmenter is None:
                from .segment import ClipSegmenter

                segmenter = ClipSegmenter(segment_seconds=3.0)
            else:
                segmenter = clone(self.segmenter)
            self.segmenter_ = segmenter.fit(X)
            self.n_features_in_ = self.segmenter_.n_features_in_
        segments, clip_index = self.segmenter_.segment(X)
        return segments, np.asarray(clip_index), _n_rows(X)

    def fit(self, X, y, groups=None, **fit_params):
        """Fit a clone of the estimator on the segments of the clips.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples), or sequence of 2-D arrays
            Waveforms, or pre-segmented tracks when ``segmenter="precomputed"``.
        y : array-like of shape (n_clips,)
            Label of each clip, given to each of its segments.
        groups : array-like of shape (n_clips,), default=None
            Group of each clip (e.g. an artist), passed per segment to the
            inner estimator's ``groups`` so that its own validation split
            keeps groups together. By default each clip is its own group.
            An error is raised if the estimator takes no groups.
        **fit_params : dict
            Passed to the inner estimator's ``fit``; array-likes with one
            entry per clip are repeated for each segment.

        Returns
        -------
        self : TrackAggregator
        """
        self._check_fit_args(y)
        segments, clip_index, n_clips = self._segment(X, fit=True)

        def fit_inner(estimator, y_segments, **params):
            return estimator.fit(segments, y_segments, **params)

        return self._fit_segments(fit_inner, clip_index, n_clips, y, groups, fit_params)

    def _check_fit_args(self, y):
        """Checks of :meth:`fit` that need no data, made before the clips are cut."""
        validate_params(self)
        if self.voting == "soft" and not hasattr(self.estimator, "predict_proba"):
            raise ValueError(
                f"voting='soft' averages segment probabilities, but "
                f"{type(self.estimator).__name__} has no predict_proba "
                "(for SVC set probability=True); use voting='hard'."
            )
        if y is None:
            raise ValueError(
                "requires y to be passed, but the target y is None: TrackAggregator is "
                "a classifier."
            )

    def _fit_segments(self, fit_inner, clip_index, n_clips, y, groups=None, fit_params=None):
        """What :meth:`fit` does once the clips are cut: labels, groups, the inner fit.

        ``fit_inner(estimator, y_segments, **params)`` fits ``estimator`` (a clone
        of ``self.estimator``) on the segments and returns it; ``clip_index`` is
        the clip of each segment. :meth:`fit` passes the segments it cut;
        :func:`specgenre._blockfit.fit_aggregator_blocks` segments and transforms
        blocks of clips as it goes.
        """
        y = check_array(y, ensure_2d=False, dtype=None, ensure_min_samples=0, input_name="y")
        y = column_or_1d(y, warn=True)
        if len(y) != n_clips:
            raise ValueError(f"X has {n_clips} clips but y has {len(y)} labels.")
        check_classification_targets(y)
        self.le_ = LabelEncoder().fit(y)
        self.classes_ = self.le_.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"TrackAggregator needs at least 2 classes in y; got 1 class: "
                f"{_plain(self.classes_[0])!r}."
            )

        params = {}
        for key, value in (fit_params or {}).items():
            if (value is not None and not isinstance(value, str) and hasattr(value, "__len__")
                    and _n_rows(value) == n_clips):
                value = _take_rows(value, clip_index)
            params[key] = value
        groups_key = _groups_fit_param(self.estimator)
        if groups is not None:
            groups = column_or_1d(np.asarray(groups), warn=False)
            if len(groups) != n_clips:
                raise ValueError(f"groups has {len(groups)} entries for {n_clips} clips.")
            if groups_key is None:
                raise ValueError(
                    f"groups were given, but {type(self.estimator).__name__} takes no "
                    "groups in fit (a `groups` fit parameter, a Pipeline whose last step "
                    "has one, or a *SearchCV)."
                )
            segment_groups = groups[clip_index]
        else:
            segment_groups = clip_index
        if groups_key is not None and groups_key not in params:
            params[groups_key] = segment_groups

        self.estimator_ = fit_inner(clone(self.estimator), y[clip_index], **params)
        inner_classes = getattr(self.estimator_, "classes_", None)
        if inner_classes is None:
            self._columns = np.arange(len(self.classes_))
        else:
            inner_classes = np.asarray(inner_classes)
            if len(inner_classes) != len(self.classes_) or not np.all(
                    np.isin(self.classes_, inner_classes)):
                raise ValueError(
                    f"{type(self.estimator_).__name__} learned classes "
                    f"{inner_classes.tolist()} from the segments, not the clips' classes "
                    f"{self.classes_.tolist()}."
                )
            lookup = {c: i for i, c in enumerate(inner_classes.tolist())}
            self._columns = np.asarray([lookup[c] for c in self.classes_.tolist()])
        return self

    def _segment_proba(self, segments):
        return np.asarray(self.estimator_.predict_proba(segments))[:, self._columns]

    def _hard_vote(self, segments, clip_index, n_clips):
        """Winners (indices into classes_), vote counts and segment labels (indices)."""
        labels = self.le_.transform(np.asarray(self.estimator_.predict(segments)))
        winners, votes = hard_vote(labels, clip_index, n_clips=n_clips,
                                   n_classes=len(self.classes_))
        n_top = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1)
        tied = np.flatnonzero(n_top > 1)
        if len(tied) and hasattr(self.estimator_, "predict_proba"):
            # break ties by summed probability, computed for the tied clips only
            rank = np.full(n_clips, -1)
            rank[tied] = np.arange(len(tied))
            sel = np.flatnonzero(rank[clip_index] >= 0)
            proba = self._segment_proba(_take_rows(segments, sel))
            winners[tied], _ = hard_vote(labels[sel], rank[clip_index[sel]],
                                         n_clips=len(tied), proba=proba)
        return winners, votes, labels

    def vote(self, segments, clip_index=None):
        """Combine the predictions for already-cut segments by this model's vote.

        This is the vote :meth:`predict` casts after cutting clips; it also
        judges a whole song cut into windows of the segment length
        (:func:`specgenre.judge`), so that clips and songs are voted on by
        the same code.

        Parameters
        ----------
        segments : array-like
            Segments as the inner estimator takes them (e.g. 3 s waveforms,
            or segment feature rows).
        clip_index : array-like of int, shape (n_segments,), default=None
            Clip of each segment, ``0 .. n_clips - 1``; None: all segments are
            of one clip.

        Returns
        -------
        vote : SegmentVote
            ``labels`` (one per clip, from ``classes_``), ``scores`` (shape
            ``(n_clips, n_classes)``: mean probabilities with
            ``voting="soft"``, vote shares with ``voting="hard"``, so that a
            clip's label always has its largest score), ``segment_labels``
            (each segment's own prediction) and ``segment_proba`` (each
            segment's probabilities with ``voting="soft"``, else None).
        """
        check_is_fitted(self)
        n_segments = _n_rows(segments)
        if clip_index is None:
            clip_index = np.zeros(n_segments, dtype=np.intp)
        clip_index, n_clips, per_clip = _check_clip_index(clip_index, n_segments, None)
        if self.voting == "soft":
            proba = self._segment_proba(segments)
            scores = soft_vote(proba, clip_index, n_clips=n_clips)
            return SegmentVote(self.classes_[np.argmax(scores, axis=1)], scores,
                               self.classes_[np.argmax(proba, axis=1)], proba)
        winners, votes, labels = self._hard_vote(segments, clip_index, n_clips)
        return SegmentVote(self.classes_[winners], votes / per_clip[:, None],
                           self.classes_[labels], None)

    def predict(self, X):
        """Predict the label of each clip by voting over its segments.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples), or sequence of 2-D arrays
            Waveforms, or pre-segmented tracks when ``segmenter="precomputed"``.

        Returns
        -------
        y_pred : ndarray of shape (n_clips,)
            Labels from ``classes_``.
        """
        if self.voting == "soft":
            proba = self.predict_proba(X)
            return self.classes_[np.argmax(proba, axis=1)]
        check_is_fitted(self)
        segments, clip_index, n_clips = self._segment(X, fit=False)
        return self.classes_[self._hard_vote(segments, clip_index, n_clips)[0]]

    @available_if(_soft_voting_available)
    def predict_proba(self, X):
        """Mean class probabilities of each clip's segments (``voting="soft"`` only).

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples), or sequence of 2-D arrays
            Waveforms, or pre-segmented tracks when ``segmenter="precomputed"``.

        Returns
        -------
        proba : ndarray of shape (n_clips, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        check_is_fitted(self)
        segments, clip_index, n_clips = self._segment(X, fit=False)
        return soft_vote(self._segment_proba(segments), clip_index, n_clips=n_clips)

    def predict_votes(self, X):
        """Number of each clip's segments predicted as each class.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples), or sequence of 2-D arrays
            Waveforms, or pre-segmented tracks when ``segmenter="precomputed"``.

        Returns
        -------
        votes : ndarray of int, shape (n_clips, n_classes)
            Columns in the order of ``classes_``; each row sums to the clip's
            number of segments.
        """
        check_is_fitted(self)
        segments, clip_index, n_clips = self._segment(X, fit=False)
        labels = self.le_.transform(np.asarray(self.estimator_.predict(segments)))
        return hard_vote(labels, clip_index, n_clips=n_clips,
                         n_classes=len(self.classes_))[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        precomputed = isinstance(self.segmenter, str)
        tags.input_tags.two_d_array = not precomputed
        tags.input_tags.three_d_array = precomputed
        # waveforms are checked finite by the segmenter; segment rows by the estimator
        allow_nan = False
        if precomputed:
            try:
                allow_nan = get_tags(self.estimator).input_tags.allow_nan
            except AttributeError:  # an estimator without scikit-learn tags
                pass
        tags.input_tags.allow_nan = allow_nan
        tags.input_tags.sparse = False
        return tags
