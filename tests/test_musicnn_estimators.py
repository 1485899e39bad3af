"""MusicnnEmbedding, top_tags, the musicnn rows beyond the study and the ``tags`` CLI.

Everything here runs the real pretrained network, so the module is skipped
when the official weights are not installed (``pip install --no-deps musicnn``).
"""

import importlib.util
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from specgenre.aggregate import TrackAggregator
from specgenre.musicnn import (
    INSTALL_COMMAND,
    MUSICNN_TAGS,
    MusicnnClassifier,
    MusicnnEmbedding,
    MusicnnPatches,
    MusicnnWeightsNotFoundError,
    _estimators,
    load_musicnn,
    min_clip_samples,
    musicnn_layers,
    musicnn_patches,
    top_tags,
)
from specgenre.segment import ClipSegmenter

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason=f"official musicnn weights not installed (`{INSTALL_COMMAND}`)")

SR = 22050


def _clips(n, seconds, seed=0):
    """Tones (class 0) and noise bursts (class 1): clearly different to musicnn."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    X, y = [], []
    for i in range(n):
        if i % 2 == 0:
            f = rng.uniform(200, 800)
            x = 0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
        else:
            x = rng.normal(0, 0.2, t.size) * (np.sin(2 * np.pi * 4 * t) > 0)
        X.append(x)
        y.append(i % 2)
    return np.asarray(X, np.float32), np.asarray(y)


@pytest.fixture(scope="module")
def net():
    return load_musicnn("MSD_musicnn")


# ------------------------------------------------------------------ embedding

def test_min_clip_samples_is_exact():
    n = min_clip_samples(SR)
    assert musicnn_patches(np.zeros(n, np.float32) + 0.01, SR).shape == (1, 187, 96)
    with pytest.raises(ValueError, match="too short"):
        musicnn_patches(np.zeros(n - 1, np.float32) + 0.01, SR)
    assert min_clip_samples(16000) == 47616


def test_pooling_over_patches_equals_the_network_per_patch(net, one_torch_thread):
    import torch

    X, _ = _clips(2, 6.5)  # two patches per clip
    patches = [musicnn_patches(x, SR) for x in X]
    assert [len(p) for p in patches] == [2, 2]
    with torch.inference_mode():
        outs = [net(torch.from_numpy(p)) for p in patches]
    for layer, pooling in [("max_pool", "mean"), ("penultimate", "max"), ("taggram", "mean"),
                           ("cnn1", "mean"), ("cnn2", "max"), ("temporal", "mean_std")]:
        E = MusicnnEmbedding(layer=layer, pooling=pooling).fit_transform(X)
        for i, out in enumerate(outs):
            a = out[layer].numpy().reshape(-1, out[layer].shape[-1])  # all frames of all patches
            want = {"mean": a.mean(0), "max": a.max(0),
                    "mean_std": np.hstack([a.mean(0), a.std(0)])}[pooling]
            np.testing.assert_allclose(E[i], want, rtol=1e-4, atol=1e-5, err_msg=layer)
        assert E.dtype == np.float32


def test_bf16_precision_is_close_to_fp32(one_torch_thread):
    """precision="bf16": products in bfloat16, float32 output within a few % of the range."""
    from specgenre._precision import resolve_precision

    X, _ = _clips(2, 6.5)
    for model, layer in [("MSD_musicnn", "max_pool"), ("MSD_musicnn", "taggram"),
                         ("MSD_vgg", "pool5")]:
        exact = MusicnnEmbedding(model, layer=layer).fit_transform(X)
        low = MusicnnEmbedding(model, layer=layer, precision="bf16").fit_transform(X)
        assert low.dtype == np.float32
        diff = np.abs(low - exact).max() / np.abs(exact).max()
        assert 0 < diff < 0.05, (model, layer, diff)  # not float32, but close to it
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto", "cpu") in ("fp32", "bf16")
    with pytest.raises(ValueError, match="precision"):
        MusicnnEmbedding(precision="fp16").fit(X)


def test_feature_names_and_widths(one_torch_thread):
    X, _ = _clips(2, 3.2)
    emb = MusicnnEmbedding(layer="taggram").fit(X)
    assert emb.n_features_out_ == 50
    assert list(emb.get_feature_names_out()) == list(MUSICNN_TAGS["MSD_musicnn"])
    emb = MusicnnEmbedding(layer="max_pool", pooling="mean_std").fit(X)
    names = emb.get_feature_names_out()
    assert emb.n_features_out_ == len(names) == 2 * 753
    assert names[0] == "max_pool_0" and names[753] == "max_pool_std_0"
    assert emb.transform(X).shape == (2, 1506)
    assert emb.n_features_in_ == X.shape[1]
    vgg = MusicnnEmbedding("MTT_vgg", layer="pool5").fit(X)
    assert vgg.transform(X).shape == (2, 128)
    assert musicnn_layers("MTT_vgg")[1:] == ("pool1", "pool2", "pool3", "pool4", "pool5")


def test_bad_input_and_parameters_are_named():
    X, _ = _clips(2, 3.2)
    with pytest.raises(ValueError, match="NaN"):
        Xn = X.copy()
        Xn[0, 5] = np.nan
        MusicnnEmbedding().fit(Xn)
    with pytest.raises(ValueError, match="2D array"):
        MusicnnEmbedding().fit(X[0])
    with pytest.raises(ValueError, match="at least 65620 samples"):
        MusicnnEmbedding().fit(X[:, :SR])
    with pytest.raises(ValueError, match="layer 'pool3' is not an output of MSD_musicnn.*max_pool"):
        MusicnnEmbedding(layer="pool3").fit(X)
    with pytest.raises(ValueError, match="model"):
        MusicnnEmbedding("MSD_resnet").fit(X)
    with pytest.raises(ValueError, match="pooling"):
        MusicnnEmbedding(pooling="median").fit(X)
    emb = MusicnnEmbedding(layer="taggram").fit(X)
    with pytest.raises(ValueError, match="features"):
        emb.transform(np.hstack([X, X]))


def test_missing_weights_name_the_install_command(tmp_path):
    X, _ = _clips(1, 3.2)
    with pytest.raises(MusicnnWeightsNotFoundError, match="pip install --no-deps musicnn"):
        MusicnnEmbedding(weights_dir=tmp_path).fit(X)
    with pytest.raises(FileNotFoundError):
        top_tags(X, weights_dir=str(tmp_path))


def test_pickles_without_the_network(one_torch_thread):
    X, _ = _clips(2, 3.2)
    emb = MusicnnEmbedding(layer="penultimate").fit(X)
    blob = pickle.dumps(emb)
    assert len(blob) < 2000  # parameters and shapes only, no weights
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.transform(X), emb.transform(X))
    np.testing.assert_array_equal(clone(emb).fit_transform(X), emb.transform(X))


def test_composes_with_segmenter_and_track_aggregator(one_torch_thread):
    X, y = _clips(6, 6.2)  # two 3 s segments per clip, one patch each
    est = TrackAggregator(
        Pipeline([("embedding", MusicnnEmbedding(layer="penultimate")),
                  ("scaler", StandardScaler()), ("clf", LogisticRegression())]),
        segmenter=ClipSegmenter(3.0, sr=SR), voting="soft")
    est.fit(X, y)
    assert est.estimator_.named_steps["embedding"].n_features_in_ == 3 * SR
    np.testing.assert_array_equal(est.predict(X), y)  # tones vs noise: trivially separable
    assert est.predict_proba(X).shape == (6, 2)


def test_grid_search_over_layer_and_c_embeds_once_per_layer_and_fold(tmp_path, monkeypatch,
                                                                   one_torch_thread):
    X, y = _clips(8, 3.2)
    calls = []
    real = _estimators._embed

    def counting(X, **kwargs):
        calls.append((len(X), kwargs["layer"]))
        return real(X, **kwargs)

    monkeypatch.setattr(_estimators, "_embed", counting)
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    grid = {"embedding__layer": ["penultimate", "taggram"], "svm__C": [0.1, 1.0, 10.0]}

    def fit(memory):
        calls.clear()
        pipe = Pipeline([("embedding", MusicnnEmbedding()), ("scaler", StandardScaler()),
                         ("svm", SVC())], memory=memory)
        return GridSearchCV(pipe, grid, cv=cv).fit(X, y), list(calls)

    search, with_memory = fit(str(tmp_path / "cache"))
    _, without_memory = fit(None)
    # scoring transforms the 4 test clips of a fold for every candidate either way
    n_score = 2 * 3 * 2
    # embeddings of the training folds: once per layer and fold with memory (+1 refit) ...
    assert len(with_memory) == n_score + 2 * 2 + 1
    # ... once per candidate and fold without it
    assert len(without_memory) == n_score + 2 * 3 * 2 + 1
    assert search.best_params_["embedding__layer"] in ("penultimate", "taggram")
    assert search.best_score_ == 1.0


@parametrize_with_checks(
    # sr=1: a row of 3 to 5 samples is one patch after resampling to 16 kHz, so
    # sklearn's small test arrays are valid (if odd) waveforms
    [MusicnnEmbedding(layer="penultimate", sr=1, batch_size=256)],
    expected_failed_checks=lambda est: {
        **{name: "sklearn's data has rows of 2 samples: shorter than one patch (3 samples "
                 "at sr=1), refused with a ValueError" for name in (
            "check_estimators_overwrite_params", "check_estimators_fit_returns_self",
            "check_readonly_memmap_input", "check_fit_idempotent", "check_fit_check_is_fitted",
            "check_n_features_in")},
        "check_methods_subset_invariance": "float32 convolutions round differently with the "
        "batch size: relative differences up to ~1e-3 on values near 0 (tolerance 1e-4)",
    },
)
@pytest.mark.slow
def test_sklearn_checks(estimator, check, one_torch_thread):
    check(estimator)


# ------------------------------------------------------------------ tags

def test_top_tags_is_the_mean_taggram_sorted(one_torch_thread):
    X, _ = _clips(2, 6.2)
    P = MusicnnEmbedding(layer="taggram").fit_transform(X)
    got = top_tags(X, n=4)
    tags = MUSICNN_TAGS["MSD_musicnn"]
    for p, pairs in zip(P, got):
        order = np.argsort(p)[::-1][:4]  # the official tagger's ranking
        assert [t for t, _ in pairs] == [tags[j] for j in order]
        np.testing.assert_allclose([v for _, v in pairs], p[order], rtol=1e-6)
    single = top_tags(X[0], n=2)
    # one clip alone runs in another batch shape than two: float32 round-off may differ
    assert [t for t, _ in single] == [t for t, _ in got[0][:2]]
    np.testing.assert_allclose([v for _, v in single], [v for _, v in got[0][:2]], rtol=1e-5)
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 50\]"):
        top_tags(X, n=0)
    mtt = top_tags(X[0], model="MTT_musicnn", n=50)
    assert sorted(t for t, _ in mtt) == sorted(MUSICNN_TAGS["MTT_musicnn"])


@pytest.mark.shared_data
def test_top_tags_of_real_tracks(gtzan_dev, one_torch_thread):
    from specgenre.audio import read_audio

    # MSD has a "jazz" tag: it is the top tag of GTZAN's jazz tracks
    for i in range(3):
        y, sr = read_audio(gtzan_dev / "jazz" / f"jazz.0000{i}.flac")
        tags = top_tags(y, sr=sr, n=5)
        assert tags[0][0] == "jazz" and tags[0][1] > 0.3
        assert [p for _, p in tags] == sorted((p for _, p in tags), reverse=True)


# ------------------------------------------------------------------ CLI

def test_cli_tags(tmp_path, capsys, one_torch_thread):
    from conftest import write_wav

    from specgenre.cli import main

    X, _ = _clips(2, 3.5)
    good = tmp_path / "tone.wav"
    write_wav(good, X[0])
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    assert main(["tags", str(good), "--top", "3"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{good}\t") and line.count(",") == 2
    assert main(["tags", str(good), str(bad), str(tmp_path / "none.wav")]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1
    assert f"error: {bad}: " in captured.err and f"error: {tmp_path / 'none.wav'}: " in captured.err
    assert main(["tags", str(good), "--top", "51"]) == 2


def test_cli_tags_without_weights_names_the_install_command(tmp_path, capsys, monkeypatch,
                                                           torch_home):
    from conftest import write_wav

    from specgenre.cli import main
    from specgenre.musicnn import _weights

    X, _ = _clips(1, 3.5)
    write_wav(tmp_path / "a.wav", X[0])
    monkeypatch.setattr(_weights, "_installed_package_dir", lambda: None)
    _estimators._network.cache_clear()
    try:
        assert main(["tags", str(tmp_path / "a.wav")]) == 2
    finally:
        _estimators._network.cache_clear()
    err = capsys.readouterr().err
    assert "pip install --no-deps musicnn" in err and err.count("\n") == 1


# ------------------------------------------------------------------ rows beyond the study

def test_beyond_rows_are_apart_and_build(one_torch_thread):
    from specgenre.study import ALL_ROWS, BEYOND_ROWS, STUDY_ROWS, make_row

    assert list(ALL_ROWS)[:12] == list(STUDY_ROWS) and len(STUDY_ROWS) == 12
    assert list(ALL_ROWS)[12:] == list(BEYOND_ROWS)
    assert not any(r.beyond_study for r in STUDY_ROWS.values())
    for row in BEYOND_ROWS.values():
        assert row.beyond_study and row.study_accuracy is None and row.reference
    assert BEYOND_ROWS["musicnn_msd_svm_30s"].reference_accuracy == pytest.approx(0.7724)
    X, y = _clips(8, 6.2)
    for name in [n for n in BEYOND_ROWS if "finetune" not in n]:  # fine-tuning: below
        est = make_row(name, random_state=0)
        est.fit(X, y)
        assert est.score(X, y) == 1.0, name
    est = make_row("musicnn_msd_3s_prob", C=3.0,
                   estimator__embedding__layer="penultimate")
    assert est.get_params()["estimator__svm__estimator__C"] == 3.0  # the calibrated SVC
    assert not est.get_params()["estimator__svm__ensemble"]


# ------------------------------------------------------------------ fine-tuning

def test_musicnn_patches_transformer():
    from specgenre.musicnn import MusicnnPatches

    X, _ = _clips(3, 3.0)
    P = MusicnnPatches().fit_transform(X)
    assert P.shape == (3, 1, 96, 187) and P.dtype == np.float32
    np.testing.assert_array_equal(P[1, 0], musicnn_patches(X[1], SR)[0].T)
    with pytest.raises(ValueError, match="ClipSegmenter"):
        MusicnnPatches().fit(_clips(1, 30.0)[0])
    with pytest.raises(ValueError, match="65620 to"):
        MusicnnPatches().fit(X[:, :SR])


def _body_state(module):
    return {k: v.clone() for k, v in module.net.body.state_dict().items()}


def test_classifier_frozen_body_stays_pretrained(net, one_torch_thread):
    import warnings

    from specgenre.musicnn import MusicnnClassifier, MusicnnPatches

    X, y = _clips(8, 3.1)
    labels = np.where(y == 0, "tone", "noise")
    P = MusicnnPatches().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # too few samples for a validation split
        # float32: the embeddings are compared with the official float32 ones below
        clf = MusicnnClassifier(freeze="body", max_epochs=3, batch_size=4, lr=1e-2,
                                precision="fp32", random_state=0).fit(P, labels)
    pretrained = net.body.state_dict()
    body = clf.net_.module_.net.body
    frozen = {name: tensor for name, tensor in body.state_dict().items()}
    for name, value in pretrained.items():
        if name.endswith("num_batches_tracked"):
            continue
        np.testing.assert_array_equal(frozen[name].numpy(), value.numpy(), err_msg=name)
    assert not any(p.requires_grad for p in body.parameters())
    assert list(clf.classes_) == ["noise", "tone"]
    np.testing.assert_array_equal(clf.predict(P), labels)  # separable through the embedding
    # the frozen network embeds exactly as the pretrained one
    np.testing.assert_allclose(clf.transform(P), MusicnnEmbedding(layer="penultimate")
                               .fit_transform(X), rtol=1e-4, atol=1e-5)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(P), clf.predict_proba(P))


def test_classifier_fine_tunes_the_body_and_routes_groups(net, one_torch_thread):
    import warnings

    from specgenre.study import make_row

    X, y = _clips(4, 6.2)  # two segments per clip
    est = make_row("musicnn_finetune_3s_prob", random_state=0, max_epochs=1, batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(X, y)
    clf = est.estimator_.named_steps["musicnn"]
    assert clf.n_epochs_ == 1 and clf.input_shape_ == (1, 96, 187)
    changed = [k for k, v in clf.net_.module_.net.body.state_dict().items()
               if k.endswith("weight") and not np.array_equal(v.numpy(), net.body.state_dict()[k]
                                                              .numpy())]
    assert changed  # the body was trained
    assert est.predict_proba(X).shape == (4, 2)


def test_classifier_errors(tmp_path):
    from specgenre.musicnn import MusicnnClassifier

    y = np.array([0, 1] * 4)
    with pytest.raises(ValueError, match=r"musicnn patches \(n, 1, 96, 187\)"):
        MusicnnClassifier(max_epochs=1).fit(np.zeros((8, 1, 187, 96), np.float32), y)
    P = np.zeros((8, 1, 96, 187), np.float32)
    with pytest.raises(ValueError, match="freq_pool"):
        MusicnnClassifier(freq_pool=2).fit(P, y)
    with pytest.raises(MusicnnWeightsNotFoundError, match="pip install --no-deps musicnn"):
        MusicnnClassifier(weights_dir=tmp_path, valid_fraction=None).fit(P, y)


def _patch_checks_xfail(est):
    # sr=1: a row must hold 3 to 5 samples to be one patch (more: two patches, refused)
    short = ("sklearn's data has rows of 1 or 2 samples: shorter than one patch, refused "
             "with a ValueError")
    long = "sklearn's data has rows of 10 samples: two patches at sr=1, refused (segment first)"
    return {
        **dict.fromkeys(["check_estimators_overwrite_params", "check_estimators_fit_returns_self",
                         "check_readonly_memmap_input", "check_fit2d_1feature",
                         "check_fit_idempotent", "check_fit_check_is_fitted",
                         "check_n_features_in"], short),
        **dict.fromkeys(["check_dtype_object", "check_fit2d_1sample"], long),
    }


@parametrize_with_checks([MusicnnPatches(sr=1)], expected_failed_checks=_patch_checks_xfail)
def test_sklearn_checks_patches(estimator, check):
    check(estimator)


_CLASSIFIER_XFAIL = [
    "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input",
    "check_n_features_in_after_fitting", "check_positive_only_tag_during_fit",
    "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency",
    "check_estimators_nan_inf", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_classifier_data_not_an_array", "check_classifiers_classes", "check_classifiers_train",
    "check_supervised_y_2d", "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_fit2d_1feature", "check_dict_unchanged",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
    "check_fit2d_predict1d", "check_fit_score_takes_y", "check_class_weight_classifiers",
]


def _classifier_checks_xfail(est):
    # the network's input is fixed: musicnn patches (n, 1, 96, 187); fitting is covered by
    # the tests above on real patches
    return dict.fromkeys(_CLASSIFIER_XFAIL, "sklearn's data is (n, n_features) tables; the "
                         "classifier takes musicnn patches (n, 1, 96, 187) only and refuses "
                         "them with a ValueError")


@parametrize_with_checks([MusicnnClassifier(max_epochs=1, valid_fraction=None)],
                         expected_failed_checks=_classifier_checks_xfail)
def test_sklearn_checks_classifier(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ real tracks

@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["musicnn_msd_svm_30s", "musicnn_msd_3s_mv",
                                  "musicnn_msd_3s_prob", "musicnn_finetune_3s_prob"])
def test_beyond_rows_train_and_predict_on_dev_tracks(name, gtzan_dev, one_torch_thread):
    # Each row beyond the study, as declared, fits real GTZAN audio end to end with the
    # official weights (embedding or fine-tuning, voting) and predicts clips: 12 tracks
    # of 3 genres, first 6 s (two 3 s segments); one epoch for the fine-tuned row.
    from specgenre import AudioLoader, load_gtzan
    from specgenre.study import make_row

    genres = ["classical", "jazz", "rock"]
    b = load_gtzan(gtzan_dev, genres=genres)
    keep = np.flatnonzero(np.isin(b.track_ids, [f"{g}.0000{i}" for g in genres
                                                for i in range(4)]))
    X = AudioLoader(duration=6.0).fit_transform(b.filenames[keep])
    y = np.asarray(b.target)[keep]
    params = ({"max_epochs": 1, "batch_size": 8, "valid_fraction": None}
              if "finetune" in name else {})
    est = make_row(name, random_state=0, **params)
    est.fit(X, y)
    assert list(est.classes_) == genres
    pred = est.predict(X)
    assert pred.shape == (len(X),) and set(pred) <= set(genres)
    if hasattr(est, "predict_proba"):  # not the 30 s SVM (no Platt scaling)
        proba = est.predict_proba(X)
        assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    if "finetune" not in name:
        # pretrained music embeddings separate classical, jazz and rock at once
        assert est.score(X, y) >= 0.9


def test_checkpointing_fine_tunes_with_the_same_gradients(one_torch_thread):
    import torch

    from specgenre.musicnn import MusicnnNet
    from specgenre.musicnn._finetune import MusicnnModule

    def step(module, x, y):
        module.train()
        out = module(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        return out.detach(), {k: p.grad.clone() for k, p in module.named_parameters()}

    torch.manual_seed(0)  # random weights: the architecture is what is tested
    plain = MusicnnModule(MusicnnNet(), 3, dropout=0.0)
    ckpt = MusicnnModule(MusicnnNet(), 3, dropout=0.0, checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    ref = MusicnnModule(MusicnnNet(), 3, dropout=0.0).double()
    ref.load_state_dict(plain.state_dict())
    x, y = torch.randn(10, 1, 96, 187), torch.arange(10) % 3  # chunks of 8 and 2 patches
    out_p, grads_p = step(plain, x, y)
    out_c, grads_c = step(ckpt, x, y)
    out_r, grads_r = step(ref, x.double(), y)

    def err(a, b):
        return float((a.double() - b).abs().max())

    # held to a float64 run: checkpointing errs at most about as much as plain float32
    assert err(out_c, out_r) <= 2 * err(out_p, out_r) + 1e-6
    front = [k for k in grads_p if ".timbral." in k or ".temporal." in k]
    assert len(front) == 20  # 5 filter banks: conv weight and bias, bn weight and bias
    for k in grads_p:
        scale = float(grads_r[k].abs().max())
        assert err(grads_c[k], grads_r[k]) <= 3 * err(grads_p[k], grads_r[k]) + 1e-6 * scale, k
    bufs_c, bufs_p, bufs_r = (dict(m.named_buffers()) for m in (ckpt, plain, ref))
    for k in bufs_p:  # running statistics, updated once
        if "num_batches" in k:
            assert int(bufs_c[k]) == int(bufs_p[k]) == 1
            continue
        scale = float(bufs_r[k].abs().max())
        assert err(bufs_c[k], bufs_r[k]) <= 3 * err(bufs_p[k], bufs_r[k]) + 1e-6 * scale, k
