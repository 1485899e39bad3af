"""Class weighting of every row, and the inner validation split on unbalanced data."""

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from specgenre import CNNClassifier, make_row
from specgenre._capped_pca import CappedPCA
from specgenre._validsplit import validation_split
from specgenre.evaluation import check_params
from specgenre.study import ALL_ROWS, BEYOND_ROWS, STUDY_ROWS, classifier_of

# --------------------------------------------------------------------------
# inner validation split on unbalanced data
# --------------------------------------------------------------------------

def test_validation_split_stratifies_the_classes_it_can_and_trains_on_the_rest():
    # 20 tracks of class 0, 10 of class 1, 3 of class 2, 1 of class 3; 5 segments each
    tracks_per_class = [20, 10, 3, 1]
    y_tracks = np.repeat(np.arange(4), tracks_per_class)
    groups = np.repeat(np.arange(len(y_tracks)), 5)
    y = np.repeat(y_tracks, 5)
    train, valid = validation_split(y, groups, 0.2, 0)  # k = 5 folds
    assert len(train) + len(valid) == len(y)
    assert not set(groups[train]) & set(groups[valid])  # tracks kept whole
    # classes with at least 5 tracks are validated, about 1/5 of their tracks
    assert sorted(set(y[valid])) == [0, 1]
    assert len(set(groups[valid][y[valid] == 0])) == 4
    assert len(set(groups[valid][y[valid] == 1])) == 2
    # the rarer classes are trained on, whole
    assert np.isin(np.flatnonzero(y >= 2), train).all()
    assert set(y[train]) == {0, 1, 2, 3}
    # without groups: stratified by sample, rare classes (< 5 samples) on the training side
    y = np.repeat(np.arange(3), [20, 10, 4])
    train, valid = validation_split(y, None, 0.2, 0)
    assert np.bincount(y[valid], minlength=3).tolist() == [4, 2, 0]
    assert np.bincount(y[train], minlength=3).tolist() == [16, 8, 4]


def test_validation_split_keeps_mixed_groups_of_a_rare_class_in_training():
    # track 0 holds segments of classes 0 and 2; class 2 has one track: track 0 must train
    y = np.array([0, 0, 2] + [0] * 8 + [1] * 10)
    groups = np.array([0, 0, 0] + list(np.repeat(np.arange(1, 5), 2))
                      + list(np.repeat(np.arange(5, 10), 2)))
    train, valid = validation_split(y, groups, 0.25, 3)  # k = 4
    assert {0, 1, 2} <= set(np.flatnonzero(groups == 0)) <= set(train)
    assert not set(groups[train]) & set(groups[valid])
    assert set(y[valid]) <= {0, 1} and len(valid) > 0


def test_validation_split_gives_none_when_no_class_can_be_stratified():
    y = np.repeat(np.arange(3), [4, 3, 1])
    assert validation_split(y, None, 0.2, 0) is None  # k = 5: no class has 5 samples
    assert validation_split(y, None, None, 0) is None
    assert validation_split(y, None, 0.0, 0) is None
    assert validation_split(y, None, 0.25, 0) is not None  # k = 4: class 0 has 4


def _unbalanced_spectrograms(counts=(30, 10, 2), seed=0):
    rng = np.random.default_rng(seed)
    names = np.array(["blues", "jazz", "rock"])
    y = np.repeat(names[:len(counts)], counts)
    X = rng.normal(-50.0, 8.0, size=(len(y), 1, 12, 16)).astype(np.float32)
    for k, name in enumerate(names[:len(counts)]):
        X[y == name, :, 4 * k:4 * (k + 1)] += 6.0
    return np.clip(X, -80, 0), y


def test_neural_classifier_trains_on_unbalanced_data_with_an_inner_split():
    # one class with too few samples for stratification no longer switches the split off
    X, y = _unbalanced_spectrograms()
    clf = CNNClassifier(channels=(4,), max_epochs=2, batch_size=64, valid_fraction=0.25,
                        random_state=0).fit(X, y)
    (train, valid), = clf.net_.train_split.cv
    assert clf.n_valid_ == len(valid) > 0
    assert "rock" not in set(y[valid]) and "rock" in set(y[train])


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_neural_classifier_weights_its_loss_by_the_training_part(class_weight):
    X, y = _unbalanced_spectrograms()
    clf = CNNClassifier(channels=(4,), max_epochs=1, batch_size=64, valid_fraction=0.25,
                        patience=None, class_weight=class_weight, random_state=0).fit(X, y)
    (train, valid), = clf.net_.train_split.cv
    codes = clf.le_.transform(y)
    expected = (np.ones(3) if class_weight is None else
                compute_class_weight("balanced", classes=np.arange(3), y=codes[train]))
    np.testing.assert_allclose(clf.class_weight_, expected)
    if class_weight == "balanced":  # from the 36 training samples, not all 42
        assert not np.allclose(expected, compute_class_weight(
            "balanced", classes=np.arange(3), y=codes))
    # the validation loss (one batch) is the cross-entropy weighted by class_weight_
    proba = clf.predict_proba(X[valid])
    nll = -np.log(proba[np.arange(len(valid)), codes[valid]])
    w = clf.class_weight_[codes[valid]]
    np.testing.assert_allclose(clf.net_.history[-1, "valid_loss"], np.sum(w * nll) / np.sum(w),
                               rtol=1e-4)


def test_neural_classifier_takes_a_dict_of_weights_and_rejects_unknown_values():
    X, y = _unbalanced_spectrograms()
    clf = CNNClassifier(channels=(4,), max_epochs=1, class_weight={"rock": 5.0},
                        random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.class_weight_, [1.0, 1.0, 5.0])  # blues, jazz, rock
    with pytest.raises(ValueError, match="class_weight"):
        CNNClassifier(channels=(4,), max_epochs=1, class_weight="inverse").fit(X, y)


# --------------------------------------------------------------------------
# one option for every row
# --------------------------------------------------------------------------

def test_rows_beyond_the_study_weight_classes_by_default_the_study_rows_do_not():
    for name, row in ALL_ROWS.items():
        clf = classifier_of(make_row(name))
        assert row.class_weight == ("balanced" if row.beyond_study else None), name
        if "class_weight" in clf.get_params(deep=False):
            assert clf.class_weight == row.class_weight, name


@pytest.mark.parametrize("name", list(BEYOND_ROWS))
def test_class_weight_is_a_plain_parameter_of_every_row_beyond_the_study(name):
    assert classifier_of(make_row(name, class_weight=None)).class_weight is None
    assert classifier_of(make_row(name, class_weight="balanced")).class_weight == "balanced"


@pytest.mark.parametrize("name", [n for n, r in STUDY_ROWS.items() if r.model != "xgboost"])
def test_class_weight_reaches_the_networks_of_the_study_rows(name):
    clf = classifier_of(make_row(name, class_weight="balanced"))
    assert clf.class_weight == "balanced"


def test_reproduce_params_accept_class_weight():
    rows = [n for n, r in ALL_ROWS.items() if r.model != "xgboost"]
    taken = check_params(rows, ["class_weight"])
    assert taken["class_weight"] == rows


# --------------------------------------------------------------------------
# Pons & Serra's PCA rule
# --------------------------------------------------------------------------

def test_capped_pca_keeps_what_the_training_set_allows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 40)) @ rng.normal(size=(40, 40))
    pca = CappedPCA(128).fit(X)
    assert pca.n_components_ == 40  # n_features
    Z = pca.transform(X)
    np.testing.assert_allclose(Z.std(axis=0, ddof=1), 1.0, rtol=1e-6)  # whitened
    assert CappedPCA(128).fit(X[:20]).n_components_ == 19  # n_samples - 1
    assert CappedPCA(8).fit(X).n_components_ == 8
    assert CappedPCA(8, whiten=False).fit(X).transform(X).std(axis=0)[0] > 1.5
    with pytest.raises(ValueError, match="at least 2 samples"):
        CappedPCA().fit(X[:1])
    with pytest.raises(ValueError, match="n_components"):
        CappedPCA(0).fit(X)


# --------------------------------------------------------------------------
# XGBoost: class weights as sample weights
# --------------------------------------------------------------------------

def _booster_dump(clf):
    return clf.model_.get_booster().get_dump()


def test_xgboost_balanced_weights_are_sample_weights_times_the_given_ones(rng):
    from specgenre import XGBoostClassifier

    X = rng.normal(size=(40, 3)) + np.repeat([0, 1, 3], [26, 10, 4])[:, None]
    y = np.repeat(["jazz", "pop", "rock"], [26, 10, 4])
    params = dict(n_estimators=5, random_state=0)
    weighted = XGBoostClassifier(class_weight="balanced", **params).fit(X, y)
    expected = compute_class_weight("balanced", classes=weighted.classes_, y=y)
    np.testing.assert_allclose(weighted.class_weight_, expected, rtol=1e-6)
    per_sample = expected[np.searchsorted(weighted.classes_, y)]
    by_hand = XGBoostClassifier(**params).fit(X, y, sample_weight=per_sample)
    assert _booster_dump(weighted) == _booster_dump(by_hand)
    assert _booster_dump(weighted) != _booster_dump(XGBoostClassifier(**params).fit(X, y))
    np.testing.assert_allclose(XGBoostClassifier(**params).fit(X, y).class_weight_, 1.0)
    # a given sample_weight is multiplied by the class weights
    sw = rng.uniform(0.5, 2.0, size=len(y))
    both = XGBoostClassifier(class_weight="balanced", **params).fit(X, y, sample_weight=sw)
    product = XGBoostClassifier(**params).fit(  # the product in XGBoost's float32
        X, y, sample_weight=per_sample.astype(np.float32) * sw.astype(np.float32))
    assert _booster_dump(both) == _booster_dump(product)
    # a dict names labels; the others weigh 1
    clf = XGBoostClassifier(class_weight={"rock": 3.0}, **params).fit(X, y)
    np.testing.assert_allclose(clf.class_weight_, [1.0, 1.0, 3.0])
    with pytest.raises(ValueError, match="class_weight"):
        XGBoostClassifier(class_weight="inverse").fit(X, y)


def test_xgboost_early_stopping_weights_classes_by_the_training_part(rng):
    from specgenre import XGBoostClassifier

    X = rng.normal(size=(60, 3)) + np.repeat([0, 2], [45, 15])[:, None]
    y = np.repeat(["jazz", "rock"], [45, 15])
    clf = XGBoostClassifier(n_estimators=20, early_stopping_rounds=3, validation_fraction=0.2,
                            class_weight="balanced", random_state=0)
    clf.fit(X, y)
    rng = np.random.RandomState(0)  # as fit draws: the model's seed, then the split
    rng.randint(np.iinfo(np.int32).max)
    train, valid = clf._validation_split(clf.le_.transform(y), None, rng)
    assert len(train) + len(valid) == len(y) and len(valid) > 0
    np.testing.assert_allclose(
        clf.class_weight_, compute_class_weight("balanced", classes=clf.classes_, y=y[train]))
    assert clf.class_weight_[1] > clf.class_weight_[0]


def test_balanced_weights_of_segments_are_those_of_their_clips(rng):
    # a voting row's classifier weighs segments labelled by their clip: with the same
    # number of segments per clip, the balanced class weights are the clips' own
    from specgenre import TrackAggregator, XGBoostClassifier, group_segments

    y_clips = np.repeat(["jazz", "pop", "rock"], [7, 3, 2])
    y_seg = np.repeat(y_clips, 10)
    X_seg = rng.normal(size=(len(y_seg), 4))
    X, y, _ = group_segments(X_seg, y_seg, np.repeat(np.arange(len(y_clips)), 10))
    agg = TrackAggregator(XGBoostClassifier(n_estimators=3, class_weight="balanced",
                                            random_state=0), segmenter="precomputed")
    agg.fit(X, y)
    np.testing.assert_allclose(
        agg.estimator_.class_weight_,
        compute_class_weight("balanced", classes=np.unique(y_clips), y=y_clips))


def test_every_row_takes_class_weight_in_reproduce_and_train():
    rows = list(ALL_ROWS)
    assert check_params(rows, ["class_weight"])["class_weight"] == rows
    for name in STUDY_ROWS:
        for source in ALL_ROWS[name].sources:
            clf = classifier_of(make_row(name, source=source, class_weight="balanced"))
            assert clf.class_weight == "balanced", (name, source)
