"""
=====================================
Reproducing rows of the study's table
=====================================

Every row of the study's results table is one scikit-learn estimator,
built by :func:`~specgenre.make_row` from its entry in
:data:`~specgenre.study.STUDY_ROWS`. This example scores four of them
the same way, by track-level cross-validation, prints the results table
that ``specgenre reproduce`` writes, and draws our accuracies next to the
study's figures:

* ``cnn_30s_mel``: a small CNN on the mel spectrogram of each whole clip;
* ``resnet18_scratch_3s_prob_db``: ResNet18 from scratch on dB STFT
  spectrograms of 3 s segments, a clip's genre being the argmax of its
  segments' mean probabilities ("3 s + Prob");
* ``xgboost_30s`` and ``xgboost_3s_mv``: XGBoost on Kaggle's 57
  hand-crafted features of whole clips, or of 3 s segments with a majority
  vote per clip ("3 s + MV", the clip-level row the study did not run).

.. warning::

   The numbers below are **not** comparable with the study's. They come
   from a few synthetic clips of 6 s (:func:`~specgenre.make_genre_clips`),
   not from GTZAN's 1000 clips of 30 s, and the networks are trained for a
   handful of epochs on forty clips, with their inputs pooled, so that
   the example needs well under a minute of CPU time. The
   example shows *how* the rows are run and tabulated; run
   ``specgenre reproduce --data DIR`` on GTZAN for real figures.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score

from specgenre import (
    STUDY_ROWS,
    ClipSegmenter,
    FeatureExtractor,
    group_segments,
    make_genre_clips,
    make_row,
)
from specgenre.evaluation import RowResult, evaluate_rows
from specgenre.report import format_table

# %%
# Data and folds
# --------------
# Six synthetic clips of 6 s for each of the ten genres. Each clip holds two
# 3 s segments (a GTZAN clip holds ten). All rows are scored on the same
# three stratified folds *of clips*, so no clip, and no segment of a clip,
# is ever both trained on and tested on.

clips = make_genre_clips(n_per_genre=6, duration=6.0, random_state=0)
X, y = clips.data, clips.target
print(f"{len(X)} clips of {X.shape[1] / clips.sr:.0f} s, {len(clips.target_names)} genres")

N_FOLDS = 3
cv = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=0)

for name in ["cnn_30s_mel", "resnet18_scratch_3s_prob_db", "xgboost_30s", "xgboost_3s_mv"]:
    row = STUDY_ROWS[name]
    reported = "not run" if row.study_accuracy is None else f"{row.study_accuracy:.0%}"
    print(f"{name:30s} {row.title:32s} study: {reported}")

# %%
# The neural rows, with ``evaluate_rows``
# ---------------------------------------
# ``specgenre.evaluation.evaluate_rows`` is what ``specgenre reproduce``
# runs: for each row it builds a fresh estimator with
# :func:`~specgenre.make_row`, fits it on the clips of each training fold
# and scores it on the clips of the test fold (``cv=3`` makes the same
# stratified, shuffled folds as above, with ``random_state=0``). A row that
# fails is recorded as such instead of stopping the others.
#
# ``params`` overrides the classifier's parameters. Here: three epochs for
# the CNN and two for ResNet18, and ``freq_pool`` averages neighbouring frequency rows inside the network
# (4 mel bands, or 16 STFT bins of the 513), which makes training several
# times cheaper. Both are for speed only; the study trained far longer on
# full-resolution spectrograms.

results = []
start = time.perf_counter()
results += evaluate_rows(["cnn_30s_mel"], X, y, cv=N_FOLDS, random_state=0,
                         params={"max_epochs": 3, "freq_pool": 4})
results += evaluate_rows(["resnet18_scratch_3s_prob_db"], X, y, cv=N_FOLDS, random_state=0,
                         params={"max_epochs": 2, "freq_pool": 16})
print(f"neural rows: {time.perf_counter() - start:.0f} s")

# %%
# The XGBoost rows, from a feature table
# --------------------------------------
# On audio, an XGBoost row is a pipeline that extracts the 57 features
# (:class:`~specgenre.FeatureExtractor`) and fits the trees. The extractor
# learns nothing from the data (each clip's features depend on that clip
# alone), which is why ``evaluate_rows`` computes each clip's features once
# and reuses them in every fold and row. The same holds for a feature table
# computed once, as Kaggle's CSV files are: cross-validating the classifier
# on its rows gives the same scores. ``make_row(name, source="features")``
# builds the rows for such tables:
#
# * ``xgboost_30s``: an :class:`~specgenre.XGBoostClassifier` on one row per
#   clip;
# * ``xgboost_3s_mv``: a :class:`~specgenre.TrackAggregator` whose samples
#   are whole clips, each the block of its segments' feature rows
#   (:func:`~specgenre.group_segments`), so the folds split clips, not
#   segments.
#
# Both keep the study's XGBoost settings (1000 trees, learning rate 0.05).

features = FeatureExtractor()
F_clips = features.fit_transform(X)                    # (n_clips, 57)
segments, clip_of_segment = ClipSegmenter(3.0).fit(X).segment(X)
F_segments = features.fit_transform(segments)          # (n_segments, 57)
F_by_clip, y_by_clip, _ = group_segments(F_segments, y[clip_of_segment], clip_of_segment)
assert np.array_equal(y_by_clip, y)                     # one sample per clip, same order
print("feature tables:", F_clips.shape, F_segments.shape)

for name, table in [("xgboost_30s", F_clips), ("xgboost_3s_mv", F_by_clip)]:
    row = STUDY_ROWS[name]
    start = time.perf_counter()
    model = make_row(name, source="features", random_state=0)
    scores = cross_val_score(model, table, y, cv=cv)
    unit = "clip accuracy" + (", majority vote of 3 s segments" if row.voting else "")
    results.append(RowResult(
        name, row.title, row.study_accuracy,
        f"{N_FOLDS}-fold stratified CV by track; {unit} (features computed once)",
        scores=scores.tolist(), seconds=time.perf_counter() - start))

# %%
# The results table
# -----------------
# ``format_table`` prints the table that
# ``specgenre reproduce`` writes to ``results/results.md``: the mean and
# standard deviation of the fold accuracies, the study's figure and what
# each figure measures.

print(format_table(results))

# %%
# Ours next to the study's
# ------------------------
# The same numbers as a chart. Error bars are the standard deviation over
# the three folds. Again: synthetic 6 s clips and a few epochs of training
# against GTZAN and full training, so the two bars of a row measure
# different things; only the way they are produced is the same.

names = [r.row for r in results]
ours = np.array([r.mean for r in results])
ours_std = np.array([r.std for r in results])
study = np.array([np.nan if r.study_accuracy is None else r.study_accuracy for r in results])

fig, ax = plt.subplots(figsize=(8, 4.5))
pos = np.arange(len(names))
ax.bar(pos - 0.2, ours, width=0.4, yerr=ours_std, capsize=3,
       label="ours: synthetic clips, tiny training")
ax.bar(pos + 0.2, np.nan_to_num(study), width=0.4, label="study: GTZAN")
for i in np.flatnonzero(np.isnan(study)):
    ax.text(pos[i] + 0.2, 0.02, "not run", rotation=90, ha="center", va="bottom", fontsize=8)
ax.axhline(1 / len(clips.target_names), color="grey", lw=1, ls="--", label="chance (10 genres)")
ax.set_xticks(pos, [STUDY_ROWS[n].title for n in names], rotation=15, ha="right")
ax.set_ylabel("clip accuracy")
ax.set_ylim(0, 1)
ax.set_title("Not comparable: different data, different training budget")
ax.legend(loc="upper left", fontsize="small")
fig.tight_layout()
