"""Collections of labelled audio files: genre folders, GTZAN's layouts, CSV files.

A :class:`Collection` is the list of a user's tracks and their genres, not yet
decoded. :func:`load_collection` finds it; :meth:`Collection.load` decodes it
into equal-length waveforms (for :func:`~specgenre.evaluation.evaluate_rows`),
or with ``lazy=True`` into :class:`Waveforms`, which decode the tracks they are
indexed by, and :meth:`Collection.blocks` decodes it block by block (for
:func:`~specgenre.train_row`, which never holds every waveform at once).

One skip policy everywhere: a file that cannot be read is left out, named once
in a :class:`~specgenre.errors.SkippedFileWarning`, and recorded in
:attr:`Collection.skipped`, which every command writes into what it produces
(results, model file, feature table) and turns into exit code 1.
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CollectionError, SkippedFileWarning

__all__ = ["SR", "Collection", "Waveforms", "gtzan_filtered_split", "load_collection"]

#: Sample rate of every waveform the rows take, in Hz.
SR = 22050
#: File suffixes read as CSV lists of ``path,genre`` rows.
_CSV_SUFFIXES = (".csv", ".tsv", ".txt")


@dataclass
class Collection:
    """Labelled audio files, found but not decoded.

    Parameters
    ----------
    source : Path
        The folder or CSV file the tracks were found in.
    files : ndarray of str
        Path of each track.
    genres : ndarray of str
        Genre of each track.
    track_ids : ndarray of str
        Id of each track: GTZAN's (``"jazz.00054"``) for GTZAN-named files,
        else the path relative to the genre folders' parent (or as written in
        the CSV file).
    skipped : list of (str, str)
        ``(path, reason)`` of every file left out so far because it could not
        be read (when the collection was found, then when it was decoded).
    gtzan_names : bool
        Every track has a GTZAN id, so GTZAN's split lists apply.
    """

    source: Path
    files: np.ndarray
    genres: np.ndarray
    track_ids: np.ndarray
    skipped: list = field(default_factory=list)
    gtzan_names: bool = False

    def __len__(self):
        return len(self.files)

    @property
    def genre_names(self):
        """Sorted genres of the collection."""
        return sorted(set(self.genres.tolist()))

    def counts(self):
        """Tracks per genre: ``{genre: count}`` in genre order."""
        names, counts = np.unique(self.genres, return_counts=True)
        return {str(g): int(c) for g, c in zip(names, counts)}

    def _record(self, skipped):
        """Record and name once each ``(path, reason)`` of a file left out."""
        for path, reason in skipped:
            self.skipped.append((str(path), reason))
            warnings.warn(f"skipped {path}: {reason}", SkippedFileWarning, stacklevel=3)

    def load(self, *, duration=30.0, n_jobs=None, progress=False, min_genres=2, lazy=False):
        """Decode every track: ``(X, y, track_ids)`` of the readable ones.

        Parameters
        ----------
        duration : float, default=30.0
            Seconds per waveform (:func:`~specgenre.load_audio`: longer files
            are cut after their first ``duration`` seconds, shorter ones of at
            least 90 % of it padded, shorter still are unreadable).
        n_jobs : int or None, default=None
            Files decoded in parallel.
        progress : bool, default=False
            Show a progress bar.
        min_genres : int, default=2
            Fewest genres the readable tracks must hold.
        lazy : bool, default=False
            Return the waveforms as :class:`Waveforms`, which decodes tracks
            when they are indexed, instead of an array holding them all
            (2.6 MB per 30 s track: 2.6 GB for 1000 tracks). Every track is
            still decoded once here, block by block, to find the readable
            ones; the values are those of ``lazy=False``.
            :func:`~specgenre.evaluation.evaluate_rows` takes either.

        Returns
        -------
        X : ndarray of shape (n_readable, round(duration * 22050)), float32, or Waveforms
        y : ndarray of str
        track_ids : ndarray of str
        """
        from .audio import load_audio

        if lazy:  # decode block by block to find the readable tracks, keeping none
            blocks = self.blocks(block_size=32, duration=duration, n_jobs=n_jobs,
                                 progress=progress, min_genres=min_genres)
            for _ in blocks:
                pass
            kept = blocks.kept  # the blocks checked the genres read
            X = Waveforms(self.files[kept], duration=duration, n_jobs=n_jobs)
        else:
            X, kept, errors = load_audio(self.files, sr=SR, duration=duration,
                                         on_error="skip", n_jobs=n_jobs, progress=progress)
            self._record((err.path, err.reason) for err in errors)
            self._check_readable(self.genres[kept], min_genres)
        return X, self.genres[kept], self.track_ids[kept]

    def blocks(self, *, block_size=64, duration=30.0, n_jobs=None, progress=False,
               min_genres=2):
        """Decode the tracks block by block, as they are iterated.

        Returns an iterable of ``(X, y)`` blocks of at most ``block_size``
        readable tracks (as :meth:`load` decodes them) with a ``len()`` (the
        tracks listed), ``n_used`` (the tracks yielded so far) and ``kept`` (a
        mask of the tracks listed: True for those yielded so far): each block
        can be turned into spectrograms or features and dropped before the
        next is decoded (2.6 GB of waveforms for GTZAN's 1000 clips are never
        held at once).
        """
        return _Blocks(self, block_size, duration, n_jobs, progress, min_genres)

    def _check_readable(self, genres_read, min_genres):
        if len(genres_read) == 0:
            raise CollectionError(f"{self.source}: no readable track")
        if len(set(genres_read.tolist())) < min_genres:
            raise CollectionError(f"{self.source}: the readable tracks hold fewer than "
                                  f"{min_genres} genres")


class Waveforms:
    """A collection's waveforms as a read-only array that decodes the tracks it is indexed by.

    Stands in for the ``(n_tracks, n_samples)`` float32 array of
    :meth:`Collection.load` (``Collection.load(lazy=True)`` returns it):
    ``len()``, ``shape``, ``dtype``, ``ndim``, and indexing by an integer, a
    slice, an array of positions or a boolean mask, which decodes those tracks
    with :func:`~specgenre.load_audio` (the same values) and returns an
    ndarray. Nothing decoded is kept, so a caller holds only the waveforms it
    asked for, for as long as it keeps them; each access decodes again.
    ``np.asarray(waveforms)`` decodes every track.

    Parameters
    ----------
    files : array-like of str
        The tracks, all readable.
    duration : float, default=30.0
        Seconds per waveform, as in :meth:`Collection.load`.
    n_jobs : int or None, default=None
        Files decoded in parallel.

    Raises
    ------
    specgenre.errors.CollectionError
        On access, when a track no longer decodes (changed or removed since
        it was found readable).
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, files, *, duration=30.0, n_jobs=None):
        self.files = np.asarray(files)
        self.duration, self.n_jobs = duration, n_jobs
        self.shape = (len(self.files), int(round(SR * duration)))

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return (f"Waveforms({self.shape[0]} tracks x {self.shape[1]} samples, "
                "decoded when indexed)")

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            return self._decode(self.files[[key]])[0][rest]
        if isinstance(key, (slice, list, np.ndarray)):
            return self._decode(self.files[key])[(slice(None),) + rest]
        raise TypeError(f"Waveforms are indexed by an integer, a slice, or an array of "
                        f"positions or booleans; got {type(key).__name__}.")

    def __array__(self, dtype=None, copy=None):
        X = self[:]
        return X if dtype is None else X.astype(dtype, copy=False)

    def _decode(self, files):
        from .audio import AudioLoadError, load_audio

        try:
            return load_audio(files, sr=SR, duration=self.duration, n_jobs=self.n_jobs).X
        except AudioLoadError as exc:
            raise CollectionError(f"{exc.path}: no longer readable ({exc.reason}); it was "
                                  "when the collection was loaded") from None


class _Blocks:
    """Iterable of decoded blocks of a :class:`Collection` (see :meth:`Collection.blocks`)."""

    def __init__(self, collection, block_size, duration, n_jobs, progress, min_genres):
        self.collection, self.block_size, self.duration = collection, block_size, duration
        self.n_jobs, self.progress, self.min_genres = n_jobs, progress, min_genres
        self.n_used = 0
        self.kept = np.zeros(len(collection), dtype=bool)

    def __len__(self):
        return len(self.collection)

    def __iter__(self):
        from tqdm.auto import tqdm

        from .audio import load_audio

        coll, read = self.collection, []
        with tqdm(total=len(coll), desc="reading audio", unit="track",
                  disable=not self.progress, leave=False) as bar:
            for start in range(0, len(coll), self.block_size):
                stop = min(start + self.block_size, len(coll))
                part = load_audio(coll.files[start:stop], sr=SR, duration=self.duration,
                                  on_error="skip", n_jobs=self.n_jobs)
                coll._record((err.path, err.reason) for err in part.errors)
                self.kept[start:stop] = part.kept
                bar.update(stop - start)
                X, y = part.X, coll.genres[start:stop][part.kept]
                del part
                if len(X):
                    self.n_used += len(X)
                    read.append(y)
                    yield X, y
                del X  # not kept while the next block is decoded
        coll._check_readable(np.concatenate(read) if read else np.array([], dtype=str),
                             self.min_genres)


def load_collection(path, *, genres=None, split=None, min_genres=2):
    """Find a collection of labelled audio files.

    Parameters
    ----------
    path : str or path-like
        One of:

        - a folder of genre folders, ``<path>/<genre>/<any file name>`` (files
          may lie deeper), in WAV, FLAC, MP3, OGG, AIFF or AU: see
          :func:`~specgenre.datasets.load_audio_folder`; GTZAN's copies
          (Kaggle's ``genres_original/``, the original ``genres/``) are
          found as they are;
        - a CSV file of ``path,genre`` rows (:func:`~specgenre.load_audio_csv`).
    genres : list of str, optional
        Keep only these genres.
    split : str or sequence of str, optional
        Keep only the tracks of these parts (``"train"``, ``"valid"``,
        ``"test"``) of GTZAN's fault-filtered split (Kereliuk, Sturm & Larsen,
        2015); the files of other tracks are neither read nor reported. The
        lists name GTZAN's tracks, so this needs a folder of files named like
        GTZAN's (``<genre>.<5 digits>.<ext>``).
    min_genres : int, default=2
        Fewest genres the collection must hold (2 to train a classifier; 1 for
        a feature table).

    Returns
    -------
    collection : Collection
        Files whose header cannot be read are already left out, each named in
        a :class:`~specgenre.errors.SkippedFileWarning` and listed in
        ``collection.skipped``.

    Raises
    ------
    specgenre.errors.CollectionError
        When ``path`` is missing, holds no audio in genre folders, is an
        unusable CSV file, or the selection holds fewer than ``min_genres``.

    Examples
    --------
    >>> from specgenre import load_collection
    >>> music = load_collection("~/Music/by-genre")  # doctest: +SKIP
    >>> len(music), music.counts()  # doctest: +SKIP
    (120, {'jazz': 70, 'rock': 50})
    >>> X, y, ids = music.load()  # doctest: +SKIP
    """
    from .datasets import load_audio_csv, load_audio_folder
    from .datasets._gtzan import read_split

    source = Path(path).expanduser()
    if not source.exists():
        raise CollectionError(f"{source}: no such folder or CSV file")
    is_csv = source.is_file()
    if is_csv and source.suffix.lower() not in _CSV_SUFFIXES:
        raise CollectionError(f"{source} is a file, not a folder; give a folder of genre "
                              "folders or a CSV file of path,genre rows")
    parts = (split,) if isinstance(split, str) else split
    if parts and is_csv:
        raise CollectionError(f"{source}: GTZAN's fault-filtered split needs a folder of "
                              "files named like GTZAN's, not a CSV file")
    wanted = set().union(*(read_split(p) for p in parts)) if parts else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if is_csv:
                bunch = load_audio_csv(source, genres=genres, on_error="skip")
            else:
                bunch = load_audio_folder(source, genres=genres, track_ids=wanted,
                                          on_error="skip")
    except (ValueError, OSError, TypeError) as exc:
        text = str(exc).strip().splitlines()
        raise CollectionError(text[0].rstrip(".") if text else f"{source}: unusable") from None
    for w in caught:  # skipped files: one warning each, in our words; others as they were
        if not issubclass(w.category, SkippedFileWarning) and "skipped" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if parts and not bunch.gtzan_names:
        raise CollectionError(f"{source}: GTZAN's fault-filtered split lists GTZAN's tracks, "
                              "so it needs files named like GTZAN's (<genre>.<5 digits>.<ext>); "
                              "this folder has others")
    coll = Collection(source, np.asarray(bunch.filenames), np.asarray(bunch.target),
                      np.asarray(bunch.track_ids), [],
                      gtzan_names=bool(bunch.get("gtzan_names", False)))
    coll._record(bunch.skipped)
    if len(coll.genre_names) < min_genres:
        raise CollectionError(f"{source}: found only the genre(s) {', '.join(coll.genre_names)}; "
                              f"need at least {min_genres} to train a classifier")
    return coll


def gtzan_filtered_split(track_ids):
    """Positions of (train+valid, test) tracks of GTZAN's fault-filtered split in ``track_ids``.

    Parameters
    ----------
    track_ids : array-like of str
        GTZAN ids (``"jazz.00054"``), e.g. those :meth:`Collection.load` returns.

    Returns
    -------
    train, test : ndarray of int
    """
    from .datasets._gtzan import read_split

    track_ids = np.asarray(track_ids)
    train = np.flatnonzero(np.isin(track_ids, read_split("train") + read_split("valid")))
    test = np.flatnonzero(np.isin(track_ids, read_split("test")))
    if len(train) == 0 or len(test) == 0:
        raise CollectionError("the data holds no track of the fault-filtered train/valid or "
                              "test lists")
    return train, test
