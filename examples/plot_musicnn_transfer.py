"""
=====================================================
Transfer from a network pretrained on music (musicnn)
=====================================================

musicnn (Pons & Serra, 2019) is a small convolutional tagger trained on the
Million Song Dataset's tags (genres, moods, eras, instruments). Its layers
describe music well enough that a linear model on top of them learns a new
genre task from a few dozen tracks. Here:

1. the top MSD tags of a few tracks, with no training at all
   (:func:`~specgenre.top_tags`);
2. :class:`~specgenre.MusicnnEmbedding` (the ``max_pool`` layer, averaged
   over a clip's 3 s patches) -> standardisation -> SVM, cross-validated by
   track;
3. a 2-D map of the embeddings (:func:`~specgenre.plot_embedding_map`).

The weights are the official ones, from ``pip install --no-deps musicnn``
(converted once to PyTorch; TensorFlow is not needed). The example uses
the 51 GTZAN development tracks when ``../shared/data/gtzan_dev`` exists
(their first 6 s, to keep it quick on a CPU) and synthetic clips
(:func:`~specgenre.make_genre_clips`) otherwise.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from specgenre import (
    MusicnnEmbedding,
    load_audio,
    load_gtzan,
    make_genre_clips,
    plot_embedding_map,
    top_tags,
)


def _dev_folder():
    for base in [Path.cwd(), *Path.cwd().parents]:
        folder = base / "shared" / "data" / "gtzan_dev"
        if folder.is_dir():
            return folder
    return None


SR = 22050
folder = _dev_folder()
if folder is not None:
    dev = load_gtzan(folder, genres=["classical", "jazz", "rock"])
    X = load_audio(dev.filenames, duration=6.0).X
    y = dev.target
    source = f"GTZAN dev tracks ({folder})"
else:
    clips = make_genre_clips(8, genres=["classical", "jazz", "metal"], duration=6.0,
                             random_state=0)
    X, y = clips.data, clips.target
    source = "synthetic clips"
print(f"{source}: {X.shape[0]} clips of {X.shape[1] / SR:.0f} s, genres {sorted(map(str, set(y)))}")

# %%
# Tags, without training
# ----------------------
# The mean of the tag probabilities over a clip's 3 s patches, as the
# official ``musicnn`` tagger computes them. ``specgenre tags FILE...`` prints
# the same from the command line.

first = [np.flatnonzero(y == g)[0] for g in sorted(set(y))]
for i, tags in zip(first, top_tags(X[first], sr=SR, n=4)):
    print(f"{y[i]:>10}: " + ", ".join(f"{t} ({p:.2f})" for t, p in tags))

# %%
# Embeddings -> SVM
# -----------------
# The embedding has no parameters to learn, so it is computed once here
# and the SVM is cross-validated on it; in a grid search over layers, put
# it in a ``Pipeline(memory=...)`` instead so that it is computed once per
# layer and fold.

E = MusicnnEmbedding(layer="max_pool").fit_transform(X)
svm = make_pipeline(StandardScaler(), SVC(C=1.0, kernel="rbf", gamma="scale"))
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
scores = cross_val_score(svm, E, y, cv=cv)
print(f"embedding {E.shape[1]}-d; 3-fold accuracy by track: "
      f"{scores.mean():.3f} +- {scores.std():.3f}")

# %%
# Embedding map
# -------------
# PCA of the standardised embeddings, coloured by genre.

fig, ax = plt.subplots(figsize=(5, 4))
plot_embedding_map(E, y, method="pca", ax=ax, title=f"musicnn max_pool, {source.split(' (')[0]}")
fig.tight_layout()
plt.show()
