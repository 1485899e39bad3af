"""Training speed of the library's networks against a plain float32 PyTorch loop, on one core.

For each network, one epoch of training on ``--n`` random spectrograms
(10 classes), batch size 32, is run three ways, alternating within each
round (``--rounds``), in this one process:

* ``plain fp32``: a plain PyTorch loop over the same layers as torch's
  stock modules build them (NCHW float32; for the CNN
  ``Conv-BN-ReLU-MaxPool`` x 4, global average pooling, dropout, linear;
  for ResNet18 torchvision's ``resnet18`` with a one-channel ``conv1``; for
  musicnn the library's ``MusicnnModule`` on the official weights, its front
  end as torch's ``Conv2d``, ``ReLU``, ``BatchNorm2d`` and ``amax``:
  ``conv_as_matmul=False``): AdamW,
  one shuffled epoch over 90 % of the samples, then a forward pass over
  the other 10 % (eval mode, no gradients);
* ``ours``: the estimator (``CNNClassifier``, ``ResNet18Classifier``,
  ``MusicnnClassifier``) with ``max_epochs=1, valid_fraction=0.1`` and its
  defaults (``precision="auto"``: bfloat16 products where the CPU has
  them); its fit also checks the input, builds the model, splits by class
  and recomputes the batch-norm statistics after training;
* ``ours fp32``: the same with ``precision="fp32"``.

The figure is CPU seconds per training sample (``time.process_time``: the
process is single-threaded, so other jobs on the machine do not inflate it;
wall seconds are printed beside it), the best of the rounds. The FLOP of one
training step (forward, backward) and of one forward pass are counted with
``torch.utils.flop_counter.FlopCounterMode`` on the plain module, so the
*useful* work of the epoch (``n_train`` training steps + ``n_valid``
forward passes) is the same for all three routes; ``GFLOP/s`` is that work
over each route's CPU time; ``kernel`` is the share of that CPU time
spent in the kernel (mostly page faults: a tensor above glibc's mmap
threshold, 32 MB at most, is mapped afresh for each batch and its pages are
zeroed on first touch; ``GLIBC_TUNABLES=glibc.malloc.mmap_max=0`` makes
malloc reuse freed memory instead, for both routes, at the cost of a higher
peak). The allocator settings of the environment are printed. Beside it,
a 2048 x 2048 matrix product in float32 and in bfloat16, timed in the
same run, shows the core's limit.

Usage::

    python benchmarks/bench_train_step.py                     # CNN on 30 s mel
    python benchmarks/bench_train_step.py --net all           # + ResNet18 30 s mel, 3 s dB, musicnn
    python benchmarks/bench_train_step.py --net cnn_30s_mel --n 96 --rounds 3
    GLIBC_TUNABLES=glibc.malloc.mmap_max=0 python benchmarks/bench_train_step.py --net all
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

#: network -> (input shape, default number of samples)
SHAPES = {
    "cnn_30s_mel": ((1, 128, 1292), 96),
    "resnet18_30s_mel": ((1, 128, 1292), 96),  # 10-fold split: >= 10 per class
    "resnet18_3s_db": ((1, 513, 130), 192),
    "musicnn_finetune": ((1, 96, 187), 192),
}
BATCH = 32


def _data(n, shape, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n,) + shape, dtype=np.float32)
    X *= 12.0
    X -= 45.0
    if shape[1] == 96:  # musicnn patches: log10(10000 x + 1) >= 0
        np.abs(X, out=X)
        X /= 20.0
    y = np.arange(n) % 10
    return X, y


def plain_module(net, n_classes=10):
    """The network as torch's stock modules build it (NCHW float32)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    if net == "cnn_30s_mel":
        layers, c_in = [], 1
        for c in (16, 32, 64, 128):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                             nn.Linear(c_in, n_classes))
    if net.startswith("resnet18"):
        from torchvision.models import resnet18

        m = resnet18(weights=None, num_classes=n_classes)
        m.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
        return m
    from specgenre.musicnn import load_musicnn
    from specgenre.musicnn._finetune import MusicnnModule

    module = MusicnnModule(load_musicnn("MSD_musicnn"), n_classes, dropout=0.5)
    for block in module.modules():
        if hasattr(block, "conv_as_matmul"):  # the front end's stock Conv2d and amax
            block.conv_as_matmul = False
    return module


def estimator(net, precision):
    from specgenre import CNNClassifier, MusicnnClassifier, ResNet18Classifier

    common = dict(max_epochs=1, batch_size=BATCH, valid_fraction=0.1, patience=None,
                  precision=precision, random_state=0)
    if net == "cnn_30s_mel":
        return CNNClassifier(**common)
    if net.startswith("resnet18"):
        return ResNet18Classifier(**common)
    return MusicnnClassifier(**common)


def split(y):
    from sklearn.model_selection import StratifiedKFold

    return next(StratifiedKFold(10, shuffle=True, random_state=0).split(np.zeros(len(y)), y))


def plain_epoch(net, X, y, indices=None):
    """One epoch of the plain fp32 loop (train on 90 %, forward on 10 %)."""
    import torch

    module = plain_module(net)
    train, valid = split(y) if indices is None else indices
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = np.random.default_rng(0).permutation(train)
    module.train()
    for start in range(0, len(order), BATCH):
        idx = np.sort(order[start:start + BATCH])
        if len(idx) < 2:
            break
        opt.zero_grad()
        loss = loss_fn(module(torch.from_numpy(X[idx])), torch.from_numpy(y[idx]))
        loss.backward()
        opt.step()
    module.eval()
    with torch.no_grad():
        for start in range(0, len(valid), BATCH):
            module(torch.from_numpy(X[valid[start:start + BATCH]]))
    return len(train), len(valid)


def flops(net, shape):
    """(FLOP of one training step, FLOP of one forward pass) per sample."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    module = plain_module(net)
    x = torch.zeros((4,) + shape)
    counter = FlopCounterMode(display=False)
    with counter:
        module.train()
        module(x).sum().backward()
    train = counter.get_total_flops() / 4
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module.eval()
        module(x)
    return train, counter.get_total_flops() / 4


def matmul_gflops(dtype, n=2048, repeat=5):
    import torch

    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    best = np.inf
    for _ in range(repeat):
        start = time.process_time()
        a @ b
        best = min(best, time.process_time() - start)
    return 2 * n ** 3 / best / 1e9


def clock(fn):
    """``(CPU s, wall s, kernel CPU s, output)`` of ``fn()``."""
    cpu, wall, kernel = time.process_time(), time.perf_counter(), os.times().system
    out = fn()
    return (time.process_time() - cpu, time.perf_counter() - wall,
            os.times().system - kernel, out)


def allocator_setting():
    """The glibc malloc settings of the environment (they change the kernel's share)."""
    names = ("GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_",
             "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD")
    set_ = [f"{k}={os.environ[k]}" for k in names if os.environ.get(k)]
    return " ".join(set_) or "glibc malloc defaults (no GLIBC_TUNABLES, MALLOC_*_ or LD_PRELOAD)"


def run(net, n, rounds):
    import torch

    from specgenre._precision import resolve_precision

    shape = SHAPES[net][0]
    X, y = _data(n, shape)
    labels = np.array([f"genre{k}" for k in range(10)])[y]
    n_train, n_valid = len(split(y)[0]), len(split(y)[1])
    train_flop, fwd_flop = flops(net, shape)
    useful = n_train * train_flop + n_valid * fwd_flop
    # warm-up: oneDNN picks and caches its kernels on the first calls
    small = np.concatenate([np.flatnonzero(y == k)[:7] for k in range(10)])
    plain_epoch(net, X, y, indices=(small, small[:BATCH]))
    for precision in ("auto", "fp32"):
        estimator(net, precision).fit(X[small], labels[small])
    routes = {"plain fp32": lambda: plain_epoch(net, X, y),
              "ours": lambda: estimator(net, "auto").fit(X, labels),
              "ours fp32": lambda: estimator(net, "fp32").fit(X, labels)}
    cpu = {k: [] for k in routes}
    wall = {k: [] for k in routes}
    kernel = {k: [] for k in routes}
    for _ in range(rounds):
        for name, fn in routes.items():
            c, w, k, _ = clock(fn)
            cpu[name].append(c)
            wall[name].append(w)
            kernel[name].append(k)
    auto = resolve_precision("auto")
    print(f"\n{net}: {n} samples {shape}, {n_train} trained on + {n_valid} validated, "
          f"batch {BATCH}, 1 epoch; {train_flop / 1e9:.2f} GFLOP per training sample, "
          f"{fwd_flop / 1e9:.2f} per forward; 'ours' = precision auto -> {auto}; "
          f"torch {torch.__version__}")
    print(f"{'route':12s} {'CPU s/sample':>13s} {'wall s/sample':>14s} {'GFLOP/s':>8s} "
          f"{'vs plain':>9s} {'kernel':>7s}   (CPU s per round)")
    base = min(cpu["plain fp32"])
    for name in routes:
        best = int(np.argmin(cpu[name]))
        c = cpu[name][best]
        print(f"{name:12s} {c / n_train:13.4f} {min(wall[name]) / n_train:14.4f} "
              f"{useful / c / 1e9:8.1f} {base / c:8.2f}x {kernel[name][best] / c:6.0%}   "
              + " ".join(f"{c:.1f}" for c in cpu[name]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--net", nargs="+", default=["cnn_30s_mel"],
                        choices=[*SHAPES, "all"])
    parser.add_argument("--n", type=int, default=None,
                        help="samples per network (default: per network, see SHAPES)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()}")
    print(f"allocator: {allocator_setting()}")
    nets = list(SHAPES) if "all" in args.net else args.net
    for net in nets:
        run(net, args.n or SHAPES[net][1], args.rounds)
    f32 = matmul_gflops(torch.float32)
    bf16 = matmul_gflops(torch.bfloat16)
    print(f"\nsame-run 2048x2048 matmul, one core: fp32 {f32:.1f} GFLOP/s, "
          f"bf16 {bf16:.1f} GFLOP/s")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
