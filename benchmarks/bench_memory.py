"""Peak memory (RSS) of ``specgenre train`` on 30 s clips, one fresh process per case.

Each case runs in its own Python process and trains one study row on ``n`` synthetic
30 s clips (``make_genre_clips``, float32 like the CLI's decoded GTZAN tracks) with
``max_epochs=1``: the peak is the data plus one epoch of training (later epochs reuse
the same buffers). The child reports its own peak RSS (``ru_maxrss``) after importing
torch and after training. Modes, side by side:

- ``train`` (default): what ``specgenre train`` (:func:`specgenre.train_row`) does.
  The clips are made block by block (``training.BLOCK_SIZE`` clips, as the command
  decodes them) while the row consumes them (``training.fit_blocks``): each block is
  turned into spectrograms or features and dropped before the next is made; CNN and
  ResNet18 rows store float16 spectrograms, and the CNN, ResNet18 and musicnn
  fine-tuning train with ``checkpointing=True`` (:func:`specgenre.training.memory_saving`,
  set by ``training.build_row``).
- ``nosave``: the same blocks, without the memory saving
  (``specgenre train --no-memory-saving``).
- ``plain``: the plain way, ``make_row(row).fit(X, y)`` on all waveforms at once.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_memory.py                # default cases
    python benchmarks/bench_memory.py --cases cnn_30s_mel:270 resnet18_scratch_3s_prob_db:270
    python benchmarks/bench_memory.py --modes train plain --cases cnn_30s_mel:270
    python benchmarks/bench_memory.py --full                           # + 1000-clip cases

Budgets (issue 11): <= 2.5 GB on 270 clips, <= 4 GB on 1000 clips.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

# neural training stops after --steps batches (30 by default)
DEFAULT_CASES = [
    "cnn_30s_mel:270",
    "resnet18_scratch_3s_prob_db:270",
    "xgboost_30s:270",
]
FULL_CASES = DEFAULT_CASES + [
    "resnet18_scratch_30s_mel:270",
    "cnn_30s_mel:1000",
    "resnet18_scratch_30s_mel:1000",
    "resnet18_scratch_3s_prob_db:1000",
]
BUDGET_GB = {270: 2.5, 1000: 4.0}


def _peak_gb():
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _stop_after(n):
    """skorch callback: end training after ``n`` batches (skorch stops on KeyboardInterrupt).

    The peak of training is that of one batch, reached in the first steps: a whole
    epoch over 10,000 dB segments would take an hour on one core for the same figure.
    """
    from skorch.callbacks import Callback

    class StopAfter(Callback):
        def __init__(self, n):
            self.n = n

        def initialize(self):
            self.seen_ = 0
            return self

        def on_batch_end(self, net, batch=None, training=None, **kwargs):
            self.seen_ += bool(training)
            if self.seen_ >= self.n:
                raise KeyboardInterrupt

    return StopAfter(n)


def _blocks(n_clips, block):
    """(waveforms, genres) blocks of synthetic 30 s clips, made as they are asked for."""
    from specgenre.datasets import make_genre_clips

    per_genre = max(1, block // 10)
    done = 0
    while done < n_clips // 10:
        k = min(per_genre, n_clips // 10 - done)
        bunch = make_genre_clips(k, duration=30.0, random_state=done)
        done += k
        X, y = bunch.data, np.asarray(bunch.target)
        del bunch
        yield X, y
        del X


def _child(row, n_clips, max_epochs, batch_size, mode, steps):
    from specgenre.study import ALL_ROWS, classifier_of, make_row
    from specgenre.training import BLOCK_SIZE, build_row, fit_blocks

    if row.startswith(("cnn", "resnet")):
        import torch  # noqa: F401  (its import is part of any neural row's peak)
    out = {"row": row, "mode": mode, "n_clips": n_clips, "import_gb": _peak_gb()}
    params = {"callbacks": [_stop_after(steps)]} if steps else {}
    start = time.perf_counter()
    if mode == "plain":
        X, y = map(np.concatenate, zip(*_blocks(n_clips, BLOCK_SIZE)))
        out["data_gb"] = _peak_gb()
        est = make_row(row, random_state=0)
        if row.startswith(("cnn", "resnet")):
            classifier_of(est).set_params(max_epochs=max_epochs, **params,
                                          **({"batch_size": batch_size} if batch_size else {}))
        est.fit(*ALL_ROWS[row].samples(X, y)[:2])
    else:
        # a network row, as build_row tells one: its classifier has max_epochs
        neural = "max_epochs" in classifier_of(make_row(row)).get_params(deep=False)
        est, _ = build_row(row, max_epochs=max_epochs, batch_size=batch_size or None,
                           class_params=params if neural else None,
                           memory_saving_on=mode == "train", random_state=0)
        fit_blocks(ALL_ROWS[row], est, _blocks(n_clips, BLOCK_SIZE), n_clips)
    out["fit_s"] = time.perf_counter() - start
    out["steps"] = steps
    out["peak_gb"] = _peak_gb()
    print("RESULT " + json.dumps(out), flush=True)


def _run_case(row, n_clips, max_epochs, batch_size, mode, steps):
    cmd = [sys.executable, __file__, "--child", row, str(n_clips), str(max_epochs),
           str(batch_size or 0), mode, str(steps or 0)]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"row": row, "n_clips": n_clips, "error": proc.stderr.strip()[-500:]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=None, metavar="ROW:N",
                   help="study row and number of 30 s clips (multiple of 10)")
    p.add_argument("--full", action="store_true", help="also the 1000-clip cases")
    p.add_argument("--modes", nargs="+", default=["train"],
                   choices=["train", "nosave", "plain"],
                   help="train: as specgenre train; nosave: --no-memory-saving; "
                        "plain: make_row(row).fit(X, y) on all waveforms")
    p.add_argument("--max-epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=30,
                   help="stop neural training after this many batches (the peak is "
                        "reached in the first ones); 0: run --max-epochs whole epochs")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size of the neural rows (default: the classifier's, 32)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        row, n, epochs, batch, mode, steps = args.child
        _child(row, int(n), int(epochs), int(batch), mode, int(steps))
        return
    names = args.cases or (FULL_CASES if args.full else DEFAULT_CASES)
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in names]
    print(f"{'row':<34}{'clips':>6}{'mode':>8}{'torch GB':>10}{'peak GB':>9}{'budget':>8}"
          f"{'fit s':>8}", flush=True)
    for row, n in cases:
        for mode in args.modes:
            r = _run_case(row, n, args.max_epochs, args.batch_size, mode, args.steps)
            if "error" in r:
                print(f"{row:<34}{n:>6}{mode:>8}  FAILED: {r['error']}", flush=True)
                continue
            budget = BUDGET_GB.get(n)
            ok = "" if budget is None else ("ok" if r["peak_gb"] <= budget else "OVER")
            print(f"{row:<34}{n:>6}{mode:>8}{r['import_gb']:>10.2f}{r['peak_gb']:>9.2f}"
                  f"{ok:>8}{r['fit_s']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
