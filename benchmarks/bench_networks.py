"""Benchmarks of specgenre.networks: training throughput, peak memory, pipeline cache.

Run from the repository root::

    python benchmarks/bench_networks.py           # full (~10-20 min on 2 quiet cores)
    python benchmarks/bench_networks.py --quick   # a few minutes

1. **Training throughput** (segments/s) of :class:`ResNet18Classifier` on 3 s
   mel input (1 x 128 x 130) through the estimator, side by side with a plain
   PyTorch loop over the same array (same module, optimiser, batch size
   and number of batches; the fastest of ``--repeats`` runs of each). For the
   estimator two figures are given:
   *loop*, the training epoch as skorch timed it (``history[-1, "dur"]``:
   data loading, forward/backward/step, callbacks), which is what the
   overhead figure compares (*loop ovh*: whole epochs; *batch ovh*: median
   time per batch, loading included, which shrugs off bursts of load from
   other processes); and *fit*, the whole ``fit()`` call (input
   checks, model construction, the epoch, and the batch-norm statistics
   pass after training, a forward pass over at most 2048 training samples,
   which a one-epoch fit pays in full and a 30-epoch fit spreads thin).
   Also the small CNN on mel input, and ResNet18 on dB STFT input
   (1 x 513 x 130) at full resolution and with ``freq_pool=4``.
2. **Peak memory** (peak resident set, VmHWM, of a fresh subprocess) training ResNet18 on
   10,000 3 s mel spectrograms (10000 x 1 x 128 x 130 float32, 666 MB) with
   1000 track groups, stopped after a number of batches (the small CNN too,
   and ResNet18 with batch size 16). "imports" is the process after
   importing specgenre.networks (torch, skorch, scikit-learn); the fit
   adds torchvision (whose import pulls in torch._dynamo and, with CUDA
   builds of torch, triton: ~160 MiB), the model, AdamW's state and the
   activations of a batch.
3. **GridSearchCV with a cached pipeline**: a grid over
   ``spectrogram__scale`` x ``clf__lr`` with ``Pipeline([("spectrogram",
   SpectrogramTransformer()), ("clf", CNNClassifier(max_epochs=1))],
   memory=joblib.Memory(tmpdir))`` versus no memory, on synthetic clips
   (:func:`specgenre.datasets.make_genre_clips`).

Timings are wall-clock; on a shared machine they are noisy. Threads: torch's
default (one per core) unless ``--threads`` is given.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

MEL = (1, 128, 130)   # 3 s at 22050 Hz, n_fft 2048, hop 512, 128 mels
DB = (1, 513, 130)    # 3 s, n_fft 1024: 513 STFT bins


def _data(n, shape, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n,) + shape, dtype=np.float32)
    X *= 12.0
    X -= 45.0
    y = np.arange(n) % n_classes
    return X, y


def _plain_loop(module, X, y, batch_size, n_batches, lr, seed=0):
    """Plain PyTorch: AdamW + cross-entropy over shuffled batches of X.

    Returns the seconds of each batch (indexing the array included).
    """
    import torch

    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = np.random.default_rng(seed).permutation(len(X))[:batch_size * n_batches]
    module.train()
    times = []
    for b in range(n_batches):
        start = time.perf_counter()
        idx = np.sort(order[b * batch_size:(b + 1) * batch_size])
        xb = torch.from_numpy(X[idx])
        yb = torch.from_numpy(y[idx])
        opt.zero_grad()
        loss = loss_fn(module(xb), yb)
        loss.backward()
        opt.step()
        loss.item()
        times.append(time.perf_counter() - start)
    return np.asarray(times)


def _batch_clock():
    """A skorch callback recording the time of each training batch (loading included)."""
    from skorch.callbacks import Callback

    class BatchClock(Callback):
        def on_epoch_begin(self, net, **kwargs):
            self.marks_ = [time.perf_counter()]

        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                self.marks_.append(time.perf_counter())

    return BatchClock()


def throughput(model, shape, n_batches, batch_size=32, repeats=1, **params):
    """Segments/s: plain loop vs the estimator (skorch loop and whole fit)."""
    import torch

    from specgenre.networks import CNNClassifier, ResNet18Classifier
    from specgenre.networks._modules import ResNet18Module, SpectrogramCNN

    n = batch_size * n_batches
    X, y = _data(n, shape)
    y_str = np.array([f"genre{k}" for k in range(10)])[y]
    est_class = ResNet18Classifier if model == "resnet18" else CNNClassifier

    def make_module():
        torch.manual_seed(0)
        if model == "resnet18":
            return ResNet18Module(10, freq_pool=params.get("freq_pool", 1))
        return SpectrogramCNN(10, freq_pool=params.get("freq_pool", 1))

    # warm-up (one-time costs: oneDNN kernels, imports)
    _plain_loop(make_module(), X, y, batch_size, 1, 1e-3)
    est_class(max_epochs=1, valid_fraction=None, batch_size=batch_size, random_state=0,
              **params).fit(X[:2 * batch_size], y_str[:2 * batch_size])

    plain, loop, fit, plain_batch, est_batch = [], [], [], [], []
    for _ in range(repeats):
        times = _plain_loop(make_module(), X, y, batch_size, n_batches, 1e-3)
        plain.append(times.sum())
        plain_batch.append(np.median(times))
        clock = _batch_clock()
        clf = est_class(max_epochs=1, valid_fraction=None, batch_size=batch_size, lr=1e-3,
                        random_state=0, callbacks=[("clock", clock)], **params)
        start = time.perf_counter()
        clf.fit(X, y_str)
        fit.append(time.perf_counter() - start)
        loop.append(clf.net_.history[-1, "dur"])
        marks = dict(clf.net_.callbacks_)["clock"].marks_
        est_batch.append(np.median(np.diff(marks)))
    # fastest of the repeats: the least disturbed by other work on a shared machine
    t_plain, t_loop, t_fit, b_plain, b_est = (
        float(np.min(t)) for t in (plain, loop, fit, plain_batch, est_batch))
    return {
        "model": model, "input": "x".join(map(str, shape)), "params": params,
        "batches": n_batches, "batch_size": batch_size, "repeats": repeats,
        "plain_seg_s": n / t_plain, "estimator_loop_seg_s": n / t_loop,
        "estimator_fit_seg_s": n / t_fit,
        "loop_overhead_pct": 100.0 * (t_loop / t_plain - 1.0),
        "fit_overhead_pct": 100.0 * (t_fit / t_plain - 1.0),
        "median_batch_overhead_pct": 100.0 * (b_est / b_plain - 1.0),
    }


def _memory_child(model, n, n_batches, batch_size):
    """Run in a fresh process: print JSON with maxrss before and after fitting."""
    from skorch.callbacks import Callback

    from specgenre.networks import CNNClassifier, ResNet18Classifier

    class StopAfter(Callback):
        """Ends training after ``n`` batches (KeyboardInterrupt is skorch's way to stop)."""

        def __init__(self, n):
            self.n = n

        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                self.seen_ = getattr(self, "seen_", 0) + 1
                if self.seen_ >= self.n:
                    raise KeyboardInterrupt

    def maxrss_mb():
        # VmHWM: peak resident set of this process image. ru_maxrss would do on a fresh
        # process, but Linux carries the parent's peak over fork+exec into it.
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    base = maxrss_mb()
    X, y = _data(n, MEL)
    groups = np.arange(n) // 10  # 10 segments per track
    after_data = maxrss_mb()
    est = ResNet18Classifier if model == "resnet18" else CNNClassifier
    clf = est(max_epochs=1, batch_size=batch_size, random_state=0,
              callbacks=[StopAfter(n_batches)])
    start = time.perf_counter()
    clf.fit(X, y, groups=groups)
    print(json.dumps({
        "model": model, "n": n, "array_mb": X.nbytes / 2**20, "batches": n_batches,
        "maxrss_start_mb": base, "maxrss_after_data_mb": after_data,
        "maxrss_peak_mb": maxrss_mb(), "n_valid": clf.n_valid_,
        "seconds": time.perf_counter() - start,
    }))


def peak_memory(model, n=10_000, n_batches=20, batch_size=32, threads=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--_memory-child", model, str(n),
           str(n_batches), str(batch_size)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def grid_cache(n_per_genre, duration, n_genres=3, cv=3):
    """Wall time of GridSearchCV with and without a joblib.Memory pipeline cache."""
    import joblib
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from specgenre.networks import CNNClassifier
    from specgenre.spectrogram import SpectrogramTransformer

    try:
        from specgenre.datasets import make_genre_clips

        data = make_genre_clips(n_per_genre, genres=["blues", "classical", "metal"][:n_genres],
                                duration=duration, random_state=0)
        X, y, source = data.data, data.target, "make_genre_clips"
    except ImportError:  # pragma: no cover - before the datasets module existed
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n_per_genre * n_genres, int(duration * 22050)),
                                dtype=np.float32)
        y = np.repeat(np.arange(n_genres), n_per_genre)
        source = "random clips"
    grid = {"spectrogram__scale": ["mel", "db"], "clf__lr": [1e-3, 3e-3]}
    spec_s = {}
    for scale in ("mel", "db"):  # what the cache can save: spectrograms of all clips, once
        SpectrogramTransformer(scale).fit_transform(X[:1])  # warm-up (filterbank, imports)
        start = time.perf_counter()
        SpectrogramTransformer(scale).fit_transform(X)
        spec_s[scale] = time.perf_counter() - start
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, memory in (("no memory", None),
                              ("memory (cold)", joblib.Memory(tmp, verbose=0)),
                              ("memory (warm, same search again)", joblib.Memory(tmp, verbose=0))):
            pipe = Pipeline([("spectrogram", SpectrogramTransformer()),
                             ("clf", CNNClassifier(max_epochs=1, random_state=0))],
                            memory=memory)
            search = GridSearchCV(pipe, grid, cv=cv)
            start = time.perf_counter()
            search.fit(X, y)
            rows[label] = time.perf_counter() - start
    return {"source": source, "clips": len(X), "seconds_per_clip": duration, "cv": cv,
            "candidates": 4, "fits": 4 * cv + 1, "wall_s": rows, "spectrogram_s": spec_s}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches, one repeat")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--repeats", type=int, default=None,
                        help="throughput repeats (fastest kept); default 3, 1 with --quick")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["throughput", "memory", "cache"], help="sections to skip")
    parser.add_argument("--_memory-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args._memory_child:
        model, n, n_batches, batch_size = args._memory_child
        _memory_child(model, int(n), int(n_batches), int(batch_size))
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    quick = args.quick
    if "throughput" not in args.skip:
        print("\n== training throughput (segments/s), batch size 32 ==")
        print(f"{'model':<9} {'input':<10} {'params':<15} {'batches':>7} {'plain':>7} "
              f"{'est.loop':>8} {'est.fit':>7} {'loop ovh':>8} {'batch ovh':>9} {'fit ovh':>8}")
        cases = [("resnet18", MEL, 4 if quick else 8, {}),
                 ("cnn", MEL, 8 if quick else 40, {})]
        if not quick:
            cases += [("resnet18", DB, 4, {}), ("resnet18", DB, 8, {"freq_pool": 4})]
        for model, shape, n_batches, params in cases:
            r = throughput(model, shape, n_batches, repeats=args.repeats or (1 if quick else 3),
                           **params)
            print(f"{r['model']:<9} {r['input']:<10} {str(params or '-'):<15} "
                  f"{r['batches']:>7} {r['plain_seg_s']:>7.1f} {r['estimator_loop_seg_s']:>8.1f} "
                  f"{r['estimator_fit_seg_s']:>7.1f} {r['loop_overhead_pct']:>7.1f}% "
                  f"{r['median_batch_overhead_pct']:>8.1f}% {r['fit_overhead_pct']:>7.1f}%",
                  flush=True)
    if "memory" not in args.skip:
        print("\n== peak memory, 10,000 x 1 x 128 x 130 float32 mel segments "
              "(666 MB = 635 MiB) ==")
        runs = [("resnet18", 32), ("cnn", 32)] + ([] if quick else [("resnet18", 16)])
        for model, batch_size in runs:
            r = peak_memory(model, n_batches=5 if quick else 20, batch_size=batch_size,
                            threads=args.threads)
            peak = r["maxrss_peak_mb"]
            print(f"{model:<9} batch {batch_size}, {r['batches']} training batches (+ batch-norm "
                  f"pass): peak {peak:.0f} MiB = {peak * 2**20 / 1e9:.2f} GB (imports "
                  f"{r['maxrss_start_mb']:.0f} MiB, + data {r['maxrss_after_data_mb']:.0f} MiB, "
                  f"fit adds {peak - r['maxrss_after_data_mb']:.0f} MiB), {r['n_valid']} "
                  f"validation segments, fit {r['seconds']:.0f} s", flush=True)
    if "cache" not in args.skip:
        print("\n== GridSearchCV over scale x lr, Pipeline(memory=joblib.Memory) ==")
        r = grid_cache(n_per_genre=4 if quick else 6, duration=5.0 if quick else 10.0)
        print(f"{r['clips']} {r['source']} clips of {r['seconds_per_clip']:.0f} s, "
              f"{r['candidates']} candidates x {r['cv']} folds + refit; spectrograms of all "
              f"clips take {r['spectrogram_s']['mel']:.2f} s (mel), "
              f"{r['spectrogram_s']['db']:.2f} s (dB)")
        for label, seconds in r["wall_s"].items():
            print(f"  {label:<34} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
