"""Model files (specgenre.modelfile): rows predict bit for bit after a reload in a fresh
process, and loading never runs code from the file.

Every row below is fitted small (2 genres x 3 synthetic 6 s clips, one epoch), saved
with :func:`save_model`, and loaded by a new Python interpreter, whose predictions must
equal the original model's exactly. Then crafted files: pickles under every usual name
whose unpickling would create a marker file, headers naming types outside the
allowlist, truncated and damaged files; each is refused with a one-line
:class:`ModelFileError` naming the file, and the marker never appears.
"""

import importlib.util
import json
import pickle
import struct
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import specgenre
from specgenre import make_genre_clips, make_row
from specgenre.modelfile import (
    HEADER_KEY,
    MODEL_FORMAT,
    ModelFileError,
    load_model,
    save_model,
)
from specgenre.training import TrainedModel

GENRES = ["classical", "metal"]
HAS_MUSICNN = importlib.util.find_spec("musicnn") is not None
needs_musicnn = pytest.mark.skipif(
    not HAS_MUSICNN, reason="official musicnn weights not installed "
    "(`pip install --no-deps musicnn`)")

# row -> small settings (same estimator, less work)
ROWS = {
    "xgboost_30s": dict(n_estimators=5),
    "xgboost_3s": dict(n_estimators=5),
    "xgboost_3s_mv": dict(n_estimators=5),
    "cnn_30s_mel": dict(max_epochs=1, channels=(4, 8)),
    "resnet18_scratch_3s_mv_db": dict(max_epochs=1, freq_pool=8),
    "musicnn_msd_svm_30s": {},
    "musicnn_msd_3s_prob": {},
    "musicnn_finetune_3s_prob": dict(max_epochs=1),
    "musicnn_msd_probe_30s": {},
    "musicnn_msd_pons_3s_mv": {},
}
SLOW = {"resnet18_scratch_3s_mv_db", "musicnn_msd_svm_30s", "musicnn_msd_3s_prob",
        "musicnn_finetune_3s_prob", "musicnn_msd_probe_30s", "musicnn_msd_pons_3s_mv"}


def _row_param(name):
    marks = [pytest.mark.slow] if name in SLOW else []
    if name.startswith("musicnn"):
        marks.append(needs_musicnn)
    return pytest.param(name, marks=marks, id=name)


def _outputs(est, X):
    """What the model computes: its labels and its scores, whichever it has."""
    out = {"predict": est.predict(X)}
    for method in ("predict_proba", "predict_votes", "decision_function"):
        if hasattr(est, method):
            out[method] = getattr(est, method)(X)
            break
    return out


# Runs in the fresh interpreter: load the model, predict the saved input, save the
# outputs. Torch gets the parent's thread count, so that float reductions are split
# the same way (BLAS/OpenMP settings come from the inherited environment).
_CHILD = textwrap.dedent("""
    import json
    import sys
    from pathlib import Path

    import numpy as np

    from specgenre.modelfile import load_model

    out = Path(sys.argv[1])
    model = load_model(out / "model.specgenre")
    est, meta = model.estimator, model.metadata()
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(sys.argv[2]))
    X = np.load(out / "X.npy")
    (out / "meta.json").write_text(json.dumps(meta))
    np.save(out / "got_predict.npy", est.predict(X))
    for method in ("predict_proba", "predict_votes", "decision_function"):
        if hasattr(est, method):
            np.save(out / f"got_{method}.npy", getattr(est, method)(X))
            break
""")


def _torch_threads():
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else 1


@pytest.fixture(scope="module")
def clips():
    return make_genre_clips(3, genres=GENRES, duration=6.0, random_state=0)


def _fit(name, clips):
    row = specgenre.ALL_ROWS[name]
    est = make_row(name, random_state=0, **ROWS[name])
    X, y, _ = row.samples(clips.data, clips.target)
    with warnings.catch_warnings():
        # tiny data: no inner validation split, SVC's probability deprecation, ...
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return est, X


@pytest.mark.parametrize("name", [_row_param(name) for name in ROWS])
def test_row_predicts_identically_in_a_fresh_process(name, clips, tmp_path):
    est, X = _fit(name, clips)
    meta = {"row": name, "sr": 22050, "window_seconds": 30.0, "classes": GENRES,
            "train_counts": {"classical": 3, "metal": 3}, "skipped": [["a.wav", "bad"]]}
    save_model(est, tmp_path / "model.specgenre", metadata=meta)
    np.save(tmp_path / "X.npy", X)
    expected = _outputs(est, X)

    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path), str(_torch_threads())],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"child process failed:\n{result.stderr[-3000:]}"
    want_meta = TrainedModel.from_metadata(est, meta).metadata()
    assert json.loads((tmp_path / "meta.json").read_text()) == want_meta
    for key, want in expected.items():
        got = np.load(tmp_path / f"got_{key}.npy", allow_pickle=False)
        assert got.dtype == want.dtype, key
        assert np.array_equal(got, want), key  # bit for bit
    assert len(expected) == 2  # a score method was compared, not only labels


@pytest.fixture(scope="module")
def xgb_file(tmp_path_factory, clips):
    est, X = _fit("xgboost_30s", clips)
    path = tmp_path_factory.mktemp("xgb") / "model.specgenre"
    save_model(est, path, metadata={"row": "xgboost_30s"})
    return path, est, X


def test_saved_file_is_safetensors_without_pickle(xgb_file):
    path, _, _ = xgb_file
    data = path.read_bytes()
    assert b"\x80\x04\x95" not in data and b"\x80\x05\x95" not in data
    with safe_open(str(path), framework="numpy") as f:
        doc = json.loads(f.metadata()[HEADER_KEY])
        keys = set(f.keys())
    assert doc["format"] == MODEL_FORMAT
    assert doc["metadata"] == {"row": "xgboost_30s"}
    assert doc["versions"]["specgenre"] == specgenre.__version__
    assert doc["estimator"]["class"].endswith(":Pipeline")
    assert any(k.endswith(".ubj") for k in keys)  # the booster, in XGBoost's own format


def test_load_returns_a_trained_model(xgb_file):
    path, est, X = xgb_file
    saved = load_model(path)
    assert isinstance(saved, TrainedModel)
    assert saved.row == "xgboost_30s" and saved.extra == {} and saved.window_seconds == 30.0
    assert np.array_equal(saved.estimator.predict_proba(X), est.predict_proba(X))


def test_a_trained_models_facts_travel_with_it(xgb_file, tmp_path):
    _, est, X = xgb_file
    model = TrainedModel(est, "xgboost_30s", 30.0, train_counts={"jazz": 12, "rock": 9},
                         skipped=[("a/b.flac", "unreadable")], params={"n_estimators": 5},
                         specgenre_version=specgenre.__version__)
    save_model(model, tmp_path / "genres.model")
    back = load_model(tmp_path / "genres.model")
    assert back.metadata() == model.metadata() and back.skipped == [("a/b.flac", "unreadable")]
    assert back.classes == model.classes


# ------------------------------------------------------------ crafted pickles

class _Marker:
    """Unpickling it creates the file ``path`` (what a malicious pickle could do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _write_pickle(path, how, marker):
    payload = {"format": "specgenre-model-1", "estimator": _Marker(marker)}
    if how == "joblib":
        joblib.dump(payload, path)
    elif how.startswith("joblib_"):
        joblib.dump(payload, path, compress=(how.split("_")[1], 3))
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(how[-1])))


@pytest.mark.parametrize("suffix", [".joblib", ".pkl", ".specgenre", ".model"])
@pytest.mark.parametrize("how", ["joblib", "joblib_zlib", "joblib_gzip", "joblib_bz2",
                                 "joblib_lzma", "joblib_xz", "protocol2", "protocol4",
                                 "protocol5"])
def test_pickle_is_refused_and_not_run(tmp_path, suffix, how):
    marker = tmp_path / "marker"
    path = tmp_path / f"model{suffix}"
    _write_pickle(path, how, marker)
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "is a pickle" in message and "trusted=True" in message
    assert "only if you trust its source" in message
    assert not marker.exists()


def test_crafted_pickle_would_run_code(tmp_path):
    """The premise of the test above: unpickling these files does create the marker."""
    marker = tmp_path / "marker"
    _write_pickle(tmp_path / "model.pkl", "protocol5", marker)
    pickle.loads((tmp_path / "model.pkl").read_bytes())
    assert marker.exists()


def test_old_format_loads_with_trusted_and_a_warning(tmp_path, xgb_file):
    _, est, X = xgb_file
    path = tmp_path / "old.joblib"
    joblib.dump({"format": "specgenre-model-1", "specgenre_version": specgenre.__version__,
                 "estimator": est, "row": "xgboost_30s", "sr": 22050, "duration": 30.0,
                 "classes": GENRES}, path)
    with pytest.raises(ModelFileError, match="is a pickle"):
        load_model(path)
    with pytest.warns(UserWarning, match="can run any code"):
        model = load_model(path, trusted=True)
    assert np.array_equal(model.estimator.predict_proba(X), est.predict_proba(X))
    assert model.row == "xgboost_30s" and model.window_seconds == 30.0
    assert "estimator" not in model.extra and "format" not in model.extra


def test_trusted_pickle_without_model_is_refused(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    with pytest.warns(UserWarning, match="can run any code"), \
            pytest.raises(ModelFileError, match="not a specgenre model"):
        load_model(path, trusted=True)


# ------------------------------------------------------------ altered files

def _rewrite(src, dst, edit_doc=None, edit_arrays=None):
    """Copy a model file, changing its description and/or tensors (a valid safetensors)."""
    arrays = load_file(str(src))
    with safe_open(str(src), framework="numpy") as f:
        text = f.metadata()[HEADER_KEY]
    if edit_doc is not None:
        text = edit_doc(text)
    if edit_arrays is not None:
        arrays = edit_arrays(arrays)
    save_file(arrays, str(dst), metadata={HEADER_KEY: text})
    return dst


def _refused(path, match):
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "Error" not in message  # no exception class names


@pytest.mark.parametrize("name", ["os:system", "builtins:eval", "posix:system",
                                  "subprocess:Popen", "specgenre.modelfile:load_model"])
def test_class_outside_allowlist_is_refused(tmp_path, xgb_file, name):
    marker = tmp_path / "marker"
    path = _rewrite(xgb_file[0], tmp_path / "m.specgenre", edit_doc=lambda t: t.replace(
        "specgenre.boosting:XGBoostClassifier", name, 1))
    _refused(path, "names a type that model files may not hold")
    assert not marker.exists()


def test_type_reference_outside_allowlist_is_refused(tmp_path, xgb_file):
    def edit(text):
        doc = json.loads(text)
        doc["estimator"]["state"]["memory"] = {"$type": "os:system"}
        return json.dumps(doc)

    _refused(_rewrite(xgb_file[0], tmp_path / "m", edit_doc=edit), "may not hold")


def test_reference_only_type_cannot_be_built(tmp_path, xgb_file):
    def edit(text):
        doc = json.loads(text)
        doc["estimator"]["state"]["memory"] = {"class": "builtins:print", "id": 999,
                                               "state": {}}
        return json.dumps(doc)

    _refused(_rewrite(xgb_file[0], tmp_path / "m", edit_doc=edit), "may only refer to")


def test_wrong_tensor_keys_are_refused(tmp_path, xgb_file):
    def drop(arrays):
        arrays.pop(next(k for k in arrays if k.endswith(".ubj")))
        return arrays

    def add(arrays):
        return {**arrays, "extra": np.zeros(3)}

    _refused(_rewrite(xgb_file[0], tmp_path / "a", edit_arrays=drop), "lacks 1 of the tensors")
    _refused(_rewrite(xgb_file[0], tmp_path / "b", edit_arrays=add), "does not use")


def test_damaged_description_is_refused(tmp_path, xgb_file):
    src = xgb_file[0]
    _refused(_rewrite(src, tmp_path / "a", edit_doc=lambda t: t[:-5]), "not valid JSON")
    _refused(_rewrite(src, tmp_path / "b", edit_doc=lambda t: t.replace(
        MODEL_FORMAT, "specgenre-model-9")), "upgrade specgenre")
    _refused(_rewrite(src, tmp_path / "c", edit_doc=lambda t: t.replace(
        '"$tuple"', '"$eval"', 1)), "unknown tag")
    save_file({"x": np.zeros(2)}, str(tmp_path / "d"), metadata={"other": "tool"})
    _refused(tmp_path / "d", "not a specgenre model file")


def test_damaged_booster_is_refused(tmp_path, xgb_file):
    def garble(arrays):
        key = next(k for k in arrays if k.endswith(".ubj"))
        return {**arrays, key: np.full_like(arrays[key], 7)}

    _refused(_rewrite(xgb_file[0], tmp_path / "m", edit_arrays=garble), "XGBoost")


@pytest.mark.parametrize("keep", [0, 5, 9, 200, -100, -1])
def test_truncated_file_is_refused(tmp_path, xgb_file, keep):
    data = xgb_file[0].read_bytes()
    path = tmp_path / "cut.specgenre"
    path.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    _refused(path, "truncated|empty|not a specgenre model file")


def test_header_length_beyond_file_is_refused(tmp_path, xgb_file):
    data = bytearray(xgb_file[0].read_bytes())
    data[:8] = struct.pack("<Q", len(data))  # header claims the whole file and more
    path = tmp_path / "m"
    path.write_bytes(bytes(data))
    _refused(path, "truncated or damaged")


def test_other_files_are_refused(tmp_path):
    (tmp_path / "text.model").write_text("not a model\n")
    _refused(tmp_path / "text.model", "unknown format")
    _refused(tmp_path / "missing.specgenre", "not found")
    _refused(tmp_path, "is a folder")


def test_version_difference_warns(tmp_path, xgb_file):
    path = _rewrite(xgb_file[0], tmp_path / "m", edit_doc=lambda t: t.replace(
        f'"specgenre":"{specgenre.__version__}"', '"specgenre":"0.0.1"'))
    with pytest.warns(UserWarning, match=r"specgenre 0\.0\.1 \(this is"):
        load_model(path)


# ------------------------------------------------------------ saving

def test_unsupported_type_is_named_and_file_untouched(tmp_path, xgb_file):
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    est = Pipeline([("f", FunctionTransformer(np.log1p)),
                    ("lr", LogisticRegression())]).fit(X, [0, 0, 1, 1])
    path = tmp_path / "model.specgenre"
    path.write_bytes(xgb_file[0].read_bytes())
    with pytest.raises(TypeError, match=r"FunctionTransformer.*cannot hold") as err:
        save_model(est, path)
    assert "estimator.steps[0][1]" in str(err.value)
    assert path.read_bytes() == xgb_file[0].read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["model.specgenre"]  # no temporary left


def test_function_value_is_named(tmp_path):
    est = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    est.callback_ = lambda: None
    with pytest.raises(TypeError, match=r"estimator\.callback_ .*cannot refer to"):
        save_model(est, tmp_path / "m")


def test_metadata_must_be_json(tmp_path):
    est = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(TypeError, match=r"metadata\['when'\]"):
        save_model(est, tmp_path / "m", metadata={"when": object()})
    save_model(est, tmp_path / "m", metadata={"n": np.int64(3), "pair": (1, 2.5)})
    assert load_model(tmp_path / "m").extra == {"n": 3, "pair": [1, 2.5]}


def test_missing_folder(tmp_path):
    est = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_model(est, tmp_path / "no" / "model")


def test_values_round_trip_exactly(tmp_path):
    """Arrays of every layout and kind, scalars and containers come back as they were."""
    est = LogisticRegression().fit([[0.0], [1.0]], ["a", "b"])
    values = {
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "strided": np.arange(10, dtype=np.int32)[::3],
        "empty": np.zeros((0, 3), np.float32),
        "zero_d": np.array(2.5),
        "bools": np.array([True, False]),
        "strings": np.array(["jazz", "rock"]),
        "objects": np.array(["jazz", 3, None], dtype=object),
        "scalars": (np.float32(0.1), np.int64(2**40), np.bool_(True), np.str_("x")),
        "floats": [float("nan"), float("inf"), -0.0, 1e-310],
        "containers": {1: {"a", "b"}, "t": (1, [2, (3,)]), "fs": frozenset({4})},
        "dtype": np.dtype("float32"),
        "types": [np.float32, float],
        "bytes": b"\x00\x80\x05\x95",
        "rng": np.random.RandomState(7),
    }
    est.extra_ = values
    est.same_ = values["fortran"]
    save_model(est, tmp_path / "m")
    got = load_model(tmp_path / "m").estimator.extra_
    for key in ("fortran", "strided", "empty", "zero_d", "bools", "strings", "objects"):
        assert got[key].dtype == values[key].dtype and got[key].shape == values[key].shape
        assert got[key].tolist() == values[key].tolist(), key
    assert got["fortran"].flags.f_contiguous
    assert [type(s) for s in got["scalars"]] == [type(s) for s in values["scalars"]]
    assert got["scalars"] == values["scalars"]
    assert np.isnan(got["floats"][0]) and got["floats"][1:] == values["floats"][1:]
    assert str(got["floats"][2]) == "-0.0"
    assert got["containers"] == values["containers"]
    assert got["dtype"] == values["dtype"] and got["types"] == values["types"]
    assert got["bytes"] == values["bytes"]
    assert got["rng"].randint(1000, size=5).tolist() == \
        np.random.RandomState(7).randint(1000, size=5).tolist()
    loaded = load_model(tmp_path / "m").estimator
    assert loaded.same_ is loaded.extra_["fortran"]  # shared arrays stay shared


def test_network_weights_and_state_round_trip(tmp_path):
    """A CNN with a validation split (early stopping, learning-rate schedule, batch-norm
    callback, a user callback): every tensor of its module comes back with its shape,
    dtype, value and gradient flag; the net predicts the same and can be trained again."""
    import torch
    from skorch.callbacks import EpochTimer

    rng = np.random.default_rng(0)
    X = rng.normal(-40, 10, size=(40, 1, 16, 20)).astype(np.float32)
    y = np.repeat(["jazz", "rock"], 20)
    X[y == "rock", :, :8] += 20
    clf = specgenre.CNNClassifier(channels=(4, 8), max_epochs=2, random_state=0,
                                  callbacks=[EpochTimer()]).fit(X, y)
    assert clf.n_valid_ > 0  # the validation machinery is part of what is saved
    save_model(clf, tmp_path / "cnn")
    loaded = load_model(tmp_path / "cnn").estimator
    before, after = clf.net_.module_.state_dict(), loaded.net_.module_.state_dict()
    assert list(before) == list(after)
    for key, t in before.items():
        assert after[key].shape == t.shape and after[key].dtype == t.dtype, key
        assert torch.equal(after[key], t), key
    assert [p.requires_grad for p in loaded.net_.module_.parameters()] == \
        [p.requires_grad for p in clf.net_.module_.parameters()]
    assert loaded.net_.module_.training == clf.net_.module_.training
    assert len(loaded.net_.history) == len(clf.net_.history)
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert np.array_equal(loaded.transform(X), clf.transform(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded.set_params(max_epochs=1).fit(X, y)  # a fresh optimizer, but it trains
    assert loaded.n_epochs_ == 1
