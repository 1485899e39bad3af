"""Labelled audio files listed in a CSV file (:func:`load_audio_csv`)."""

import csv
import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_audio_csv"]

_HEADERS = {("path", "genre"), ("path", "label"), ("filename", "genre"), ("filename", "label"),
            ("file", "genre"), ("file", "label")}


def load_audio_csv(path, *, genres=None, on_error="raise"):
    """Audio files and their genres listed in a CSV file of ``path,genre`` rows.

    For music that is not laid out like GTZAN: any file names, any folders.
    Returns file *paths* with their labels, like :func:`load_gtzan`; decode
    them with :func:`specgenre.load_audio`.

    Parameters
    ----------
    path : str or path-like
        A CSV file with two columns, the audio file and its genre. A first
        row ``path,genre`` (or ``filename``/``file`` and ``label``) is a
        header and skipped; blank lines and lines starting with ``#`` are
        ignored. Relative audio paths are relative to the CSV file's folder.
    genres : str or list of str, default=None
        Keep only these genres (all listed genres by default).
    on_error : {"raise", "skip"}, default="raise"
        What to do with a listed file that is missing or whose header cannot
        be read: ``"raise"`` raises :class:`~specgenre.AudioLoadError`
        naming it; ``"skip"`` leaves it out, warns, and lists it in
        ``skipped``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        filenames : ndarray of str, shape (n_tracks,)
            Paths of the audio files, in the order of the CSV file.
        target : ndarray of str, shape (n_tracks,)
            Genre of each file.
        track_ids : ndarray of str, shape (n_tracks,)
            The paths as written in the CSV file (unique); use them as
            ``groups`` for grouped cross-validation of segments.
        target_names : list of str
            Sorted genres present in ``target``.
        skipped : list of (str, str)
            ``(path, reason)`` of every file left out with ``on_error="skip"``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For a row that is not two non-empty fields, a file listed twice, an
        unknown genre in ``genres``, or when no readable file is left.
    specgenre.AudioLoadError
        With ``on_error="raise"``, for the first missing or unreadable file.

    See Also
    --------
    load_gtzan : the same for a GTZAN folder tree.

    Examples
    --------
    >>> from specgenre.datasets import load_audio_csv
    >>> music = load_audio_csv("my_music.csv", on_error="skip")  # doctest: +SKIP
    >>> music.filenames[0], music.target[0]  # doctest: +SKIP
    ('/home/me/music/song.mp3', 'jazz')
    """
    from ..audio import AudioLoadError
    from ._gtzan import _check_genres, _check_header

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    genres = _check_genres(genres)
    csv_path = Path(os.path.expanduser(os.fspath(path)))
    if not csv_path.exists():
        raise FileNotFoundError(f"CSV file {str(csv_path)!r} does not exist.")
    if csv_path.is_dir():
        raise IsADirectoryError(f"{str(csv_path)!r} is a directory, not a CSV file.")
    base = csv_path.parent
    entries = []
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                    continue
                fields = [f.strip() for f in row]
                if (lineno == 1 and len(fields) == 2
                        and tuple(f.lower() for f in fields) in _HEADERS):
                    continue
                if len(fields) != 2 or not fields[0] or not fields[1]:
                    raise ValueError(
                        f"{csv_path}, line {lineno}: expected two fields 'path,genre'; "
                        f"got {row!r}."
                    )
                entries.append((lineno, fields[0], fields[1]))
    except UnicodeDecodeError:
        raise ValueError(f"{csv_path} is not a UTF-8 text CSV file of path,genre rows.") \
            from None
    if not entries:
        raise ValueError(f"{csv_path} lists no file (expected rows 'path,genre').")
    seen = {}
    for lineno, name, _ in entries:
        if name in seen:
            raise ValueError(f"{csv_path}, line {lineno}: {name!r} is already listed on "
                             f"line {seen[name]}.")
        seen[name] = lineno
    available = sorted({g for _, _, g in entries})
    if genres is not None:
        unknown = [g for g in genres if g not in available]
        if unknown:
            raise ValueError(f"unknown genre(s) {unknown}; the genres listed in {csv_path} "
                             f"are {available}.")
        entries = [e for e in entries if e[2] in set(genres)]

    kept, skipped = [], []
    for _, name, genre in entries:
        file = Path(os.path.expanduser(name))
        if not file.is_absolute():
            file = base / file
        if not file.exists():
            reason = "no such file"
        elif file.is_dir():
            reason = "is a directory, not an audio file"
        else:
            reason = _check_header(file)
        if reason is None:
            kept.append((str(file), genre, name))
        elif on_error == "raise":
            raise AudioLoadError(file, f"{reason} (listed in {csv_path})")
        else:
            skipped.append((str(file), reason))
    if not kept:
        raise ValueError(f"no readable audio file listed in {csv_path} "
                         f"(all {len(skipped)} skipped).")
    if skipped:
        names = ", ".join(f"{p} ({r})" for p, r in skipped)
        warnings.warn(f"load_audio_csv skipped {len(skipped)} unreadable file(s): {names}",
                      UserWarning, stacklevel=2)
    return Bunch(
        filenames=np.array([f for f, _, _ in kept], dtype=str),
        target=np.array([g for _, g, _ in kept], dtype=str),
        track_ids=np.array([n for _, _, n in kept], dtype=str),
        target_names=sorted({g for _, g, _ in kept}),
        skipped=skipped,
    )
