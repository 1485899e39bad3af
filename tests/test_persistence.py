"""Fitted models saved as model files predict the same, bit for bit, in a fresh process.

A model is useful after training only if it can be saved, shipped and loaded
elsewhere (``specgenre train`` / ``specgenre predict`` do exactly that). Two
whole models are checked: a 3 s CNN voted per clip (TrackAggregator around a
spectrogram + CNN pipeline, torch state inside) and XGBoost on Kaggle's
features (numba feature kernels, an XGBoost booster inside), plus README's
quick baseline (mel spectrogram -> BandStatistics -> logistic regression),
whose band statistics once were a lambda that could not be saved. Each is fitted
here, saved with :func:`specgenre.modelfile.save_model` (tensors and a JSON
description, no pickle), loaded by a new Python interpreter with
:func:`~specgenre.modelfile.load_model`, and its predictions there must equal
those of the original model exactly.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from specgenre import (
    BandStatistics,
    ClipSegmenter,
    CNNClassifier,
    FeatureExtractor,
    SpectrogramTransformer,
    TrackAggregator,
    XGBoostClassifier,
    make_genre_clips,
)
from specgenre.modelfile import save_model

GENRES = ["classical", "metal", "reggae"]

# heavy (a Dask cluster / fresh interpreters): still run by CI's `nox -s tests`
pytestmark = pytest.mark.slow



def _cnn_model():
    return TrackAggregator(
        Pipeline([
            ("spectrogram", SpectrogramTransformer("mel")),
            ("cnn", CNNClassifier(channels=(8, 16), max_epochs=1, batch_size=8,
                                  random_state=0)),
        ]),
        segmenter=ClipSegmenter(3.0),
        voting="soft",
    )


def _xgboost_model():
    return Pipeline([
        ("features", FeatureExtractor()),
        ("xgboost", XGBoostClassifier(n_estimators=20, random_state=0)),
    ])


def _baseline_model():
    # README's composition example
    return make_pipeline(SpectrogramTransformer(scale="mel"), BandStatistics(),
                         LogisticRegression(max_iter=1000))


MODELS = {"cnn": _cnn_model, "xgboost": _xgboost_model, "baseline": _baseline_model}


# Runs in the fresh interpreter: load each model, predict the saved inputs,
# save the outputs. Torch gets the parent's thread count, so that float
# reductions are split the same way (BLAS/OpenMP settings come from the
# inherited environment).
_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path

    import numpy as np
    import torch

    from specgenre.modelfile import load_model

    out = Path(sys.argv[1])
    torch.set_num_threads(int(sys.argv[2]))
    X = np.load(out / "X.npy")
    for name in ("cnn", "xgboost", "baseline"):
        model = load_model(out / f"{name}.specgenre").estimator
        np.save(out / f"{name}_classes.npy", model.classes_)
        np.save(out / f"{name}_predict.npy", model.predict(X))
        np.save(out / f"{name}_proba.npy", model.predict_proba(X))
        if name == "cnn":
            segments, _ = model.segmenter_.segment(X)
            np.save(out / "cnn_embeddings.npy", model.estimator_.transform(segments))
""")


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory):
    """Fit both models, save them, predict in a fresh process; return both sides."""
    import torch

    out = tmp_path_factory.mktemp("persistence")
    train = make_genre_clips(3, genres=GENRES, duration=6.0, sr=22050, random_state=0)
    # clip k of a genre does not depend on n_per_genre: the 4th of each is unseen
    unseen = make_genre_clips(4, genres=GENRES, duration=6.0, sr=22050, random_state=0)
    X = np.concatenate([train.data, unseen.data[3::4]])
    np.save(out / "X.npy", X)

    expected = {}
    for name, make in MODELS.items():
        model = make()
        model.fit(train.data, train.target)
        save_model(model, out / f"{name}.specgenre")
        expected[name] = {
            "classes": model.classes_,
            "predict": model.predict(X),
            "proba": model.predict_proba(X),
        }
        if name == "cnn":
            segments, _ = model.segmenter_.segment(X)
            expected[name]["embeddings"] = model.estimator_.transform(segments)

    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(out), str(torch.get_num_threads())],
        cwd=out, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"child process failed:\n{result.stderr[-3000:]}"
    loaded = {
        name: {key: np.load(out / f"{name}_{key}.npy") for key in values}
        for name, values in expected.items()
    }
    return expected, loaded


@pytest.mark.parametrize("name", list(MODELS))
def test_reloaded_model_predicts_identically(roundtrip, name):
    expected, loaded = roundtrip
    exp, got = expected[name], loaded[name]
    np.testing.assert_array_equal(got["classes"], exp["classes"])
    assert got["predict"].dtype == exp["predict"].dtype
    np.testing.assert_array_equal(got["predict"], exp["predict"])
    assert got["proba"].dtype == exp["proba"].dtype
    # bit for bit: exact equality of every float
    np.testing.assert_array_equal(got["proba"], exp["proba"])
    assert got["proba"].shape == (12, len(GENRES))  # 9 training + 3 unseen clips
    np.testing.assert_allclose(got["proba"].sum(axis=1), 1.0, rtol=1e-6)


def test_reloaded_cnn_embeddings_identical(roundtrip):
    expected, loaded = roundtrip
    emb = loaded["cnn"]["embeddings"]
    assert emb.shape == (24, 16) and emb.dtype == np.float32  # 12 clips x 2 segments
    np.testing.assert_array_equal(emb, expected["cnn"]["embeddings"])


def test_models_are_not_trivial(roundtrip):
    """Guard the test's own premise: the saved models really learned something
    clip-dependent, so equal outputs are not equal by accident (e.g. constant)."""
    expected, _ = roundtrip
    for name in MODELS:
        proba = expected[name]["proba"]
        assert np.ptp(proba, axis=0).max() > 1e-3, name
