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
"""

import csv
from pathlib import PurePath

import numpy as np

__all__ = ["feature_table", "write_feature_table"]


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
