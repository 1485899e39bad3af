"""Tests of the study's row registry (specgenre.study)."""

import dataclasses
import importlib
import importlib.util
import os

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from specgenre import STUDY_ROWS, TrackAggregator, XGBoostClassifier, group_segments, make_row
from specgenre.segment import ClipSegmenter
from specgenre.study import STUDY_XGBOOST_PARAMS, StudyRow, classifier_of

# the study's table: name -> (model, input, voting, scale, pretrained, accuracy)
TABLE = {
    "cnn_30s_mel": ("cnn", "30s", None, "mel", None, 0.66),
    "resnet18_scratch_30s_mel": ("resnet18", "30s", None, "mel", False, 0.71),
    "resnet18_scratch_3s_mv_db": ("resnet18", "3s", "hard", "db", False, 0.75),
    "resnet18_scratch_3s_prob_db": ("resnet18", "3s", "soft", "db", False, 0.77),
    "resnet18_pretrained_30s_mel": ("resnet18", "30s", None, "mel", True, 0.77),
    "resnet18_pretrained_3s_mv_mel": ("resnet18", "3s", "hard", "mel", True, 0.83),
    "resnet18_pretrained_3s_prob_mel": ("resnet18", "3s", "soft", "mel", True, 0.85),
    "resnet18_pretrained_3s_mv_db": ("resnet18", "3s", "hard", "db", True, 0.90),
    "resnet18_pretrained_3s_prob_db": ("resnet18", "3s", "soft", "db", True, 0.89),
    "xgboost_30s": ("xgboost", "30s", None, None, None, 0.74),
    "xgboost_3s": ("xgboost", "3s", None, None, None, 0.904),
    "xgboost_3s_mv": ("xgboost", "3s", "hard", None, None, None),
}
NEURAL = [name for name in TABLE if not name.startswith("xgboost")]
XGB = [name for name in TABLE if name.startswith("xgboost")]


def test_registry_holds_the_study_table_in_order():
    assert list(STUDY_ROWS) == list(TABLE)
    for name, (model, inp, voting, scale, pretrained, acc) in TABLE.items():
        row = STUDY_ROWS[name]
        assert isinstance(row, StudyRow) and row.name == name
        assert (row.model, row.input, row.voting, row.scale, row.pretrained) == (
            model, inp, voting, scale, pretrained)
        assert row.study_accuracy == acc
        assert row.protocol
        # one prediction per clip, except the leaky segment-level XGBoost row
        assert row.level == ("segment" if name == "xgboost_3s" else "clip")
        # the convenience method builds what make_row builds
        assert joblib.hash(row.make(random_state=3)) == joblib.hash(
            make_row(name, random_state=3))


@pytest.mark.parametrize("name", list(TABLE))
def test_row_names_agree_with_their_fields(name):
    row = STUDY_ROWS[name]
    parts = name.split("_")
    assert parts[0] == row.model
    assert f"_{row.input}" in name
    assert ("_mv" in name) == (row.voting == "hard")
    assert ("_prob" in name) == (row.voting == "soft")
    if row.scale is not None:
        assert parts[-1] == row.scale
    if row.model == "resnet18":
        assert parts[1] == ("pretrained" if row.pretrained else "scratch")
    if row.voting is not None:
        assert row.input == "3s"  # votes combine 3 s segments
    assert set(row.sources) == ({"audio", "features"} if row.model == "xgboost" else {"audio"})


def test_protocol_notes_say_what_each_figure_measures():
    assert "leak" in STUDY_ROWS["xgboost_3s"].protocol
    assert "segment-level" in STUDY_ROWS["xgboost_3s"].protocol
    assert "never measured" in STUDY_ROWS["xgboost_3s_mv"].protocol
    assert "majority vote" in STUDY_ROWS["resnet18_pretrained_3s_mv_db"].protocol
    assert "mean class probabilities" in STUDY_ROWS["resnet18_pretrained_3s_prob_db"].protocol


def test_samples_are_clips_or_their_3s_segments(rng):
    X = rng.normal(size=(3, 7 * 22050)).astype(np.float32)  # two 3 s segments each
    y = np.array(["jazz", "rock", "pop"])
    same, y_same, idx = STUDY_ROWS["xgboost_3s_mv"].samples(X, y)
    assert same is X and y_same.tolist() == y.tolist() and idx.tolist() == [0, 1, 2]
    segments, y_seg, idx = STUDY_ROWS["xgboost_3s"].samples(X, y)
    assert segments.shape == (6, 3 * 22050)
    assert idx.tolist() == [0, 0, 1, 1, 2, 2]
    assert y_seg.tolist() == ["jazz", "jazz", "rock", "rock", "pop", "pop"]
    np.testing.assert_array_equal(segments[3], X[1, 3 * 22050: 6 * 22050])
    assert STUDY_ROWS["xgboost_3s"].samples(X)[1] is None


def test_classifier_of_reaches_the_classifier():
    assert isinstance(classifier_of(make_row("xgboost_3s_mv")), XGBoostClassifier)
    assert isinstance(classifier_of(make_row("xgboost_30s")), XGBoostClassifier)
    clf = XGBoostClassifier()
    assert classifier_of(clf) is clf
    agg = make_row("xgboost_3s_mv", source="features")
    assert classifier_of(agg) is agg.estimator


def test_titles():
    assert STUDY_ROWS["resnet18_pretrained_3s_mv_db"].title == "ResNet18 pretrained, 3 s + MV, dB"
    assert STUDY_ROWS["resnet18_scratch_3s_prob_db"].title == "ResNet18 scratch, 3 s + Prob, dB"
    assert STUDY_ROWS["cnn_30s_mel"].title == "CNN, 30 s, mel"
    assert STUDY_ROWS["xgboost_3s_mv"].title == "XGBoost, 3 s + MV"


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        STUDY_ROWS["mine"] = STUDY_ROWS["xgboost_30s"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        STUDY_ROWS["xgboost_30s"].study_accuracy = 0.99


# --------------------------------------------------------------------------
# XGBoost rows from Kaggle's feature tables
# --------------------------------------------------------------------------


def test_xgboost_rows_from_features_use_the_study_settings():
    for name in ("xgboost_30s", "xgboost_3s"):
        est = make_row(name, source="features", random_state=3, n_jobs=2)
        assert isinstance(est, XGBoostClassifier)
        params = est.get_params()
        assert {k: params[k] for k in STUDY_XGBOOST_PARAMS} == dict(STUDY_XGBOOST_PARAMS)
        assert params["random_state"] == 3 and params["n_jobs"] == 2
    mv = make_row("xgboost_3s_mv", source="features", random_state=3)
    assert isinstance(mv, TrackAggregator)
    assert mv.segmenter == "precomputed" and mv.voting == "hard"
    assert isinstance(mv.estimator, XGBoostClassifier)
    assert mv.get_params()["estimator__n_estimators"] == 1000
    assert mv.get_params()["estimator__random_state"] == 3


def test_overrides_go_to_the_classifier_or_to_a_nested_path():
    est = make_row("xgboost_3s_mv", source="features", n_estimators=50, max_depth=3,
                   estimator__learning_rate=0.2)
    assert est.estimator.n_estimators == 50 and est.estimator.max_depth == 3
    assert est.estimator.learning_rate == 0.2
    # plain names are the classifier's: the row's own structure is not overridable so
    with pytest.raises(ValueError, match="voting"):
        make_row("xgboost_3s_mv", source="features", voting="soft")


def test_override_names_are_checked():
    with pytest.raises(ValueError, match="n_trees"):
        make_row("xgboost_30s", source="features", n_trees=5)


def test_each_call_builds_a_fresh_estimator():
    a = make_row("xgboost_3s_mv", source="features")
    b = make_row("xgboost_3s_mv", source="features")
    assert a is not b and a.estimator is not b.estimator
    assert clone(a).get_params(deep=False).keys() == a.get_params(deep=False).keys()


def test_row_errors():
    with pytest.raises(ValueError, match="unknown study row 'xgboost'.*xgboost_30s"):
        make_row("xgboost")
    with pytest.raises(ValueError, match="no 'features' variant"):
        make_row("resnet18_pretrained_3s_mv_db", source="features")
    with pytest.raises(ValueError, match="source must be one of"):
        make_row("xgboost_30s", source="csv")


def test_xgboost_rows_fit_segment_tables(rng):
    # a tiny stand-in for Kaggle's tables: 12 tracks x 4 segments, 5 features
    y_track = np.repeat(["jazz", "rock", "pop"], 4)
    track = np.repeat(np.arange(12), 4)
    X = rng.normal(size=(48, 5)) + np.repeat(np.arange(3), 16)[:, None]
    y = y_track[track]
    seg = make_row("xgboost_3s", source="features", n_estimators=20, random_state=0).fit(X, y)
    assert seg.score(X, y) > 0.9
    Xt, yt, _ = group_segments(X, y, track)
    mv = make_row("xgboost_3s_mv", source="features", n_estimators=20, random_state=0)
    assert mv.fit(Xt, yt).predict(Xt).tolist() == yt.tolist()


@pytest.mark.shared_data
def test_xgboost_30s_row_on_the_kaggle_table(gtzan_features_dir):
    from sklearn.model_selection import train_test_split

    from specgenre import load_gtzan_features

    table = load_gtzan_features(gtzan_features_dir / "features_30_sec.csv")
    X_train, X_test, y_train, y_test = train_test_split(
        table.data, table.target, test_size=0.3, stratify=table.target, random_state=0)
    est = make_row("xgboost_30s", source="features", n_estimators=40, learning_rate=0.2,
                   random_state=0)
    assert est.fit(X_train, y_train).score(X_test, y_test) > 0.6  # chance: 0.1


# --------------------------------------------------------------------------
# rows from audio
# --------------------------------------------------------------------------


def _public_or_skip(name):
    """A public specgenre name, or a skip while its module has not been written.

    A module that exists but fails to import makes the test fail, not skip.
    """
    import specgenre

    module = f"specgenre.{specgenre._LAZY[name]}"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} (for {name}) does not exist yet")
    return getattr(specgenre, name)


def test_xgboost_rows_from_audio_structure():
    feature_extractor = _public_or_skip("FeatureExtractor")
    est = make_row("xgboost_30s", random_state=0, n_jobs=2)
    assert isinstance(est, Pipeline) and [n for n, _ in est.steps] == ["features", "xgboost"]
    assert isinstance(est[0], feature_extractor)
    assert est[-1].get_params()["n_estimators"] == 1000
    assert est[-1].random_state == 0 and est[-1].n_jobs == 2
    # the leaky segment-level row is the same pipeline, fed 3 s segments by the harness
    assert type(make_row("xgboost_3s")) is Pipeline
    mv = make_row("xgboost_3s_mv")
    assert isinstance(mv, TrackAggregator) and mv.voting == "hard"
    assert isinstance(mv.segmenter, ClipSegmenter) and mv.segmenter.segment_seconds == 3.0
    assert [n for n, _ in mv.estimator.steps] == ["features", "xgboost"]


def test_xgboost_rows_run_end_to_end_from_audio():
    _public_or_skip("FeatureExtractor")
    from specgenre import make_genre_clips

    clips = make_genre_clips(2, genres=["classical", "metal"], duration=6.0, random_state=0)
    mv = make_row("xgboost_3s_mv", n_estimators=10, random_state=0)
    pred = mv.fit(clips.data, clips.target).predict(clips.data)
    assert pred.shape == (4,) and set(pred) <= {"classical", "metal"}
    assert mv.segmenter_.n_segments_ == 2  # two 3 s segments per 6 s clip
    assert mv.estimator_[-1].n_features_in_ == 57
    segments, idx = ClipSegmenter(3.0).fit_segment(clips.data)
    seg = make_row("xgboost_3s", n_estimators=10, random_state=0)
    assert seg.fit(segments, clips.target[idx]).predict(segments).shape == (8,)


def _check_neural_structure(est, row, classes):
    if row.voting is None:
        pipe = est
    else:
        assert isinstance(est, TrackAggregator) and est.voting == row.voting
        assert isinstance(est.segmenter, ClipSegmenter)
        assert est.segmenter.segment_seconds == 3.0 and est.segmenter.sr == 22050
        pipe = est.estimator
    assert isinstance(pipe, Pipeline)
    assert [n for n, _ in pipe.steps] == ["spectrogram", row.model]
    assert pipe.get_params()["spectrogram__scale"] == row.scale
    assert pipe.get_params()["spectrogram__sr"] == 22050
    clf = pipe[-1]
    assert isinstance(clf, classes[row.model])
    assert clf.get_params()["random_state"] == 7
    if row.model == "resnet18":
        assert clf.get_params()["pretrained"] is row.pretrained


@pytest.mark.parametrize("name", NEURAL)
def test_neural_rows_are_built_as_declared(name):
    classes = {"cnn": _public_or_skip("CNNClassifier"),
               "resnet18": _public_or_skip("ResNet18Classifier")}
    row = STUDY_ROWS[name]
    est = make_row(name, random_state=7, n_jobs=2)
    _check_neural_structure(est, row, classes)
    clf = est[-1] if row.voting is None else est.estimator[-1]
    assert clf.get_params()["n_jobs"] == 2
    clone(est)


@pytest.mark.parametrize("name", NEURAL)
def test_neural_row_overrides_reach_the_classifier_or_a_nested_path(name):
    classes = {"cnn": _public_or_skip("CNNClassifier"),
               "resnet18": _public_or_skip("ResNet18Classifier")}
    row = STUDY_ROWS[name]
    # building a row does not touch a device: "cuda" is only a parameter here
    est = make_row(name, random_state=7, device="cuda", max_epochs=2)
    _check_neural_structure(est, row, classes)
    clf = est[-1] if row.voting is None else est.estimator[-1]
    assert clf.device == "cuda" and clf.max_epochs == 2
    if row.voting is not None:
        tweaked = make_row(name, estimator__spectrogram__n_mels=64)
        assert tweaked.get_params()["estimator__spectrogram__n_mels"] == 64
    else:
        tweaked = make_row(name, spectrogram__n_mels=64)
        assert tweaked.get_params()["spectrogram__n_mels"] == 64


@pytest.fixture(scope="module")
def dev_clips(request):
    """Six real GTZAN tracks (2 classical, 2 jazz, 2 rock), their first 6 s."""
    dev = request.getfixturevalue("gtzan_dev")
    from specgenre import AudioLoader, load_gtzan

    b = load_gtzan(dev, genres=["classical", "jazz", "rock"])
    keep = np.flatnonzero(np.isin(b.track_ids, [f"{g}.0000{i}" for g in
                                                ("classical", "jazz", "rock") for i in (0, 1)]))
    X = AudioLoader(duration=6.0).fit_transform(b.filenames[keep])
    return X, b.target[keep]


@pytest.fixture
def random_imagenet_weights(torch_home):
    """A seeded random resnet18 state dict where torchvision caches IMAGENET1K_V1, offline."""
    torch = pytest.importorskip("torch")
    from torchvision.models import resnet18

    from specgenre.networks import resnet18_weights_path

    path, _ = resnet18_weights_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.manual_seed(0)
    torch.save(resnet18(weights=None).state_dict(), path)
    return path


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", NEURAL)
def test_neural_rows_train_and_predict_on_dev_tracks(name, dev_clips, random_imagenet_weights):
    # Every row, as declared, fits real GTZAN audio end to end (spectrograms, network,
    # voting) and predicts clips; one epoch on 6 s excerpts keeps it to seconds.
    X, y = dev_clips
    est = make_row(name, random_state=0, max_epochs=1, batch_size=4, valid_fraction=None)
    est.fit(X, y)
    assert list(est.classes_) == ["classical", "jazz", "rock"]
    pred = est.predict(X)
    assert pred.shape == (len(X),) and set(pred) <= set(est.classes_)
    if STUDY_ROWS[name].voting == "hard":
        votes = est.predict_votes(X)  # 2 segments per 6 s clip
        assert votes.shape == (len(X), 3) and (votes.sum(axis=1) == 2).all()
    else:
        proba = est.predict_proba(X)
        assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_one_grid_search_covers_the_3s_neural_rows(random_imagenet_weights):
    # scale x pretraining x voting around one 3 s ResNet18 row: its 8 candidates include
    # the settings of all six 3 s ResNet18 rows of the study's table
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from specgenre import make_genre_clips

    clips = make_genre_clips(2, genres=["classical", "metal"], duration=6.0, random_state=0)
    X, y = clips.data, np.asarray(clips.target)
    # one epoch on small images (32 mel bands; dB rows pooled by 8): wiring, not accuracy
    base = make_row("resnet18_scratch_3s_mv_db", random_state=0, max_epochs=1, batch_size=4,
                    valid_fraction=None, freq_pool=8, n_jobs=1,
                    estimator__spectrogram__n_mels=32)
    grid = {"estimator__spectrogram__scale": ["mel", "db"],
            "estimator__resnet18__pretrained": [False, True],
            "voting": ["hard", "soft"]}
    search = GridSearchCV(base, grid, cv=StratifiedKFold(2, shuffle=True, random_state=0))
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 8 and np.isfinite(scores).all()
    assert search.predict(X).shape == (len(X),)
    candidates = [(p["estimator__spectrogram__scale"], p["estimator__resnet18__pretrained"],
                   p["voting"]) for p in search.cv_results_["params"]]
    for name, row in STUDY_ROWS.items():
        if row.model == "resnet18" and row.input == "3s":
            assert (row.scale, row.pretrained, row.voting) in candidates, name


# --------------------------------------------------------------------------
# facts a harness reads off a row, declared (not guessed from names)
# --------------------------------------------------------------------------


def test_rows_declare_weights_head_and_whether_predict_is_the_proba_argmax():
    from specgenre.study import ALL_ROWS

    for row in ALL_ROWS.values():
        expected = {"resnet18": "imagenet" if row.pretrained else None,
                    "musicnn": "musicnn"}.get(row.model)
        assert row.weights == expected, row.name
        assert (row.head is None) == (row.model != "musicnn"), row.name
    heads = {n: r.head for n, r in ALL_ROWS.items() if r.model == "musicnn"}
    assert heads == {"musicnn_msd_svm_30s": "svm", "musicnn_msd_3s_mv": "svm",
                     "musicnn_msd_3s_prob": "svm", "musicnn_finetune_3s_prob": "finetune",
                     "musicnn_msd_probe_30s": "probe", "musicnn_msd_pons_3s_mv": "pca_svm"}
    assert ALL_ROWS["musicnn_finetune_3s_prob"].title == "musicnn MSD fine-tuned, 3 s + Prob"
    assert ALL_ROWS["musicnn_msd_3s_mv"].title == "musicnn MSD embedding + SVM, 3 s + MV"
    assert ALL_ROWS["musicnn_msd_probe_30s"].title == (
        "musicnn MSD penultimate + logistic regression, 30 s")
    assert ALL_ROWS["musicnn_msd_pons_3s_mv"].title == (
        "musicnn MSD embedding + PCA + SVM, 3 s every 1 s + MV")
    # networks, XGBoost, soft votes and the logistic probe predict the argmax of their
    # probabilities; the SVM rows without a soft vote are not declared so
    assert {n for n, r in ALL_ROWS.items() if not r.predict_is_proba_argmax} == {
        "musicnn_msd_svm_30s", "musicnn_msd_3s_mv", "musicnn_msd_pons_3s_mv"}


def test_xgboost_predict_is_the_argmax_of_its_probabilities(rng):
    # what predict_is_proba_argmax=True lets a harness rely on
    X = rng.normal(size=(60, 4)) + np.repeat(np.arange(3), 20)[:, None]
    y = np.repeat(["jazz", "pop", "rock"], 20)
    est = make_row("xgboost_30s", source="features", n_estimators=5, random_state=0).fit(X, y)
    proba = est.predict_proba(X)
    assert est.predict(X).tolist() == est.classes_[np.argmax(proba, axis=1)].tolist()


def test_musicnn_svm_rows_calibrate_for_the_soft_vote_only(rng):
    # SVC's probability parameter is deprecated (scikit-learn 1.9): the soft vote takes
    # Platt-scaled probabilities from CalibratedClassifierCV(SVC(), ensemble=False);
    # the other SVM rows never pass probability at all
    import warnings

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    from specgenre.study import ALL_ROWS

    names = ["musicnn_msd_svm_30s", "musicnn_msd_3s_mv", "musicnn_msd_3s_prob"]
    X = rng.normal(size=(60, 8)) + np.repeat(np.arange(3), 20)[:, None]
    y = np.repeat(["jazz", "pop", "rock"], 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        for name in names:
            row = ALL_ROWS[name]
            est = make_row(name, random_state=0, C=2.0)
            pipe = est if row.voting is None else est.estimator
            assert isinstance(est, TrackAggregator) == (row.voting is not None)
            assert [n for n, _ in pipe.steps] == ["embedding", "scaler", "svm"]
            svm = pipe.named_steps["svm"]
            if row.voting == "soft":
                assert isinstance(svm, CalibratedClassifierCV)
                assert svm.ensemble is False and svm.method == "sigmoid"
                svc = svm.estimator
            else:
                svc = svm
            assert type(svc) is SVC and classifier_of(est) is svc and svc.C == 2.0
            assert svc.get_params()["probability"] in ("deprecated", False)  # never set
            # the row's own scaler and SVM (its embedding left out) on numeric rows
            head = pipe[1:].fit(X, y)
            assert hasattr(head, "predict_proba") == (row.voting == "soft")
            if row.voting == "soft":
                proba = head.predict_proba(X)
                np.testing.assert_allclose(proba.sum(axis=1), 1.0)
                assert head.predict(X).tolist() == head.classes_[proba.argmax(1)].tolist()


# --------------------------------------------------------------------------
# row groups and the recommended row
# --------------------------------------------------------------------------


def test_select_rows_resolves_names_and_groups():
    from specgenre.study import (
        ALL_ROWS,
        BEYOND_ROWS,
        RECOMMENDED_ROW,
        ROW_GROUPS,
        select_rows,
    )

    assert select_rows(["study"]) == list(STUDY_ROWS) == select_rows(None) == select_rows([])
    assert select_rows("beyond") == list(BEYOND_ROWS)
    assert select_rows(["all"]) == list(ALL_ROWS)
    assert select_rows(["recommended"]) == [RECOMMENDED_ROW]
    # order kept, each row once
    assert select_rows(["xgboost_30s", "study", "recommended", RECOMMENDED_ROW]) == (
        ["xgboost_30s"] + [r for r in STUDY_ROWS if r != "xgboost_30s"] + [RECOMMENDED_ROW])
    assert set(ROW_GROUPS) == {"study", "beyond", "all", "recommended"}
    with pytest.raises(ValueError) as err:
        select_rows(["xgboost_30s", "nope", "studdy"])
    message = str(err.value)
    assert "'nope', 'studdy'" in message and "xgboost_30s" in message
    assert "recommended" in message and "musicnn_msd_probe_30s" in message
    with pytest.raises(TypeError, match="rows"):
        select_rows([3])


def test_one_row_is_recommended_and_it_is_beyond_the_study():
    from specgenre.study import ALL_ROWS, RECOMMENDED_ROW

    assert [n for n, r in ALL_ROWS.items() if r.recommended] == [RECOMMENDED_ROW]
    assert ALL_ROWS[RECOMMENDED_ROW].beyond_study
    assert ALL_ROWS[RECOMMENDED_ROW].class_weight == "balanced"


# --------------------------------------------------------------------------
# the probe and Pons & Serra's recipe
# --------------------------------------------------------------------------


def test_probe_row_is_the_standardised_penultimate_embedding_and_a_logistic_regression(rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from specgenre.musicnn import MusicnnEmbedding

    est = make_row("musicnn_msd_probe_30s", random_state=0)
    assert [n for n, _ in est.steps] == ["embedding", "scaler", "logreg"]
    emb, scaler, logreg = (step for _, step in est.steps)
    assert type(emb) is MusicnnEmbedding and emb.model == "MSD_musicnn"
    assert emb.layer == "penultimate" and emb.pooling == "mean"
    assert type(scaler) is StandardScaler and type(logreg) is LogisticRegression
    assert logreg.class_weight == "balanced" and classifier_of(est) is logreg
    X = rng.normal(size=(60, 8)) + np.repeat(np.arange(3), 20)[:, None]
    y = np.repeat(["jazz", "pop", "rock"], 20)
    head = est[1:].fit(X, y)
    assert head.predict(X).tolist() == head.classes_[head.predict_proba(X).argmax(1)].tolist()


def test_pons_row_is_the_recipe_per_patch_with_a_majority_vote(rng):
    from sklearn.svm import SVC

    from specgenre._capped_pca import CappedPCA
    from specgenre.musicnn import MusicnnEmbedding
    from specgenre.study import ALL_ROWS

    row = ALL_ROWS["musicnn_msd_pons_3s_mv"]
    est = make_row("musicnn_msd_pons_3s_mv", random_state=0)
    assert isinstance(est, TrackAggregator) and est.voting == "hard"
    seg = est.segmenter
    assert (seg.segment_seconds, seg.hop_seconds, seg.sr) == (3.0, 1.0, 22050)
    assert seg.n_segments(30 * 22050) == 28  # 3 s patches every 1 s
    pipe = est.estimator
    assert [n for n, _ in pipe.steps] == ["embedding", "pca", "svm"]
    emb, pca, svc = (step for _, step in pipe.steps)
    assert type(emb) is MusicnnEmbedding and emb.layer == "max_pool"
    assert type(pca) is CappedPCA and (pca.n_components, pca.whiten) == (128, True)
    assert type(svc) is SVC and classifier_of(est) is svc
    assert (svc.C, svc.kernel, svc.gamma, svc.class_weight) == (1.0, "rbf", "scale", "balanced")
    assert row.reference_accuracy == 0.7724 and row.hop_seconds == 1.0
    # the head on numeric rows: fewer rows than 128 keep n - 1 whitened dimensions
    X = rng.normal(size=(60, 200)) + np.repeat(np.arange(3), 20)[:, None]
    y = np.repeat(["jazz", "pop", "rock"], 20)
    head = pipe[1:].fit(X, y)
    assert head.named_steps["pca"].n_components_ == 59
    assert (head.predict(X) == y).mean() > 0.9


@pytest.mark.shared_data
@pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                    reason="official musicnn weights not installed")
@pytest.mark.parametrize("name", ["musicnn_msd_probe_30s", "musicnn_msd_pons_3s_mv"])
def test_new_musicnn_rows_fit_real_tracks(name, dev_clips):
    # the official weights on real audio, end to end (6 s clips: 4 patches every 1 s)
    X, y = dev_clips
    est = make_row(name, random_state=0).fit(X, y)
    pred = est.predict(X)
    assert pred.shape == (6,) and set(pred) <= set(y)
    assert (pred == y).mean() >= 2 / 3  # its own training tracks
