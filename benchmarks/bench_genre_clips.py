"""Speed and learnability of :func:`specgenre.datasets.make_genre_clips`.

Learnability: per-band mean and standard deviation of a 64-band log-mel
spectrogram (n_fft=2048, hop=512) -> StandardScaler -> LogisticRegression,
stratified 5-fold cross-validation, repeated over several seeds.

Usage::

    python benchmarks/bench_genre_clips.py                 # defaults below
    python benchmarks/bench_genre_clips.py --n-per-genre 20 --duration 30 --seeds 0 1 2
"""

import argparse
import time

import numpy as np


def logmel_stats(X, sr, n_mels=64):
    import librosa

    S = librosa.feature.melspectrogram(y=X, sr=sr, n_fft=2048, hop_length=512, n_mels=n_mels)
    S = np.log(S + 1e-6)
    return np.concatenate([S.mean(-1), S.std(-1)], axis=1)


def main(argv=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from specgenre.datasets import make_genre_clips

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-per-genre", type=int, default=15)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--speed-clips", type=int, default=10, help="clips per genre for the timing")
    args = p.parse_args(argv)

    make_genre_clips(1, duration=1.0, random_state=0)  # warm up imports
    t0, c0 = time.perf_counter(), time.process_time()
    make_genre_clips(args.speed_clips, duration=30.0, random_state=0)
    print(
        f"generation: {10 * args.speed_clips} clips x 30 s in {time.perf_counter() - t0:.2f} s wall, "
        f"{time.process_time() - c0:.2f} s CPU"
    )

    accs = []
    for seed in args.seeds:
        b = make_genre_clips(args.n_per_genre, duration=args.duration, random_state=seed)
        F = logmel_stats(b.data, b.sr)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        pred = cross_val_predict(model, F, b.target, cv=cv)
        acc = float(np.mean(pred == b.target))
        # per-fold accuracies for mean +- std
        folds = [np.mean(pred[te] == b.target[te]) for _, te in cv.split(F, b.target)]
        accs.extend(folds)
        print(f"seed {seed}: CV accuracy {acc:.3f} (folds {np.round(folds, 2).tolist()})")
        if seed == args.seeds[0]:
            cm = confusion_matrix(b.target, pred, labels=b.target_names)
            print("confusion (rows true):", b.target_names)
            print(cm)
    print(
        f"{len(args.seeds)} seeds x 5 folds, n={10 * args.n_per_genre}, {args.duration:g} s clips: "
        f"accuracy {np.mean(accs):.3f} +- {np.std(accs):.3f}"
    )


if __name__ == "__main__":
    main()
