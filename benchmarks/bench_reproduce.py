"""Time ``evaluate_rows`` on the three XGBoost rows with and without its caches.

``specgenre reproduce`` (``specgenre.evaluation.evaluate_rows``) computes each
clip's features (and each 3 s segment's) once per setting for all folds and
rows, and fits ``xgboost_3s`` and ``xgboost_3s_mv`` (the same XGBoost on the
same segments) once per fold. ``cache=False`` recomputes the features of the
training and test clips in every fold of every row and fits every row: the
way reproduce worked before. Both runs use the same synthetic clips
(:func:`~specgenre.make_genre_clips`) and folds; the script checks that their
fold scores are identical and prints, per row, wall-clock and process CPU
seconds and the part spent on features.

The XGBoost rows are where the features cost most (on 270 tracks they spent
most of a ~45 min reproduce run); ``--n-estimators`` lowers the number of
trees (the study's is 1000) so that the features' share shows.

Usage::

    python benchmarks/bench_reproduce.py [--n-per-genre N] [--duration S] [--cv K]
                                         [--n-estimators T] [--order cached-first]

Memory of ``specgenre reproduce`` (``--memory``): peak RSS, wall and CPU time of
the command on N tracks, one child process per N, with the machine's load
average before and after. The tracks are those of ``--data`` (a folder of genre
folders) repeated under distinct names in a temporary folder of symbolic links
until there are N: every track is decoded as often as it appears (reproduce
holds no waveforms beside what a step is given: ``Collection.load(lazy=True)``),
so the memory is that of N tracks, but the cache computes the front step of a
repeated track once, so the time is not that of N distinct tracks (and the
scores mean nothing). ``--max-epochs`` and ``--memory-saving`` are passed on
to reproduce (for the network rows)::

    OMP_NUM_THREADS=1 python benchmarks/bench_reproduce.py --memory \
        --data ../shared/data/gtzan_dev --n-tracks 51 340 1000
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _tracks import repeated_tracks  # benchmarks/_tracks.py

from specgenre import make_genre_clips
from specgenre.evaluation import evaluate_rows

ROWS = ["xgboost_30s", "xgboost_3s", "xgboost_3s_mv"]
#: The rows of ``--memory``: XGBoost and the musicnn embeddings, 30 s and 3 s.
MEMORY_ROWS = ["xgboost_30s", "xgboost_3s_mv", "musicnn_msd_svm_30s", "musicnn_msd_3s_mv",
               "musicnn_msd_3s_prob"]


def measure(data, n, rows, cv, max_epochs=None, memory_saving=False):
    """Run ``specgenre reproduce`` on ``n`` repeated tracks: (peak GB, wall s, CPU s, loads)."""
    with tempfile.TemporaryDirectory() as tmp:
        tracks = Path(tmp) / "tracks"
        tracks.mkdir()
        repeated_tracks(data, n, tracks)
        command = [sys.executable, "-c", "import sys; from specgenre.cli import main; "
                   "sys.exit(main())", "reproduce", "--data", str(tracks), "--rows", *rows,
                   "--cv", str(cv), "-q", "--out", str(Path(tmp) / "out")]
        if max_epochs is not None:
            command += ["--max-epochs", str(max_epochs)]
        if memory_saving:
            command += ["--memory-saving"]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        # wait4: the usage of this child alone (getrusage(RUSAGE_CHILDREN) would
        # give the largest peak of every child so far)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, command)
    cpu = usage.ru_utime + usage.ru_stime
    return usage.ru_maxrss * 1024 / 1e9, wall, cpu, (load, os.getloadavg()[0])  # KiB on Linux


def memory_main(args):
    extra = "" if args.max_epochs is None else f" --max-epochs {args.max_epochs}"
    extra += " --memory-saving" if args.memory_saving else ""
    print(f"specgenre reproduce --rows {' '.join(args.rows)} --cv {args.cv}{extra} on the tracks "
          f"of {args.data} repeated; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"{os.cpu_count()} cores")
    print(f"{'tracks':>7}{'peak RSS GB':>13}{'wall s':>9}{'CPU s':>9}{'load before/after':>19}")
    for n in sorted(args.n_tracks):
        peak, wall, cpu, (l0, l1) = measure(args.data, n, args.rows, args.cv, args.max_epochs,
                                            args.memory_saving)
        print(f"{n:>7}{peak:>13.2f}{wall:>9.0f}{cpu:>9.0f}{l0:>12.1f} / {l1:.1f}", flush=True)


def run(X, y, args, cache):
    start, cpu = time.perf_counter(), time.process_time()
    results = evaluate_rows(ROWS, X, y, cv=args.cv, random_state=0, cache=cache,
                            params={"n_estimators": args.n_estimators})
    return results, time.perf_counter() - start, time.process_time() - cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-per-genre", type=int, default=6)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--cv", type=int, default=3)
    p.add_argument("--n-estimators", type=int, default=100)
    p.add_argument("--order", choices=["plain-first", "cached-first"], default="plain-first")
    p.add_argument("--memory", action="store_true",
                   help="peak RSS and time of 'specgenre reproduce' on --data repeated")
    p.add_argument("--data", help="folder of genre folders (--memory)")
    p.add_argument("--n-tracks", type=int, nargs="+", default=[51, 340],
                   help="tracks per --memory run (default 51 340)")
    p.add_argument("--rows", nargs="+", default=MEMORY_ROWS, help="rows of --memory")
    p.add_argument("--max-epochs", type=int, help="passed on to reproduce (--memory)")
    p.add_argument("--memory-saving", action="store_true",
                   help="passed on to reproduce (--memory)")
    args = p.parse_args(argv)
    if args.memory:
        if args.data is None:
            p.error("--memory needs --data")
        return memory_main(args)

    clips = make_genre_clips(args.n_per_genre, duration=args.duration, random_state=0)
    X, y = clips.data, np.asarray(clips.target)
    print(f"{len(X)} synthetic clips of {args.duration:g} s, {args.cv}-fold CV, "
          f"XGBoost with {args.n_estimators} trees")
    # JIT compilation of the feature kernels is paid here, not by either timed run
    evaluate_rows(["xgboost_30s"], X[:20], y[:20], cv=2, params={"n_estimators": 2})

    order = [False, True] if args.order == "plain-first" else [True, False]
    runs = {cache: run(X, y, args, cache) for cache in order}
    plain, cached = runs[False], runs[True]
    for a, b in zip(plain[0], cached[0]):
        assert a.status == b.status == "ok", (a.message, b.message)
        assert a.scores == b.scores, (a.row, a.scores, b.scores)

    print(f"\n{'row':<15}{'before: wall s':>16}{'CPU s':>8}{'after: wall s':>16}{'CPU s':>8}"
          f"{'of it features':>16}{'accuracy':>10}")
    for a, b in zip(plain[0], cached[0]):
        print(f"{a.row:<15}{a.seconds:>16.1f}{a.cpu_seconds:>8.1f}{b.seconds:>16.1f}"
              f"{b.cpu_seconds:>8.1f}{b.transform_seconds:>16.1f}{b.mean:>10.1%}")
    print(f"{'total':<15}{plain[1]:>16.1f}{plain[2]:>8.1f}{cached[1]:>16.1f}"
          f"{cached[2]:>8.1f}")
    print(f"\nspeed-up {plain[1] / cached[1]:.1f}x wall, {plain[2] / cached[2]:.1f}x CPU; "
          "fold scores identical")


if __name__ == "__main__":
    main()
