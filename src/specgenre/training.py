"""Training a row from a collection of audio files, within bounded memory.

:func:`train_row` is ``specgenre train`` as a Python function: the collection is
decoded block by block, each block turned into the row's spectrograms, features
or embeddings and dropped before the next (:mod:`specgenre._blockfit`), so that
the waveforms of a whole collection are never held at once. The result is a
:class:`TrainedModel`: the fitted estimator with what a user of the model needs
to know (the row, the window it judges, the genres and how many tracks each had,
the files that could not be read), which :func:`~specgenre.save_model` writes and
:func:`~specgenre.judge_files` uses.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

from .collection import SR
from .errors import DegenerateModelWarning, SmallDataWarning

__all__ = ["MIN_TRACKS_PER_GENRE", "TrainedModel", "build_row", "fit_blocks", "train_row"]

#: Fewer training tracks than this in a genre get a :class:`SmallDataWarning`.
MIN_TRACKS_PER_GENRE = 10
#: Tracks decoded per block (64 x 30 s = 169 MB of float32 waveforms).
BLOCK_SIZE = 64


@dataclass
class TrainedModel:
    """A fitted row and what its users need to know about it.

    Parameters
    ----------
    estimator : scikit-learn classifier
        The fitted row (:func:`~specgenre.make_row`).
    row : str or None
        The row's name (None for an estimator that is not a row).
    window_seconds : float
        Length of the clips the estimator's ``predict`` takes, in seconds: 30,
        or 3 for ``xgboost_3s`` (trained on 3 s segments, without voting).
        Voting rows judge a song by their segmenter's windows (3 s).
    sr : int
        Sample rate of the audio it takes.
    train_counts : dict
        Training tracks per genre.
    skipped : list of (str, str)
        Files of the training collection that could not be read.
    params : dict
        Parameters set on the row beyond its defaults.
    specgenre_version : str
        The version that trained it.
    extra : dict
        Other facts kept with the model (JSON values), e.g. given to
        :func:`~specgenre.save_model` as ``metadata``.
    """

    estimator: object
    row: str | None
    window_seconds: float
    sr: int = SR
    train_counts: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    specgenre_version: str = ""
    extra: dict = field(default_factory=dict)

    _FACTS = ("row", "window_seconds", "sr", "train_counts", "skipped", "params",
              "specgenre_version")

    @classmethod
    def from_metadata(cls, estimator, metadata):
        """A model of ``estimator`` with the facts of :meth:`metadata` (missing ones at
        their defaults: 30 s windows at 22050 Hz); other keys go to ``extra``."""
        meta = dict(metadata)
        meta.pop("classes", None)  # the estimator's own
        if "window_seconds" not in meta and "duration" in meta:  # specgenre 0.1's name
            meta["window_seconds"] = meta.pop("duration")
        facts = {k: meta.pop(k) for k in cls._FACTS if k in meta}
        facts.setdefault("row", None)
        facts.setdefault("window_seconds", 30.0)
        facts["skipped"] = [tuple(s) for s in facts.get("skipped", [])]
        return cls(estimator, **facts, extra=meta)

    @property
    def classes(self):
        """The genres the model knows, in the order of its probabilities."""
        return [str(c) for c in self.estimator.classes_]

    def metadata(self):
        """Everything but the estimator, as JSON-able values (what a model file's header holds)."""
        return {**self.extra, "row": self.row, "window_seconds": float(self.window_seconds),
                "sr": int(self.sr), "classes": self.classes,
                "train_counts": {str(k): int(v) for k, v in self.train_counts.items()},
                "skipped": [[str(p), str(r)] for p, r in self.skipped],
                "params": dict(self.params), "specgenre_version": self.specgenre_version}


def memory_saving_params(est):
    """The parameters :func:`memory_saving` sets on ``est``: ``{path: value}``."""
    settings = {}
    for key in est.get_params():
        if key.rsplit("__", 1)[-1] == "checkpointing":
            settings[key] = True
        elif key.endswith("spectrogram__dtype"):
            settings[key] = "float16"
    return settings


def memory_saving(est):
    """Set a row's estimator to train in less memory, for the same model.

    Spectrograms are stored in float16 (``SpectrogramTransformer(dtype="float16")``:
    half the memory, within 0.063 dB) and the networks that have it train with
    ``checkpointing=True`` (activations recomputed in the backward pass instead
    of kept; the same gradients up to float32 round-off, for more compute).
    The parameters set are :func:`memory_saving_params`.
    """
    return est.set_params(**memory_saving_params(est))


def return_freed_memory():
    """Have glibc's malloc give every freed block of 128 kB or more back to the system.

    By default the threshold above which malloc maps memory directly grows with
    the largest block freed so far (up to 32 MB), so batch tensors (megabytes each)
    come from the heap, where freed space is kept and fragments: peak RSS then
    exceeds the memory in use (by 0.1 GB for the CNN on 30 s mel spectrograms,
    batch 32). Process-wide; returns False (and does nothing) without glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return False
    return mallopt is not None and bool(mallopt(-3, 128 * 1024))  # M_MMAP_THRESHOLD


def build_row(row, *, max_epochs=None, device=None, batch_size=None, class_params=None,
              memory_saving_on=True, n_jobs=None, random_state=0, verbose=False):
    """The unfitted estimator :func:`train_row` fits, and the classifier parameters it set.

    See :func:`train_row` for the parameters; ``verbose`` prints a line per epoch
    of a neural row.
    """
    from .study import classifier_of, make_row

    est = make_row(row, random_state=random_state, n_jobs=n_jobs)
    clf = classifier_of(est)
    overrides = {}
    if "max_epochs" in clf.get_params(deep=False):  # a neural row
        overrides = {k: v for k, v in (("max_epochs", max_epochs), ("device", device),
                                       ("batch_size", batch_size)) if v is not None}
        overrides["verbose"] = int(verbose)
    overrides.update(class_params or {})
    clf.set_params(**overrides)
    if memory_saving_on:
        memory_saving(est)
        return_freed_memory()
    return est, {k: v for k, v in overrides.items() if k != "verbose"}


def fit_blocks(row, est, blocks, max_clips):
    """Fit ``est``, the estimator of the :class:`~specgenre.study.StudyRow` ``row``, on
    blocks of clips (an iterable of ``(waveforms, genres)``, at most ``max_clips``
    clips in all); return its predictions for its own training clips (segments,
    for a segment-level row or a voting row)."""
    from ._blockfit import fit_aggregator_blocks, fit_pipeline_blocks
    from .aggregate import TrackAggregator

    if isinstance(est, TrackAggregator):  # 3 s rows with voting
        return fit_aggregator_blocks(est, blocks, max_clips, return_train_pred=True)[1]
    cut = (lambda clips: row.samples(clips)[0]) if row.level == "segment" else None
    return fit_pipeline_blocks(est, blocks, max_clips, cut=cut, return_train_pred=True)[1]


def train_row(row, collection, *, max_epochs=None, device=None, batch_size=None,
              class_params=None, memory_saving_on=True, n_jobs=None, random_state=0,
              progress=False, block_size=BLOCK_SIZE):
    """Train a row on a collection of audio files.

    Every file's first 30 s are used (see :meth:`Collection.load
    <specgenre.Collection.load>`); files that cannot be read are skipped and
    recorded in the model.

    Parameters
    ----------
    row : str
        A key of :data:`~specgenre.ALL_ROWS` (``specgenre rows`` lists them).
    collection : Collection
        From :func:`~specgenre.load_collection`.
    max_epochs, device, batch_size : optional
        Epochs, torch device and batch size of a neural row (ignored by the
        others).
    class_params : dict, optional
        More parameters of the row's classifier (e.g. ``{"lr": 1e-3}``).
    memory_saving_on : bool, default=True
        Float16 spectrograms and activation checkpointing (:func:`memory_saving`),
        and freed memory returned to the system: the same model but for float
        round-off, in less memory.
    n_jobs : int, optional
        Workers for decoding and features; torch and XGBoost threads.
    random_state : int, default=0
        Seed of the classifier.
    progress : bool, default=False
        Show a loading bar and, for neural rows, a line per epoch.
    block_size : int, default=64
        Tracks decoded at a time.

    Returns
    -------
    model : TrainedModel

    Warns
    -----
    SmallDataWarning
        When a genre has fewer than :data:`MIN_TRACKS_PER_GENRE` tracks.
    DegenerateModelWarning
        When the model predicts one genre for all of its own training tracks.

    Examples
    --------
    >>> from specgenre import load_collection, train_row
    >>> music = load_collection("~/Music/by-genre")  # doctest: +SKIP
    >>> model = train_row("xgboost_30s", music)  # doctest: +SKIP
    """
    from . import __version__
    from .study import ALL_ROWS

    if row not in ALL_ROWS:
        raise ValueError(f"unknown row {row!r}; choose from: {', '.join(ALL_ROWS)}")
    spec = ALL_ROWS[row]
    counts = collection.counts()
    few = {g: c for g, c in counts.items() if c < MIN_TRACKS_PER_GENRE}
    if few:
        warnings.warn(
            f"{', '.join(f'{g} ({c})' for g, c in few.items())}: fewer than "
            f"{MIN_TRACKS_PER_GENRE} tracks per genre to train on; the model will "
            "know these genres poorly, if at all", SmallDataWarning, stacklevel=2)
    est, overrides = build_row(row, max_epochs=max_epochs, device=device,
                               batch_size=batch_size, class_params=class_params,
                               memory_saving_on=memory_saving_on, n_jobs=n_jobs,
                               random_state=random_state, verbose=progress)
    blocks = collection.blocks(block_size=block_size, n_jobs=n_jobs, progress=progress)
    pred = fit_blocks(spec, est, blocks, len(blocks))
    names, n_used = np.unique(collection.genres[blocks.kept], return_counts=True)
    if len(np.unique(pred)) == 1 and len(counts) > 1:
        warnings.warn(
            f"the trained {row} model predicts {pred[0]} for every one of its "
            f"{len(pred)} own training {'segments' if spec.level == 'segment' else 'tracks'}: "
            "it learned nothing useful; give it more tracks per genre or try another row",
            DegenerateModelWarning, stacklevel=2)
    return TrainedModel(est, row, 3.0 if spec.level == "segment" else 30.0, SR,
                        train_counts={str(g): int(c) for g, c in zip(names, n_used)},
                        skipped=list(collection.skipped),
                        params=overrides,
                        specgenre_version=__version__)
