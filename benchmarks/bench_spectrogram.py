"""Time loading + spectrograms of 30 s tracks on one CPU core: study route vs librosa vs specgenre.

For every track: decode the 30 s file, cut it into ten 3 s segments and make
one spectrogram per segment, for both scales ("db": dB STFT magnitude,
n_fft 1024; "mel": dB mel power, n_fft 2048, 128 bands; hop 512). Routes:

* ``study``  -- as the study did it: ``librosa.load``, then per segment the
  librosa spectrogram drawn with ``librosa.display.specshow`` into a
  matplotlib figure (Agg) saved as a PNG file;
* ``librosa`` -- the same arrays without the figures: ``librosa.load`` and a
  per-segment loop of ``librosa.stft`` / ``librosa.feature.melspectrogram``
  and ``amplitude_to_db`` / ``power_to_db``;
* ``specgenre`` -- ``AudioLoader -> ClipSegmenter -> SpectrogramTransformer``
  (``fit_transform``) on the whole batch of tracks (n_jobs=1), with the
  default float32 FFT (within 0.01 dB of librosa) and with
  ``fft_dtype="float64"`` (within 1e-3 dB).

Everything runs in this one process on one core (BLAS/OpenMP and torch
limited to one thread), so its CPU time (``time.process_time``) is the work
a route costs, whatever else the machine runs; wall time is printed beside
it and is inflated when other processes share the cores (the load average
is printed at the start and the end). The routes alternate: every round
times each scale's routes one after the other (study, librosa, specgenre,
specgenre float64), ``--repeat`` rounds in all.

The table gives, per 30 s track, the best CPU milliseconds over the rounds
(and their median), the best wall milliseconds, the share of the best
round's CPU time spent in the kernel (mostly page faults on memory the
process has not touched before, which a virtual machine can make costly),
and the speed-up in CPU
time over the study route and over the plain librosa loop (ratio of the
best times; in brackets the lowest and highest ratio within one round).
The next lines give specgenre's CPU time split (load, segment,
spectrogram; best over the rounds) and its largest difference to librosa
in dB over all segments. The next lines time the FFT alone (CPU time per
frame): scipy's (pocketfft) against torch's (MKL where torch has it), which
SpectrogramTransformer uses. The last lines give the CPU time of the first
writes to a fresh 128 MiB array, per MiB: from ``np.empty`` (on Linux, numpy
advises huge pages for it) and from ``specgenre._memory.empty`` (ordinary
pages, as the library's large results use).

Usage::

    python benchmarks/bench_spectrogram.py [--data DIR] [--n-tracks N] [--repeat R]

``--data`` defaults to ``../shared/data/gtzan_dev`` next to the repository
(audio files, searched recursively, taken one genre folder after the
other); when absent, synthetic 30 s clips are written as FLAC to a
temporary folder and used instead. The figures quoted in the documentation
come from ``--n-tracks 51`` (all 51 dev tracks).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _tracks import find_tracks  # noqa: E402  (benchmarks/_tracks.py)

SR = 22050
SEG = 3 * SR  # 66150 samples
N_SEG = 10
SCALES = {"db": 1024, "mel": 2048}  # scale -> n_fft
HOP = 512
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gtzan_dev"
ROUTES = ("study (specshow+PNG)", "librosa loop", "specgenre", "specgenre f64 FFT")


def synthetic_tracks(folder, n_tracks, seed=0):
    """Write ``n_tracks`` 30 s FLAC clips of tones, decaying notes and noise."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(30 * SR) / SR
    paths = []
    for i in range(n_tracks):
        y = 0.02 * rng.standard_normal(len(t))
        for _ in range(8):
            f0, onset = rng.uniform(55, 4000), rng.uniform(0, 30)
            env = np.where(t >= onset, np.exp(-(t - onset) * rng.uniform(0.5, 4)), 0.0)
            y += rng.uniform(0.05, 0.2) * env * np.sin(2 * np.pi * f0 * t)
        path = Path(folder) / f"synthetic.{i:05d}.flac"
        sf.write(path, (0.9 * y / np.abs(y).max()).astype(np.float32), SR, subtype="PCM_16")
        paths.append(str(path))
    return paths


def librosa_spec(y, scale):
    import librosa

    if scale == "db":
        return librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=1024, hop_length=HOP)),
                                       ref=np.max)
    S = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=HOP, n_mels=128)
    return librosa.power_to_db(S, ref=np.max)


def route_librosa(paths, scale):
    import librosa

    out = []
    for path in paths:
        y, _ = librosa.load(path, sr=SR)
        out.extend(librosa_spec(y[k * SEG:(k + 1) * SEG], scale) for k in range(N_SEG))
    return out


def route_study(paths, scale, png_dir):
    import librosa
    import librosa.display
    import matplotlib.pyplot as plt

    for path in paths:
        y, _ = librosa.load(path, sr=SR)
        for k in range(N_SEG):
            S = librosa_spec(y[k * SEG:(k + 1) * SEG], scale)
            fig = plt.figure()
            librosa.display.specshow(S, sr=SR, hop_length=HOP,
                                     y_axis="mel" if scale == "mel" else "hz")
            plt.axis("off")
            fig.savefig(Path(png_dir) / f"{Path(path).stem}.{k}.{scale}.png",
                        bbox_inches="tight", pad_inches=0)
            plt.close(fig)


def route_specgenre(paths, scale, timings=None, fft_dtype="float32"):
    from specgenre.audio import AudioLoader
    from specgenre.segment import ClipSegmenter
    from specgenre.spectrogram import SpectrogramTransformer

    t0 = time.process_time()
    X = AudioLoader(sr=SR, duration=30.0, n_jobs=1).fit_transform(paths)
    t1 = time.process_time()
    segments = ClipSegmenter(3.0, sr=SR).fit_transform(X)
    t2 = time.process_time()
    S = SpectrogramTransformer(scale, sr=SR, hop_length=HOP, fft_dtype=fft_dtype,
                               n_jobs=1).fit_transform(segments)
    t3 = time.process_time()
    if timings is not None:
        timings.append((t1 - t0, t2 - t1, t3 - t2))
    return S


def timed(func):
    """``(result, CPU seconds, wall seconds, kernel CPU seconds)`` of ``func()``."""
    wall, cpu, kernel = time.perf_counter(), time.process_time(), os.times().system
    result = func()
    return (result, time.process_time() - cpu, time.perf_counter() - wall,
            os.times().system - kernel)


def fft_per_frame(repeat):
    """CPU microseconds per frame of scipy's and torch's real FFT, float32 and float64."""
    import scipy.fft
    import torch

    rng = np.random.default_rng(0)
    out = {}
    for n_fft in SCALES.values():
        for dtype in ("float32", "float64"):
            frames = rng.standard_normal((390, n_fft)).astype(dtype)  # three 3 s segments
            tensor = torch.from_numpy(frames)
            for name, func in (
                ("scipy", lambda f=frames: scipy.fft.rfft(f, axis=-1, workers=1)),
                ("torch", lambda t=tensor: torch.fft.rfft(t, dim=-1)),
            ):
                func()
                secs = min(timed(lambda f=func: [f() for _ in range(20)])[1]
                           for _ in range(repeat)) / 20
                out[(n_fft, dtype, name)] = secs / len(frames) * 1e6
    return out


def first_write_cost(repeat, mib=128, pause=2.0):
    """CPU ms per MiB of the first writes to a fresh array: ``np.empty`` vs specgenre's.

    numpy advises huge pages for arrays of 4 MiB or more on Linux; specgenre's
    large results use ordinary pages (``specgenre._memory``). Each array is
    written once after ``pause`` seconds (so memory freed a moment before is not
    simply reused) and freed; best and median of ``repeat`` rounds, and the
    kernel's share of the best.
    """
    from specgenre import _memory

    shape = (mib << 20) // 4
    out = {}
    for _ in range(repeat):
        for name, alloc in (("np.empty", lambda: np.empty(shape, np.float32)),
                            ("specgenre", lambda: _memory.empty(shape, np.float32))):
            time.sleep(pause)
            _, c, _, k = timed(lambda a=alloc: a().fill(1.0))
            out.setdefault(name, []).append((c / mib * 1e3, k / c if c else 0.0))
    return out


def load_line(when):
    if not hasattr(os, "getloadavg"):
        return f"load average at {when}: not available on this system"
    one, five, fifteen = os.getloadavg()
    return (f"load average at {when}: {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) "
            f"on {os.cpu_count()} cores")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="folder of audio tracks (default: %(default)s)")
    parser.add_argument("--n-tracks", type=int, default=10,
                        help="tracks timed per route (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds; each times every route once (default: %(default)s)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import torch

    torch.set_num_threads(1)

    tmp = tempfile.TemporaryDirectory(prefix="bench_spectrogram_")
    paths = find_tracks(args.data, args.n_tracks) if Path(args.data).is_dir() else []
    source = args.data
    if not paths:
        paths = synthetic_tracks(tmp.name, args.n_tracks)
        source = f"synthetic FLAC clips ({args.data} not found)"
    n = len(paths)
    print(f"{n} tracks from {source}; one core; per 30 s track (load + {N_SEG} x 3 s "
          f"spectrograms); {args.repeat} rounds, the routes alternating within each")
    print(load_line("start"))
    print()

    # warm-up: imports, caches, first-call costs of every route
    for scale in SCALES:
        route_study(paths[:1], scale, tmp.name)
        route_librosa(paths[:1], scale)
        for fft_dtype in ("float32", "float64"):
            route_specgenre(paths[:1], scale, fft_dtype=fft_dtype)

    splits = {(s, d): [] for s in SCALES for d in ("float32", "float64")}  # CPU time splits
    runs = {
        "study (specshow+PNG)": lambda s: route_study(paths, s, tmp.name),
        "librosa loop": lambda s: route_librosa(paths, s),
        "specgenre": lambda s: route_specgenre(paths, s, splits[s, "float32"], "float32"),
        "specgenre f64 FFT": lambda s: route_specgenre(paths, s, splits[s, "float64"],
                                                       "float64"),
    }
    cpu = {(r, s): [] for r in ROUTES for s in SCALES}
    wall = {(r, s): [] for r in ROUTES for s in SCALES}
    kernel = {(r, s): [] for r in ROUTES for s in SCALES}
    last = {}
    for _ in range(args.repeat):
        for scale in SCALES:
            for route in ROUTES:
                last[route, scale], c, w, k = timed(lambda r=route, s=scale: runs[r](s))
                cpu[route, scale].append(c / n * 1e3)
                wall[route, scale].append(w / n * 1e3)
                kernel[route, scale].append(k / c if c else 0.0)

    print(f"{'route':<22} {'scale':<6} {'CPU ms':>8} {'(median)':>9} {'wall ms':>8} "
          f"{'kernel':>7} {'vs study (CPU)':>20} {'vs librosa (CPU)':>22}")
    for scale in SCALES:
        study = np.array(cpu[ROUTES[0], scale])
        plain = np.array(cpu[ROUTES[1], scale])
        for route in ROUTES:
            c = np.array(cpu[route, scale])
            vs_study, vs_plain = study / c, plain / c
            print(f"{route:<22} {scale:<6} {c.min():8.1f} {np.median(c):9.1f} "
                  f"{min(wall[route, scale]):8.1f} "
                  f"{kernel[route, scale][int(c.argmin())]:7.0%} "
                  f"{study.min() / c.min():6.1f}x ({vs_study.min():4.1f}-{vs_study.max():4.1f}x) "
                  f"{plain.min() / c.min():7.2f}x ({vs_plain.min():4.2f}-{vs_plain.max():4.2f}x)")
    print()
    for scale in SCALES:
        ref = np.stack(last[ROUTES[1], scale])
        for route, fft_dtype in zip(ROUTES[2:], ("float32", "float64"), strict=True):
            load, seg, spec = np.min(np.array(splits[scale, fft_dtype]), axis=0) / n * 1e3
            diff = np.abs(last[route, scale][:, 0] - ref).max()
            print(f"{route} {scale}: CPU load {load:.1f} + segment {seg:.1f} + spectrogram "
                  f"{spec:.1f} ms/track; max |specgenre - librosa| = {diff:.1e} dB "
                  f"over {len(ref)} segments")
    print()
    print("FFT alone, CPU us per frame (best of 20-call runs of 390 frames):")
    for (n_fft, dtype, name), us in fft_per_frame(args.repeat).items():
        print(f"  n_fft {n_fft} {dtype} {name:<6} {us:6.2f}")
    print()
    print("First writes to a fresh 128 MiB float32 array, CPU ms per MiB (best, median; kernel "
          "share of the best):")
    for name, runs in first_write_cost(args.repeat).items():
        ms, share = min(runs)
        print(f"  {name:<10} {ms:6.2f} {np.median([r[0] for r in runs]):6.2f}  {share:4.0%}")
    print()
    print(load_line("end"))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
