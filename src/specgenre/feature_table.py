"""Kaggle-style tables of the 57 GTZAN features, per track or per segment.

``specgenre features`` as Python::

    from specgenre import load_collection
    from specgenre.feature_table import write_feature_table

    music = load_collection("~/Music/by-genre", min_genres=1)
    X, y, ids = music.load()
    write_feature_table("features_3_sec.csv", X, y, ids, segment_seconds=3)

The columns are those of Kaggle's ``features_30_sec.csv`` /
``features_3_sec.csv``: ``filename``, ``length``, the features of
:class:`~specgenre.FeatureExtractor`, ``label``.

:func:`write_feature_table_files` makes the same table from the files of a
collection of any size, block by block (here or on a Dask cluster), with
three more columns keying each row to its file (``file``, ``file_size``,
``file_mtime_ns``), so that an interrupted job can be resumed::

    write_feature_table_files("features.csv", music.files, music.genres,
                              music.track_ids, resume=True)
"""

import csv
import warnings
from pathlib import PurePath

import numpy as np

__all__ = ["feature_table", "write_feature_table", "write_feature_table_files"]


def _row_name(track_id, segment=None):
    """Kaggle's file name of a track (``blues.00000.wav``) or segment (``blues.00000.3.wav``)."""
    track_id = str(track_id)
    path = PurePath(track_id)
    if not path.suffix or path.suffix[1:].isdigit():  # a GTZAN id such as "blues.00000"
        return f"{track_id}.wav" if segment is None else f"{track_id}.{segment}.wav"
    return track_id if segment is None else str(path.with_name(f"{path.stem}.{segment}"
                                                                f"{path.suffix}"))


def feature_table(X, y, track_ids, *, segment_seconds=None, n_jobs=None, progress=False):
    """The 57 features of every clip (or of its segments), as table rows.

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_samples)
        Waveforms at 22050 Hz, all of one length.
    y : array-like of shape (n_clips,)
        Genre of each clip (the ``label`` column).
    track_ids : array-like of shape (n_clips,)
        Id of each clip: GTZAN ids are written as Kaggle's file names
        (``blues.00000.wav``), other ids (paths) as they are, with the
        segment number before the suffix for segments.
    segment_seconds : float, optional
        Features of consecutive segments of this length (3 for a
        ``features_3_sec``-style table) instead of whole clips.
    n_jobs : int, optional
        Workers of :class:`~specgenre.FeatureExtractor`.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    header : list of str
    rows : list of list
        One per clip or segment, in the order of ``header``.
    """
    from .features import FeatureExtractor
    from .segment import ClipSegmenter

    X, y, track_ids = np.asarray(X), np.asarray(y), np.asarray(track_ids)
    if segment_seconds:
        segmenter = ClipSegmenter(segment_seconds).fit(X)
        X, idx = segmenter.segment(X)
        names = [_row_name(track_ids[i], j % segmenter.n_segments_) for j, i in enumerate(idx)]
        y = y[idx]
    else:
        names = [_row_name(t) for t in track_ids]
    extractor = FeatureExtractor(n_jobs=n_jobs, progress=progress)
    F = extractor.fit_transform(X)
    header = ["filename", "length", *extractor.get_feature_names_out(), "label"]
    rows = [[n, X.shape[1], *(repr(float(v)) for v in f), label]
            for n, f, label in zip(names, F, y)]
    return header, rows


def write_feature_table(path, X, y, track_ids, **kwargs):
    """Write :func:`feature_table` to the CSV file ``path``; return the number of rows.

    ``kwargs`` are those of :func:`feature_table`.
    """
    header, rows = feature_table(X, y, track_ids, **kwargs)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


def _features_of_files(paths, segment_seconds, n_jobs):
    """The job's block function: per file, ``(length, features)`` or its AudioLoadError."""
    from .audio import load_audio
    from .collection import SR
    from .features import FeatureExtractor
    from .segment import ClipSegmenter

    batch = load_audio(paths, sr=SR, duration=30.0, on_error="skip", n_jobs=n_jobs)
    X, per_clip = batch.X, 1
    if segment_seconds and len(X):
        segmenter = ClipSegmenter(segment_seconds).fit(X)
        X, _ = segmenter.segment(X)
        per_clip = segmenter.n_segments_
    F = FeatureExtractor(n_jobs=n_jobs).fit_transform(X) if len(X) else None
    errors, results, k = iter(batch.errors), [], 0
    for ok in batch.kept:
        results.append((X.shape[1], F[k * per_clip:(k + 1) * per_clip]) if ok else next(errors))
        k += bool(ok)
    return results


def write_feature_table_files(path, files, labels, track_ids, *, segment_seconds=None,
                              block_size=64, resume=False, client=None, n_jobs=None,
                              progress=False):
    """Write the table of :func:`feature_table` from audio files, block by block.

    Each block of files is decoded (each file's first 30 s at 22050 Hz, as
    :meth:`Collection.load <specgenre.Collection.load>` decodes them), turned
    into features and appended to ``path`` before the next is read, so memory
    depends on ``block_size``, not on the number of files. The values are
    those :func:`write_feature_table` gives for the same waveforms.

    Parameters
    ----------
    path : str or path-like
        CSV file to write, or a folder of Parquet part files when it ends in
        ``.parquet`` (:class:`~specgenre.filejobs.ParquetTable`, needs
        ``pyarrow``); its folder must exist.
    files : sequence of str or path-like
        Audio files, in the order of the table.
    labels : sequence of str
        Genre of each file (the ``label`` column).
    track_ids : sequence of str
        Id of each file (the ``filename`` column, as in :func:`feature_table`).
    segment_seconds : float, optional
        Features of segments of this length instead of whole clips.
    block_size : int, default=64
        Files decoded and processed at once (about 2.6 MB of waveform per
        file, and as much again for its features' work).
    resume : bool, default=False
        Go on with the table already at ``path`` (written by this function
        with the same options): the files in it whose size and modification
        time are unchanged are not read again, the others are (re)done and
        appended. Without it, ``path`` is written afresh.
    client : dask.distributed.Client or str, optional
        Compute the blocks on this cluster (see
        :func:`~specgenre.filejobs.map_file_blocks`); the table is written here,
        in file order, with the same values.
    n_jobs : int, optional
        Decoding threads and feature workers within a block (local only: on a
        cluster each block runs in one worker).
    progress : bool, default=False
        Show a progress bar (files/s, time left).

    Returns
    -------
    report : ~specgenre.filejobs.FileJobReport

    Warns
    -----
    SkippedFileWarning
        Once for each file that cannot be read (it is left out).

    Notes
    -----
    The columns are those of :func:`feature_table` followed by ``file``,
    ``file_size`` and ``file_mtime_ns`` (:data:`~specgenre.filejobs.KEY_COLUMNS`).
    """
    from .errors import SkippedFileWarning
    from .features import FEATURE_NAMES
    from .filejobs import KEY_COLUMNS, FileJobReport, file_key, map_file_blocks, open_table

    files = [str(f) for f in files]
    labels, track_ids = [str(v) for v in labels], [str(v) for v in track_ids]
    if not len(files) == len(labels) == len(track_ids):
        raise ValueError(f"files, labels and track_ids differ in length: {len(files)}, "
                         f"{len(labels)}, {len(track_ids)}")
    header = ["filename", "length", *FEATURE_NAMES, "label", *KEY_COLUMNS]
    types = {"length": "int64", **dict.fromkeys(FEATURE_NAMES, "float64")}
    table = open_table(path, header, types=types, resume=resume)
    todo = [i for i, f in enumerate(files) if not table.is_done(f)]
    report = FileJobReport(len(files), n_resumed=len(files) - len(todo))
    # keys taken before the files are read: a file changed meanwhile is redone on resume
    keys = [file_key(files[i]) for i in todo]
    args = (segment_seconds, 1 if client is not None else n_jobs)
    blocks = map_file_blocks(_features_of_files, [files[i] for i in todo], args=args,
                             block_size=block_size, client=client, progress=progress,
                             desc="features")
    pos = 0
    for _, results in blocks:
        rows = []
        for result in results:
            i, key = todo[pos], keys[pos]
            pos += 1
            if isinstance(result, Exception):
                report.skipped.append((files[i], getattr(result, "reason", str(result))))
                warnings.warn(f"skipped {files[i]}: {report.skipped[-1][1]}",
                              SkippedFileWarning, stacklevel=2)
                continue
            length, F = result
            for j, f in enumerate(F):
                name = _row_name(track_ids[i], j if segment_seconds else None)
                rows.append([name, length, *(repr(float(v)) for v in f), labels[i], *key])
        table.append(rows)
    report.n_rows = table.n_rows
    return report
