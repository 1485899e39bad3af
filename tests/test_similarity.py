import numpy as np
import pytest

from specgenre import similar_tracks
from specgenre.similarity import track_embeddings


def test_nearest_neighbours_are_ordered_and_exclude_query():
    emb = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [10.0, 0.0]])
    out = similar_tracks(emb, ["q", "a", "b", "c"], "q", n_neighbors=3, metric="euclidean")
    assert [t for t, _ in out] == ["a", "b", "c"]
    assert [d for _, d in out] == [1.0, 3.0, 10.0]


def test_several_queries_give_a_dict():
    emb = np.eye(4)
    out = similar_tracks(emb + [0, 0, 0, 0.01], list("wxyz"), ["w", "z"], n_neighbors=2)
    assert set(out) == {"w", "z"} and all(len(v) == 2 for v in out.values())
    assert all(t != q for q, v in out.items() for t, _ in v)


def test_groups_average_segments_per_track():
    seg = np.array([[1.0, 0], [3.0, 0], [10.0, 0], [10.0, 0], [2.0, 0.1]])
    groups = ["t1", "t1", "t2", "t2", "t3"]
    ids, tracks = track_embeddings(seg, groups)
    assert ids.tolist() == ["t1", "t2", "t3"]
    np.testing.assert_allclose(tracks[0], [2.0, 0.0])
    out = similar_tracks(seg, None, "t1", n_neighbors=1, metric="euclidean", groups=groups)
    assert out[0][0] == "t3"


def test_errors_name_the_problem():
    emb = np.zeros((3, 2))
    with pytest.raises(KeyError, match="nope"):
        similar_tracks(emb, ["a", "b", "c"], "nope")
    with pytest.raises(ValueError, match="n_neighbors"):
        similar_tracks(emb, ["a", "b", "c"], "a", n_neighbors=3)
    with pytest.raises(ValueError, match="unique"):
        similar_tracks(emb, ["a", "a", "c"], "a", n_neighbors=1)
    with pytest.raises(ValueError, match="one row per"):
        similar_tracks(emb, ["a", "b"], "a", n_neighbors=1)


def test_distances_are_exact_not_rounded():
    from sklearn.metrics.pairwise import cosine_distances

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 4))
    ids = [f"t{i}" for i in range(6)]
    out = similar_tracks(emb, ids, "t0", n_neighbors=5)
    expected = cosine_distances(emb[:1], emb)[0]
    for track, distance in out:
        assert isinstance(distance, float)
        np.testing.assert_allclose(distance, expected[ids.index(track)], rtol=1e-12, atol=1e-15)
    # a distance below the old 4-decimal rounding is kept, not turned into 0
    emb = np.array([[1.0, 0.0], [1.0, 1e-4], [0.0, 1.0]])
    (track, distance), = similar_tracks(emb, ["a", "b", "c"], "a", n_neighbors=1)
    assert track == "b" and 0 < distance < 1e-8
