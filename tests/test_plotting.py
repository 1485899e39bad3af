import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from specgenre.plotting import (  # noqa: E402
    plot_confusion_matrix,
    plot_embedding_map,
    plot_spectrogram_examples,
)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_confusion_matrix_rows_sum_to_one():
    y = np.array(["a", "a", "b", "b", "c", "c"])
    p = np.array(["a", "b", "b", "b", "c", "a"])
    disp = plot_confusion_matrix(y, p)
    np.testing.assert_allclose(disp.confusion_matrix.sum(axis=1), 1.0)
    assert disp.ax_.get_title() == "accuracy 66.7%"


def test_spectrogram_examples_grid(rng):
    S = rng.normal(size=(6, 1, 16, 20)).astype(np.float32)
    axes = plot_spectrogram_examples(S, ["x", "y", "z"] * 2, n_per_genre=2, y_axis="linear")
    assert axes.shape == (2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["x", "y", "z"]


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_embedding_map_separates_clusters(method, rng):
    emb = np.r_[rng.normal(0, 0.1, (15, 8)), rng.normal(5, 0.1, (15, 8))]
    y = np.array(["a"] * 15 + ["b"] * 15)
    coords = plot_embedding_map(emb, y, method=method)
    assert coords.shape == (30, 2)
    gap = np.linalg.norm(coords[:15].mean(0) - coords[15:].mean(0))
    spread = coords[:15].std(0).mean() + coords[15:].std(0).mean()
    assert gap > 2 * spread


def test_embedding_map_rejects_unknown_method():
    with pytest.raises(ValueError, match="method"):
        plot_embedding_map(np.zeros((4, 2)), list("abab"), method="umap")
