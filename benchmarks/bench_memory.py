"""Peak memory (RSS) of ``specgenre train`` on 30 s clips, one fresh process per case.

Each case runs in its own Python process, which builds ``n`` synthetic 30 s clips with
``make_genre_clips`` (float32, like the CLI's decoded GTZAN tracks) in blocks of about
``cli.TRAIN_BLOCK`` clips, as ``specgenre train`` decodes them, and trains one study row
through the same code the command runs (``cli._fit_row``, which frees each block once
it is turned into spectrograms or features), with ``max_epochs=1``: the peak is the data
plus one epoch of training (later epochs reuse the same buffers). ``--whole`` instead
keeps all waveforms in one array for the whole fit (a plain ``est.fit(X, y)``). The
child reports its own peak RSS (``ru_maxrss``) after the data are built and after
training.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_memory.py                # default cases
    python benchmarks/bench_memory.py --cases cnn_30s_mel:270 resnet18_scratch_3s_prob_db:270
    python benchmarks/bench_memory.py --full                           # + 1000-clip cases
    python benchmarks/bench_memory.py --data-only 270 1000             # make_genre_clips only

Budgets (issue 11): <= 2.5 GB on 270 clips, <= 4 GB on 1000 clips.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

# the default cases take about 15 minutes on 2 busy CPU cores; --full adds the
# 1000-clip cases (the size of GTZAN), much longer on a CPU
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


def _child(row, n_clips, max_epochs, batch_size, mode="blocks"):
    import numpy as np

    from specgenre.cli import TRAIN_BLOCK, _fit_row
    from specgenre.datasets import make_genre_clips

    if row.startswith(("cnn", "resnet")):
        import torch  # noqa: F401  (its import is part of any neural row's peak)
    start = time.perf_counter()
    base = _peak_gb()
    if mode == "whole":
        # all waveforms in one array, kept by the caller (specgenre train before
        # issue 11, and any script calling est.fit(X, y))
        bunch = make_genre_clips(n_clips // 10, duration=30.0, random_state=0)
        blocks, y = bunch.data, np.asarray(bunch.target)
        n_bytes = blocks.nbytes
    else:
        # blocks of ~TRAIN_BLOCK clips, as `specgenre train` decodes them, handed over
        per_genre = max(1, TRAIN_BLOCK // 10)
        blocks, ys, done = [], [], 0
        while done < n_clips // 10:
            k = min(per_genre, n_clips // 10 - done)
            bunch = make_genre_clips(k, duration=30.0, random_state=done)
            blocks.append(bunch.data)
            ys.append(np.asarray(bunch.target))
            done += k
        y = np.concatenate(ys)
        n_bytes = sum(b.nbytes for b in blocks)
    del bunch
    after_data = _peak_gb()
    out = {"row": row, "mode": mode, "n_clips": len(y), "import_gb": base,
           "data_gb": after_data, "waveforms_gb": n_bytes / 1e9,
           "data_s": time.perf_counter() - start}
    if row != "none":
        start = time.perf_counter()
        _fit_row(row, blocks, y, max_epochs=max_epochs, n_jobs=None, random_state=0,
                 verbose=0, batch_size=batch_size or None)
        out["fit_s"] = time.perf_counter() - start
    out["peak_gb"] = _peak_gb()
    print("RESULT " + json.dumps(out), flush=True)


def _run_case(row, n_clips, max_epochs, batch_size, mode):
    cmd = [sys.executable, __file__, "--child", row, str(n_clips), str(max_epochs),
           str(batch_size or 0), mode]
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
    p.add_argument("--whole", action="store_true",
                   help="hand all waveforms over as one array kept by the caller (the "
                        "path of a plain est.fit(X, y)) instead of blocks freed as used")
    p.add_argument("--data-only", type=int, nargs="*", metavar="N",
                   help="only build N synthetic 30 s clips (peak RSS of make_genre_clips)")
    p.add_argument("--max-epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size of the neural rows (default: the classifier's, 32)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        row, n, epochs, batch, mode = (args.child + ["0", "blocks"][len(args.child) - 3:])
        _child(row, int(n), int(epochs), int(batch), mode)
        return
    names = args.cases or (FULL_CASES if args.full else DEFAULT_CASES)
    cases = ([("none", n) for n in args.data_only] if args.data_only is not None else
             [(c.split(":")[0], int(c.split(":")[1])) for c in names])
    print(f"{'row':<34}{'clips':>6}{'waves GB':>10}{'data GB':>9}{'peak GB':>9}"
          f"{'budget':>8}{'data s':>8}{'fit s':>8}", flush=True)
    for row, n in cases:
        r = _run_case(row, n, args.max_epochs, args.batch_size,
                      "whole" if args.whole else "blocks")
        if "error" in r:
            print(f"{row:<34}{n:>6}  FAILED: {r['error']}", flush=True)
            continue
        budget = BUDGET_GB.get(n)
        ok = "" if budget is None else ("ok" if r["peak_gb"] <= budget else "OVER")
        print(f"{row:<34}{r['n_clips']:>6}{r['waveforms_gb']:>10.2f}{r['data_gb']:>9.2f}"
              f"{r['peak_gb']:>9.2f}{ok:>8}{r['data_s']:>8.0f}{r.get('fit_s', 0):>8.0f}",
              flush=True)


if __name__ == "__main__":
    main()
