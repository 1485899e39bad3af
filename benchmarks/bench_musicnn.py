"""Time musicnn embeddings per 30 s track on one CPU core: specgenre's PyTorch port vs the
official TensorFlow code, side by side in one run.

Routes, on the same audio files, every one doing the whole job from the file to all the
named outputs (taggram and every feature layer) of the chosen model:

* ``specgenre fp32`` -- decode (soundfile), :func:`~specgenre.musicnn.musicnn_patches`
  (resample to 16 kHz, log-mel, 187-frame patches), one forward of the PyTorch port over
  the track's patches (``torch.inference_mode``), float32 (the official outputs);
* ``specgenre bf16`` -- the same with ``precision="bf16"`` (convolutions and matrix
  products in bfloat16 under ``torch.autocast``), where the CPU has native bfloat16 or
  with ``--precision bf16``; its largest difference to float32 per output is printed;
* ``official`` -- the official ``musicnn`` package (TensorFlow) with its graph built and
  its checkpoint restored once: ``batch_data(file)`` (``librosa.load`` + log-mel +
  patches), then one ``session.run`` of all outputs per patch, as the official
  ``extractor`` loop does (``BATCH_SIZE = 1``);
* ``official extractor()`` -- the public ``musicnn.extractor.extractor(file, model,
  extract_features=True)`` as users call it: it rebuilds the graph and restores the
  checkpoint on every call.

The official front end is run with its float16 multiply done in float32 (numpy-1
semantics; under numpy 2 it overflows to inf), which changes no timing.

One core: process affinity pinned to one CPU, torch intra/inter-op threads 1, TF sessions
with intra/inter-op parallelism 1, OMP/MKL/OpenBLAS threads 1. The official routes run
in a subprocess with an interpreter that has TensorFlow (``--tf-python``, or the
``SPECGENRE_TF_PYTHON`` environment variable, or this interpreter if it imports
``tensorflow``; ``TF_USE_LEGACY_KERAS=1`` is set for it); without one, only specgenre is
timed. Each route gets one warm-up track, then every track is timed ``--repeat`` times;
the routes take turns ``--rounds`` times (ours, official, ours, official, ...), so load
from other processes falls on all of them alike; the table gives the median over tracks of
the best run per track (over repeats and rounds), wall-clock and process CPU time (the
steadier figure on a shared machine), split into front end and network, and the load
average.

Usage::

    python benchmarks/bench_musicnn.py [--data DIR] [--n-tracks N] [--repeat R]
        [--rounds K] [--model MSD_musicnn] [--precision auto|bf16|fp32]
        [--tf-python /path/to/tf/venv/bin/python]

Setting up an official environment (outside the project's)::

    python3 -m venv /work/tfenv
    /work/tfenv/bin/pip install tensorflow-cpu tf-keras librosa soundfile
    /work/tfenv/bin/pip install --no-deps musicnn
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _tracks import find_tracks  # noqa: E402  (benchmarks/_tracks.py)

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gtzan_dev"
N_FRAMES = 187


def pin_one_core():
    """Pin this process to one CPU (the first it may use); return it, or None."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run_route(tracks, repeat, frontend, network):
    """Warm up on the first track, then best-of-``repeat`` per track; per-track rows."""
    network(frontend(tracks[0]))
    rows = []
    for path in tracks:
        best = None
        for _ in range(repeat):
            patches, fw, fc = timed(lambda path=path: frontend(path))
            n_patches = len(patches)
            _, nw, nc = timed(lambda patches=patches: network(patches))
            run = (fw + nw, fc + nc, fw, fc, nw, nc)
            best = run if best is None or run[0] < best[0] else best
        rows.append(best + (n_patches,))
    return rows


def summarize(rounds):
    """Best run per track over rounds, then the median over tracks (ms)."""
    rows = np.array(rounds[0], dtype=float)
    for other in rounds[1:]:
        other = np.array(other, dtype=float)
        better = other[:, 0] < rows[:, 0]
        rows[better] = other[better]
    keys = ("wall", "cpu", "frontend_wall", "frontend_cpu", "network_wall", "network_cpu")
    out = {k: float(np.median(rows[:, i]) * 1000) for i, k in enumerate(keys)}
    out["patches_per_track"] = float(np.median(rows[:, -1]))
    return out


# ----------------------------------------------------------------------- specgenre

def time_specgenre(tracks, repeat, model, precision="fp32"):
    import soundfile as sf
    import torch

    from specgenre._precision import autocast
    from specgenre.musicnn import load_musicnn, musicnn_patches

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    net = load_musicnn(model)

    def frontend(path):
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        return musicnn_patches(y.mean(axis=1), sr)

    def network(patches):
        with torch.inference_mode(), autocast(precision):
            return {k: v.numpy() for k, v in net(torch.from_numpy(patches)).items()}

    return run_route(tracks, repeat, frontend, network)


def bf16_differences(tracks, model):
    """Largest |bf16 - fp32| per output over the tracks' patches, absolute and of range."""
    import soundfile as sf
    import torch

    from specgenre._precision import autocast
    from specgenre.musicnn import load_musicnn, musicnn_patches

    net = load_musicnn(model)
    patches = []
    for path in tracks:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        patches.append(musicnn_patches(y.mean(axis=1), sr))
    x = torch.from_numpy(np.concatenate(patches))
    with torch.inference_mode():
        ref = net(x)
        with autocast("bf16"):
            low = net(x)
    out = {}
    for name in net.layer_names:
        diff = float((low[name] - ref[name]).abs().max())
        out[name] = (diff, diff / float(ref[name].abs().max()))
    return out


# ----------------------------------------------------------------------- official (TF)

def _fixed_batch_data():
    import inspect
    import textwrap

    from musicnn import extractor

    source = textwrap.dedent(inspect.getsource(extractor.batch_data))
    old = "np.log10(10000 * audio_rep + 1)"
    if source.count(old) != 1:
        raise RuntimeError("the official batch_data changed: cannot apply the float32 fix")
    namespace = dict(vars(extractor))
    exec(compile(source.replace(old, "np.log10(10000 * audio_rep.astype(np.float32) + 1)"),
                 extractor.__file__, "exec"), namespace)
    return namespace["batch_data"]


def official_worker(tracks, repeat, model):
    """Runs inside the TensorFlow interpreter; prints one JSON line of results."""
    import warnings

    warnings.filterwarnings("ignore")
    import tensorflow as tf
    from musicnn import configuration as config
    from musicnn import extractor, models

    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    one_core = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1,
                                        inter_op_parallelism_threads=1)
    session_class = tf.compat.v1.Session

    def one_core_session(*args, **kwargs):
        kwargs.setdefault("config", one_core)
        return session_class(*args, **kwargs)

    tf.compat.v1.Session = one_core_session  # extractor() makes its own sessions
    batch_data = _fixed_batch_data()
    extractor.batch_data = batch_data

    labels = config.MTT_LABELS if "MTT" in model else config.MSD_LABELS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, is_training, model, len(labels))
        fetch = [tf.nn.sigmoid(outputs[0])] + list(outputs[1:])
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    tf.compat.v1.train.Saver().restore(sess, os.path.dirname(extractor.__file__) + f"/{model}/")

    def frontend(path):
        return batch_data(path, N_FRAMES, N_FRAMES)[0]

    def network(batch):
        return [sess.run(fetch, feed_dict={x: batch[i:i + config.BATCH_SIZE],
                                           is_training: False})
                for i in range(0, len(batch), config.BATCH_SIZE)]

    results = {"official": run_route(tracks, repeat, frontend, network)}
    sess.close()

    def whole(path):  # the public function: graph + restore + features + tags per call
        return extractor.extractor(path, model=model, extract_features=True)

    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # it prints progress
        results["official extractor()"] = run_route(tracks, repeat, whole, lambda out: out)
    results["official extractor()"] = [row[:2] + (np.nan,) * 5
                                       for row in results["official extractor()"]]
    import importlib.metadata as md

    results["versions"] = {n: md.version(n) for n in ("tensorflow-cpu", "numpy", "librosa")}
    print(json.dumps(results))


def time_official(tf_python, tracks, repeat, model):
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    cmd = [tf_python, __file__, "--official-worker", "--model", model,
           "--repeat", str(repeat), "--tracks", *tracks]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"official route failed ({tf_python}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def default_tf_python():
    env = os.environ.get("SPECGENRE_TF_PYTHON")
    if env:
        return env
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--n-tracks", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2,
                        help="turns of all routes, interleaved (default: %(default)s)")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                        help="also time specgenre in bf16: auto = where the CPU has native "
                             "bf16 (default: %(default)s)")
    parser.add_argument("--model", default="MSD_musicnn",
                        choices=("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"))
    parser.add_argument("--tf-python", default=None,
                        help="interpreter with tensorflow, tf-keras and musicnn")
    parser.add_argument("--official-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tracks", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cpu = pin_one_core()

    if args.official_worker:
        official_worker(args.tracks, args.repeat, args.model)
        return

    tracks = find_tracks(args.data, args.n_tracks + 1)  # + the warm-up track
    if len(tracks) < 2:
        sys.exit(f"need audio files under {args.data} (--data)")
    from specgenre._precision import cpu_has_native_bf16, resolve_precision

    precisions = ["fp32"]
    if resolve_precision(args.precision) == "bf16":
        precisions.append("bf16")
    print(f"{args.model}: {len(tracks) - 1} tracks (+1 warm-up) from {args.data}, "
          f"best of {args.repeat} per track x {args.rounds} interleaved rounds, pinned to "
          f"CPU {cpu}; native bf16: {cpu_has_native_bf16()}")
    tf_python = args.tf_python or default_tf_python()
    if tf_python is None:
        print("official route skipped: no interpreter with tensorflow "
              "(--tf-python or SPECGENRE_TF_PYTHON)")
    runs, loads = {}, []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for precision in precisions:
            runs.setdefault(f"specgenre {precision}", []).append(
                time_specgenre(tracks, args.repeat, args.model, precision))
        if tf_python is not None:
            official = time_official(tf_python, tracks, args.repeat, args.model)
            versions = official.pop("versions")
            for name, rows in official.items():
                runs.setdefault(name, []).append(rows)
    loads.append(os.getloadavg()[0])
    if tf_python is not None:
        print(f"official: {tf_python} {versions}")
    results = {name: summarize(rounds) for name, rounds in runs.items()}

    print("ms per track (wall-clock / process CPU), median over tracks of the best run; "
          f"1-min load average during the rounds: {', '.join(f'{v:.2f}' for v in loads)} "
          f"on {os.cpu_count()} cores")
    header = (f"{'route':<22} {'total':>13} {'front end':>13} {'network':>13} "
              f"{'patches':>8}")
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        cells = [f"{r[wall]:6.0f} /{r[cpu]:5.0f}" for wall, cpu in (
            ("wall", "cpu"), ("frontend_wall", "frontend_cpu"), ("network_wall", "network_cpu"))]
        print(f"{name:<22} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} "
              f"{r['patches_per_track']:8.0f}")
    for ours in (f"specgenre {p}" for p in precisions):
        for name in ("official", "official extractor()"):
            if name in results:
                print(f"{ours} speed-up vs {name}: "
                      f"{results[name]['wall'] / results[ours]['wall']:.2f}x wall, "
                      f"{results[name]['cpu'] / results[ours]['cpu']:.2f}x CPU")
    if "bf16" in precisions:
        print("bf16 vs fp32, largest difference per output over the tracks' patches "
              "(absolute, fraction of the fp32 output's range):")
        for name, (diff, rel) in bf16_differences(tracks[1:], args.model).items():
            print(f"  {name:<12} {diff:9.3g} {rel:9.2%}")


if __name__ == "__main__":
    main()
