"""Tests of TrackAggregator, the voting rules and group_segments."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from specgenre import TrackAggregator, group_segments
from specgenre.aggregate import _groups_fit_param, hard_vote, soft_vote
from specgenre.segment import ClipSegmenter

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


class LabelOnlyClassifier(ClassifierMixin, BaseEstimator):
    """Segment 'classifier' whose answer is written in the segment: row ``[c, ...]`` is
    predicted as class ``c`` (index into ``classes_``). No predict_proba, no groups."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        X = np.asarray(X)
        return self.classes_[np.rint(X[:, 0]).astype(int)]


class LookupClassifier(LabelOnlyClassifier):
    """LabelOnlyClassifier with probabilities and a record of what ``fit`` got.

    A segment row is ``[c, p_0, ..., p_{k-1}]`` (or just ``[c]``): its
    probabilities are the normalised ``p`` (uniform when absent).
    """

    def fit(self, X, y, groups=None, sample_weight=None):
        self.classes_ = np.unique(y)
        self.X_, self.y_, self.groups_, self.sample_weight_ = X, y, groups, sample_weight
        return self

    def predict_proba(self, X):
        X = np.asarray(X, dtype=float)
        k = len(self.classes_)
        p = X[:, 1:1 + k] if X.shape[1] > k else np.ones((len(X), k))
        return p / p.sum(axis=1, keepdims=True)


def reference_vote(labels, proba=None):
    """Mode of ``labels``; ties by summed ``proba``, then lowest class index."""
    counts = Counter(labels.tolist())
    top = max(counts.values())
    tied = sorted(c for c, n in counts.items() if n == top)
    if proba is None or len(tied) == 1:
        return tied[0]
    sums = proba.sum(axis=0)
    best = max(sums[c] for c in tied)
    return min(c for c in tied if sums[c] == best)


@st.composite
def segment_predictions(draw, with_proba=True):
    n_classes = draw(st.integers(2, 5))
    sizes = draw(st.lists(st.integers(1, 7), min_size=1, max_size=6))
    clip_index = np.repeat(np.arange(len(sizes)), sizes)
    n = len(clip_index)
    labels = np.asarray(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    proba = None
    if with_proba:
        # small integers make exact ties in summed probability possible too
        raw = draw(st.lists(st.integers(1, 4), min_size=n * n_classes, max_size=n * n_classes))
        proba = np.asarray(raw, dtype=float).reshape(n, n_classes)
        proba /= proba.sum(axis=1, keepdims=True)
    perm = np.asarray(draw(st.permutations(range(n))))
    return n_classes, clip_index, labels, proba, perm


# --------------------------------------------------------------------------
# voting rules as pure functions
# --------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(segment_predictions(with_proba=False))
def test_hard_vote_is_the_mode_with_first_class_tie_break(case):
    n_classes, clip_index, labels, _, _ = case
    winners, votes = hard_vote(labels, clip_index, n_classes=n_classes)
    assert votes.shape == (clip_index.max() + 1, n_classes)
    np.testing.assert_array_equal(votes.sum(axis=1), np.bincount(clip_index))
    for clip in range(len(winners)):
        assert winners[clip] == reference_vote(labels[clip_index == clip])


@settings(max_examples=60, deadline=None)
@given(segment_predictions())
def test_hard_vote_breaks_ties_by_summed_probability(case):
    n_classes, clip_index, labels, proba, _ = case
    winners, _ = hard_vote(labels, clip_index, proba=proba)
    for clip in range(len(winners)):
        sel = clip_index == clip
        assert winners[clip] == reference_vote(labels[sel], proba[sel])


@settings(max_examples=60, deadline=None)
@given(segment_predictions())
def test_votes_do_not_depend_on_segment_order(case):
    n_classes, clip_index, labels, proba, perm = case
    w1, v1 = hard_vote(labels, clip_index, proba=proba)
    w2, v2 = hard_vote(labels[perm], clip_index[perm], proba=proba[perm])
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_allclose(soft_vote(proba, clip_index),
                               soft_vote(proba[perm], clip_index[perm]), rtol=1e-12, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(segment_predictions())
def test_soft_vote_is_the_mean_and_sums_to_one(case):
    n_classes, clip_index, _, proba, _ = case
    clip_proba = soft_vote(proba, clip_index)
    assert clip_proba.shape == (clip_index.max() + 1, n_classes)
    np.testing.assert_allclose(clip_proba.sum(axis=1), 1.0, rtol=1e-12)
    for clip in range(len(clip_proba)):
        np.testing.assert_allclose(clip_proba[clip], proba[clip_index == clip].mean(axis=0))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 4), st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_unanimous_segments_give_their_label(label, sizes):
    clip_index = np.repeat(np.arange(len(sizes)), sizes)
    labels = np.full(len(clip_index), label)
    winners, votes = hard_vote(labels, clip_index, n_classes=5)
    assert (winners == label).all()
    proba = np.eye(5)[labels] * 0.6 + 0.08
    assert (soft_vote(proba, clip_index).argmax(axis=1) == label).all()


def test_soft_vote_ties_go_to_first_class():
    proba = np.array([[0.5, 0.5], [0.2, 0.8], [0.8, 0.2]])
    clip_proba = soft_vote(proba, [0, 1, 1])
    np.testing.assert_allclose(clip_proba, [[0.5, 0.5], [0.5, 0.5]])
    assert clip_proba.argmax(axis=1).tolist() == [0, 0]


def test_vote_input_errors():
    with pytest.raises(ValueError, match=r"clip\(s\) \[1\] have none"):
        hard_vote([0, 1], [0, 2])
    with pytest.raises(ValueError, match="one entry per segment"):
        soft_vote(np.ones((3, 2)) / 2, [0, 1])
    with pytest.raises(ValueError, match="class indices"):
        hard_vote(np.array([0.5, 1.0]), [0, 0])
    with pytest.raises(ValueError, match=r"labels must lie in 0 \.\. 1"):
        hard_vote([0, 2], [0, 0], n_classes=2)
    with pytest.raises(ValueError, match="n_clips=1"):
        hard_vote([0, 1], [0, 1], n_clips=1)


# --------------------------------------------------------------------------
# TrackAggregator on waveforms
# --------------------------------------------------------------------------

_SHORT_CLIP_REASON = (
    "a clip of 1 sample is shorter than the 2-sample segment; ClipSegmenter's error "
    "says so in its own words (clip and segment lengths), not as '1 feature(s)'"
)


@parametrize_with_checks(
    [
        TrackAggregator(LogisticRegression(), segmenter=ClipSegmenter(1.0, sr=2)),
        TrackAggregator(LogisticRegression(), segmenter=ClipSegmenter(1.0, sr=2),
                        voting="soft"),
    ],
    expected_failed_checks=lambda est: {"check_fit2d_1feature": _SHORT_CLIP_REASON},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# one sample per segment: each sample value is that segment's class index
ONE_SAMPLE = ClipSegmenter(1.0, sr=1)


def test_hard_vote_through_the_estimator_on_waveforms():
    X = np.array([[0, 1, 1, 2], [2, 2, 0, 1], [1, 0, 0, 0], [0, 1, 1, 0]], dtype=np.float32)
    y = np.array(["blues", "jazz", "rock", "jazz"])
    agg = TrackAggregator(LabelOnlyClassifier(), segmenter=ONE_SAMPLE).fit(X, y)
    assert agg.predict(X).tolist() == ["jazz", "rock", "blues", "blues"]  # last: tie -> first
    np.testing.assert_array_equal(agg.predict_votes(X),
                                  [[1, 2, 1], [1, 1, 2], [3, 1, 0], [2, 2, 0]])
    assert not hasattr(agg, "predict_proba")
    # reordering each clip's segments changes nothing
    rng = np.random.default_rng(0)
    shuffled = np.stack([rng.permutation(row) for row in X])
    assert agg.predict(shuffled).tolist() == agg.predict(X).tolist()
    assert agg.n_features_in_ == 4 and agg.segmenter_.n_segments_ == 4


def test_hard_vote_tie_break_uses_probability_of_tied_clips_only(monkeypatch):
    # rows [c, p0, p1]: clip 0 ties 1-1 between classes 0 and 1, p favours 1
    X = [np.array([[0, 1, 3], [1, 1, 3]]), np.array([[0, 9, 1], [0, 9, 1], [1, 1, 9]])]
    X_obj = np.empty(2, dtype=object)
    X_obj[:] = X
    agg = TrackAggregator(LookupClassifier(), segmenter="precomputed").fit(X_obj, ["a", "b"])
    seen = []
    original = LookupClassifier.predict_proba

    def spy(self, rows):
        seen.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(LookupClassifier, "predict_proba", spy)
    assert agg.predict(X_obj).tolist() == ["b", "a"]
    assert seen == [2]  # probabilities of the tied clip's 2 segments only


def test_soft_vote_through_the_estimator():
    X = np.empty(2, dtype=object)
    X[:] = [np.array([[0, 1, 3], [0, 1, 1]]), np.array([[1, 3, 1]])]
    agg = TrackAggregator(LookupClassifier(), segmenter="precomputed", voting="soft")
    agg.fit(X, ["a", "b"])
    proba = agg.predict_proba(X)
    np.testing.assert_allclose(proba, [[0.375, 0.625], [0.75, 0.25]])
    assert agg.predict(X).tolist() == ["b", "a"]  # soft vote ignores the hard labels
    assert agg.predict_votes(X).tolist() == [[2, 0], [0, 1]]


def test_inner_classes_in_another_order_are_mapped():
    class Reversed(LookupClassifier):
        def fit(self, X, y, groups=None):
            super().fit(X, y)
            self.classes_ = self.classes_[::-1]
            return self

    X = np.array([[[0, 1, 3]], [[1, 1, 3]]], dtype=float)  # 3-D: 2 tracks, 1 segment each
    agg = TrackAggregator(Reversed(), segmenter="precomputed", voting="soft").fit(X, ["a", "b"])
    # inner column 1 (p=3/4) is class "a" for the reversed estimator
    np.testing.assert_allclose(agg.predict_proba(X), [[0.75, 0.25], [0.75, 0.25]])


def test_default_segmenter_cuts_3_second_segments():
    sr = 22050
    X = np.zeros((4, 2 * 3 * sr + 100), dtype=np.float32)
    X[1::2] = 1.0  # every segment of clips 1 and 3 says class 1
    agg = TrackAggregator(LookupClassifier()).fit(X, ["a", "b", "a", "b"])
    assert agg.segmenter_.segment_seconds == 3.0 and agg.segmenter_.sr == sr
    assert agg.segmenter_.n_segments_ == 2
    assert len(agg.estimator_.X_) == 8
    assert agg.predict(X).tolist() == ["a", "b", "a", "b"]
    assert agg.segmenter is None  # the parameter is left alone


# --------------------------------------------------------------------------
# groups routing and fit parameters
# --------------------------------------------------------------------------


def _wave_data(n_clips=6, n_seg=3):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(n_clips, n_seg)).astype(np.float32)
    y = np.array(["a", "b"] * (n_clips // 2))
    return X, y


def test_clip_ids_go_to_a_plain_estimator_as_groups():
    X, y = _wave_data()
    agg = TrackAggregator(LookupClassifier(), segmenter=ONE_SAMPLE).fit(X, y)
    np.testing.assert_array_equal(agg.estimator_.groups_, np.repeat(np.arange(6), 3))
    np.testing.assert_array_equal(agg.estimator_.y_, np.repeat(y, 3))


def test_clip_ids_go_to_the_last_step_of_a_pipeline():
    X, y = _wave_data()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LookupClassifier())])
    assert _groups_fit_param(pipe) == "clf__groups"
    nested = Pipeline([("outer", Pipeline([("s", StandardScaler()), ("c", LookupClassifier())]))])
    assert _groups_fit_param(nested) == "outer__c__groups"
    assert _groups_fit_param(Pipeline([("s", StandardScaler()), ("c", "passthrough")])) is None
    agg = TrackAggregator(pipe, segmenter=ONE_SAMPLE).fit(X, y)
    np.testing.assert_array_equal(agg.estimator_[-1].groups_, np.repeat(np.arange(6), 3))


def test_groups_go_to_scikit_learn_searches_only():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import RandomizedSearchCV

    grid = GridSearchCV(LogisticRegression(), {"C": [1.0]})
    assert _groups_fit_param(grid) == "groups"
    assert _groups_fit_param(RandomizedSearchCV(LogisticRegression(), {"C": [1.0]})) == "groups"
    assert _groups_fit_param(Pipeline([("s", StandardScaler()), ("g", grid)])) == "g__groups"
    # a cv parameter and fit(**params) do not make a search: these do not hand
    # groups to their splitter without metadata routing
    assert _groups_fit_param(CalibratedClassifierCV(LogisticRegression())) is None
    assert _groups_fit_param(LogisticRegressionCV()) is None


def test_groups_rule_works_before_the_halving_searches_are_enabled():
    # scikit-learn's estimator checks (imported by this module) enable the experimental
    # halving searches; a fresh interpreter shows the rule without them
    import subprocess
    import sys

    code = ("from sklearn.linear_model import LogisticRegression as L\n"
            "from sklearn.model_selection import GridSearchCV\n"
            "from specgenre.aggregate import _groups_fit_param as g\n"
            "assert g(GridSearchCV(L(), {'C': [1.0]})) == 'groups' and g(L()) is None\n"
            "from sklearn.experimental import enable_halving_search_cv\n"
            "from sklearn.model_selection import HalvingGridSearchCV\n"
            "assert g(HalvingGridSearchCV(L(), {'C': [1.0]})) == 'groups'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_per_clip_fit_params_of_any_container_are_repeated_per_segment():
    import pandas as pd

    X, y = _wave_data()
    weight = np.arange(6.0)
    for container in (list(weight), pd.Series(weight, index=np.arange(6) + 100)):
        agg = TrackAggregator(LookupClassifier(), segmenter=ONE_SAMPLE)
        agg.fit(X, y, sample_weight=container)
        np.testing.assert_array_equal(np.asarray(agg.estimator_.sample_weight_),
                                      np.repeat(weight, 3))


def test_invalid_parameters_are_named():
    X, y = _wave_data()
    with pytest.raises(ValueError, match=r"The 'voting' parameter of TrackAggregator must be "
                                         r"a str among \{'hard', 'soft'\}. Got 'max' instead."):
        TrackAggregator(LogisticRegression(), voting="max").fit(X, y)
    with pytest.raises(ValueError, match="The 'estimator' parameter of TrackAggregator must be "
                                         "an object implementing 'fit' and 'predict'"):
        TrackAggregator("logreg").fit(X, y)


def test_estimators_without_groups_get_none_and_explicit_groups_are_refused():
    X, y = _wave_data()
    assert _groups_fit_param(LogisticRegression()) is None
    TrackAggregator(LabelOnlyClassifier(), segmenter=ONE_SAMPLE).fit(X, y)  # no TypeError
    with pytest.raises(ValueError, match="LabelOnlyClassifier takes no groups"):
        TrackAggregator(LabelOnlyClassifier(), segmenter=ONE_SAMPLE).fit(X, y, groups=np.arange(6))


def test_explicit_groups_and_per_clip_fit_params_are_repeated_per_segment():
    X, y = _wave_data()
    artist = np.array([10, 10, 11, 11, 12, 12])
    weight = np.arange(6.0)
    agg = TrackAggregator(LookupClassifier(), segmenter=ONE_SAMPLE)
    agg.fit(X, y, groups=artist, sample_weight=weight)
    np.testing.assert_array_equal(agg.estimator_.groups_, np.repeat(artist, 3))
    np.testing.assert_array_equal(agg.estimator_.sample_weight_, np.repeat(weight, 3))
    with pytest.raises(ValueError, match="groups has 2 entries for 6 clips"):
        agg.fit(X, y, groups=[1, 2])


def test_inner_grid_search_splits_by_clip():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b"], 12)
    X = rng.normal(size=(24, 4)).astype(np.float32) + (y == "b")[:, None]

    seen = []  # the search's cv is a deep copy: record into this list

    class RecordingGroupKFold(GroupKFold):
        def split(self, X, y=None, groups=None):
            for train, test in super().split(X, y, groups):
                assert not set(groups[train]) & set(groups[test])
                seen.append(np.asarray(groups))
                yield train, test

    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]},
                          cv=RecordingGroupKFold(n_splits=3))
    agg = TrackAggregator(search, segmenter=ClipSegmenter(1.0, sr=2)).fit(X, y)
    assert agg.score(X, y) > 0.7
    # 24 clips of 2 segments: the clip ids reached the splitter
    assert seen and all(np.array_equal(g, np.repeat(np.arange(24), 2)) for g in seen)


# --------------------------------------------------------------------------
# pre-segmented tracks and group_segments
# --------------------------------------------------------------------------


def _segment_table(n_tracks=12, rng=None):
    """Rows [class index, row id, noisy class signal] of tracks with 2..4 segments, shuffled."""
    rng = rng or np.random.default_rng(0)
    sizes = rng.integers(2, 5, size=n_tracks)
    track = np.repeat([f"t{i:02d}" for i in range(n_tracks)], sizes)
    label = np.repeat(np.array(["jazz", "rock"])[np.arange(n_tracks) % 2], sizes)
    c = (label == "rock").astype(float)
    X = np.column_stack([c, np.arange(len(track)), c + rng.normal(0, 0.3, len(track))])
    order = rng.permutation(len(track))
    return X[order], label[order], track[order]


def test_group_segments_groups_rows_by_track_in_order():
    X, y, track = _segment_table()
    Xt, yt, ids = group_segments(X, y, track)
    assert Xt.dtype == object and Xt.ndim == 1 and len(Xt) == 12
    _, first = np.unique(track, return_index=True)
    assert ids.tolist() == track[np.sort(first)].tolist()  # order of first appearance
    for rows, label, tid in zip(Xt, yt, ids, strict=True):
        mask = track == tid
        np.testing.assert_array_equal(rows, X[mask])  # rows in their original order
        assert set(y[mask]) == {label}
    Xt2, yt2, _ = group_segments(X, None, track)
    assert yt2 is None and all(np.array_equal(a, b) for a, b in zip(Xt, Xt2, strict=True))


def test_group_segments_errors():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"track 'b' has segments with different labels \['x', 'y'\]"):
        group_segments(X, ["x", "x", "x", "y"], ["a", "a", "b", "b"])
    with pytest.raises(ValueError, match="groups has 3 entries for 4 rows"):
        group_segments(X, None, ["a", "a", "b"])
    with pytest.raises(ValueError, match="y has 2 entries"):
        group_segments(X, ["x", "y"], ["a", "a", "b", "b"])


def test_precomputed_cross_validation_never_trains_on_a_test_track():
    X, y, track = _segment_table(n_tracks=20)
    Xt, yt, ids = group_segments(X, y, track)
    agg = TrackAggregator(LookupClassifier(), segmenter="precomputed")
    res = cross_validate(agg, Xt, yt, cv=StratifiedKFold(4, shuffle=True, random_state=0),
                         return_estimator=True, return_indices=True, error_score="raise")
    np.testing.assert_array_equal(res["test_score"], 1.0)  # column 0 is the answer
    for est, test in zip(res["estimator"], res["indices"]["test"], strict=True):
        trained_rows = set(est.estimator_.X_[:, 1].astype(int))
        test_rows = {int(r) for i in test for r in Xt[i][:, 1]}
        assert trained_rows and not trained_rows & test_rows
        assert len(trained_rows) + len(test_rows) == len(X)


def test_precomputed_works_with_real_models_and_search():
    X, y, track = _segment_table(n_tracks=24)
    Xt, yt, _ = group_segments(X[:, 2:], y, track)
    agg = TrackAggregator(LogisticRegression(), segmenter="precomputed")
    scores = cross_val_score(agg, Xt, yt, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert scores.mean() > 0.8
    search = GridSearchCV(agg, {"voting": ["hard", "soft"], "estimator__C": [0.1, 1.0]}, cv=3)
    search.fit(Xt, yt)
    assert search.best_estimator_.n_features_in_ == 1
    assert search.best_estimator_.segmenter_ is None
    # a list of arrays works as well as the object array
    agg.fit(list(Xt), yt)
    assert agg.predict(list(Xt)).shape == (24,)


def test_precomputed_input_errors():
    X, y, track = _segment_table()
    agg = TrackAggregator(LogisticRegression(), segmenter="precomputed")
    with pytest.raises(ValueError, match="group_segments"):
        agg.fit(X, y)
    ragged = [np.zeros((2, 3)), np.zeros((2, 4))]
    with pytest.raises(ValueError, match="track 1 has 4 features per segment, track 0 has 3"):
        agg.fit(ragged, ["a", "b"])
    with pytest.raises(ValueError, match=r"track 1 of X must be a 2-D array.*shape \(0, 3\)"):
        agg.fit([np.zeros((2, 3)), np.zeros((0, 3))], ["a", "b"])
    Xt, yt, _ = group_segments(X, y, track)
    agg.fit(Xt, yt)
    with pytest.raises(ValueError, match="X has 1 features per segment, but .* fitted with 3"):
        agg.predict([np.zeros((2, 1))])


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


def test_one_class_is_an_error():
    X, _ = _wave_data()
    with pytest.raises(ValueError, match="at least 2 classes.*'rock'"):
        TrackAggregator(LookupClassifier(), segmenter=ONE_SAMPLE).fit(X, ["rock"] * 6)


def test_soft_voting_needs_predict_proba():
    X, y = _wave_data()
    with pytest.raises(ValueError, match="SVC has no predict_proba"):
        TrackAggregator(SVC(), segmenter=ONE_SAMPLE, voting="soft").fit(X, y)
    agg = TrackAggregator(SVC(probability=True), segmenter=ONE_SAMPLE, voting="soft")
    assert hasattr(agg, "predict_proba")
    assert not hasattr(TrackAggregator(SVC(), voting="soft"), "predict_proba")


def test_clip_shorter_than_a_segment_is_the_segmenter_error():
    X = np.zeros((4, 100), dtype=np.float32)
    with pytest.raises(ValueError, match="shorter than one segment"):
        TrackAggregator(LogisticRegression()).fit(X, ["a", "b"] * 2)


def test_y_must_match_the_clips():
    X, _ = _wave_data()
    with pytest.raises(ValueError, match="X has 6 clips but y has 5 labels"):
        TrackAggregator(LookupClassifier(), segmenter=ONE_SAMPLE).fit(X, ["a", "b"] * 2 + ["a"])


def test_invalid_parameters():
    X, y = _wave_data()
    with pytest.raises(ValueError, match="voting"):
        TrackAggregator(LogisticRegression(), voting="mean").fit(X, y)
    with pytest.raises(ValueError, match="segmenter"):
        TrackAggregator(LogisticRegression(), segmenter="segments").fit(X, y)


# --------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------


@pytest.mark.shared_data
def test_gtzan_3s_table_majority_vote_by_track(gtzan_features_dir):
    pd = pytest.importorskip("pandas")
    from specgenre import XGBoostClassifier

    table = pd.read_csv(gtzan_features_dir / "features_3_sec_classical_jazz_rock.csv")
    track = table["filename"].str.rsplit(".", n=3).str[0:2].str.join(".")
    X = table.drop(columns=["filename", "length", "label"])
    Xt, yt, ids = group_segments(X, table["label"], track)
    assert len(Xt) == 300 and sorted(len(x) for x in Xt)[:4] == [9, 9, 9, 9]
    agg = TrackAggregator(XGBoostClassifier(n_estimators=40, learning_rate=0.2, random_state=0),
                          segmenter="precomputed")
    scores = cross_val_score(agg, Xt, yt, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert scores.mean() > 0.8  # 3 genres: chance is 1/3


def test_tags_follow_the_input_form():
    from sklearn.utils import get_tags

    from specgenre import XGBoostClassifier

    wave = get_tags(TrackAggregator(XGBoostClassifier()))
    assert wave.input_tags.two_d_array and not wave.input_tags.allow_nan
    pre = get_tags(TrackAggregator(XGBoostClassifier(n_estimators=3), segmenter="precomputed"))
    assert pre.input_tags.three_d_array and not pre.input_tags.two_d_array
    assert pre.input_tags.allow_nan  # segment rows go straight to XGBoost, which takes NaN
    X = np.ones((6, 2, 3))
    X[3:] = 2.0
    X[0, 0, 1] = np.nan
    agg = TrackAggregator(XGBoostClassifier(n_estimators=3), segmenter="precomputed")
    assert agg.fit(X, ["a"] * 3 + ["b"] * 3).predict(X).shape == (6,)
