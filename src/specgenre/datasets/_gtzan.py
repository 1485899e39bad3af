"""Locating GTZAN audio files on disk (:func:`load_gtzan`)."""

import os
import re
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._descr import GTZAN_DESCR

__all__ = ["GENRES", "SPLITS", "load_gtzan", "read_split"]

#: The ten GTZAN genres, in alphabetical order.
GENRES = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)

#: Names accepted by ``split=``: the fault-filtered partition of Kereliuk et al. (2015).
SPLITS = ("train", "valid", "test")

#: Audio extensions recognised as GTZAN tracks (case-insensitive).
AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".ogg", ".mp3", ".aiff", ".aif")

ON_ERROR = ("raise", "skip")

# "<genre>.<5 digits>.<ext>"
_TRACK_NAME = re.compile(r"^(?P<genre>[A-Za-z0-9_-]+)\.(?P<num>\d{5})\.(?P<ext>wav|au|flac|ogg|mp3|aiff|aif)$", re.I)

# (sub-path of root, description) tried in order; the first one holding tracks wins
_LAYOUTS = (
    (("genres_original",), "Kaggle: <root>/genres_original/<genre>/<genre>.000NN.wav"),
    (("Data", "genres_original"), "Kaggle zip: <root>/Data/genres_original/<genre>/<genre>.000NN.wav"),
    (("genres",), "original: <root>/genres/<genre>/<genre>.000NN.au"),
    ((), "plain: <root>/<genre>/<genre>.000NN.{wav,au,flac,ogg,mp3,aiff}"),
)


def read_split(split):
    """Track ids of one part of the fault-filtered GTZAN partition.

    Parameters
    ----------
    split : {"train", "valid", "test"}
        Which list to read (443, 197 and 290 tracks).

    Returns
    -------
    track_ids : list of str
        Ids such as ``"blues.00029"``, in the order of the list file.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be None or one of {SPLITS}; got {split!r}.")
    ref = resources.files("specgenre.datasets").joinpath("data", f"{split}_filtered.txt")
    ids = []
    for line in ref.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        name = line.replace("\\", "/").rsplit("/", 1)[-1]
        match = _TRACK_NAME.match(name)
        if match is None:  # pragma: no cover - the packaged lists are well-formed
            raise ValueError(f"unexpected line {line!r} in {ref}")
        ids.append(f"{match['genre']}.{match['num']}")
    return ids


def _check_genres(genres):
    """Normalise ``genres=`` to a tuple of names (or None)."""
    if genres is None:
        return None
    if isinstance(genres, str):
        genres = (genres,)
    genres = tuple(genres)
    if not genres:
        raise ValueError("genres must be None or a non-empty list of genre names.")
    for g in genres:
        if not isinstance(g, str):
            raise TypeError(f"genres must contain genre names (str); got {g!r}.")
    return genres


def _scan(base):
    """Tracks of ``base/<genre>/<genre>.NNNNN.<ext>``.

    Returns a list of (genre, track_id, path). Raises on a file whose name
    prefix names a genre other than its folder.
    """
    folders = sorted(p for p in base.iterdir() if p.is_dir())
    names = {p.name for p in folders} | set(GENRES)
    found = []
    for folder in folders:
        try:
            entries = sorted(folder.iterdir())
        except OSError:  # unreadable folder: not a genre folder
            continue
        for path in entries:
            match = _TRACK_NAME.match(path.name)
            if match is None or not path.is_file():
                continue
            prefix = match["genre"]
            if prefix != folder.name:
                if prefix in names:
                    raise ValueError(
                        f"{path}: the file name says genre {prefix!r} but the file is in "
                        f"the {folder.name!r} folder; fix or remove it."
                    )
                if folder.name in GENRES:
                    # a GTZAN genre folder holding a track named for no known genre
                    warnings.warn(
                        f"{path}: ignored; tracks in the {folder.name!r} folder must be "
                        f"named {folder.name}.<5 digits>.<ext>.",
                        UserWarning,
                        stacklevel=4,
                    )
                continue
            found.append((folder.name, f"{prefix}.{match['num']}", path))
    return found


def _find_tracks(root):
    """Detect the layout under ``root`` and list its tracks."""
    if not root.exists():
        raise FileNotFoundError(f"GTZAN root {str(root)!r} does not exist.")
    if not root.is_dir():
        raise NotADirectoryError(f"GTZAN root {str(root)!r} is not a directory.")
    for parts, _ in _LAYOUTS:
        base = root.joinpath(*parts)
        if not base.is_dir():
            continue
        tracks = _scan(base)
        if tracks:
            return tracks
    tried = "\n".join(f"  - {descr}" for _, descr in _LAYOUTS)
    raise FileNotFoundError(
        f"no GTZAN track found under {str(root)!r}. Layouts tried (track files must be "
        f"named <genre>.<5 digits>.<ext> with ext in {AUDIO_EXTENSIONS}):\n{tried}"
    )


def _check_header(path):
    """Reason why ``path`` is unreadable, or None if its header is fine."""
    import soundfile as sf

    from ..audio import AudioLoadError, _check_truncation

    try:
        with sf.SoundFile(str(path)) as f:
            frames, samplerate = f.frames, f.samplerate
            _check_truncation(f, path)
    except AudioLoadError as exc:
        return exc.reason
    except Exception as exc:  # libsndfile raises RuntimeError/LibsndfileError/OSError
        msg = str(exc).strip() or type(exc).__name__
        # libsndfile's "Error opening '<path>': <why>": the path is named by the caller
        msg = msg.replace(f"Error opening {str(path)!r}: ", "")
        return f"unreadable audio header ({msg.rstrip('.')})"
    if frames <= 0:
        return "no audio frames (empty or truncated file)"
    if samplerate <= 0:  # pragma: no cover - libsndfile rejects these itself
        return f"invalid sample rate {samplerate}"
    return None


def load_gtzan(root, *, split=None, genres=None, on_error="raise"):
    """Find the GTZAN music genre tracks under a folder.

    Returns file *paths* with their genre labels, not audio: decode them with
    :func:`specgenre.load_audio` or :class:`specgenre.AudioLoader`.

    Three layouts are recognised, tried in this order under ``root``:

    * Kaggle's copy, ``<root>/genres_original/<genre>/<genre>.000NN.wav``
      (also ``<root>/Data/genres_original/...`` as the Kaggle zip unpacks);
    * the original archive, ``<root>/genres/<genre>/<genre>.000NN.au``;
    * any ``<root>/<genre>/<genre>.000NN.{wav,au,flac,ogg,mp3,aiff}`` tree, i.e.
      ``root`` pointing at the genre folders themselves.

    Files whose names do not follow ``<genre>.<5 digits>.<ext>`` are ignored;
    a track present with several extensions is listed once (the first file
    name in sorted order, e.g. ``.au`` before ``.wav``).
    The header of every selected file is read (:func:`soundfile.info`, no
    decoding) so that unreadable files are caught here, not halfway through
    feature extraction.

    Parameters
    ----------
    root : str or path-like
        Folder holding the data set (see the layouts above).
    split : {None, "train", "valid", "test"}, default=None
        ``None`` returns every track found. Otherwise only the tracks of that
        part of the *fault-filtered* partition of Kereliuk, Sturm & Larsen
        (2015) (443 / 197 / 290 tracks; 70 faulty tracks are in none of them).
        Tracks are matched by track id, so the lists apply whatever the file
        extension or layout. Listed tracks that are absent from ``root`` are
        counted in ``n_missing`` and a :class:`UserWarning` is issued.
    genres : str or list of str, default=None
        Keep only these genres (all found genres by default).
    on_error : {"raise", "skip"}, default="raise"
        What to do with a file whose header cannot be read or that holds no
        audio frames (Kaggle's copy has a corrupt ``jazz.00054.wav``):
        ``"raise"`` raises :class:`~specgenre.AudioLoadError` naming it;
        ``"skip"`` leaves it out, warns, and lists it in ``skipped``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        filenames : ndarray of str, shape (n_tracks,)
            Paths of the audio files, sorted by genre then track number.
        target : ndarray of str, shape (n_tracks,)
            Genre of each track (the name of its folder).
        track_ids : ndarray of str, shape (n_tracks,)
            Ids such as ``"blues.00000"``; use them as ``groups`` for
            grouped cross-validation of segments.
        target_names : list of str
            Sorted genres present in ``target``.
        skipped : list of (str, str)
            ``(path, reason)`` of every file left out with ``on_error="skip"``.
        n_missing : int
            Number of tracks of ``split`` (restricted to ``genres``) that were
            not found under ``root``; 0 when ``split`` is None.
        DESCR : str
            Description of GTZAN, its known faults and references.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist or holds no track in any known layout.
    ValueError
        For an unknown split, genre or ``on_error``, a track file whose
        name names another genre than its folder, or when no readable track
        is left (an empty split, or every file skipped).
    specgenre.AudioLoadError
        With ``on_error="raise"``, for the first unreadable file.

    See Also
    --------
    load_gtzan_features : Kaggle's pre-computed feature tables.
    make_genre_clips : Synthetic genre-like clips, no download needed.

    Examples
    --------
    >>> from specgenre.datasets import load_gtzan
    >>> gtzan = load_gtzan("~/data/gtzan", split="train", on_error="skip")  # doctest: +SKIP
    >>> gtzan.filenames[0], gtzan.target[0]  # doctest: +SKIP
    ('/home/me/data/gtzan/genres_original/blues/blues.00029.wav', 'blues')
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be None or one of {SPLITS}; got {split!r}.")
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}; got {on_error!r}.")
    genres = _check_genres(genres)
    root = Path(os.path.expanduser(os.fspath(root)))

    tracks = _find_tracks(root)
    available = sorted({g for g, _, _ in tracks})
    if genres is not None:
        unknown = [g for g in genres if g not in available]
        if unknown:
            extra = ""
            absent = [g for g in unknown if g in GENRES]
            if absent:
                extra = f" ({absent} are GTZAN genres but have no track under this root)"
            raise ValueError(
                f"unknown genre(s) {unknown}{extra}; the genres found under {str(root)!r} "
                f"are {available}."
            )
        wanted = set(genres)
        tracks = [t for t in tracks if t[0] in wanted]

    n_missing = 0
    if split is not None:
        listed = read_split(split)
        if genres is not None:
            listed = [tid for tid in listed if tid.split(".", 1)[0] in wanted]
        listed_set = set(listed)
        tracks = [t for t in tracks if t[1] in listed_set]
        found_ids = {t[1] for t in tracks}
        missing = [tid for tid in listed if tid not in found_ids]
        n_missing = len(missing)
        if n_missing:
            shown = ", ".join(missing[:5]) + (", ..." if n_missing > 5 else "")
            warnings.warn(
                f"{n_missing} of the {len(listed)} tracks of the {split!r} split are not "
                f"under {str(root)!r} ({shown}); returning the {len(tracks)} found.",
                UserWarning,
                stacklevel=2,
            )

    # one entry per track id: prefer the first extension in sorted order
    tracks.sort(key=lambda t: (t[0], t[1], t[2].name))
    seen, unique = set(), []
    for t in tracks:
        if t[1] not in seen:
            seen.add(t[1])
            unique.append(t)
    tracks = unique

    from ..audio import AudioLoadError

    kept, skipped = [], []
    for genre, tid, path in tracks:
        reason = _check_header(path)
        if reason is None:
            kept.append((genre, tid, path))
        elif on_error == "raise":
            raise AudioLoadError(
                path,
                f"{reason}. Pass on_error='skip' to load_gtzan to leave such files out.",
            )
        else:
            skipped.append((str(path), reason))
    if not kept:
        what = f"the {split!r} split" if split is not None else "the selection"
        extra = f" (all {len(skipped)} unreadable and skipped)" if skipped else ""
        raise ValueError(f"no track of {what} found under {str(root)!r}{extra}.")
    if skipped:
        names = ", ".join(f"{p} ({r})" for p, r in skipped)
        warnings.warn(
            f"load_gtzan skipped {len(skipped)} unreadable file(s): {names}",
            UserWarning,
            stacklevel=2,
        )

    return Bunch(
        filenames=np.array([str(p) for _, _, p in kept], dtype=str),
        target=np.array([g for g, _, _ in kept], dtype=str),
        track_ids=np.array([t for _, t, _ in kept], dtype=str),
        target_names=sorted({g for g, _, _ in kept}),
        skipped=skipped,
        n_missing=n_missing,
        DESCR=GTZAN_DESCR,
    )
