"""
==========================================
Quickstart: a spectrogram genre classifier
==========================================

A genre classifier in specgenre is an ordinary scikit-learn pipeline:
waveforms go in, a :class:`~specgenre.SpectrogramTransformer` turns each one
into a dB-scaled mel spectrogram, a small function summarises each mel band
by its mean and standard deviation over time, and a plain
:class:`~sklearn.linear_model.LogisticRegression` makes the decision.
Because the whole model is one estimator, cross-validation splits whole
clips and fits every step on the training folds only.

The clips come from :func:`~specgenre.make_genre_clips`, a built-in
generator of synthetic music-like clips of the ten GTZAN genres, so the
example needs no download and runs in seconds; on GTZAN the same pipeline
takes the waveforms decoded from the audio files instead.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from specgenre import (
    SpectrogramTransformer,
    make_genre_clips,
    plot_confusion_matrix,
    plot_spectrogram_examples,
)

# %%
# Synthetic clips
# ---------------
# 20 clips of 5 s for each of the ten genres, as float32 waveforms at
# 22050 Hz, one row per clip, with the genre of each clip as a string.

clips = make_genre_clips(n_per_genre=20, duration=5.0, random_state=0)
X, y = clips.data, clips.target
print(f"{X.shape[0]} clips of {X.shape[1] / clips.sr:.0f} s, genres: {clips.target_names}")

# %%
# What the classifier sees
# ------------------------
# The transformer gives float32 images of shape ``(n_clips, 1, n_mels,
# n_frames)``, in dB below each clip's loudest bin.

first_of_each_genre = np.unique(y, return_index=True)[1]
S = SpectrogramTransformer(scale="mel", n_mels=64).fit_transform(X[first_of_each_genre])
print("spectrograms:", S.shape, S.dtype)
plot_spectrogram_examples(S, y[first_of_each_genre], sr=clips.sr)

# %%
# The pipeline, scored by 5-fold cross-validation
# -----------------------------------------------
# Summarising each mel band by its mean and standard deviation over time
# gives ``2 * n_mels`` features per clip, which a linear model handles well.


def band_mean_std(S):
    """Mean and standard deviation of each frequency band over time."""
    S = S.reshape(len(S), S.shape[-2], S.shape[-1])
    return np.concatenate([S.mean(axis=-1), S.std(axis=-1)], axis=1)


model = make_pipeline(
    SpectrogramTransformer(scale="mel", n_mels=64),
    FunctionTransformer(band_mean_std),
    StandardScaler(),
    LogisticRegression(max_iter=1000),
)
cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
y_pred = cross_val_predict(model, X, y, cv=cv)  # each clip predicted by the fold that left it out
scores = np.array([accuracy_score(y[test], y_pred[test]) for _, test in cv.split(X, y)])
print(f"5-fold accuracy: {scores.mean():.3f} +- {scores.std():.3f}")

# %%
# Which genres get confused? The same out-of-fold predictions as a
# confusion matrix (rows are the true genres).

ax = plot_confusion_matrix(y, y_pred, title="Out-of-fold predictions")
