"""Fitting from blocks of waveforms (specgenre._blockfit): the model of a plain fit."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from specgenre import (
    BandStatistics,
    ClipSegmenter,
    CNNClassifier,
    SpectrogramTransformer,
    TrackAggregator,
)
from specgenre._blockfit import fit_aggregator_blocks, fit_pipeline_blocks

SR = 22050

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def clips(n=9, seconds=6.5, seed=0):
    """Tones of three pitches (one per genre) with noise, 6.5 s: two 3 s segments each."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = np.array(["a", "b", "c"] * (n // 3))
    freq = {"a": 220.0, "b": 440.0, "c": 1760.0}
    X = np.stack([0.3 * np.sin(2 * np.pi * freq[g] * t * (1 + 0.01 * k))
                  + 0.05 * rng.standard_normal(len(t)) for k, g in enumerate(y)])
    return X.astype(np.float32), y


def band_pipeline():
    # the second step (a scaler) learns from the data: it must see every block
    return Pipeline([("spectrogram", SpectrogramTransformer("mel", n_mels=16)),
                     ("bands", BandStatistics()), ("scaler", StandardScaler()),
                     ("clf", LogisticRegression(max_iter=500))])


def blocks_of(X, y, bounds):
    """A generator of (clips, labels) blocks, as specgenre train decodes them."""
    return ((X[a:b].copy(), y[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))


def test_pipeline_from_blocks_equals_plain_fit():
    X, y = clips()
    plain = band_pipeline().fit(X, y)
    # max_items is a bound: fewer clips than announced is fine (skipped files)
    lean = fit_pipeline_blocks(band_pipeline(), blocks_of(X, y, [0, 2, 7, 9]), 12)
    np.testing.assert_array_equal(lean["scaler"].mean_, plain["scaler"].mean_)
    np.testing.assert_array_equal(lean.predict_proba(X), plain.predict_proba(X))


def test_pipeline_from_blocks_of_segments_equals_plain_fit():
    # xgboost_3s: clips cut into segments, each with its clip's label
    X, y = clips()
    seg = ClipSegmenter(3.0, sr=SR)
    segments, clip_index = seg.fit_segment(X)
    plain = band_pipeline().fit(segments, y[clip_index])
    lean = fit_pipeline_blocks(band_pipeline(), blocks_of(X, y, [0, 4, 9]), 9,
                               cut=lambda c: seg.segment(c)[0])
    np.testing.assert_array_equal(lean.predict_proba(segments), plain.predict_proba(segments))


def test_pipeline_from_blocks_errors():
    X, y = clips()
    with pytest.raises(ValueError, match="more than max_items=8"):
        fit_pipeline_blocks(band_pipeline(), blocks_of(X, y, [0, 9]), 8)
    with pytest.raises(ValueError, match="no block"):
        fit_pipeline_blocks(band_pipeline(), iter([]), 8)
    # every item must give as many samples as those of the first block
    uneven = iter([(X[:2], y[:2]), (X[2:4, :4 * SR], y[2:4])])
    with pytest.raises(ValueError, match="gave 4 samples, not 3 per item"):
        fit_pipeline_blocks(band_pipeline(), uneven, 9,
                            cut=lambda c: ClipSegmenter(2.0, sr=SR).fit_segment(c)[0])


def cnn_aggregator(voting="soft"):
    cnn = CNNClassifier(channels=(4, 8), max_epochs=2, batch_size=4, random_state=0)
    pipe = Pipeline([("spectrogram", SpectrogramTransformer("mel", n_mels=32)), ("cnn", cnn)])
    return TrackAggregator(pipe, segmenter=ClipSegmenter(3.0, sr=SR), voting=voting)


@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_aggregator_from_blocks_equals_plain_fit(voting):
    # the segments, their labels and groups (the inner validation split goes by
    # clip: 9 clips, valid_fraction 0.1 -> no split, so use 30 clips) are those of fit
    X, y = clips(n=30)
    plain = cnn_aggregator(voting).fit(X, y)
    lean = fit_aggregator_blocks(cnn_aggregator(voting), blocks_of(X, y, [0, 7, 20, 30]), 30)
    assert lean.estimator_["cnn"].n_valid_ == plain.estimator_["cnn"].n_valid_ > 0
    assert lean.n_features_in_ == plain.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(lean.classes_, plain.classes_)
    if voting == "soft":
        np.testing.assert_array_equal(lean.predict_proba(X), plain.predict_proba(X))
    np.testing.assert_array_equal(lean.predict(X), plain.predict(X))
    np.testing.assert_array_equal(lean.estimator_.transform(X[:, :3 * SR]),
                                  plain.estimator_.transform(X[:, :3 * SR]))


def test_aggregator_from_blocks_errors():
    X, y = clips()
    precomputed = TrackAggregator(LogisticRegression(), segmenter="precomputed")
    with pytest.raises(TypeError, match="precomputed"):
        fit_aggregator_blocks(precomputed, iter([(X, y)]), 9)
    with pytest.raises(ValueError, match="no block"):
        fit_aggregator_blocks(cnn_aggregator(), iter([]), 9)
    with pytest.raises(ValueError, match="block of 9 items has 8 labels"):
        fit_aggregator_blocks(cnn_aggregator(), iter([(X, y[:8])]), 9)
    soft_without_proba = TrackAggregator(Pipeline([("s", SpectrogramTransformer()),
                                                   ("svm", LinearSVC())]), voting="soft")
    with pytest.raises(ValueError, match="no predict_proba"):
        fit_aggregator_blocks(soft_without_proba, iter([(X, y)]), 9)
