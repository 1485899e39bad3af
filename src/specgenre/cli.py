"""The ``specgenre`` command line: reproduce, train, predict, features.

Exit codes: 0 success; 1 a row or file failed; 2 bad usage, path or data.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# The main job on synthetic data (README's first command) must finish in about ten
# minutes on 2 CPU cores: 80 clips of 6 s (two 3 s segments each), 3-fold CV, 4 epochs
# (7 min 22 s measured offline, pretrained rows skipped; see docs/user_guide/results.rst).
SYNTH_N_PER_GENRE = 8
SYNTH_DURATION = 6.0
SYNTH_MAX_EPOCHS = 4
SYNTH_CV = 3
# ResNet18 on 513-row dB images costs 4x the mel rows: on synthetic data the dB rows
# average 4 neighbouring STFT rows (129 rows, freq_pool=4) to stay within that budget.
SYNTH_DB_FREQ_POOL = 4
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


def _load_dataset(data, *, option="--data", split=None, genres=None, duration=30.0,
                  n_jobs=None, progress=True, min_genres=2):
    """THE loader of labelled audio for train, reproduce and features.

    ``data`` is a GTZAN folder (any layout :func:`load_gtzan` knows) or a CSV file
    of ``path,genre`` rows (:func:`load_audio_csv`). ``split`` (GTZAN only) and
    ``genres`` select tracks. Unreadable files are skipped and reported once each.

    Returns ``(X, y, track_ids, n_skipped)``: float32 waveforms of ``duration``
    seconds at 22050 Hz, genre labels, track ids (GTZAN ids or the CSV's paths) and
    the number of files skipped. Bad paths or data raise :class:`CLIError`.
    """
    import warnings

    from .audio import load_audio
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
    for path, reason in bunch.skipped:
        _log(f"skipped {path}: {reason}")
    if len(bunch.target_names) < min_genres:
        raise CLIError(f"{option} {root}: found only the genre(s) {bunch.target_names}; "
                       f"need at least {min_genres} to train a classifier")
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


def _load_gtzan_audio(data, *, split=None, duration=30.0, n_jobs=None, progress=True,
                      genres=None):
    """Deprecated name: ``_load_dataset`` without the skip count."""
    return _load_dataset(data, split=split, duration=duration, n_jobs=n_jobs,
                         progress=progress, genres=genres)[:3]


def _filtered_split(track_ids, root):
    """Indices of (train+valid, test) of the fault-filtered split among ``track_ids``."""
    from .datasets import load_gtzan

    parts = {}
    for name in ("train", "valid", "test"):
        ids = set(load_gtzan(root, split=name, on_error="skip").track_ids.tolist())
        parts[name] = np.flatnonzero([t in ids for t in track_ids])
    train = np.concatenate([parts["train"], parts["valid"]])
    if len(train) == 0 or len(parts["test"]) == 0:
        raise CLIError("--split filtered: the data holds no track of the fault-filtered "
                       "train/valid or test lists")
    return np.sort(train), parts["test"]


# --------------------------------------------------------------------------- reproduce
def _cmd_reproduce(args):
    from .reproduce import evaluate_rows, format_table, write_results
    from .study import STUDY_ROWS

    rows = args.rows or list(STUDY_ROWS)
    unknown = [r for r in rows if r not in STUDY_ROWS]
    if unknown:
        raise CLIError(f"unknown row(s) {unknown}; choose from: {', '.join(STUDY_ROWS)}")
    split = None
    params = {}
    db_params = {}  # extra overrides of the rows on dB spectrograms
    if args.data is None:
        from .datasets import make_genre_clips

        _log(f"synthetic data: {args.n_per_genre} clips x 10 genres, {args.duration:g} s "
             "(use --data DIR for GTZAN)")
        bunch = make_genre_clips(args.n_per_genre, duration=args.duration,
                                 random_state=args.random_state)
        X, y = bunch.data, np.asarray(bunch.target)
        params["max_epochs"] = args.max_epochs or SYNTH_MAX_EPOCHS
        # a few clips per genre leave too few for an inner validation split (the
        # classifiers would warn in every fold): train every epoch, no early stopping
        params["valid_fraction"] = None
        db_params["freq_pool"] = SYNTH_DB_FREQ_POOL
        cv = args.cv or SYNTH_CV
        source = f"synthetic ({len(y)} clips of {args.duration:g} s)"
    else:
        if args.split == "filtered":
            X, y, ids = _load_gtzan_audio(args.data, n_jobs=args.n_jobs,
                                          progress=not args.quiet)
            split = _filtered_split(ids, args.data)
        else:
            X, y, _ = _load_gtzan_audio(args.data, n_jobs=args.n_jobs,
                                        progress=not args.quiet)
        if args.max_epochs:
            params["max_epochs"] = args.max_epochs
        cv = args.cv or GTZAN_CV
        source = f"GTZAN at {args.data} ({len(y)} tracks)"
    if args.device:
        params["device"] = args.device
    params.update(args.param)
    if cv < 2 and split is None:
        raise CLIError("--cv must be at least 2")
    _log(f"running {len(rows)} row(s) on {source}")

    def report(result):
        mean = "--" if result.status != "ok" else f"{100 * result.mean:.1f}%"
        _log(f"  {result.row}: {result.status} {mean} ({result.seconds:.0f} s)"
             + (f" -- {result.message}" if result.message else ""))

    for key in args.param:  # --param wins over the defaults of synthetic runs
        db_params.pop(key, None)

    def row_params(row):
        return {**params, **db_params} if row.scale == "db" else params

    results = evaluate_rows(rows, X, y, cv=cv, split=split,
                            random_state=args.random_state, n_jobs=args.n_jobs,
                            params=row_params, progress=not args.quiet, callback=report)
    print(format_table(results))
    overrides = dict(params)
    overrides.update({f"{k} (dB rows)": v for k, v in db_params.items()})
    meta = {"data": source, "protocol": "fault-filtered split" if split else f"{cv}-fold CV",
            "random_state": args.random_state, "classifier overrides": overrides or "none"}
    csv_path, md_path = write_results(results, args.out, meta=meta)
    _log(f"wrote {csv_path} and {md_path}")
    return EXIT_FAILED if any(r.status == "failed" for r in results) else EXIT_OK


# --------------------------------------------------------------------------- train / predict
def _cmd_train(args):
    import joblib

    from .study import STUDY_ROWS, make_row

    if args.row not in STUDY_ROWS:
        raise CLIError(f"unknown row {args.row!r}; choose from: {', '.join(STUDY_ROWS)}")
    X, y, ids = _load_gtzan_audio(args.data, n_jobs=args.n_jobs)
    if args.split == "filtered":
        train, _ = _filtered_split(ids, args.data)
        X, y = X[train], y[train]
    est = make_row(args.row, random_state=args.random_state, n_jobs=args.n_jobs)
    overrides = {k: v for k, v in (("max_epochs", args.max_epochs), ("device", args.device))
                 if v is not None}
    if overrides:
        from .reproduce import _classifier_of

        _classifier_of(est).set_params(**overrides)
    if STUDY_ROWS[args.row].input == "3s" and STUDY_ROWS[args.row].voting is None:
        from .segment import ClipSegmenter

        X, idx = ClipSegmenter(3.0).fit_segment(X)
        y = y[idx]
    _log(f"training {args.row} on {len(y)} samples")
    start = time.perf_counter()
    est.fit(X, y)
    model = {"estimator": est, "row": args.row, "sr": 22050, "duration": 30.0,
             "classes": [str(c) for c in est.classes_]}
    joblib.dump(model, args.output)
    _log(f"trained in {time.perf_counter() - start:.0f} s; saved {args.output}")
    return EXIT_OK


def _load_model(path):
    import joblib

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"model file {path} not found")
    model = joblib.load(path)
    if not isinstance(model, dict) or "estimator" not in model:
        # a bare estimator saved with joblib.dump works too
        model = {"estimator": model, "row": None, "sr": 22050, "duration": 30.0}
    return model


def _top(proba, classes, k):
    order = np.argsort(-proba, kind="stable")[:k]
    return ", ".join(f"{classes[i]} {proba[i]:.2f}" for i in order)


def _cmd_predict(args):
    from .audio import load_audio

    model = _load_model(args.model)
    est = model["estimator"]
    X, kept, errors = load_audio(args.files, sr=model["sr"], duration=model["duration"],
                                 on_error="skip", n_jobs=args.n_jobs)
    for err in errors:
        _log(f"error: {err}")
    paths = [p for p, k in zip(args.files, kept) if k]
    if len(paths) == 0:
        return EXIT_FAILED
    classes = np.asarray(est.classes_)
    has_proba = hasattr(est, "predict_proba")
    labels = est.predict(X)
    proba = est.predict_proba(X) if has_proba else None
    for i, path in enumerate(paths):
        line = f"{path}\t{labels[i]}"
        if proba is not None:
            line += f"\t{_top(proba[i], classes, args.top)}"
        print(line)
        if args.segments:
            _print_segments(est, X[i:i + 1], classes, args.top)
    return EXIT_FAILED if errors else EXIT_OK


def _print_segments(est, x, classes, k):
    if not hasattr(est, "segmenter_"):
        raise CLIError("--segments needs a model that votes over 3 s segments "
                       "(a 3 s + MV or 3 s + Prob row)")
    segments, _ = est.segmenter_.segment(x)
    inner = est.estimator_
    seconds = est.segmenter_.segment_length_ / est.segmenter_.sr
    labels = inner.predict(segments)
    proba = inner.predict_proba(segments) if hasattr(inner, "predict_proba") else None
    for j, label in enumerate(labels):
        line = f"  segment {j} ({j * seconds:.0f}-{(j + 1) * seconds:.0f} s)\t{label}"
        if proba is not None:
            line += f"\t{_top(proba[j], classes, k)}"
        print(line)


# --------------------------------------------------------------------------- features
def _cmd_features(args):
    from .audio import load_audio
    from .datasets import load_gtzan
    from .features import FeatureExtractor
    from .segment import ClipSegmenter

    root = Path(args.data)
    if not root.exists():
        raise CLIError(f"{root}: no such directory")
    try:
        bunch = load_gtzan(root, on_error="skip")
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(f"{root}: {exc}") from None
    for path, reason in bunch.skipped:
        _log(f"skipped unreadable file {path}: {reason}")
    X, kept, errors = load_audio(bunch.filenames, duration=30.0,
                                 on_error="skip", n_jobs=args.n_jobs, progress=True)
    for err in errors:
        _log(f"skipped {err}")
    names = np.asarray(bunch.track_ids)[kept]
    labels = np.asarray(bunch.target)[kept]
    extractor = FeatureExtractor(n_jobs=args.n_jobs, progress=True)
    if args.segment_seconds:
        seg = ClipSegmenter(args.segment_seconds).fit(X)
        X, idx = seg.segment(X)
        n_seg = seg.n_segments_
        names = [f"{names[i]}.{j % n_seg}.wav" for j, i in enumerate(idx)]
        labels = labels[idx]
    else:
        names = [f"{n}.wav" for n in names]
    F = extractor.fit_transform(X)
    header = ["filename", "length", *extractor.get_feature_names_out(), "label"]
    with open(args.output, "w", newline="") as fh:
        import csv

        writer = csv.writer(fh)
        writer.writerow(header)
        for name, row, label in zip(names, F, labels):
            writer.writerow([name, X.shape[1], *(repr(float(v)) for v in row), label])
    _log(f"wrote {len(F)} rows to {args.output}")
    return EXIT_FAILED if errors or bunch.skipped else EXIT_OK


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
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="run the study's rows and print the results table")
    r.add_argument("--data", metavar="DIR",
                   help="GTZAN root (any layout load_gtzan knows); default: built-in synthetic")
    r.add_argument("--rows", nargs="+", metavar="ROW", help="rows to run (default: all)")
    r.add_argument("--cv", type=int, default=None,
                   help=f"folds of track-level CV (default {GTZAN_CV} on GTZAN, "
                        f"{SYNTH_CV} on synthetic data)")
    r.add_argument("--split", choices=["cv", "filtered"], default="cv",
                   help="'filtered': fault-filtered split (train+valid -> test) instead of CV")
    r.add_argument("--n-per-genre", type=int, default=SYNTH_N_PER_GENRE,
                   help=f"synthetic clips per genre (default {SYNTH_N_PER_GENRE})")
    r.add_argument("--duration", type=float, default=SYNTH_DURATION,
                   help=f"synthetic clip length in seconds (default {SYNTH_DURATION:g})")
    r.add_argument("--max-epochs", type=int,
                   help=f"epochs of the neural rows (default: {SYNTH_MAX_EPOCHS} on synthetic "
                        "data, the classifiers' own on GTZAN)")
    r.add_argument("--device", help="torch device of the neural rows, e.g. cuda")
    r.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help="classifier parameter for every row that has it, e.g. "
                        "--param n_estimators=200 (repeatable)")
    r.add_argument("--n-jobs", type=int, default=None, help="parallel workers for features")
    r.add_argument("--random-state", type=int, default=0)
    r.add_argument("-o", "--out", default="results", help="folder for results.csv/.md")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=_cmd_reproduce)

    t = sub.add_parser("train", help="fit one row on GTZAN and save it with joblib")
    t.add_argument("--data", metavar="DIR", required=True, help="GTZAN root")
    t.add_argument("--row", required=True, help="study row, e.g. resnet18_scratch_3s_prob_db")
    t.add_argument("-o", "--output", required=True, help="model file, e.g. model.joblib")
    t.add_argument("--split", choices=["all", "filtered"], default="all",
                   help="'filtered': train on the fault-filtered train+valid tracks only")
    t.add_argument("--max-epochs", type=int)
    t.add_argument("--device")
    t.add_argument("--n-jobs", type=int, default=None)
    t.add_argument("--random-state", type=int, default=0)
    t.set_defaults(func=_cmd_train)

    q = sub.add_parser("predict", help="genre and top probabilities of audio files")
    q.add_argument("model", help="a model saved by 'specgenre train'")
    q.add_argument("files", nargs="+", help="audio files (wav, flac, au, ogg)")
    q.add_argument("--top", type=int, default=3, help="probabilities shown per file")
    q.add_argument("--segments", action="store_true", help="also show each 3 s segment")
    q.add_argument("--n-jobs", type=int, default=None)
    q.set_defaults(func=_cmd_predict)

    f = sub.add_parser("features", help="Kaggle-style 57-feature table of a GTZAN tree")
    f.add_argument("data", metavar="DIR", help="GTZAN root")
    f.add_argument("-o", "--output", required=True, help="CSV file to write")
    f.add_argument("--segment-seconds", type=float, default=None,
                   help="features of segments (3 for a features_3_sec-style table)")
    f.add_argument("--n-jobs", type=int, default=None)
    f.set_defaults(func=_cmd_features)
    return p


def main(argv=None):
    """Entry point of the ``specgenre`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        _log(f"specgenre {args.command}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
