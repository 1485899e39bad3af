"""Labelled audio in genre folders, under any file names (:func:`load_audio_folder`)."""

import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._gtzan import _LAYOUTS, _TRACK_NAME, _check_genres, _check_header

__all__ = ["AUDIO_SUFFIXES", "load_audio_folder"]

#: File suffixes read as audio in genre folders (case-insensitive): what libsndfile
#: (>= 1.1, as soundfile wheels ship it) decodes.
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".aiff", ".aif", ".au", ".snd")


def _genre_base(root):
    """The folder whose sub-folders are the genres: a GTZAN layout's, else ``root``."""
    for parts, _ in _LAYOUTS:
        base = root.joinpath(*parts)
        if parts and base.is_dir() and any(p.is_dir() for p in base.iterdir()):
            return base
    return root


def _audio_files(folder):
    """Audio files under ``folder`` (any depth), sorted, hidden files and folders left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_SUFFIXES:
                found.append(Path(dirpath) / name)
    return found


def load_audio_folder(root, *, genres=None, track_ids=None, on_error="raise"):
    """Audio files in genre folders: ``<root>/<genre>/<any name>``.

    The genre of a file is the name of the top folder it lies in under
    ``root`` (files may lie deeper, e.g. ``<root>/jazz/album/song.mp3``); file
    names do not matter. GTZAN's own layouts work as they are: when ``root``
    holds Kaggle's ``genres_original/`` (or ``Data/genres_original/``) or the
    original ``genres/`` folder, the genre folders are looked for there.
    Returns file *paths* with their labels, like :func:`load_gtzan`.

    A file named like GTZAN's, ``<genre>.<5 digits>.<ext>`` in its own genre's
    folder, gets the GTZAN track id (``"jazz.00054"``), which the
    fault-filtered split lists use; any other file is identified by its path
    relative to the genre folders' parent (``"jazz/My Song.flac"``).

    Parameters
    ----------
    root : str or path-like
        The folder of genre folders (or a GTZAN copy, see above).
    genres : str or list of str, default=None
        Keep only these genres (all found genres by default).
    track_ids : collection of str, default=None
        Keep only the tracks of these ids (e.g. GTZAN's split lists): the
        files of other tracks are neither checked nor reported.
    on_error : {"raise", "skip"}, default="raise"
        What to do with a file whose header cannot be read or that holds no
        audio: ``"raise"`` raises :class:`~specgenre.AudioLoadError` naming it;
        ``"skip"`` leaves it out, lists it in ``skipped`` and warns once per
        file (:class:`~specgenre.errors.SkippedFileWarning`).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``filenames``, ``target``, ``track_ids`` (arrays of str, sorted by
        genre then path), ``target_names`` (sorted genres), ``skipped`` (list of
        ``(path, reason)``) and ``gtzan_names`` (True when every audio file
        under ``root`` has a GTZAN id, before any selection).

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist.
    NotADirectoryError
        If ``root`` is a file.
    ValueError
        If no genre folder holds an audio file, for an unknown genre in
        ``genres``, or when no readable file is left.
    specgenre.AudioLoadError
        With ``on_error="raise"``, for the first unreadable file.

    See Also
    --------
    load_gtzan : GTZAN's tracks only, with its split lists.
    load_audio_csv : a CSV file of ``path,genre`` rows.
    """
    from ..audio import AudioLoadError
    from ..errors import SkippedFileWarning

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    genres = _check_genres(genres)
    root = Path(os.path.expanduser(os.fspath(root)))
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist.")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is a file, not a folder of genre folders.")
    base = _genre_base(root)
    tracks = {}  # track id -> (genre, path): the first file of a GTZAN id wins
    named_otherwise = set()  # ids that are paths, not GTZAN ids
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in _audio_files(folder):
            match = _TRACK_NAME.match(path.name)
            if match is not None and match["genre"] == folder.name:
                track_id = f"{match['genre']}.{match['num']}"
            else:
                track_id = path.relative_to(base).as_posix()
                named_otherwise.add(track_id)
            tracks.setdefault(track_id, (folder.name, path))
    if not tracks:
        suffixes = ", ".join(s.lstrip(".") for s in AUDIO_SUFFIXES)
        raise ValueError(f"no audio file in genre folders under {root} (expected "
                         f"<genre>/<file> with a suffix among {suffixes}).")
    gtzan_names = not named_otherwise
    if track_ids is not None:
        tracks = {t: v for t, v in tracks.items() if t in set(track_ids)}
        if not tracks:
            why = "" if gtzan_names else (": its files are not named like GTZAN's "
                                           "(<genre>.<5 digits>.<ext>)")
            raise ValueError(f"{root} holds none of the {len(track_ids)} tracks asked for{why}.")
    available = sorted({g for g, _ in tracks.values()})
    if genres is not None:
        unknown = [g for g in genres if g not in available]
        if unknown:
            raise ValueError(f"unknown genre(s) {unknown}; the genre folders under {root} "
                             f"are {available}.")
        tracks = {t: (g, p) for t, (g, p) in tracks.items() if g in set(genres)}

    kept, skipped = [], []
    for track_id, (genre, path) in sorted(tracks.items(), key=lambda kv: (kv[1][0], kv[0])):
        reason = _check_header(path)
        if reason is None:
            kept.append((str(path), genre, track_id))
        elif on_error == "raise":
            raise AudioLoadError(path, reason)
        else:
            skipped.append((str(path), reason))
            warnings.warn(f"skipped {path}: {reason}", SkippedFileWarning, stacklevel=2)
    if not kept:
        raise ValueError(f"no readable audio file under {root} (all {len(skipped)} skipped).")
    return Bunch(
        filenames=np.array([f for f, _, _ in kept], dtype=str),
        target=np.array([g for _, g, _ in kept], dtype=str),
        track_ids=np.array([t for _, _, t in kept], dtype=str),
        target_names=sorted({g for _, g, _ in kept}),
        skipped=skipped,
        gtzan_names=gtzan_names,
    )
