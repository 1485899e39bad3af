"""
=============================================
Searching over spectrogram scale and voting
=============================================

Several rows of the study's table differ in one setting only: the
spectrogram scale (mel or dB STFT), the way a clip's 3 s segments are
combined (majority vote, "3 s + MV", or mean probability, "3 s + Prob"),
and whether ResNet18 starts from ImageNet weights. Because a whole model is
one estimator, these settings are ordinary parameters, and one
:class:`~sklearn.model_selection.GridSearchCV` compares them under the same
track-level cross-validation.

The model is a :class:`~specgenre.TrackAggregator` around a pipeline of a
:class:`~specgenre.SpectrogramTransformer` and a small
:class:`~specgenre.CNNClassifier`, the shape of the study's "3 s" rows
(which use ResNet18; the CNN keeps this example fast). The data are
synthetic clips of 9 s and the network trains for four epochs, so the
scores only illustrate the search; they say nothing about GTZAN.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from joblib import Memory
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from specgenre import (
    ClipSegmenter,
    CNNClassifier,
    ResNet18Classifier,
    SpectrogramTransformer,
    TrackAggregator,
    make_genre_clips,
)
from specgenre.networks import resnet18_weights_path

# %%
# Data
# ----
# Five clips of 9 s per genre, three 3 s segments each. (With two segments
# per clip the two votings would almost always agree: two segments that
# disagree tie, and :class:`~specgenre.TrackAggregator` breaks a tie by
# the summed probabilities, which is what the mean-probability vote does.)

clips = make_genre_clips(n_per_genre=5, duration=9.0, random_state=0)
X, y = clips.data, clips.target

# %%
# A 3 s model whose spectrograms are cached
# -----------------------------------------
# In a grid search every candidate is fitted on every training fold. Here
# the candidates that differ only in ``voting`` would compute exactly the
# same spectrograms of exactly the same segments. A
# :class:`~sklearn.pipeline.Pipeline` with ``memory`` stores what each
# transformer step computed during ``fit`` on disk (in a
# :class:`joblib.Memory` folder), keyed by the step's parameters and its
# input, and reuses it the next time the same step sees the same data.
# The cache holds only fit-time output: the spectrograms of the test
# segments are recomputed at prediction time.
#
# ``freq_pool=4`` averages 4 neighbouring frequency rows inside the
# network (128 mel bands become 32, 513 STFT bins 129) and the CNN has
# half its default channels, to keep the example fast; batches of 16 at a
# learning rate of 3e-3 make a few epochs on a hundred segments go further
# than the defaults (batches of 32 at 1e-3, meant for GTZAN's thousands).

cache_dir = tempfile.mkdtemp(prefix="specgenre-example-")
segment_model = Pipeline(
    [
        ("spectrogram", SpectrogramTransformer(scale="mel")),
        ("net", CNNClassifier(channels=(8, 16, 32, 64), freq_pool=4, max_epochs=4,
                              batch_size=16, lr=3e-3, random_state=0)),
    ],
    memory=Memory(cache_dir, verbose=0),
)
model = TrackAggregator(segment_model, segmenter=ClipSegmenter(segment_seconds=3.0))

# %%
# The grid
# --------
# Parameters of nested estimators are reached with ``__``: ``voting`` is the
# aggregator's own, ``estimator__spectrogram__scale`` the transformer's
# inside it.
#
# Pretraining is a third axis, for ResNet18. It needs torchvision's ImageNet
# weights, which this example uses only if they are already in the torch
# hub cache (``$TORCH_HOME/hub/checkpoints``); it never downloads them.
# When they are there, a second grid compares ResNet18 from scratch and
# pretrained on dB spectrograms with mean-probability voting, the setting
# of the study's best rows. For a ResNet18 model the axis is simply::
#
#     {"estimator__net": [ResNet18Classifier(...)],
#      "estimator__net__pretrained": [False, True]}

param_grid = [{
    "estimator__spectrogram__scale": ["mel", "db"],
    "voting": ["hard", "soft"],
}]
weights_file = resnet18_weights_path()[0]
if os.path.isfile(weights_file):
    param_grid.append({
        "estimator__spectrogram__scale": ["db"],
        "voting": ["soft"],
        "estimator__net": [ResNet18Classifier(freq_pool=16, max_epochs=2, random_state=0)],
        "estimator__net__pretrained": [False, True],
    })
    print(f"ImageNet weights found at {weights_file}: searching over pretraining too")
else:
    print(f"No ImageNet weights at {weights_file}: the pretraining axis is left out")

# %%
# The search
# ----------
# Three folds of *clips*: the aggregator cuts segments inside ``fit`` and
# ``predict``, so a clip's segments are always on the same side of a
# split. ``refit=True`` (the default) fits the best candidate on all clips.

search = GridSearchCV(model, param_grid,
                      cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0))
start = time.perf_counter()
search.fit(X, y)
print(f"search: {time.perf_counter() - start:.0f} s")
print("best:", search.best_params_, f"accuracy {search.best_score_:.3f}")

# %%
# How much the cache saved: each entry in the cache folder is one
# spectrogram computation of a training fold. Without ``memory`` there
# would be one per fit.

n_fits = len(search.cv_results_["params"]) * search.n_splits_ + 1  # + the refit
n_computed = sum(1 for _ in Path(cache_dir).rglob("output.pkl"))
print(f"{n_fits} pipeline fits, {n_computed} spectrogram computations")

# %%
# Results
# -------
# ``cv_results_`` holds every candidate's fold scores and timings; as a
# :class:`pandas.DataFrame`, sorted by rank (mean and standard deviation
# of the fold accuracies, mean fit time in seconds):

results = pd.DataFrame(search.cv_results_)
params = [c for c in results.columns if c.startswith("param_")]
table = results[params + ["mean_test_score", "std_test_score", "mean_fit_time",
                          "rank_test_score"]].sort_values("rank_test_score")
table.columns = [c.removeprefix("param_") for c in table.columns]
print(table.to_string(index=False, float_format="{:.3f}".format))

# %%
# The scale x voting grid as a heat map: mean accuracy over the three
# folds, standard deviation in brackets.

grid = results  # the CNN candidates (the ResNet18 ones, if any, have a "pretrained")
if "param_estimator__net__pretrained" in results:
    grid = results[results["param_estimator__net__pretrained"].isna()]
scales, votings = ["mel", "db"], ["hard", "soft"]
mean = np.empty((2, 2))
std = np.empty((2, 2))
for i, scale in enumerate(scales):
    for j, voting in enumerate(votings):
        sel = grid[(grid["param_estimator__spectrogram__scale"] == scale)
                   & (grid["param_voting"] == voting)].iloc[0]
        mean[i, j], std[i, j] = sel["mean_test_score"], sel["std_test_score"]

fig, ax = plt.subplots(figsize=(5, 4))
im = ax.imshow(mean, cmap="viridis", vmin=0, vmax=1)
for i in range(2):
    for j in range(2):
        ax.text(j, i, f"{mean[i, j]:.2f}\n({std[i, j]:.2f})", ha="center", va="center",
                color="white" if mean[i, j] < 0.6 else "black")
ax.set_xticks([0, 1], ["hard (3 s + MV)", "soft (3 s + Prob)"])
ax.set_yticks([0, 1], ["mel", "dB STFT"])
ax.set_xlabel("voting")
ax.set_ylabel("spectrogram scale")
ax.set_title("CNN on 3 s segments: clip accuracy")
fig.colorbar(im, ax=ax, fraction=0.046)
fig.tight_layout()

# %%
# With fifty clips, differences of a few points between cells are within
# the spread of the folds (the standard deviations): this grid shows how
# to compare settings, not which one is better. On GTZAN the study's
# pretrained ResNet18 did better on dB STFT than on mel spectrograms, with
# little difference between the two votings.

# %%
# The cache folder is temporary; remove it.

shutil.rmtree(cache_dir, ignore_errors=True)
