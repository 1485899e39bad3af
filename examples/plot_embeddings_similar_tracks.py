"""
=====================================================
Genre embeddings and similar tracks
=====================================================

A genre classifier learns, on its way to the decision, a compact
description of what it hears: the activations of the layer before the
last, an *embedding*. The study proposed to use such embeddings for
recommendation: tracks whose embeddings lie close sound alike and can be
played one after the other.

Here a small :class:`~specgenre.CNNClassifier` is trained on the 3 s
segments of half of a set of synthetic clips. Its
:meth:`~specgenre.CNNClassifier.transform` gives the embeddings; the other
half of the clips, which the network never heard, are drawn on a 2-D map
(:func:`~specgenre.plot_embedding_map`), and
:func:`~specgenre.similar_tracks` finds the nearest tracks of a query.
"""

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from specgenre import (
    ClipSegmenter,
    CNNClassifier,
    SpectrogramTransformer,
    TrackAggregator,
    make_genre_clips,
    plot_embedding_map,
    similar_tracks,
)

# %%
# Clips, split by track
# ---------------------
# Eight synthetic clips of 9 s per genre, each three 3 s segments. Half of
# each genre's tracks train the network; the other half are held out.

clips = make_genre_clips(n_per_genre=8, duration=9.0, random_state=0)
X, y, track_ids = clips.data, clips.target, clips.track_ids
train, held_out = train_test_split(np.arange(len(X)), test_size=0.5, stratify=y,
                                   random_state=0)

# %%
# The classifier
# --------------
# A pipeline of mel spectrograms and a small CNN, trained on 3 s segments
# and voting per clip by mean probability (the study's "3 s + Prob"). The
# :class:`~specgenre.TrackAggregator` passes each segment's clip to the
# network as its group, so that the network's inner validation split, if
# it makes one, never separates the segments of a clip. The CNN has half
# its default channels, averages 4 neighbouring mel bands
# (``freq_pool=4``) and trains for eight epochs: enough for synthetic clips,
# and fast.

segment_model = Pipeline([
    ("spectrogram", SpectrogramTransformer(scale="mel")),
    ("cnn", CNNClassifier(channels=(8, 16, 32, 64), freq_pool=4, max_epochs=8,
                          batch_size=16, lr=3e-3, random_state=0)),
])
model = TrackAggregator(segment_model, segmenter=ClipSegmenter(3.0), voting="soft")
model.fit(X[train], y[train])
print(f"held-out clip accuracy: {model.score(X[held_out], y[held_out]):.3f}")

# %%
# Embeddings
# ----------
# The fitted segment pipeline is ``model.estimator_``. Its ``transform``
# runs every step's ``transform``: the spectrogram, then the CNN's, which
# returns the penultimate layer (after global average pooling) instead of
# class probabilities, one 64-dimensional vector per segment.

segmenter = model.segmenter_
segments, clip_of_segment = segmenter.segment(X)
embeddings = model.estimator_.transform(segments)
segment_track = track_ids[clip_of_segment]
print("embeddings:", embeddings.shape, embeddings.dtype)

# %%
# A map of tracks the network never heard
# ---------------------------------------
# t-SNE places the held-out segments in 2-D so that near neighbours in the
# 64-dimensional embedding stay near. Segments of one genre gathering in
# one region means the embedding separates genres beyond the training
# tracks; genres that mix are the ones the classifier confuses.

is_held_out = np.isin(clip_of_segment, held_out)
coords = plot_embedding_map(embeddings[is_held_out], y[clip_of_segment][is_held_out],
                            method="tsne", random_state=0,
                            title="t-SNE of CNN embeddings, held-out segments")

# %%
# Similar tracks
# --------------
# For recommendation, each track is described by the mean embedding of its
# segments (``groups=``), and :func:`~specgenre.similar_tracks` returns the
# nearest tracks by cosine distance. The catalogue holds every track, the
# query is a held-out one.

query = track_ids[held_out[0]]
genre_of = dict(zip(track_ids, y))
print(f"tracks most similar to {query} ({genre_of[query]}):")
for track, distance in similar_tracks(embeddings, None, query, n_neighbors=5,
                                      groups=segment_track):
    print(f"  {track:14s} {genre_of[track]:10s} cosine distance {distance:.3f}")

# %%
# How often do a held-out track's five nearest tracks share its genre?
# With ten genres and no information, one in ten would.

neighbours = similar_tracks(embeddings, None, list(track_ids[held_out]), n_neighbors=5,
                            groups=segment_track)
same = [np.mean([genre_of[t] == genre_of[q] for t, _ in found])
        for q, found in neighbours.items()]
print(f"same genre among the 5 nearest tracks: {np.mean(same):.0%} (chance: 10%)")
