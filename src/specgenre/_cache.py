"""Front-step outputs computed once per clip (or 3 s segment) across folds and rows.

The front step of a row (:class:`~specgenre.SpectrogramTransformer`,
:class:`~specgenre.FeatureExtractor`, :class:`~specgenre.musicnn.MusicnnEmbedding`,
:class:`~specgenre.musicnn.MusicnnPatches`) learns nothing from the data: its
output for one sample depends on that sample and on the step's parameters
only. A transformer declares this with the class attribute
``_per_sample_output = True``; only such a first pipeline step is cached.
:class:`_TransformCache` keeps those outputs, keyed by the step's setting,
the shape of its input and a hash of the input itself, for the length of one
evaluation run; :class:`_CachedFront` stands in for the front step of a row
and looks its outputs up there.

A cache never travels with its tables: pickled (to a fold worker, or back
from one inside a fitted model) it is a token, which unpickles to the live
cache of that token in the receiving process, or to a new empty one. The
tables a worker needs are handed over separately
(:meth:`_TransformCache.tables_for`, :meth:`_TransformCache.update`).

Once the run has computed the outputs of every input a row's front step will
ever be given (:class:`_Items`, filled block by block of clips), the row's folds
need no waveforms at all: they are fed item numbers (a column of ints), which
:class:`_KeyedFront` (in place of the front step) turns into the stored outputs
and :class:`_KeyedSegmenter` (in place of a voting row's segmenter) turns from
clips into their segments' items, in the order the real segmenter cuts them.
"""

import hashlib
import time
import uuid
import weakref

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone

from . import _memory

_LIVE = weakref.WeakValueDictionary()  # token -> the cache of that token in this process


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
    if getattr(step, "_per_sample_output", False):
        return prefix + name, step
    return None, None


def _front_inputs(est, X):
    """What the front step of ``est`` is given when ``est`` is fitted on (or predicts) ``X``.

    Walks from ``est`` to its pipeline through the meta-estimators around it;
    a :class:`~specgenre.TrackAggregator` on the way cuts the samples into its
    segments (with a clone of its segmenter, as its ``fit`` does), so for a
    3 s voting row the inputs are the 3 s segments of the clips.

    Returns
    -------
    inputs : ndarray
        The front step's input, sample by sample.
    source : ndarray of int
        Position in ``X`` of the sample each input comes from.
    """
    from sklearn.pipeline import Pipeline

    from .aggregate import TrackAggregator
    from .segment import ClipSegmenter

    inputs, source = np.asarray(X), np.arange(len(X))
    while not isinstance(est, Pipeline):
        if isinstance(est, TrackAggregator) and not isinstance(est.segmenter, str):
            segmenter = (ClipSegmenter(segment_seconds=3.0) if est.segmenter is None
                         else clone(est.segmenter))
            inputs, clip_index = segmenter.fit(inputs).segment(inputs)
            source = source[np.asarray(clip_index)]
        elif "estimator" not in est.get_params(deep=False):
            break
        est = est.estimator
    return inputs, source


def _setting(transformer):
    """What a front step's output depends on: its type and parameters (not its workers)."""
    params = transformer.get_params(deep=False)
    kept = tuple(sorted((k, repr(v)) for k, v in params.items() if k not in ("n_jobs",
                                                                             "progress")))
    return (type(transformer).__module__, type(transformer).__qualname__, kept)


def _keys(X):
    """Content hash of each sample of ``X`` (its bytes and dtype)."""
    return [hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16,
                            person=str(x.dtype).encode()[:16]).digest() for x in X]


def _shared_cache(token):
    """The live cache of ``token`` in this process, or a new empty one (unpickling)."""
    cache = _LIVE.get(token)
    if cache is None:
        cache = _TransformCache(token=token)
        cache.received = True
    return cache


class _TransformCache:
    """Outputs of stateless front steps, per sample and setting, shared within one run.

    ``computed`` and ``reused`` count the samples transformed here and those
    looked up; ``worker_computed`` and ``worker_reused`` the same in fold
    workers (added by the harness from what the workers report).
    ``received`` is True for a cache made by unpickling a token unknown in
    this process (a fold worker's copy).
    """

    def __init__(self, *, token=None):
        self.token = uuid.uuid4().hex if token is None else token
        self._tables = {}
        self.seconds = 0.0
        self.computed = 0
        self.reused = 0
        self.worker_computed = 0
        self.worker_reused = 0
        self.received = False
        _LIVE[self.token] = self

    def __deepcopy__(self, memo):  # clone() of the estimators holding it shares it
        return self

    def __reduce__(self):  # pickled as its token: the tables never travel
        return _shared_cache, (self.token,)

    def _compute_missing(self, transformer, X, keys):
        """Transform the samples of ``X`` not in their table yet: ``(table, how many)``."""
        table = self._tables.setdefault((_setting(transformer), X.shape[1:]), {})
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
        return table, len(todo)

    def transform(self, transformer, X):
        """``transformer.transform(X)``, computing only the samples not seen before."""
        X = np.asarray(X)
        keys = _keys(X)
        table, n_new = self._compute_missing(transformer, X, keys)
        self.reused += len(keys) - n_new
        return _memory.stack([table[key] for key in keys])

    def fill(self, transformer, X):
        """Compute (once) the outputs of ``transformer`` for ``X``; the keys of its samples.

        What the harness does before handing folds to workers; unlike
        :meth:`transform`, it counts nothing as reused.
        """
        X = np.asarray(X)
        keys = _keys(X)
        self._compute_missing(transformer, X, keys)
        return keys

    def tables_for(self, transformer, X, keys):
        """The stored outputs of the samples ``keys`` (of inputs shaped like ``X``).

        What a fold worker is handed: ``{table: {key: output}}``, to
        :meth:`update` its own (empty) cache with.
        """
        return self.table_part((_setting(transformer), np.asarray(X).shape[1:]), keys)

    def table_part(self, table_key, keys):
        """:meth:`tables_for` of the table ``(setting, input shape)``."""
        table = self._tables.get(table_key, {})
        return {table_key: {k: table[k] for k in keys if k in table}}

    def lookup(self, table_key, keys):
        """The stored outputs of ``keys`` (bytes) in the table ``table_key``, stacked."""
        table = self._tables[table_key]
        self.reused += len(keys)
        return _memory.stack([table[key] for key in keys])

    def update(self, tables):
        """Add outputs handed over by :meth:`tables_for` (in a fold worker)."""
        for table_key, rows in tables.items():
            self._tables.setdefault(table_key, {}).update(rows)

    def settings(self):
        """The ``(setting, input shape)`` of every table held."""
        return set(self._tables)

    def n_stored(self):
        """Outputs held, over all tables."""
        return sum(len(t) for t in self._tables.values())

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


class _Items:
    """What a row's front step is given, computed once: the content key of each input.

    The inputs ("items") are those of the clips of the run in their order, each
    clip's in the order its row or its voting wrapper cuts them: ``starts[c]``
    and ``counts[c]`` are the first item and the number of items of clip ``c``
    (0 for a clip no fold uses). ``keys`` holds the content key
    (:func:`_keys`) of each item, 16 bytes a row, under which the outputs lie in
    the cache's table ``table_key``.
    """

    def __init__(self, table_key, keys, starts, counts):
        self.table_key, self.keys = table_key, keys
        self.starts, self.counts = starts, counts

    def __deepcopy__(self, memo):  # never changed once made: clones of a row share it
        return self

    def of_clips(self, clips):
        """Item numbers of the inputs of ``clips`` (positions in the run), clip by clip."""
        clips = np.asarray(clips, dtype=np.int64)
        counts = self.counts[clips]
        first = np.repeat(self.starts[clips] - np.cumsum(counts) + counts, counts)
        return first + np.arange(counts.sum())


class _KeyedFront(TransformerMixin, BaseEstimator):
    """A front step fed item numbers (a column of ints): the stored outputs of those items.

    ``items`` (:class:`_Items`) maps an item number to the key of its output in
    ``cache``; ``transformer`` is the front step it stands in for (its outputs
    were computed by the run, so it is neither fitted nor run here).
    """

    def __init__(self, transformer, cache, items):
        self.transformer = transformer
        self.cache = cache
        self.items = items

    def fit(self, X, y=None):
        self.n_items_ = len(self.items.keys)
        return self

    def transform(self, X):
        numbers = np.asarray(X, dtype=np.int64)[:, 0]
        keys = self.items.keys[numbers]
        return self.cache.lookup(self.items.table_key, [k.tobytes() for k in keys])


class _KeyedSegmenter(BaseEstimator):
    """A voting row's segmenter fed clip positions: the item numbers of their segments.

    Cuts as the segmenter it stands in for did when the run computed the items
    (:class:`_Items`): the same segments, clip after clip, in the same order.
    """

    def __init__(self, items):
        self.items = items

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def segment(self, X):
        clips = np.asarray(X, dtype=np.int64)[:, 0]
        counts = self.items.counts[clips]
        clip_index = np.repeat(np.arange(len(clips)), counts)
        return self.items.of_clips(clips)[:, None], clip_index


def _caches_in(est):
    """The distinct caches of the :class:`_CachedFront` (or keyed) steps inside ``est``."""
    found = {}
    for part in [est, *est.get_params(deep=True).values()]:
        if isinstance(part, (_CachedFront, _KeyedFront)):
            found[id(part.cache)] = part.cache
    return list(found.values())
