"""The ``specgenre`` command line: reproduce, train, predict, features, rows.

Exit codes, in every subcommand: 0 success; 1 some input failed (a row, or a file
that was skipped and reported); 2 bad usage, path or data (nothing was done).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: Marks a file written by ``specgenre train`` (the dict saved with joblib).
MODEL_FORMAT = "specgenre-model-1"
#: Tracks decoded per block by ``specgenre train`` (64 x 30 s = 169 MB of float32).
TRAIN_BLOCK = 64

# The main job on synthetic data (README's first command, nox -s demo) must finish in
# 5 minutes on 2 CPU cores: 80 clips of 6 s (two 3 s segments each), 3-fold CV, 4 epochs.
# It was 7 min 22 s; now each clip's spectrograms/features are computed once per setting,
# rows that fit the same model share the fit (3 s + MV/Prob, xgboost_3s/_3s_mv), and:
SYNTH_N_PER_GENRE = 8
SYNTH_DURATION = 6.0
SYNTH_MAX_EPOCHS = 4
SYNTH_CV = 3
# ResNet18 on 513-row dB images costs 4x the mel rows: on synthetic data the dB rows
# average 8 neighbouring STFT rows (65 rows, freq_pool=8) to stay within that budget,
# and the mel rows 2 neighbouring mel bands (64 rows), which halves the network's work.
# The folds of a row are fitted in parallel processes (--fold-jobs, one torch thread
# each on 2 cores): see docs/user_guide/results.rst for the measured time per row.
SYNTH_DB_FREQ_POOL = 8
SYNTH_MEL_FREQ_POOL = 2
GTZAN_CV = 5


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- paths and data
def _check_output_path(path, *, option="-o", kind="file"):
    """Check, before any work starts, that ``path`` can be written; return it as a Path.

    ``kind="file"``: the parent folder must exist and ``path`` must not be a folder.
    ``kind="dir"``: ``path`` must be a folder or not exist yet (it is then created
    later), and its parent must exist. A failure is a :class:`CLIError` (exit 2).
    """
    import os

    path = Path(path).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if kind == "file" and path.is_dir():
        raise CLIError(f"{option} {path}: is a folder; give a file name")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise CLIError(f"{option} {path}: is a file; give a folder")
    if kind == "dir" and path.is_dir():
        parent = path
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise CLIError(f"{option} {path}: the folder {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{option} {path}: the folder {parent} is not writable")
    return path


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _list_dataset(data, *, option="--data", split=None, genres=None, min_genres=2,
                  only_ids=None):
    """The labelled tracks of ``data``, not yet decoded: ``(root, bunch)``.

    ``data`` is a GTZAN folder (any layout :func:`load_gtzan` knows) or a CSV file
    of ``path,genre`` rows (:func:`load_audio_csv`). ``split`` (GTZAN only) and
    ``genres`` select tracks, and so does ``only_ids`` (a set of track ids such as
    ``"jazz.00001"``): the others are neither decoded nor reported. Files whose
    header cannot be read are reported once each. Bad paths or data raise
    :class:`CLIError`.
    """
    import warnings

    from .datasets import load_audio_csv, load_gtzan

    root = Path(data).expanduser()
    if not root.exists():
        raise CLIError(f"{option} {root}: no such directory or CSV file")
    is_csv = root.is_file()
    if is_csv and root.suffix.lower() not in (".csv", ".txt", ".tsv"):
        raise CLIError(f"{option} {root}: is a file, not a folder; give a GTZAN folder or "
                       "a CSV file of path,genre rows")
    if is_csv and split is not None:
        raise CLIError(f"{option} {root}: the fault-filtered split needs a GTZAN folder, "
                       "not a CSV file")
    try:
        with warnings.catch_warnings():
            # skipped files are reported below, one line each
            warnings.filterwarnings("ignore", message="load_(gtzan|audio_csv) skipped")
            if is_csv:
                bunch = load_audio_csv(root, genres=genres, on_error="skip")
            else:
                bunch = load_gtzan(root, split=split, genres=genres, on_error="skip")
    except FileNotFoundError as exc:
        msg = _first_line(exc).rstrip(".")
        if not is_csv and "no GTZAN track" in msg:
            msg += ("; expected <genre>/<genre>.NNNNN.wav files (or genres_original/, "
                    "genres/) under it, or pass a CSV file of path,genre rows")
        raise CLIError(f"{option} {root}: {msg}") from None
    except (ValueError, OSError, TypeError) as exc:
        raise CLIError(f"{option} {root}: {_first_line(exc)}") from None
    if only_ids is not None:  # select before decoding
        keep = np.isin(np.asarray(bunch.track_ids), list(only_ids))
        if not keep.any():
            raise CLIError(f"{option} {root}: holds none of the {len(only_ids)} tracks asked "
                           "for")
        for key in ("filenames", "target", "track_ids"):
            bunch[key] = [v for v, k in zip(bunch[key], keep) if k]
        bunch.target_names = sorted(set(np.asarray(bunch.target).tolist()))
        # files of other tracks are not used: not reported either
        bunch.skipped = [(p, r) for p, r in bunch.skipped if Path(p).stem in only_ids]
    for path, reason in bunch.skipped:
        _log(f"skipped {path}: {reason}")
    if len(bunch.target_names) < min_genres:
        raise CLIError(f"{option} {root}: found only the genre(s) {bunch.target_names}; "
                       f"need at least {min_genres} to train a classifier")
    return root, bunch


def _load_dataset(data, *, option="--data", split=None, genres=None, duration=30.0,
                  n_jobs=None, progress=True, min_genres=2, only_ids=None):
    """THE loader of labelled audio for reproduce and features (train: :class:`_TrackBlocks`).

    Tracks are selected as by :func:`_list_dataset` (before decoding). Returns ``(X, y, track_ids,
    n_skipped)``: float32 waveforms of ``duration`` seconds at 22050 Hz, genre
    labels, track ids (GTZAN ids or the CSV's paths) and the number of files
    skipped. Unreadable files are skipped and reported once each.
    """
    from .audio import load_audio

    root, bunch = _list_dataset(data, option=option, split=split, genres=genres,
                                min_genres=min_genres, only_ids=only_ids)
    X, kept, errors = load_audio(bunch.filenames, duration=duration, on_error="skip",
                                 n_jobs=n_jobs, progress=progress)
    for err in errors:
        _log(f"skipped {err}")
    if len(X) == 0:
        raise CLIError(f"{option} {root}: no readable track")
    y = np.asarray(bunch.target)[kept]
    if len(np.unique(y)) < min_genres:
        raise CLIError(f"{option} {root}: the readable tracks hold fewer than "
                       f"{min_genres} genres")
    return X, y, np.asarray(bunch.track_ids)[kept], len(bunch.skipped) + len(errors)


class _TrackBlocks:
    """The tracks of a data set, decoded block by block as they are iterated.

    Iterating yields ``(waveforms, genres)`` for each block of at most
    ``block_size`` readable tracks (float32, ``duration`` seconds at 22050 Hz),
    so that :func:`_fit_row` can turn each block into spectrograms or features
    and drop it before the next is decoded: all waveforms are never held at once
    (2.6 GB for GTZAN's 1000 clips). Unreadable files are skipped and reported
    once each (``n_errors``); after the last block, no readable track, or fewer
    than ``min_genres`` genres among them, raise :class:`CLIError`. ``len()`` is
    the number of tracks listed, an upper bound of those yielded.
    """

    def __init__(self, root, bunch, *, option="--data", duration=30.0, n_jobs=None,
                 progress=True, block_size=64, min_genres=2):
        self.root, self.bunch, self.option = root, bunch, option
        self.duration, self.n_jobs, self.progress = duration, n_jobs, progress
        self.block_size, self.min_genres = block_size, min_genres
        self.n_used = self.n_errors = 0

    def __len__(self):
        return len(self.bunch.filenames)

    def __iter__(self):
        from tqdm.auto import tqdm

        from .audio import load_audio

        files, target = self.bunch.filenames, np.asarray(self.bunch.target)
        genres = set()
        with tqdm(total=len(files), desc="reading audio", unit="track",
                  disable=not self.progress, leave=False) as bar:
            for start in range(0, len(files), self.block_size):
                stop = start + self.block_size
                part = load_audio(files[start:stop], duration=self.duration,
                                  on_error="skip", n_jobs=self.n_jobs)
                for err in part.errors:
                    _log(f"skipped {err}")
                self.n_errors += len(part.errors)
                bar.update(min(stop, len(files)) - start)
                X, y = part.X, target[start:stop][part.kept]
                del part
                if len(X):
                    self.n_used += len(X)
                    genres.update(y.tolist())
                    yield X, y
                del X  # not kept while the next block is decoded
        if self.n_used == 0:
            raise CLIError(f"{self.option} {self.root}: no readable track")
        if len(genres) < self.min_genres:
            raise CLIError(f"{self.option} {self.root}: the readable tracks hold fewer "
                           f"than {self.min_genres} genres")


def _filtered_ids(data, parts):
    """Track ids of the fault-filtered lists ``parts``, for ``--split filtered``."""
    from .datasets._gtzan import read_split

    if Path(data).expanduser().is_file():
        raise CLIError(f"--data {Path(data).expanduser()}: the fault-filtered split "
                       "needs a GTZAN folder, not a CSV file")
    return set().union(*(read_split(name) for name in parts))


def _filtered_split(track_ids):
    """Indices of (train+valid, test) of the fault-filtered split among ``track_ids``."""
    from .datasets._gtzan import read_split

    track_ids = np.asarray(track_ids)
    train = np.flatnonzero(np.isin(track_ids, read_split("train") + read_split("valid")))
    test = np.flatnonzero(np.isin(track_ids, read_split("test")))
    if len(train) == 0 or len(test) == 0:
        raise CLIError("--split filtered: the data holds no track of the fault-filtered "
                       "train/valid or test lists")
    return train, test


# --------------------------------------------------------------------------- reproduce
def _reproduce_rows(names):
    """The rows asked for with ``--rows`` (``study`` and ``all`` name groups of rows)."""
    from .study import ALL_ROWS, STUDY_ROWS

    groups = {"study": list(STUDY_ROWS), "all": list(ALL_ROWS)}
    rows = []
    for name in names or ["study"]:
        rows += groups.get(name, [name])
    unknown = [r for r in rows if r not in ALL_ROWS]
    if unknown:
        raise CLIError(f"unknown row(s) {', '.join(unknown)}; choose from: "
                       f"{', '.join(ALL_ROWS)} (or 'study', 'all')")
    return list(dict.fromkeys(rows))


def _cmd_reproduce(args):
    from .reproduce import check_params, evaluate_rows, format_table, write_results

    # every argument is checked before any audio is loaded or made
    rows = _reproduce_rows(args.rows)
    if args.cv is not None and args.cv < 2:
        raise CLIError(f"--cv {args.cv}: cross-validation needs at least 2 folds")
    out = _check_output_path(args.out, option="-o", kind="dir")
    user = dict(args.param)  # the last --param KEY=... wins
    try:
        check_params(rows, user)
    except ValueError as exc:
        raise CLIError(f"--param: {exc}") from None
    synthetic = args.data is None
    defaults = {}  # applied to the rows that take them, overridden by --param
    if args.max_epochs is not None or synthetic:
        defaults["max_epochs"] = args.max_epochs or SYNTH_MAX_EPOCHS
    if args.device:
        defaults["device"] = args.device
    if synthetic:
        # a few clips per genre leave too few for an inner validation split (the
        # classifiers would warn in every fold): train every epoch, no early stopping
        defaults["valid_fraction"] = None

    def row_params(row):
        pool = {"db": SYNTH_DB_FREQ_POOL, "mel": SYNTH_MEL_FREQ_POOL}.get(row.scale)
        extra = {"freq_pool": pool} if synthetic and pool else {}
        return {**defaults, **extra, **user}

    split, track_ids = None, None
    if synthetic:
        from .datasets import make_genre_clips

        _log(f"synthetic data: {args.n_per_genre} clips x 10 genres, {args.duration:g} s "
             "(use --data DIR for GTZAN)")
        bunch = make_genre_clips(args.n_per_genre, duration=args.duration,
                                 random_state=args.random_state)
        X, y, track_ids = bunch.data, np.asarray(bunch.target), bunch.track_ids
        cv = args.cv or SYNTH_CV
        source = f"synthetic ({len(y)} clips of {args.duration:g} s)"
    else:
        # --split filtered: only the tracks of its lists are decoded
        only_ids = (_filtered_ids(args.data, ("train", "valid", "test"))
                    if args.split == "filtered" else None)
        X, y, track_ids, _ = _load_dataset(args.data, genres=args.genres, n_jobs=args.n_jobs,
                                           progress=not args.quiet, only_ids=only_ids)
        if only_ids is not None:
            split = _filtered_split(track_ids)
        cv = args.cv or GTZAN_CV
        source = f"{args.data} ({len(y)} readable tracks)"
    if split is None:  # stratified folds need each genre in (nearly) every fold
        genres, counts = np.unique(y, return_counts=True)
        if counts.max() < cv:
            raise CLIError(f"--cv {cv}: no genre has {cv} tracks (the most is "
                           f"{counts.max()}); use at most {counts.max()} folds")
        if counts.min() < cv:
            _log(f"warning: --cv {cv}: {', '.join(map(str, genres[counts < cv]))} "
                 f"ha{'s' if (counts < cv).sum() == 1 else 've'} fewer than {cv} tracks, "
                 "so some test folds hold none of them")
    _log(f"running {len(rows)} row(s) on {source}")

    def report(result):
        if result.status == "ok":
            spent = (f", {result.transform_seconds:.0f} s of it features/spectrograms"
                     if result.transform_seconds >= 1 else "")
            _log(f"  {result.row}: {100 * result.mean:.1f}% ({result.seconds:.0f} s, "
                 f"{result.cpu_seconds:.0f} s CPU{spent})")
        else:
            _log(f"  {result.row}: {result.status} ({result.seconds:.0f} s; see the notes "
                 "below the table)")

    start = time.perf_counter()
    fold_jobs = args.fold_jobs if args.fold_jobs is not None else (-1 if synthetic else 1)
    results = evaluate_rows(rows, X, y, cv=cv, split=split, random_state=args.random_state,
                            n_jobs=args.n_jobs, fold_jobs=fold_jobs, params=row_params,
                            progress=not args.quiet, track_ids=track_ids, callback=report)
    print(format_table(results))
    applied = {}
    for r in results:
        for key, value in r.params.items():
            applied.setdefault(f"{key}={value!r}", []).append(r.row)
    n_used = max((r.n_tracks for r in results), default=0)
    meta = {"data": source, "tracks used": n_used or "--",
            "protocol": ("fault-filtered split (train+valid -> test)" if split is not None
                         else f"{cv}-fold stratified CV by track"),
            "random_state": args.random_state,
            "overrides": "; ".join(f"{k} ({', '.join(v)})" for k, v in applied.items())
                         or "none",
            "wall time": f"{time.perf_counter() - start:.0f} s"}
    paths = write_results(results, out, meta=meta)
    _log(f"wrote {paths[0]}, {paths[1]} and {len(paths) - 2} per-row file(s) under {out}")
    return EXIT_FAILED if any(r.status == "failed" for r in results) else EXIT_OK


# --------------------------------------------------------------------------- train / predict
def _is_neural(clf):
    return "max_epochs" in clf.get_params(deep=False)


def _return_freed_memory():
    """Have glibc's malloc give every freed block of 128 kB or more back to the system.

    By default the threshold above which malloc maps memory directly grows with the
    largest block freed so far (up to 32 MB), so after the first training steps the
    batch tensors (megabytes each) come from the heap, where freed space is kept and
    fragments: peak RSS then exceeds the memory in use (by 0.1 GB for the CNN on 30 s
    mel spectrograms, batch 32). A fixed threshold keeps them mapped and returned
    when freed, at no measurable cost in time. Process-wide; a no-op without glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    return mallopt is not None and bool(mallopt(-3, 128 * 1024))  # M_MMAP_THRESHOLD


def _memory_saving(est):
    """Set a row's estimator to train in less memory, for the same model.

    The spectrograms are stored in float16 (``SpectrogramTransformer(dtype=
    "float16")``: half the memory, within 0.063 dB) and the networks that have it
    (the CNN, ResNet18, musicnn fine-tuning) train with ``checkpointing=True``:
    activations recomputed in the backward pass instead of kept, with the same
    gradients up to float32 round-off, for more compute. Other rows are left as
    they are.
    """
    for key in est.get_params():
        if key.rsplit("__", 1)[-1] == "checkpointing":
            est.set_params(**{key: True})
        elif key.endswith("spectrogram__dtype"):
            est.set_params(**{key: "float16"})
    return est


def _fit_row(row, blocks, max_clips, *, max_epochs=None, device=None, n_jobs=None,
             random_state=0, verbose=1, batch_size=None, memory_saving=True, params=None):
    """Fit the study row ``row`` on blocks of 30 s clips; return ``(estimator, window_s)``.

    ``blocks`` yields ``(waveforms, genres)`` block after block (at most
    ``max_clips`` clips in all; e.g. :class:`_TrackBlocks`, decoding as it goes, or
    a list): each block is turned into the row's spectrograms or features and
    dropped before the next, so that all waveforms are never held at once (see
    :mod:`specgenre._blockfit`; the model is the one a plain fit gives).

    ``window_s`` is the length of audio the fitted estimator takes per sample: 30 s,
    or 3 s for ``xgboost_3s`` (trained on 3 s segments without voting). Neural rows
    print one line per epoch when ``verbose`` > 0; ``params`` are more parameters of
    their classifier (e.g. callbacks). With ``memory_saving``, the CNN and
    ResNet18 rows keep their spectrograms in float16 and ResNet18 trains with
    activation checkpointing (:func:`_memory_saving`), and freed memory goes back
    to the system (:func:`_return_freed_memory`). Shared by ``specgenre train`` and
    ``benchmarks/bench_memory.py``.
    """
    from ._blockfit import fit_aggregator_blocks, fit_pipeline_blocks
    from .aggregate import TrackAggregator
    from .study import ALL_ROWS, classifier_of, make_row

    spec = ALL_ROWS[row]
    est = make_row(row, random_state=random_state, n_jobs=n_jobs)
    clf = classifier_of(est)
    overrides = {k: v for k, v in (("max_epochs", max_epochs), ("device", device),
                                   ("batch_size", batch_size)) if v is not None}
    if _is_neural(clf):
        overrides.update(verbose=int(verbose), **(params or {}))
    elif overrides:
        overrides = {}  # XGBoost rows have no epochs nor torch device
    if overrides:
        clf.set_params(**overrides)
    if memory_saving:
        _memory_saving(est)
        _return_freed_memory()
    if isinstance(est, TrackAggregator):  # 3 s rows with voting
        fit_aggregator_blocks(est, blocks, max_clips)
    else:  # a Pipeline: 30 s rows, and xgboost_3s on the clips' segments
        cut = (lambda clips: spec.samples(clips)[0]) if spec.level == "segment" else None
        fit_pipeline_blocks(est, blocks, max_clips, cut=cut)
    return est, (3.0 if spec.level == "segment" else 30.0)


def _cmd_train(args):
    from . import __version__
    from .study import ALL_ROWS

    if args.row not in ALL_ROWS:
        raise CLIError(f"unknown row {args.row!r}; choose from: {', '.join(ALL_ROWS)} "
                       "(list them with 'specgenre rows')")
    output = _check_output_path(args.output, option="-o")
    # --split filtered: the fault-filtered train+valid tracks, decoded alone
    only_ids = (_filtered_ids(args.data, ("train", "valid"))
                if args.split == "filtered" else None)
    root, bunch = _list_dataset(args.data, genres=args.genres, only_ids=only_ids)
    # decoded block by block: _fit_row drops each once turned into spectrograms/features
    blocks = _TrackBlocks(root, bunch, n_jobs=args.n_jobs, progress=not args.quiet,
                          block_size=TRAIN_BLOCK)
    _log(f"training {args.row} on {len(blocks)} tracks of {len(bunch.target_names)} genres")
    start = time.perf_counter()
    est, window = _fit_row(args.row, blocks, len(blocks), max_epochs=args.max_epochs,
                           device=args.device, n_jobs=args.n_jobs,
                           random_state=args.random_state, verbose=0 if args.quiet else 1,
                           batch_size=args.batch_size, memory_saving=args.memory_saving)
    n_skipped = len(bunch.skipped) + blocks.n_errors
    model = {"format": MODEL_FORMAT, "specgenre_version": __version__, "estimator": est,
             "row": args.row, "sr": 22050, "duration": window,
             "classes": [str(c) for c in est.classes_]}
    _save_model(model, output)
    _log(f"trained on {blocks.n_used} tracks in {time.perf_counter() - start:.0f} s; "
         f"saved {output}")
    if n_skipped:
        _log(f"{n_skipped} file(s) were skipped (listed above)")
        return EXIT_FAILED
    return EXIT_OK


def _save_model(model, output):
    """Write atomically: a crash or full disk never leaves a half-written model file."""
    import os
    import tempfile

    import joblib

    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    os.close(fd)
    try:
        joblib.dump(model, tmp)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_model(path):
    """Load a model file; anything that is not one is a one-line CLIError naming it.

    Loading runs code stored in the file (pickle): load only files you trust.
    """
    import pickle
    import warnings

    import joblib

    from . import __version__

    path = Path(path).expanduser()
    if not path.exists():
        raise CLIError(f"model file {path} not found")
    if not path.is_file():
        raise CLIError(f"model file {path} is a folder, not a model file")
    try:
        with warnings.catch_warnings():
            # sklearn's InconsistentVersionWarning: our own version check says it better
            warnings.filterwarnings("ignore", message=".*unpickle estimator.*")
            model = joblib.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError,
            AttributeError, ImportError, OSError, MemoryError, UnicodeDecodeError) as exc:
        raise CLIError(f"{path} is not a specgenre model file (saved by 'specgenre train'): "
                       f"{type(exc).__name__}: {_first_line(exc)[:120]}") from None
    if isinstance(model, dict):
        if not hasattr(model.get("estimator"), "predict"):
            raise CLIError(f"{path} holds a {type(model).__name__} without a fitted "
                           "estimator: not a specgenre model file (saved by 'specgenre train')")
        saved = model.get("specgenre_version")
        if saved is not None and saved != __version__:
            warnings.warn(f"{path} was saved by specgenre {saved}, this is {__version__}: "
                          "its predictions may differ or fail; retrain it to be sure",
                          UserWarning, stacklevel=2)
        model = {"row": None, "sr": 22050, "duration": 30.0, **model}
    elif hasattr(model, "predict") and hasattr(model, "classes_"):
        # a bare fitted classifier saved with joblib.dump, taking 30 s clips
        model = {"estimator": model, "row": None, "sr": 22050, "duration": 30.0}
    else:
        raise CLIError(f"{path} holds a {type(model).__name__}, not a specgenre model "
                       "(saved by 'specgenre train')")
    return model


def _windows_of(y, n):
    """Non-overlapping windows of ``n`` samples from the start (the last partial one dropped)."""
    k = len(y) // n
    return y[:k * n].reshape(k, n)


def _judge(model, y, *, short):
    """Predict one decoded song ``y``: ``(genre, proba or None, window labels, window proba)``.

    The song is cut into windows of the model's input (its 3 s segments for voting
    models, its clip length otherwise); windows are combined by the model's own vote
    (mean probabilities, or majority for hard-voting models).
    """
    est = model["estimator"]
    sr = model["sr"]
    inner, columns, hard = est, None, False
    if hasattr(est, "segmenter_") and getattr(est, "segmenter_", None) is not None:
        inner = est.estimator_
        n = est.segmenter_.segment_length_
        hard = est.voting == "hard"
        columns = getattr(est, "_columns", None)
    else:
        n = int(round(model["duration"] * sr))
    if len(y) < n:
        if short == "skip":
            raise ValueError(f"lasts {len(y) / sr:.1f} s, shorter than the model's "
                             f"{n / sr:g} s window (--short skip)")
        y = np.pad(y, (0, n - len(y)), mode="constant" if short == "pad" else "wrap")
    W = _windows_of(y, n)
    classes = np.asarray(est.classes_)
    proba = None
    if hasattr(inner, "predict_proba"):
        proba = np.asarray(inner.predict_proba(W), dtype=np.float64)
        if columns is not None:
            proba = proba[:, columns]
    if proba is not None and not hard:
        mean = proba.mean(axis=0)
        labels = classes[np.argmax(proba, axis=1)]
        return classes[np.argmax(mean)], mean, labels, proba
    labels = np.asarray(inner.predict(W))
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    idx = np.array([lookup[v] for v in labels.tolist()], dtype=np.intp)
    votes = np.bincount(idx, minlength=len(classes)).astype(np.float64)
    if proba is not None:  # ties broken by summed probability
        votes += 1e-6 * proba.sum(axis=0) / len(W)
    mean = proba.mean(axis=0) if proba is not None else None
    return classes[np.argmax(votes)], mean, labels, proba


def _cmd_predict(args):
    import csv
    import json

    from .audio import AudioLoadError, read_audio

    model = _load_model(args.model)
    output = None if args.output is None else _check_output_path(args.output, option="-o")
    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower()
                          if args.output and Path(args.output).suffix.lower()
                          in (".csv", ".json") else "text")
    est = model["estimator"]
    classes = [str(c) for c in np.asarray(est.classes_)]
    sr = model["sr"]
    results, n_failed = [], 0
    for path in args.files:
        try:
            y, _ = read_audio(path, sr=sr)
            if args.max_seconds:
                y = y[:int(round(args.max_seconds * sr))]
            genre, mean, labels, proba = _judge(model, y, short=args.short)
        except (AudioLoadError, ValueError) as exc:
            msg = exc.reason if isinstance(exc, AudioLoadError) else str(exc)
            _log(f"error: {path}: {msg}")
            results.append({"file": str(path), "error": msg})
            n_failed += 1
            continue
        res = {"file": str(path), "genre": str(genre), "windows": len(labels),
               "seconds": round(len(y) / sr, 3)}
        if mean is not None:
            res["probabilities"] = {c: float(p) for c, p in zip(classes, mean)}
        if args.windows:
            res["window_genres"] = [str(v) for v in labels]
            if proba is not None:
                res["window_probabilities"] = proba.tolist()
        results.append(res)
        if fmt == "text":
            line = f"{path}\t{genre}"
            if mean is not None:
                line += f"\t{_top(mean, classes, args.top)}"
            print(line + f"\t({len(labels)} window{'s' * (len(labels) != 1)})", flush=True)
            if args.windows:
                _print_windows(labels, proba, classes, args.top,
                               _window_seconds(model), sys.stdout)
    if fmt != "text":
        fh = sys.stdout if output is None else open(output, "w", newline="")
        try:
            if fmt == "json":
                json.dump(results, fh, indent=1)
                fh.write("\n")
            else:
                fields = ["file", "genre", "windows", "seconds",
                          *(f"p_{c}" for c in classes), "error"]
                writer = csv.DictWriter(fh, fieldnames=fields)
                writer.writeheader()
                for r in results:
                    row = {k: r.get(k, "") for k in ("file", "genre", "windows", "seconds",
                                                     "error")}
                    for c in classes:
                        row[f"p_{c}"] = r.get("probabilities", {}).get(c, "")
                    writer.writerow(row)
        finally:
            if output is not None:
                fh.close()
        if output is not None:
            _log(f"wrote {len(results)} result(s) to {output}")
    if n_failed == len(args.files):
        return EXIT_FAILED
    return EXIT_FAILED if n_failed else EXIT_OK


def _cmd_tags(args):
    from .audio import AudioLoadError, read_audio
    from .musicnn import MUSICNN_TAGS, MusicnnWeightsNotFoundError, top_tags

    n_tags = len(MUSICNN_TAGS[args.model])
    if not 1 <= args.top <= n_tags:
        raise CLIError(f"--top must be between 1 and {n_tags}; got {args.top}")
    n_failed = 0
    for path in args.files:
        try:
            # the file's own rate: exactly the official tagger's input
            y, sr = read_audio(path)
            tags = top_tags(y, sr=sr, model=args.model, n=args.top, device=args.device)
        except MusicnnWeightsNotFoundError as exc:
            raise CLIError(_first_line(exc)) from None
        except (AudioLoadError, ValueError) as exc:
            msg = exc.reason if isinstance(exc, AudioLoadError) else _first_line(exc)
            _log(f"error: {path}: {msg}")
            n_failed += 1
            continue
        print(f"{path}\t" + ", ".join(f"{t} {p:.2f}" for t, p in tags), flush=True)
    return EXIT_FAILED if n_failed else EXIT_OK


def _window_seconds(model):
    est = model["estimator"]
    if getattr(est, "segmenter_", None) is not None:
        return est.segmenter_.segment_length_ / model["sr"]
    return model["duration"]


def _top(proba, classes, k):
    order = np.argsort(-proba, kind="stable")[:k]
    return ", ".join(f"{classes[i]} {proba[i]:.2f}" for i in order)


def _print_windows(labels, proba, classes, k, seconds, fh):
    for j, label in enumerate(labels):
        line = f"  window {j} ({j * seconds:g}-{(j + 1) * seconds:g} s)\t{label}"
        if proba is not None:
            line += f"\t{_top(proba[j], classes, k)}"
        print(line, file=fh)


# --------------------------------------------------------------------------- features
def _cmd_features(args):
    import csv

    from .features import FeatureExtractor
    from .segment import ClipSegmenter

    output = _check_output_path(args.output, option="-o")
    # one genre is fine here: a table of features is not a classifier
    X, labels, ids, n_skipped = _load_dataset(
        args.data, option="DATA", genres=args.genres, n_jobs=args.n_jobs,
        progress=not args.quiet, min_genres=1)
    from_csv = Path(args.data).expanduser().is_file()

    def name(track_id, j=None):
        if not from_csv:  # GTZAN ids, named like Kaggle's tables
            return f"{track_id}.wav" if j is None else f"{track_id}.{j}.wav"
        if j is None:
            return str(track_id)
        p = Path(str(track_id))
        return str(p.with_name(f"{p.stem}.{j}{p.suffix}"))

    extractor = FeatureExtractor(n_jobs=args.n_jobs, progress=not args.quiet)
    if args.segment_seconds:
        seg = ClipSegmenter(args.segment_seconds).fit(X)
        X, idx = seg.segment(X)
        n_seg = seg.n_segments_
        names = [name(ids[i], j % n_seg) for j, i in enumerate(idx)]
        labels = labels[idx]
    else:
        names = [name(i) for i in ids]
    F = extractor.fit_transform(X)
    header = ["filename", "length", *extractor.get_feature_names_out(), "label"]
    with open(output, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for n, row, label in zip(names, F, labels):
            writer.writerow([n, X.shape[1], *(repr(float(v)) for v in row), label])
    _log(f"wrote {len(F)} rows to {output}")
    if n_skipped:
        _log(f"{n_skipped} file(s) were skipped (listed above)")
        return EXIT_FAILED
    return EXIT_OK


def _cmd_rows(args):
    from .study import ALL_ROWS as rows

    width = max(len(name) for name in rows)
    for name, row in rows.items():
        extra = "  (beyond the study)" if getattr(row, "beyond_study", False) else ""
        print(f"{name:<{width}}  {row.title}{extra}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser
def _param(text):
    import ast

    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def build_parser():
    p = argparse.ArgumentParser(
        prog="specgenre",
        description="Music genre classification from spectrograms: reproduce the study's "
                    "table, train a row, predict files, extract Kaggle-style features.",
    )
    from . import __version__

    p.add_argument("--version", action="version", version=f"specgenre {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "reproduce", help="run the study's rows and print the results table",
        description="Fit and score rows by track-level cross-validation (or the fault-"
                    "filtered split) and write results.csv, results.md and, per row, "
                    "out-of-fold predictions, a per-genre report and a confusion matrix.")
    r.add_argument("--data", metavar="PATH",
                   help="GTZAN folder (any layout load_gtzan knows) or CSV file of "
                        "path,genre rows (wav, flac, mp3, au, ogg); default: built-in "
                        "synthetic clips")
    r.add_argument("--genres", nargs="+", metavar="GENRE",
                   help="only these genres of --data")
    r.add_argument("--rows", nargs="+", metavar="ROW",
                   help="rows to run: names, 'study' (the study's twelve, the default) "
                        "or 'all' (also the rows beyond the study)")
    r.add_argument("--cv", type=int, default=None,
                   help=f"folds of track-level CV, at least 2 (default {GTZAN_CV} with "
                        f"--data, {SYNTH_CV} on synthetic data)")
    r.add_argument("--split", choices=["cv", "filtered"], default="cv",
                   help="'filtered': fault-filtered split (train+valid -> test) instead of CV")
    r.add_argument("--n-per-genre", type=int, default=SYNTH_N_PER_GENRE,
                   help=f"synthetic clips per genre (default {SYNTH_N_PER_GENRE})")
    r.add_argument("--duration", type=float, default=SYNTH_DURATION,
                   help=f"synthetic clip length in seconds (default {SYNTH_DURATION:g})")
    r.add_argument("--max-epochs", type=int,
                   help=f"epochs of the neural rows (default: {SYNTH_MAX_EPOCHS} on synthetic "
                        "data, the classifiers' own with --data)")
    r.add_argument("--device", help="torch device of the neural rows, e.g. cuda")
    r.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help="parameter of every row that takes it: a classifier parameter "
                        "(--param n_estimators=200) or a path (spectrogram__n_mels=96); "
                        "a key no selected row takes is an error (repeatable)")
    r.add_argument("--n-jobs", type=int, default=None,
                   help="parallel workers for decoding, features and spectrograms, and "
                        "torch/XGBoost threads (default: one worker for decoding and "
                        "features, torch's and XGBoost's own thread counts, i.e. all cores)")
    r.add_argument("--fold-jobs", type=int, default=None,
                   help="processes fitting a row's folds in parallel, each with its share "
                        "of the cores as torch threads (-1: all cores, at most one per "
                        "fold; default -1 on synthetic data, 1 with --data, where each "
                        "process holds a copy of the audio); the results are those of "
                        "one process with torch at that many threads")
    r.add_argument("--random-state", type=int, default=0, help="seed of folds and models")
    r.add_argument("-o", "--out", default="results",
                   help="folder for results.csv, results.md and the per-row files "
                        "(created; its parent must exist)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=_cmd_reproduce)

    data_help = ("a GTZAN folder (<genre>/<genre>.NNNNN.wav, Kaggle's genres_original/ or "
                 "the original genres/ layout) or a CSV file of path,genre rows (any file "
                 "names and folders; relative paths are relative to the CSV). Audio: WAV, "
                 "FLAC, AU, OGG, AIFF, MP3 (anything libsndfile >= 1.1 decodes)")
    genres_help = "use only these genres (default: all found)"
    jobs_help = "parallel workers for decoding and features (-1: all cores; default 1)"

    t = sub.add_parser("train", help="fit one row on labelled audio and save the model",
                       description="Fit one study row on 30 s clips (longer files are cut "
                                   "to their first 30 s, shorter ones of at least 27 s "
                                   "padded) and save it with joblib.")
    t.add_argument("--data", metavar="DIR|CSV", required=True, help=data_help)
    t.add_argument("--row", required=True,
                   help="study row, e.g. resnet18_scratch_3s_prob_db ('specgenre rows' "
                        "lists them)")
    t.add_argument("-o", "--output", required=True,
                   help="model file to write, e.g. model.joblib (its folder must exist)")
    t.add_argument("--genres", nargs="+", metavar="GENRE", help=genres_help)
    t.add_argument("--split", choices=["all", "filtered"], default="all",
                   help="'filtered': train on the fault-filtered train+valid tracks only "
                        "(GTZAN folders)")
    t.add_argument("--max-epochs", type=int,
                   help="epochs of a neural row (default: the classifier's own)")
    t.add_argument("--device", help="torch device of a neural row, e.g. cuda (default cpu)")
    t.add_argument("--batch-size", type=int, default=None,
                   help="batch size of a neural row (default: the classifier's own, 32); "
                        "training memory grows with it (about 26 MB per 30 s clip for "
                        "cnn_30s_mel and 38 MB for ResNet18 with memory saving)")
    t.add_argument("--no-memory-saving", dest="memory_saving", action="store_false",
                   help="store float32 spectrograms and train without activation "
                        "checkpointing: 13-26%% less compute for the networks, but up to "
                        "1.4 GB more memory (batch 32); the same model either way but "
                        "for float32 round-off and the float16 rounding of the "
                        "spectrograms (< 0.07 dB)")
    t.add_argument("--n-jobs", type=int, default=None, help=jobs_help)
    t.add_argument("--random-state", type=int, default=0,
                   help="seed of the classifier (default 0)")
    t.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar nor per-epoch lines")
    t.set_defaults(func=_cmd_train)

    q = sub.add_parser(
        "predict", help="genre and class probabilities of audio files",
        description="Judge each whole file: it is cut into windows of the model's input "
                    "length (its 3 s segments for voting rows, else its 30 s clip) from "
                    "the start, the last partial window dropped, and the windows are "
                    "combined by the model's vote (mean probabilities; majority for "
                    "'3 s + MV' rows). A file shorter than one window is padded "
                    "(see --short). Model files are pickles: loading one runs code "
                    "stored in it, so load only files you trust.")
    q.add_argument("model", help="a model file saved by 'specgenre train'")
    q.add_argument("files", nargs="+",
                   help="audio files: WAV, FLAC, AU, OGG, AIFF, MP3 (any sample rate, "
                        "mono or stereo)")
    q.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="judge only the first S seconds of each file (default: all)")
    q.add_argument("--short", choices=["pad", "loop", "skip"], default="pad",
                   help="a file shorter than one window: pad it with silence (default), "
                        "loop it, or skip it as an error")
    q.add_argument("--top", type=int, default=3,
                   help="probabilities shown per file in text output (default 3)")
    q.add_argument("--windows", "--segments", dest="windows", action="store_true",
                   help="also show the genre of each window")
    q.add_argument("--format", choices=["text", "csv", "json"], default=None,
                   help="output format (default: from the -o suffix, else text); csv/json "
                        "hold file, genre, windows, seconds and every class probability")
    q.add_argument("-o", "--output", default=None,
                   help="write the results to this file instead of standard output")
    q.set_defaults(func=_cmd_predict)

    f = sub.add_parser("features", help="Kaggle-style 57-feature table of labelled audio")
    f.add_argument("data", metavar="DIR|CSV", help=data_help)
    f.add_argument("-o", "--output", required=True,
                   help="CSV file to write (its folder must exist)")
    f.add_argument("--genres", nargs="+", metavar="GENRE", help=genres_help)
    f.add_argument("--segment-seconds", type=float, default=None,
                   help="features of segments (3 for a features_3_sec-style table)")
    f.add_argument("--n-jobs", type=int, default=None, help=jobs_help)
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    f.set_defaults(func=_cmd_features)

    g = sub.add_parser(
        "tags", help="top tags of audio files by the pretrained musicnn tagger",
        description="Print each file's most likely tags (with their mean probability over "
                    "the file's 3 s patches) by an official pretrained musicnn model. Needs "
                    "its weights: pip install --no-deps musicnn.")
    g.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    g.add_argument("--model", default="MSD_musicnn",
                   choices=["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"],
                   help="MSD: Million Song Dataset tags (genres, moods, eras); MTT: "
                        "MagnaTagATune tags (instruments, moods) (default MSD_musicnn)")
    g.add_argument("--top", type=int, default=5, metavar="N", help="tags per file (default 5)")
    g.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    g.set_defaults(func=_cmd_tags)

    w = sub.add_parser("rows", help="list the study's rows with their titles")
    w.set_defaults(func=_cmd_rows)
    return p


def _format_warning(message, category, filename, lineno, line=None):
    text = " ".join(str(message).split())
    return f"specgenre: warning: {text}\n"


def main(argv=None):
    """Entry point of the ``specgenre`` console script."""
    import warnings

    args = build_parser().parse_args(argv)
    # warnings reach users as one clean line each, without the source line
    saved = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        return args.func(args)
    except CLIError as exc:
        _log(f"specgenre {args.command}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _log("interrupted")
        return 130
    finally:
        warnings.formatwarning = saved


if __name__ == "__main__":
    sys.exit(main())
