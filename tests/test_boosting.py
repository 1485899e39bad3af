"""Tests of XGBoostClassifier."""

import os

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from specgenre import XGBoostClassifier

_SW_REASON = (
    "a weighted XGBoost fit differs slightly from a fit on repeated or removed rows: row "
    "and column subsampling draw differently, and even without subsampling XGBoost's "
    "float32 gradient sums and split ties do not match exactly"
)


@parametrize_with_checks(
    [
        XGBoostClassifier(n_estimators=10),
        XGBoostClassifier(n_estimators=10, early_stopping_rounds=3),
    ],
    expected_failed_checks=lambda est: {
        "check_sample_weight_equivalence_on_dense_data": _SW_REASON,
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def genre_data(rng):
    """Three separable 'genres' with string labels and 6 features."""
    n = 90
    y = np.repeat(["blues", "jazz", "rock"], n // 3)
    X = rng.normal(size=(n, 6))
    X[y == "jazz", 0] += 3.0
    X[y == "rock", 1] += 3.0
    return X, y


def test_string_labels_and_probabilities(genre_data):
    X, y = genre_data
    clf = XGBoostClassifier(n_estimators=30, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["blues", "jazz", "rock"]
    assert clf.n_features_in_ == 6
    pred = clf.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= set(clf.classes_)
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    # columns follow classes_: the jazz column is largest on jazz rows
    assert proba[y == "jazz", 1].mean() > 0.5 > proba[y != "jazz", 1].mean()
    imp = clf.feature_importances_
    assert imp.shape == (6,) and np.isclose(imp.sum(), 1.0)
    assert set(np.argsort(imp)[-2:]) == {0, 1}  # the two informative features
    # as documented: the average gain per split (XGBoost's "gain"), normalised
    score = clf.model_.get_booster().get_score(importance_type="gain")
    gain = np.array([score.get(f"f{i}", 0.0) for i in range(6)])
    np.testing.assert_allclose(imp, gain / gain.sum(), rtol=1e-6)
    total = clf.model_.get_booster().get_score(importance_type="total_gain")
    total = np.array([total.get(f"f{i}", 0.0) for i in range(6)])
    assert not np.allclose(imp, total / total.sum(), rtol=1e-3)


def test_binary_and_integer_labels(rng):
    X = rng.normal(size=(60, 3))
    y = np.where(X[:, 0] > 0, 7, 3)
    clf = XGBoostClassifier(n_estimators=20, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == [3, 7]
    assert clf.predict_proba(X).shape == (60, 2)
    assert set(clf.predict(X)) <= {3, 7}


def test_same_seed_same_model_and_none_uses_global_rng(genre_data):
    X, y = genre_data
    params = dict(n_estimators=20, subsample=0.5, colsample_bytree=0.5)
    p1 = XGBoostClassifier(**params, random_state=1).fit(X, y).predict_proba(X)
    p2 = XGBoostClassifier(**params, random_state=1).fit(X, y).predict_proba(X)
    p3 = XGBoostClassifier(**params, random_state=2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)
    # None draws a seed from NumPy's global RNG, like scikit-learn estimators
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(5)  # noqa: NPY002 (the global RNG is what is tested)
        q1 = XGBoostClassifier(**params).fit(X, y).predict_proba(X)
        np.random.seed(5)  # noqa: NPY002
        q2 = XGBoostClassifier(**params).fit(X, y).predict_proba(X)
        q3 = XGBoostClassifier(**params).fit(X, y).predict_proba(X)  # next draw
    finally:
        np.random.set_state(state)  # noqa: NPY002
    np.testing.assert_array_equal(q1, q2)
    assert not np.allclose(q1, q3)
    # a RandomState instance is consumed, so two fits differ
    rs = np.random.RandomState(0)
    clf = XGBoostClassifier(**params, random_state=rs)
    assert not np.allclose(clf.fit(X, y).predict_proba(X), clf.fit(X, y).predict_proba(X))


def test_n_jobs_follows_scikit_learn(genre_data):
    X, y = genre_data
    clf = XGBoostClassifier(n_estimators=1)
    assert clf._xgb_kwargs(0)["n_jobs"] == 1  # None: one thread
    with parallel_config(n_jobs=2):
        assert clf._xgb_kwargs(0)["n_jobs"] == 2
    assert clf.set_params(n_jobs=-1)._xgb_kwargs(0)["n_jobs"] == os.cpu_count()
    assert clf.set_params(n_jobs=2).fit(X, y).model_.n_jobs == 2


def test_dataframe_feature_names(genre_data):
    pd = pytest.importorskip("pandas")
    X, y = genre_data
    cols = [f"mfcc{i}_mean" for i in range(6)]
    df = pd.DataFrame(X, columns=cols)
    clf = XGBoostClassifier(n_estimators=10, random_state=0).fit(df, y)
    assert clf.feature_names_in_.tolist() == cols
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)  # fitted with names, predicted without
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df[cols[::-1]])


def test_clone_and_grid_search(genre_data):
    X, y = genre_data
    clf = XGBoostClassifier(n_estimators=10, random_state=0, xgb_params={"max_bin": 32})
    params = clf.get_params()
    assert {"n_estimators", "max_depth", "learning_rate", "subsample", "colsample_bytree",
            "random_state", "n_jobs", "xgb_params"} <= set(params)
    twin = clone(clf)
    assert twin.get_params() == params
    search = GridSearchCV(clf, {"max_depth": [1, 3], "learning_rate": [0.1, 0.3]},
                          cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(X, y)
    assert search.best_params_["max_depth"] in (1, 3)
    assert search.best_estimator_.model_.get_params()["max_bin"] == 32
    scores = cross_val_score(clf, X, y, cv=3)
    assert scores.mean() > 0.8


def test_xgb_params_cannot_override_own_parameters(genre_data):
    X, y = genre_data
    with pytest.raises(ValueError, match=r"xgb_params may not set \['max_depth', 'seed'\]"):
        XGBoostClassifier(xgb_params={"seed": 1, "max_depth": 2}).fit(X, y)


def test_invalid_parameters(genre_data):
    X, y = genre_data
    with pytest.raises(ValueError, match="subsample"):
        XGBoostClassifier(subsample=1.5).fit(X, y)
    with pytest.raises(ValueError, match="tree_method"):
        XGBoostClassifier(tree_method="gpu").fit(X, y)
    with pytest.raises(ValueError) as info:
        XGBoostClassifier(early_stopping_rounds=0).fit(X, y)
    assert str(info.value) == (
        "The 'early_stopping_rounds' parameter of XGBoostClassifier must be an int in the "
        "range [1, inf) or None. Got 0 instead."
    )
    with pytest.raises(TypeError, match="'random_state' parameter"):  # also a TypeError
        XGBoostClassifier(random_state=np.random.default_rng(0)).fit(X, y)


def test_sample_weight_is_checked(genre_data):
    X, y = genre_data
    clf = XGBoostClassifier(n_estimators=2)
    with pytest.raises(ValueError, match=rf"sample_weight must have shape \({len(X)},\)"):
        clf.fit(X, y, sample_weight=np.ones(len(X) - 1))
    with pytest.raises(ValueError, match="at least one non-zero weight"):
        clf.fit(X, y, sample_weight=np.zeros(len(X)))
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(X, y, sample_weight=np.full(len(X), np.nan))
    clf.fit(X, y, sample_weight=list(np.ones(len(X))))  # any array-like


def test_one_class_is_an_error(rng):
    X = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="at least 2 classes.*'rock'"):
        XGBoostClassifier().fit(X, ["rock"] * 10)


def test_missing_values_are_learned(rng):
    X = rng.normal(size=(80, 3))
    y = np.where(X[:, 0] > 0, "a", "b")
    X[::7, 2] = np.nan
    clf = XGBoostClassifier(n_estimators=10, random_state=0).fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()


def test_sample_weight_shifts_the_model(rng):
    X = rng.normal(size=(200, 2))
    y = np.where(rng.random(200) < 0.5, "a", "b")  # labels unrelated to X
    w = np.where(y == "a", 10.0, 0.1)
    clf = XGBoostClassifier(n_estimators=20, random_state=0)
    unweighted = (clf.fit(X, y).predict(X) == "a").mean()
    weighted = (clf.fit(X, y, sample_weight=w).predict(X) == "a").mean()
    assert weighted > 0.9 > unweighted


def test_early_stopping_stops_and_keeps_best_round(rng):
    X = rng.normal(size=(300, 4))
    y = np.where(X[:, 0] + rng.normal(scale=1.5, size=300) > 0, "a", "b")  # noisy
    clf = XGBoostClassifier(n_estimators=500, learning_rate=0.3, early_stopping_rounds=5,
                            random_state=0).fit(X, y)
    assert 1 <= clf.n_estimators_ < 500
    assert clf.model_.best_iteration == clf.n_estimators_ - 1
    plain = XGBoostClassifier(n_estimators=7, random_state=0).fit(X, y)
    assert plain.n_estimators_ == 7


def test_early_stopping_validation_keeps_groups_whole(rng):
    n = 200
    y = np.repeat(["a", "b"], n // 2)
    groups = np.repeat(np.arange(40), 5)  # 40 tracks of 5 segments
    clf = XGBoostClassifier(early_stopping_rounds=3, validation_fraction=0.25)
    clf.classes_ = np.array(["a", "b"])
    train, valid = clf._validation_split((y == "b").astype(int), groups,
                                         np.random.RandomState(0))
    assert len(train) + len(valid) == n and len(valid) > 0
    assert not set(groups[train]) & set(groups[valid])
    # without groups the split is stratified
    train, valid = clf._validation_split((y == "b").astype(int), None,
                                         np.random.RandomState(0))
    assert (y[valid] == "a").sum() == (y[valid] == "b").sum() == 25
    # and fit accepts the groups
    X = rng.normal(size=(n, 3))
    clf.fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="groups has 3 entries for 200"):
        clf.fit(X, y, groups=[1, 2, 3])
    with pytest.raises(ValueError, match="at least 2 distinct groups"):
        clf.fit(X, y, groups=np.zeros(n))


def test_groups_are_ignored_without_early_stopping(genre_data):
    X, y = genre_data
    a = XGBoostClassifier(n_estimators=5, random_state=0).fit(X, y)
    b = XGBoostClassifier(n_estimators=5, random_state=0).fit(X, y, groups=np.arange(len(y)))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.shared_data
def test_gtzan_30s_features_beat_chance_by_far(gtzan_features_dir):
    pd = pytest.importorskip("pandas")
    table = pd.read_csv(gtzan_features_dir / "features_30_sec.csv")
    y = table["label"].to_numpy()
    X = table.drop(columns=["filename", "length", "label"])
    assert X.shape == (1000, 57)
    clf = XGBoostClassifier(n_estimators=40, learning_rate=0.2, random_state=0)
    scores = cross_val_score(clf, X, y, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    # 10 balanced genres: chance is 0.1; the study reports 0.74 with 10-fold-like data
    assert scores.mean() > 0.6
