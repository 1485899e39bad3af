"""Data sets: GTZAN on disk, Kaggle's GTZAN feature tables, and synthetic genre clips.

- :func:`load_gtzan` finds the GTZAN audio files under a folder (paths and
  labels; optionally one part of the fault-filtered split).
- :func:`load_gtzan_features` reads Kaggle's ``features_30_sec.csv`` or
  ``features_3_sec.csv``, with the track of each row as ``groups``.
- :func:`load_audio_folder` finds labelled music in genre folders,
  ``<root>/<genre>/<any name>`` (GTZAN's layouts included).
- :func:`load_audio_csv` reads a CSV file of ``path,genre`` rows: labelled
  music in any folders, under any file names.
- :func:`make_genre_clips` synthesises music-like clips of the 10 GTZAN
  genres: a data set for tests, examples and quick experiments that needs
  no download.

This module does not import torch; pandas is only needed for ``as_frame=True``.
"""

from ._csv import load_audio_csv
from ._features import load_gtzan_features
from ._folder import AUDIO_SUFFIXES, load_audio_folder
from ._gtzan import GENRES, load_gtzan
from ._synthetic import make_genre_clips

__all__ = ["AUDIO_SUFFIXES", "GENRES", "load_audio_csv", "load_audio_folder", "load_gtzan", "load_gtzan_features", "make_genre_clips"]
