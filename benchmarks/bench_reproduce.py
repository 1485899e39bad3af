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
"""

import argparse
import time

import numpy as np

from specgenre import make_genre_clips
from specgenre.evaluation import evaluate_rows

ROWS = ["xgboost_30s", "xgboost_3s", "xgboost_3s_mv"]


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
    args = p.parse_args(argv)

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
