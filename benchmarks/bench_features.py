"""Time Kaggle's 57 GTZAN features per 30 s track on one CPU core: librosa vs specgenre.

Routes, run side by side on the same decoded tracks:

* ``librosa`` -- the straight librosa calls, one feature at a time
  (``specgenre.features._reference_features``: seven STFTs, HPSS with
  ``scipy.ndimage.median_filter``), with the options Kaggle's tables were
  made with;
* ``specgenre`` -- ``FeatureExtractor(n_jobs=1)``: one shared STFT, exact
  running medians and numba kernels; the same values.

Everything runs on one core (BLAS/OpenMP/numba limited to one thread, set
before the imports and with threadpoolctl). The table gives milliseconds
per track, wall-clock and process CPU time (the median over the tracks of
the best of ``--repeat`` runs each), and the speed-up; then specgenre's
time per group of features and the largest difference between the routes.
Decoding is not timed. JIT compilation and first-call costs are paid
by a warm-up run before timing.

CPU time is the steadier figure on a shared machine: wall-clock includes
the time other processes hold the core.

The last table times every hand-written kernel against the librosa (or
scipy) call it replaces, on the same inputs (the reflect-padded STFT of
each track), in CPU ms per 30 s track, with the largest relative
difference of their outputs:

* ``median_filter_1d`` x 2 (HPSS's medians along time and frequency) vs
  ``scipy.ndimage.median_filter`` (what ``librosa.decompose.hpss`` calls);
* ``hpss_spectra`` (soft masks times phase) vs ``librosa.magphase``,
  ``librosa.util.softmask`` x 2 and the products, as in ``hpss``;
* ``istft`` x 2 vs ``librosa.istft(..., dtype=float32)``;
* ``spectral_stats`` vs ``librosa.feature.spectral_centroid``,
  ``spectral_bandwidth`` and ``spectral_rolloff`` on the magnitude;
* ``zero_crossing_rate`` vs ``librosa.feature.zero_crossing_rate``.

Usage::

    python benchmarks/bench_features.py [--data DIR] [--n-tracks N] [--repeat R]

``--data`` defaults to ``../shared/data/gtzan_dev`` next to the repository
(audio files, searched recursively, one per genre first); when absent,
synthetic 30 s clips are used instead.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _tracks import find_tracks  # noqa: E402  (benchmarks/_tracks.py)

SR = 22050
TRACK_SECONDS = 30
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gtzan_dev"
GROUPS = ("stft", "chroma", "spectral", "rms_zcr", "mfcc", "tempo", "hpss_median",
          "hpss_masks", "hpss_istft")


def load_tracks(paths):
    import soundfile as sf

    clips = []
    for path in paths:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        if sr != SR:
            raise ValueError(f"{path}: sampling rate {sr}, expected {SR}")
        clips.append(y.mean(axis=1, dtype=np.float32)[: TRACK_SECONDS * SR])
    return clips


def synthetic_tracks(n_tracks, seed=0):
    """30 s clips of decaying tones, a beat of noise bursts and background noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(TRACK_SECONDS * SR) / SR
    clips = []
    for _ in range(n_tracks):
        y = 0.02 * rng.standard_normal(len(t))
        for _ in range(8):
            f0, onset = rng.uniform(55, 4000), rng.uniform(0, TRACK_SECONDS)
            env = np.where(t >= onset, np.exp(-(t - onset) * rng.uniform(0.5, 4)), 0.0)
            y += rng.uniform(0.05, 0.2) * env * np.sin(2 * np.pi * f0 * t)
        beat = (np.mod(t, 60 / rng.uniform(70, 160)) < 0.03)
        y += 0.3 * beat * rng.standard_normal(len(t))
        clips.append((0.9 * y / np.abs(y).max()).astype(np.float32))
    return clips


def timed(func, repeat):
    """(best wall seconds, best CPU seconds, result) of ``repeat`` calls."""
    wall = cpu = np.inf
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = func()
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu, result


def _rel_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    scale = np.maximum(np.abs(b).max(), np.finfo(np.float32).tiny)
    return float(np.abs(a - b).max() / scale)


def kernel_pairs(y):
    """``{kernel: (ours, reference)}`` callables on the inputs of one track."""
    import librosa
    import scipy.ndimage

    from specgenre._feature_kernels import hpss_spectra, istft, spectral_stats, zero_crossing_rate
    from specgenre._median import median_filter_1d
    from specgenre.features import HOP_LENGTH, HPSS_KERNEL, N_FFT, PAD_MODE

    D = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH, pad_mode=PAD_MODE)
    S = np.abs(D)
    freq = librosa.fft_frequencies(sr=SR, n_fft=N_FFT)
    harm = median_filter_1d(S, HPSS_KERNEL, axis=-1)
    perc = median_filter_1d(S, HPSS_KERNEL, axis=-2)
    D_harm, D_perc = hpss_spectra(D, S, harm, perc)

    def medians_ours():
        return median_filter_1d(S, HPSS_KERNEL, axis=-1), median_filter_1d(S, HPSS_KERNEL, axis=-2)

    def medians_ref():
        return (scipy.ndimage.median_filter(S, size=(1, HPSS_KERNEL), mode="reflect"),
                scipy.ndimage.median_filter(S, size=(HPSS_KERNEL, 1), mode="reflect"))

    def masks_ref():  # the steps of librosa.decompose.hpss after the medians
        mag, phase = librosa.magphase(D)
        mask_h = librosa.util.softmask(harm, perc, power=2, split_zeros=True)
        mask_p = librosa.util.softmask(perc, harm, power=2, split_zeros=True)
        return (mag * mask_h) * phase, (mag * mask_p) * phase

    def spectral_ref():
        return (librosa.feature.spectral_centroid(S=S, freq=freq),
                librosa.feature.spectral_bandwidth(S=S, freq=freq),
                librosa.feature.spectral_rolloff(S=S, freq=freq))

    return {
        "median_filter_1d x2": (medians_ours, medians_ref),
        "hpss_spectra": (lambda: hpss_spectra(D, S, harm, perc), masks_ref),
        "istft x2": (lambda: [istft(d, hop_length=HOP_LENGTH) for d in (D_harm, D_perc)],
                     lambda: [librosa.istft(d, hop_length=HOP_LENGTH, dtype=np.float32)
                              for d in (D_harm, D_perc)]),
        "spectral_stats": (lambda: spectral_stats(S, freq), spectral_ref),
        "zero_crossing_rate": (lambda: (zero_crossing_rate(y),),
                               lambda: (librosa.feature.zero_crossing_rate(y),)),
    }


def kernel_table(clips, repeat):
    """CPU ms per track (median over tracks of the best of ``repeat``) per kernel."""
    rows = {}
    for y in clips:
        for name, (ours, ref) in kernel_pairs(y).items():
            _, c_ours, out_ours = timed(ours, repeat)
            _, c_ref, out_ref = timed(ref, repeat)
            diff = max(_rel_diff(a, b) for a, b in zip(out_ours, out_ref))
            entry = rows.setdefault(name, ([], [], []))
            entry[0].append(c_ours)
            entry[1].append(c_ref)
            entry[2].append(diff)
    return {name: (np.median(o) * 1e3, np.median(r) * 1e3, max(d))
            for name, (o, r, d) in rows.items()}


def print_kernel_table(clips, repeat):
    print("kernels vs the call each replaces (CPU ms/track, median over tracks; largest "
          "relative difference of the outputs, scaled by the reference's largest value):")
    print(f"  {'kernel':<20} {'ours':>8} {'librosa/scipy':>14} {'speed-up':>9} {'saved':>8} "
          f"{'rel. diff':>10}")
    for name, (ours, ref, diff) in kernel_table(clips, repeat).items():
        print(f"  {name:<20} {ours:8.1f} {ref:14.1f} {ref / ours:8.1f}x {ref - ours:8.1f} "
              f"{diff:10.1e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="folder of audio tracks (default: %(default)s)")
    parser.add_argument("--n-tracks", type=int, default=5,
                        help="tracks timed (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of specgenre per track; the best is kept (default: %(default)s)")
    parser.add_argument("--ref-repeat", type=int, default=1,
                        help="runs of the (slow) librosa route per track (default: %(default)s)")
    parser.add_argument("--kernels-only", action="store_true",
                        help="time only the kernels against the calls they replace")
    args = parser.parse_args(argv)

    import warnings

    from threadpoolctl import threadpool_limits

    from specgenre.features import (
        FEATURE_NAMES,
        FeatureExtractor,
        _clip_features,
        _reference_features,
    )

    threadpool_limits(1)
    warnings.filterwarnings("ignore", message="Trying to estimate tuning")

    paths = find_tracks(args.data, args.n_tracks) if Path(args.data).is_dir() else []
    if paths:
        clips = load_tracks(paths)
        source = f"{args.data}: " + ", ".join(Path(p).stem for p in paths)
    else:
        clips = synthetic_tracks(args.n_tracks)
        source = f"synthetic 30 s clips ({args.data} not found)"
    n = len(clips)
    print(f"{n} tracks from {source}")
    print(f"one core; ms per 30 s track: median over tracks of the best of {args.repeat} runs "
          f"(librosa: {args.ref_repeat})")
    if hasattr(os, "getloadavg"):
        print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
              "(anything above ~0 means other processes skew the wall-clock timings)")
    print()

    # warm-up: imports, numba compilation / cache loading, first-call costs
    _reference_features(clips[0][: 5 * SR], SR)
    FeatureExtractor(n_jobs=1).fit_transform(clips[0][None, : 5 * SR])

    if args.kernels_only:
        print_kernel_table(clips, args.repeat)
        return 0

    ref_wall, ref_cpu, ours_wall, ours_cpu, diffs = [], [], [], [], []
    groups = {g: [] for g in GROUPS}
    for y in clips:
        w, c, ref = timed(lambda y=y: _reference_features(y, SR), args.ref_repeat)
        ref_wall.append(w)
        ref_cpu.append(c)
        X = y[None, :]
        w, c, F = timed(lambda X=X: FeatureExtractor(n_jobs=1).fit_transform(X), args.repeat)
        ours_wall.append(w)
        ours_cpu.append(c)
        rel = np.abs(F[0] - ref) / np.maximum(np.abs(ref), 1e-30)
        diffs.append(rel)
        best = None
        for _ in range(args.repeat):  # the group split of the fastest run
            timings = {"clock": time.process_time}
            start = time.process_time()
            _clip_features(y, SR, timings)
            total = time.process_time() - start
            if best is None or total < best[0]:
                best = (total, timings)
        for g in GROUPS:
            groups[g].append(best[1].get(g, 0.0))

    def ms(values):
        return np.median(values) * 1e3

    print(f"{'route':<12} {'wall ms/track':>14} {'CPU ms/track':>13} {'speed-up (wall)':>16} "
          f"{'speed-up (CPU)':>15}")
    print(f"{'librosa':<12} {ms(ref_wall):14.0f} {ms(ref_cpu):13.0f} {1:15.1f}x {1:14.1f}x")
    print(f"{'specgenre':<12} {ms(ours_wall):14.0f} {ms(ours_cpu):13.0f} "
          f"{ms(ref_wall) / ms(ours_wall):15.1f}x {ms(ref_cpu) / ms(ours_cpu):14.1f}x")
    print()
    total = sum(ms(groups[g]) for g in GROUPS)
    print(f"specgenre per group (CPU ms/track, median; sum {total:.0f}):")
    for g in GROUPS:
        print(f"  {g:<12} {ms(groups[g]):6.1f}  {100 * ms(groups[g]) / total:4.0f}%")
    print()
    worst = np.max(diffs, axis=0)
    j = int(np.argmax(worst))
    print(f"largest relative difference specgenre vs librosa: {worst[j]:.1e} "
          f"({FEATURE_NAMES[j]}); columns bit-identical on every track: "
          f"{int(np.sum(worst == 0))} of {len(FEATURE_NAMES)}")
    print()
    print_kernel_table(clips, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
