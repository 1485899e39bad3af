"""The ``specgenre`` command line: a thin shell over the library's workflow.

Each subcommand parses its arguments, calls the public functions that do its job
(:func:`~specgenre.load_collection`, :func:`~specgenre.evaluate_rows`,
:func:`~specgenre.train_row`, :func:`~specgenre.save_model`,
:func:`~specgenre.load_model`, :func:`~specgenre.judge_files`, ...) and prints.

Exit codes, in every subcommand: 0 success; 1 some input failed (a row, or a file
that was skipped and reported); 2 bad usage, path or data (nothing was done).
"""

import argparse
import os
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# The main job on synthetic data (README's first command, nox -s demo) must finish in
# 5 minutes on 2 CPU cores: 80 clips of 6 s (two 3 s segments each), 3-fold CV, 4 epochs.
# ResNet18 on 513-row dB images costs 4x the mel rows: on synthetic data the dB rows
# average 8 neighbouring STFT rows (freq_pool=8), the mel rows 2 mel bands; the folds of a
# row are fitted in parallel processes (docs/user_guide/results.rst has the time per row).
SYNTH_N_PER_GENRE, SYNTH_DURATION, SYNTH_MAX_EPOCHS, SYNTH_CV = 8, 6.0, 4, 3
SYNTH_FREQ_POOL = {"db": 8, "mel": 2}
GTZAN_CV = 5


class UsageError(Exception):
    """A mistake in the command line: printed as one line, exit code 2."""


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _output(path, *, option="-o", folder=False):
    """Check, before any work starts, that ``path`` can be written; return it."""
    path = Path(path).expanduser()
    if not folder and path.is_dir() and path.suffix.lower() != ".parquet":  # a Parquet table
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if folder and path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file; give a folder")
    parent = path if folder and path.is_dir() else (path.parent if str(path.parent) else Path("."))
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise UsageError(f"{option} {path}: the folder {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder {parent} is not writable")
    return path


def _collection(args, *, min_genres=2, split=None):
    from .collection import load_collection

    return load_collection(args.data, genres=args.genres, split=split, min_genres=min_genres)


def _skipped_status(skipped):
    if skipped:
        _log(f"{len(skipped)} file(s) were skipped (named above)")
    return EXIT_FAILED if skipped else EXIT_OK


# --------------------------------------------------------------------------- reproduce
def _rows(names):
    from .study import select_rows

    try:
        return select_rows(names)
    except ValueError as exc:
        raise UsageError(f"--rows: {exc}") from None


def _cmd_reproduce(args):
    import numpy as np

    from .collection import gtzan_filtered_split
    from .evaluation import check_params, evaluate_rows
    from .filejobs import connect
    from .report import format_table, write_results

    rows = _rows(args.rows)  # every argument is checked before any audio is read
    if args.cv is not None and args.cv < 2:
        raise UsageError(f"--cv {args.cv}: cross-validation needs at least 2 folds")
    out = _output(args.out, folder=True)
    if args.scheduler:  # an unreachable scheduler is said before any audio is read
        connect(args.scheduler).close()
    user = dict(args.param)
    try:
        check_params(rows, user)
    except ValueError as exc:
        raise UsageError(f"--param: {exc}") from None
    synthetic = args.data is None
    defaults = {"max_epochs": args.max_epochs or SYNTH_MAX_EPOCHS} if synthetic else (
        {"max_epochs": args.max_epochs} if args.max_epochs else {})
    if args.device:
        defaults["device"] = args.device
    if args.class_weight:
        defaults["class_weight"] = None if args.class_weight == "none" else args.class_weight
    if synthetic:  # a few clips per genre: no inner validation split
        defaults["valid_fraction"] = None

    def row_params(row):
        pool = SYNTH_FREQ_POOL.get(row.scale) if synthetic else None
        return {**defaults, **({"freq_pool": pool} if pool else {}), **user}

    split, skipped = None, []
    if synthetic:
        from .datasets import make_genre_clips

        _log(f"synthetic data: {args.n_per_genre} clips x 10 genres, {args.duration:g} s "
             "(use --data DIR for your own music)")
        bunch = make_genre_clips(args.n_per_genre, duration=args.duration,
                                 random_state=args.random_state)
        X, y, ids = bunch.data, np.asarray(bunch.target), bunch.track_ids
        cv, source = args.cv or SYNTH_CV, f"synthetic ({len(y)} clips of {args.duration:g} s)"
    else:
        music = _collection(args, split=("train", "valid", "test") if args.split == "filtered"
                            else None)
        X, y, ids = music.load(n_jobs=args.n_jobs, progress=not args.quiet, lazy=True)
        skipped = music.skipped
        split = gtzan_filtered_split(ids) if args.split == "filtered" else None
        cv, source = args.cv or GTZAN_CV, f"{args.data} ({len(y)} readable tracks)"
    if split is None:
        genres, counts = np.unique(y, return_counts=True)
        if counts.max() < cv:
            raise UsageError(f"--cv {cv}: no genre has {cv} tracks (the most is "
                             f"{counts.max()}); use at most {counts.max()} folds")
        if counts.min() < cv:
            _log(f"warning: --cv {cv}: {', '.join(map(str, genres[counts < cv]))} have "
                 f"fewer than {cv} tracks, so some test folds hold none of them")
    _log(f"running {len(rows)} row(s) on {source}")

    def report(r):
        _log(f"  {r.row}: " + (f"{100 * r.mean:.1f}% ({r.seconds:.0f} s, {r.cpu_seconds:.0f} s "
                               "CPU)" if r.status == "ok" else f"{r.status} ({r.seconds:.0f} s;"
                               " see the notes below the table)"))

    start = time.perf_counter()
    fold_jobs = args.fold_jobs if args.fold_jobs is not None else (-1 if synthetic else 1)
    results = evaluate_rows(rows, X, y, cv=cv, split=split, random_state=args.random_state,
                            n_jobs=args.n_jobs, fold_jobs=fold_jobs, params=row_params,
                            progress=not args.quiet, track_ids=ids, callback=report,
                            client=args.scheduler, memory_saving=args.memory_saving)
    print(format_table(results))
    meta = {"data": source, "random_state": args.random_state,
            "wall time": f"{time.perf_counter() - start:.0f} s"}
    paths = write_results(results, out, meta=meta, skipped=skipped)
    _log(f"wrote {paths[0]}, {paths[1]} and {len(paths) - 2} per-row file(s) under {out}")
    failed = any(r.status == "failed" for r in results)
    return max(_skipped_status(skipped), EXIT_FAILED if failed else EXIT_OK)


# --------------------------------------------------------------------------- train / predict
def _cmd_train(args):
    from .modelfile import save_model
    from .study import ALL_ROWS
    from .training import train_row

    if args.row not in ALL_ROWS:
        raise UsageError(f"unknown row {args.row!r}; choose from: {', '.join(ALL_ROWS)}")
    output = _output(args.output)
    music = _collection(args, split=("train", "valid") if args.split == "filtered" else None)
    _log(f"training {args.row} on {len(music)} tracks of {len(music.genre_names)} genres")
    start = time.perf_counter()
    weight = {} if args.class_weight is None else {
        "class_weight": None if args.class_weight == "none" else args.class_weight}
    model = train_row(args.row, music, max_epochs=args.max_epochs, device=args.device,
                      batch_size=args.batch_size, class_params=weight,
                      memory_saving_on=args.memory_saving, n_jobs=args.n_jobs,
                      random_state=args.random_state, progress=not args.quiet)
    save_model(model, output)
    _log(f"trained on {sum(model.train_counts.values())} tracks in "
         f"{time.perf_counter() - start:.0f} s; saved {output}")
    return _skipped_status(model.skipped)


def _cmd_predict(args):
    from .judging import predict_files
    from .modelfile import load_model

    model = load_model(args.model, trusted=args.trust)
    output = None if args.output is None else _output(args.output)
    fmt = args.format or {".csv": "csv", ".json": "json", ".parquet": "parquet"}.get(
        Path(output or "").suffix.lower(), "text")

    def show(j):
        if j.error:
            _log(f"error: {j.file}: {j.error}")
        elif fmt == "text":
            print(j.as_text(top=args.top, windows=args.windows), flush=True)
    rep = predict_files(model, args.files, output or sys.stdout, fmt=fmt, callback=show,
                        windows=args.windows, max_seconds=args.max_seconds, short=args.short,
                        **_job(args), progress=output is not None)
    if output:
        _log(f"wrote {rep.n_rows} result(s) to {output}")
    return EXIT_FAILED if rep.skipped else EXIT_OK


def _cmd_tags(args):
    from .musicnn import MUSICNN_TAGS, MusicnnWeightsNotFoundError
    from .tagging import write_tag_table

    n_tags = len(MUSICNN_TAGS[args.model])
    if not 1 <= args.top <= n_tags:
        raise UsageError(f"--top must be between 1 and {n_tags}; got {args.top}")
    if args.resume and not args.output:
        raise UsageError("--resume goes on with the file of -o; give -o")

    def show(path, tags, error):
        _log(f"error: {path}: {error}") if error else print(
            f"{path}\t" + ", ".join(f"{t} {p:.2f}" for t, p in tags), flush=True)
    try:
        rep = write_tag_table(args.files, _output(args.output) if args.output else os.devnull,
                              n=args.top, callback=show, model=args.model, device=args.device,
                              **_job(args))
    except MusicnnWeightsNotFoundError as exc:
        raise UsageError(str(exc).strip().splitlines()[0]) from None
    return EXIT_FAILED if rep.skipped else EXIT_OK


def _cmd_features(args):
    from .feature_table import write_feature_table_files

    output = _output(args.output)
    music = _collection(args, min_genres=1)  # a table of features is not a classifier
    rep = write_feature_table_files(output, music.files, music.genres, music.track_ids,
                                    segment_seconds=args.segment_seconds, n_jobs=args.n_jobs,
                                    **_job(args), progress=not args.quiet)
    _log(f"wrote {rep.n_rows} rows to {output}" + f" ({rep.n_resumed} files resumed)" * args.resume)
    return _skipped_status(music.skipped + rep.skipped)


def _cmd_rows(args):
    from .study import ALL_ROWS as rows

    width = max(len(name) for name in rows)
    for name, row in rows.items():
        extra = "  (beyond the study)" if row.beyond_study else ""
        extra += "  [recommended: start here]" if row.recommended else ""
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


_DATA_HELP = ("a folder of genre folders, <genre>/<any file name> (GTZAN's copies as they "
              "are), or a CSV file of path,genre rows (paths relative to the CSV). Audio: "
              "WAV, FLAC, MP3, OGG, AIFF, AU; each file's first 30 s are used")
_GENRES_HELP = "use only these genres (default: all found)"
_JOBS_HELP = "parallel workers for decoding and features (-1: all cores; default 1)"
_QUIET_HELP = "no progress bars (nor per-epoch lines)"
_WEIGHT_HELP = ("'balanced': weigh each genre by the inverse of its number of training tracks, "
                "for unbalanced collections; 'none': no weights (default: each row's own, "
                "balanced for the rows beyond the study)")


def _job_arguments(parser, *, block_size=None, output=None):
    """A file job's --block-size and --resume (with ``output``) and --scheduler."""
    if output is not None:
        parser.add_argument(
            "--block-size", type=int, default=block_size, metavar="N",
            help="files read and processed at once: memory grows with it, not with the "
                 f"number of files (default {block_size or '1, 16 on a cluster'})")
        parser.add_argument(
            "--resume", action="store_true",
            help=f"go on with the {output} of an interrupted run: its files that have not "
                 "changed since (size, modification time) are not done again")
    parser.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="run on the Dask cluster of this scheduler (tcp://host:8786); " + (
            "its workers read the files, so they must see the same paths" if output else
            "the folds are fitted on its workers, which need specgenre"))


def _job(args):
    return {"block_size": args.block_size, "resume": args.resume, "client": args.scheduler}


def build_parser():
    from . import __version__
    from .study import RECOMMENDED_ROW

    p = argparse.ArgumentParser(
        prog="specgenre",
        description="Music genre classification from spectrograms: reproduce the study's "
                    "table, train a row, predict files, extract Kaggle-style features.")
    p.add_argument("--version", action="version", version=f"specgenre {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="run the study's rows and print the results table",
                       description="Fit and score rows by track-level cross-validation (or "
                       "GTZAN's fault-filtered split) and write results.csv, results.md and, "
                       "per row, out-of-fold predictions, a per-genre report and a confusion "
                       "matrix. Unreadable files are skipped, named in results.md, exit 1.")
    r.add_argument("--data", metavar="DIR|CSV",
                   help=_DATA_HELP + "; default: built-in synthetic clips")
    r.add_argument("--genres", nargs="+", metavar="GENRE", help=_GENRES_HELP)
    r.add_argument("--rows", nargs="+", metavar="ROW",
                   help="rows to run: names, 'study' (the study's twelve, the default), "
                        "'beyond' (the rows beyond the study), 'all', or 'recommended' "
                        "(the row to start from; 'specgenre rows' marks it)")
    r.add_argument("--class-weight", choices=["balanced", "none"], default=None,
                   help=_WEIGHT_HELP)
    r.add_argument("--cv", type=int, default=None,
                   help=f"folds of track-level CV, at least 2 (default {GTZAN_CV} with "
                        f"--data, {SYNTH_CV} on synthetic data)")
    r.add_argument("--split", choices=["cv", "filtered"], default="cv",
                   help="'filtered': GTZAN's fault-filtered split (train+valid -> test; "
                        "needs GTZAN-named files) instead of CV")
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
                        "features, torch's and XGBoost's own thread counts)")
    r.add_argument("--fold-jobs", type=int, default=None,
                   help="processes fitting the folds, one pool for all rows (a row's folds "
                        "start while the previous row's last ones run), each with its share "
                        "of the cores as torch threads (-1: all cores; default -1 on synthetic "
                        "data, 1 with --data, where each process holds a copy of the folds' "
                        "spectrograms or features)")
    r.add_argument("--memory-saving", action="store_true",
                   help="fit the networks as 'specgenre train' does (float16 spectrograms, "
                        "checkpointing): less memory, more compute, figures within round-off")
    r.add_argument("--random-state", type=int, default=0, help="seed of folds and models")
    r.add_argument("-o", "--out", default="results",
                   help="folder for results.csv, results.md and the per-row files "
                        "(created; its parent must exist)")
    r.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    _job_arguments(r)
    r.set_defaults(func=_cmd_reproduce)

    t = sub.add_parser("train", help="fit one row on labelled audio and save the model",
                       description="Fit one row on each file's first 30 s (files of at "
                                   "least 27 s are padded, shorter ones skipped) and save it "
                                   "as a model file that loading cannot run code from.")
    t.add_argument("--data", metavar="DIR|CSV", required=True, help=_DATA_HELP)
    t.add_argument("--row", default=RECOMMENDED_ROW,
                   help=f"row to train (default {RECOMMENDED_ROW}, the recommended row; "
                        "'specgenre rows' lists them)")
    t.add_argument("--class-weight", choices=["balanced", "none"], default=None,
                   help=_WEIGHT_HELP)
    t.add_argument("-o", "--output", required=True,
                   help="model file to write, any name, e.g. genres.model (its folder must "
                        "exist)")
    t.add_argument("--genres", nargs="+", metavar="GENRE", help=_GENRES_HELP)
    t.add_argument("--split", choices=["all", "filtered"], default="all",
                   help="'filtered': train on GTZAN's fault-filtered train+valid tracks only")
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
                        "1.4 GB more memory (batch 32); the same model but for float "
                        "round-off and the float16 rounding of spectrograms (< 0.07 dB)")
    t.add_argument("--n-jobs", type=int, default=None, help=_JOBS_HELP)
    t.add_argument("--random-state", type=int, default=0,
                   help="seed of the classifier (default 0)")
    t.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    t.set_defaults(func=_cmd_train)

    q = sub.add_parser(
        "predict", help="genre and class probabilities of audio files",
        description="Judge each whole file: it is cut into windows of the model's input "
                    "length (3 s segments for voting rows, else 30 s) from the start, the "
                    "last partial window dropped, and the windows are combined by the "
                    "model's vote (mean probabilities; vote shares for '3 s + MV' rows). "
                    "A file shorter than one window is padded (see --short), with a "
                    "warning. Model files hold no code; see --trust for old ones.")
    q.add_argument("model", help="a model file saved by 'specgenre train'")
    q.add_argument("files", nargs="+",
                   help="audio files: WAV, FLAC, MP3, OGG, AIFF, AU (any sample rate, "
                        "mono or stereo)")
    q.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="judge only the first S seconds of each file (default: all)")
    q.add_argument("--short", choices=["pad", "loop", "skip"], default="pad",
                   help="a file shorter than one window: pad it with silence (default), "
                        "loop it, or skip it as an error")
    q.add_argument("--top", type=int, default=3,
                   help="scores shown per file in text output (default 3)")
    q.add_argument("--windows", "--segments", dest="windows", action="store_true",
                   help="also show the genre of each window")
    q.add_argument("--format", choices=["text", "csv", "json", "parquet"], default=None,
                   help="output format (default: from the -o suffix, else text); csv/json/"
                        "parquet hold file, genre, windows, seconds, short, every class score")
    q.add_argument("-o", "--output", default=None,
                   help="write the results to this file instead of standard output")
    q.add_argument("--trust", action="store_true",
                   help="also load a model file of specgenre 0.1 (a pickle: loading it "
                        "can run any code it holds; only for files from a trusted source)")
    _job_arguments(q, output="CSV or Parquet file -o")
    q.set_defaults(func=_cmd_predict)

    f = sub.add_parser("features", help="Kaggle-style 57-feature table of labelled audio")
    f.add_argument("data", metavar="DIR|CSV", help=_DATA_HELP)
    f.add_argument("-o", "--output", required=True,
                   help="CSV file (or *.parquet table folder) to write; its folder must exist")
    f.add_argument("--genres", nargs="+", metavar="GENRE", help=_GENRES_HELP)
    f.add_argument("--segment-seconds", type=float, default=None,
                   help="features of segments (3 for a features_3_sec-style table)")
    f.add_argument("--n-jobs", type=int, default=None, help=_JOBS_HELP)
    f.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    _job_arguments(f, block_size=64, output="table -o")
    f.set_defaults(func=_cmd_features)

    g = sub.add_parser(
        "tags", help="top tags of audio files by the pretrained musicnn tagger",
        description="Print each file's most likely tags (mean probability over its 3 s "
                    "patches) by an official pretrained musicnn model. Needs its weights: "
                    "pip install --no-deps musicnn.")
    g.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    g.add_argument("--model", default="MSD_musicnn",
                   choices=["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"],
                   help="MSD: Million Song Dataset tags (genres, moods, eras); MTT: "
                        "MagnaTagATune tags (instruments, moods) (default MSD_musicnn)")
    g.add_argument("--top", type=int, default=5, metavar="N", help="tags per file (default 5)")
    g.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    g.add_argument("-o", "--output", help="also write the tags to this CSV (or *.parquet) file")
    _job_arguments(g, output="CSV or Parquet file -o")
    g.set_defaults(func=_cmd_tags)

    w = sub.add_parser("rows", help="list the study's rows with their titles")
    w.set_defaults(func=_cmd_rows)
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None):
    _log(f"specgenre: warning: {' '.join(str(message).split())}")


def main(argv=None):
    """Entry point of the ``specgenre`` console script."""
    import warnings

    from .errors import CollectionError, SpecgenreWarning
    from .modelfile import ModelFileError

    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # one clean line each on stderr
        warnings.simplefilter("default", SpecgenreWarning)
        try:
            return args.func(args)
        except (UsageError, CollectionError, ModelFileError) as exc:
            _log(f"specgenre {args.command}: error: {exc}")
            return EXIT_USAGE
        except KeyboardInterrupt:
            _log("interrupted")
            return 130


if __name__ == "__main__":
    sys.exit(main())
