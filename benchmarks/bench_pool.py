"""One process pool over the folds of all rows, against one row at a time.

``evaluate_rows(rows, fold_jobs=W)`` fits the folds in one pool of ``W``
worker processes for all rows, and hands the next row's folds to it as soon
as the current row's last folds are running, so that a worker that is done
starts on the next row instead of waiting for the row's last fold. Calling
``evaluate_rows`` once per row is the other way: each call waits for all of
its folds (with 5 folds and 2 workers, one worker idles during each row's
last fold).

The rows here share no front-step setting (features, mel spectrograms of
whole clips, dB spectrograms of 3 s segments), so both ways do the same
work. The script checks that their fold scores are identical and prints the
wall time, the CPU time (this process and the workers) and the use of the
cores, ``CPU / (wall * cpu_count)``, with the load average before and
after. A first small call starts the pool's workers (loky's reusable
executor, kept between calls) so that neither way pays for it.

Usage::

    python benchmarks/bench_pool.py [--n-per-genre N] [--cv K] [--fold-jobs W]
"""

import argparse
import os
import time

import numpy as np

from specgenre import make_genre_clips
from specgenre.evaluation import evaluate_rows

ROWS = ["xgboost_30s", "cnn_30s_mel", "resnet18_scratch_3s_mv_db"]


def params(args):
    """Each row's parameters (a callable: rows take only their own)."""
    def of(row):
        if row.name.startswith("xgboost"):
            return {"n_estimators": args.n_estimators}
        return {"max_epochs": args.max_epochs, "valid_fraction": None}
    return of


def timed(fn):
    wall = time.perf_counter()
    results = fn()
    return results, time.perf_counter() - wall


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-per-genre", type=int, default=5)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--cv", type=int, default=5)
    p.add_argument("--fold-jobs", type=int, default=2)
    p.add_argument("--max-epochs", type=int, default=1)
    p.add_argument("--n-estimators", type=int, default=100)
    args = p.parse_args(argv)
    clips = make_genre_clips(args.n_per_genre, duration=args.duration, random_state=0)
    X, y = clips.data, np.asarray(clips.target)
    kw = dict(cv=args.cv, random_state=0, fold_jobs=args.fold_jobs, params=params(args))
    cores = os.cpu_count()
    print(f"{len(X)} synthetic clips of {args.duration:g} s, {args.cv}-fold CV, "
          f"fold_jobs={args.fold_jobs}, {cores} cores; rows {' '.join(ROWS)} "
          f"(max_epochs={args.max_epochs}, n_estimators={args.n_estimators})")
    print(f"load average at start: {os.getloadavg()}")
    warm = make_genre_clips(2, duration=3.0, random_state=1)  # starts the workers
    evaluate_rows(["xgboost_30s"], warm.data, warm.target, cv=2, fold_jobs=args.fold_jobs,
                  params={"n_estimators": 2})
    ways = {
        "one row at a time": lambda: [r for row in ROWS
                                      for r in evaluate_rows([row], X, y, **kw)],
        "one pool, all rows": lambda: evaluate_rows(ROWS, X, y, **kw),
    }
    scores = {}
    print(f"{'way':20s} {'wall s':>7s} {'CPU s':>7s} {'cores used':>11s}")
    for name, fn in ways.items():
        results, wall = timed(fn)
        for r in results:
            assert r.status == "ok", (r.row, r.message)
        cpu = sum(r.cpu_seconds for r in results)
        scores[name] = [r.scores for r in results]
        print(f"{name:20s} {wall:7.1f} {cpu:7.1f} {cpu / (wall * cores):10.0%}")
    first, *others = scores.values()
    assert all(s == first for s in others), scores
    print("fold scores identical")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
