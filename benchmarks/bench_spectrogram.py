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
  on the whole batch of tracks (n_jobs=1), with the default float32 FFT
  (within 0.01 dB of librosa) and with ``fft_dtype="float64"`` (within
  1e-3 dB).

Everything runs on one core (BLAS/OpenMP and torch limited to one thread).
The table gives milliseconds per track (best of ``--repeat`` runs) and the
speed-up over the study route and over the plain librosa loop; the next
lines give specgenre's time split and its largest difference to librosa in
dB. The last lines time the FFT alone (the bulk of the work), per frame:
scipy's (pocketfft) against torch's (MKL where torch has it), which
SpectrogramTransformer uses.

Usage::

    python benchmarks/bench_spectrogram.py [--data DIR] [--n-tracks N] [--repeat R]

``--data`` defaults to ``../shared/data/gtzan_dev`` next to the repository
(FLAC files, searched recursively); when absent, synthetic 30 s clips are
written as FLAC to a temporary folder and used instead.
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

SR = 22050
SEG = 3 * SR  # 66150 samples
N_SEG = 10
SCALES = {"db": 1024, "mel": 2048}  # scale -> n_fft
HOP = 512
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gtzan_dev"


def find_tracks(data, n_tracks):
    exts = {".wav", ".flac", ".au", ".ogg"}
    paths = sorted(p for p in Path(data).rglob("*") if p.suffix.lower() in exts)
    return [str(p) for p in paths[:n_tracks]]


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

    t0 = time.perf_counter()
    X = AudioLoader(sr=SR, duration=30.0, n_jobs=1).fit_transform(paths)
    t1 = time.perf_counter()
    segments = ClipSegmenter(3.0, sr=SR).fit_transform(X)
    t2 = time.perf_counter()
    S = SpectrogramTransformer(scale, sr=SR, hop_length=HOP, fft_dtype=fft_dtype,
                               n_jobs=1).fit_transform(segments)
    t3 = time.perf_counter()
    if timings is not None:
        timings.append((t1 - t0, t2 - t1, t3 - t2))
    return S


def fft_per_frame(repeat):
    """Microseconds per frame of scipy's and torch's real FFT, float32 and float64."""
    import scipy.fft
    import torch

    rng = np.random.default_rng(0)
    out = {}
    for n_fft in SCALES.values():
        for dtype in ("float32", "float64"):
            frames = rng.standard_normal((130, n_fft)).astype(dtype)  # one 3 s segment
            tensor = torch.from_numpy(frames)
            for name, func in (
                ("scipy", lambda f=frames: scipy.fft.rfft(f, axis=-1, workers=1)),
                ("torch", lambda t=tensor: torch.fft.rfft(t, dim=-1)),
            ):
                func()
                secs = best_of(lambda f=func: [f() for _ in range(20)], repeat) / 20
                out[(n_fft, dtype, name)] = secs / len(frames) * 1e6
    return out


def best_of(func, repeat):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="folder of audio tracks (default: %(default)s)")
    parser.add_argument("--n-tracks", type=int, default=10,
                        help="tracks timed per route (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per route; the best is kept (default: %(default)s)")
    parser.add_argument("--study-repeat", type=int, default=1,
                        help="runs of the (slow) study route (default: %(default)s)")
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
    print(f"{n} tracks from {source}; one core; ms per 30 s track "
          f"(load + {N_SEG} x 3 s spectrograms), best of {args.repeat} "
          f"(study route: {args.study_repeat})")
    if hasattr(os, "getloadavg"):
        print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
              "(anything above ~0 means other processes skew the timings)")
    print()

    # warm-up: imports, caches, first-call costs
    route_specgenre(paths[:1], "db")
    route_specgenre(paths[:1], "mel")
    route_librosa(paths[:1], "mel")

    ours = {"specgenre": "float32", "specgenre f64 FFT": "float64"}
    rows, notes = [], []
    for scale in SCALES:
        study = best_of(lambda s=scale: route_study(paths, s, tmp.name), args.study_repeat)
        rows.append(("study (specshow+PNG)", scale, study))
        rows.append(("librosa loop", scale,
                     best_of(lambda s=scale: route_librosa(paths, s), args.repeat)))
        ref = np.stack(route_librosa(paths, scale))
        for route, fft_dtype in ours.items():
            timings = []
            secs = best_of(lambda s=scale, t=timings, d=fft_dtype: route_specgenre(paths, s, t, d),
                           args.repeat)
            rows.append((route, scale, secs))
            load, seg, spec = np.min(np.array(timings), axis=0) / n * 1e3
            diff = np.abs(route_specgenre(paths, scale, fft_dtype=fft_dtype)[:, 0] - ref).max()
            notes.append(f"{route} {scale}: load {load:.1f} + segment {seg:.1f} + spectrogram "
                         f"{spec:.1f} ms/track; max |specgenre - librosa| = {diff:.1e} dB")

    print(f"{'route':<22} {'scale':<6} {'ms/track':>9} {'vs study':>9} {'vs librosa':>11}")
    study = {scale: secs for route, scale, secs in rows if route.startswith("study")}
    plain = {scale: secs for route, scale, secs in rows if route.startswith("librosa")}
    for route, scale, secs in rows:
        print(f"{route:<22} {scale:<6} {secs / n * 1e3:9.1f} {study[scale] / secs:8.1f}x "
              f"{plain[scale] / secs:10.2f}x")
    print()
    print("\n".join(notes))
    print()
    print("FFT alone, us per frame (best of 20-call runs):")
    for (n_fft, dtype, name), us in fft_per_frame(args.repeat).items():
        print(f"  n_fft {n_fft} {dtype} {name:<6} {us:6.2f}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
