"""Tests of the reproduce harness (specgenre.reproduce): folds, caching, outcomes, files."""

import csv

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import specgenre.reproduce as reproduce
from specgenre import (
    ClipSegmenter,
    FeatureExtractor,
    PretrainedWeightsNotFoundError,
    TrackAggregator,
    make_genre_clips,
)
from specgenre.reproduce import (
    RowResult,
    accepted_params,
    check_params,
    evaluate_row,
    evaluate_rows,
    format_table,
    write_results,
)

XGB_ROWS = ["xgboost_30s", "xgboost_3s", "xgboost_3s_mv"]


@pytest.fixture(scope="module")
def clips():
    """Three genres x 4 clips of 6 s (two 3 s segments each)."""
    b = make_genre_clips(4, genres=["classical", "metal", "jazz"], duration=6.0,
                         random_state=0)
    return b.data, np.asarray(b.target), np.asarray(b.track_ids)


@pytest.fixture
def count_features(monkeypatch):
    """Count the waveforms FeatureExtractor.transform is given (per waveform length)."""
    seen = {}
    original = FeatureExtractor.transform

    def counting(self, X):
        seen[X.shape[1]] = seen.get(X.shape[1], 0) + len(X)
        return original(self, X)

    monkeypatch.setattr(FeatureExtractor, "transform", counting)
    return seen


def test_features_are_computed_once_per_clip_and_setting(clips, count_features):
    X, y, ids = clips
    cached = evaluate_rows(XGB_ROWS, X, y, cv=2, params={"n_estimators": 10},
                           track_ids=ids)
    # each 6 s clip once, each of its two 3 s segments once, over 2 folds and 3 rows
    assert count_features == {X.shape[1]: len(X), X.shape[1] // 2: 2 * len(X)}
    assert cached[0].transform_seconds > 0 and cached[2].transform_seconds == 0
    count_features.clear()
    plain = evaluate_rows(XGB_ROWS, X, y, cv=2, params={"n_estimators": 10},
                          track_ids=ids, cache=False)
    assert count_features[X.shape[1]] == 2 * len(X)  # train + test of every fold
    # two rows, train + test segments of every fold (a vote also recomputes tied clips)
    assert count_features[X.shape[1] // 2] >= 2 * 2 * 2 * len(X)
    # the voted row reuses the segment-level row's XGBoost models
    assert "reuses the models fitted for xgboost_3s " in " ".join(cached[2].notes)
    assert not any("reuses" in n for n in plain[2].notes)
    # caching and sharing change the time, never a result
    for a, b in zip(cached, plain):
        assert a.status == b.status == "ok"
        assert a.scores == b.scores
        for key in ("track", "fold", "y_true", "y_pred"):
            assert np.array_equal(a.predictions[key], b.predictions[key])
        if a.row == "xgboost_3s_mv":  # a majority vote has no probabilities
            assert a.predictions["proba"] is b.predictions["proba"] is None
        else:
            np.testing.assert_allclose(a.predictions["proba"], b.predictions["proba"],
                                       rtol=1e-6)


def test_out_of_fold_predictions_cover_every_clip_once(clips):
    X, y, ids = clips
    clip_row, seg_row, mv_row = evaluate_rows(XGB_ROWS, X, y, cv=3,
                                              params={"n_estimators": 5}, track_ids=ids)
    p = clip_row.predictions
    assert sorted(p["track"].tolist()) == sorted(ids.tolist())
    assert np.array_equal(y[p["index"]], p["y_true"])
    assert set(p["fold"].tolist()) == {0, 1, 2}
    for fold, score in enumerate(clip_row.scores):
        in_fold = p["fold"] == fold
        assert score == pytest.approx(np.mean(p["y_pred"][in_fold] == p["y_true"][in_fold]))
    assert p["proba"].shape == (len(X), 3)
    np.testing.assert_allclose(p["proba"].sum(axis=1), 1, atol=1e-5)
    assert p["segment"] is None
    # the segment-level row: each test clip's two segments, numbered
    s = seg_row.predictions
    assert len(s["track"]) == 2 * len(X)
    assert sorted(s["segment"].tolist()) == [0, 1] * len(X) or \
        sorted(s["segment"].tolist()) == sorted([0, 1] * len(X))
    assert seg_row.protocol.endswith("segment accuracy")
    # a majority vote has no probabilities
    assert mv_row.predictions["proba"] is None
    assert clip_row.classes == ["classical", "jazz", "metal"]


def test_tracks_used_and_majority_class_follow_the_split(clips):
    X, y, ids = clips
    train, test = np.arange(0, 12, 2), np.array([1, 3, 5])  # 9 of the 12 clips
    r = evaluate_row("xgboost_30s", X, y, split=(train, test), params={"n_estimators": 5})
    assert r.n_tracks == 9 and r.n_classes == len(np.unique(y[np.r_[train, test]]))
    counts = np.unique(y[np.r_[train, test]], return_counts=True)[1]
    assert r.majority == pytest.approx(counts.max() / 9)
    assert len(r.scores) == 1 and len(r.predictions["track"]) == 3
    assert r.protocol.startswith("fault-filtered split")


def _raising(exc):
    class Raises(LogisticRegression):
        def fit(self, X, y):
            raise exc

    return Raises()


@pytest.mark.parametrize("exc, status", [
    (PretrainedWeightsNotFoundError("no weights at /x/resnet18.pth"), "skipped"),
    (FileNotFoundError("a track vanished"), "failed"),
    (RuntimeError("out of memory"), "failed"),
])
def test_only_missing_weights_skip_a_row(clips, monkeypatch, exc, status):
    X, y, _ = clips
    monkeypatch.setattr(reproduce, "make_row", lambda name, **kw: make_pipeline(
        FeatureExtractor(), _raising(exc)))
    r = evaluate_row("resnet18_pretrained_30s_mel", X, y, cv=2)
    assert r.status == status and str(exc) in r.message
    assert r.scores == [] and r.predictions is None


class CountingLogisticRegression(LogisticRegression):
    """A LogisticRegression that records each fit (module level: it must pickle)."""

    fits = []

    def fit(self, X, y, **kw):
        self.fits.append(len(X))
        return super().fit(X, y)


def test_rows_differing_only_in_voting_share_their_fits(clips, monkeypatch):
    X, y, _ = clips
    fits = CountingLogisticRegression.fits
    fits.clear()

    def fake_row(name, *, random_state=None, n_jobs=None, **kw):
        voting = "soft" if "_prob_" in name else "hard"
        inner = make_pipeline(FeatureExtractor(), CountingLogisticRegression(max_iter=200, **kw))
        return TrackAggregator(inner, segmenter=ClipSegmenter(3.0), voting=voting)

    monkeypatch.setattr(reproduce, "make_row", fake_row)
    rows = ["resnet18_scratch_3s_mv_db", "resnet18_scratch_3s_prob_db"]
    mv, prob = evaluate_rows(rows, X, y, cv=2)
    assert len(fits) == 2  # one fit per fold, for both rows
    assert "reuses the models fitted for resnet18_scratch_3s_mv_db" in " ".join(prob.notes)
    assert prob.predictions["proba"] is not None and mv.predictions["proba"] is None
    fits.clear()
    mv2, prob2 = evaluate_rows(rows, X, y, cv=2, cache=False)
    assert len(fits) == 4
    assert (mv.scores, prob.scores) == (mv2.scores, prob2.scores)
    # two segments per clip: the table explains why MV and Prob (nearly) coincide
    assert any("2 segments per clip" in n for n in mv.notes + prob.notes)


def test_params_go_to_the_rows_that_take_them(clips):
    X, y, _ = clips
    assert {"n_estimators", "features__sr"} <= accepted_params("xgboost_30s")
    assert "spectrogram__n_mels" in accepted_params("cnn_30s_mel")
    assert "max_epochs" in accepted_params("cnn_30s_mel")
    assert "max_epochs" not in accepted_params("xgboost_30s")
    taken = check_params(["cnn_30s_mel", "xgboost_30s"], ["max_epochs", "n_estimators"])
    assert taken == {"max_epochs": ["cnn_30s_mel"], "n_estimators": ["xgboost_30s"]}
    with pytest.raises(ValueError, match="n_trees.*xgboost_30s, xgboost_3s_mv"):
        check_params(["xgboost_30s", "xgboost_3s_mv"], ["n_estimators", "n_trees"])
    with pytest.raises(ValueError, match="n_trees"):
        evaluate_rows(["xgboost_30s"], X, y, cv=2, params={"n_trees": 3})
    # a callable gives per-row params; each row keeps only those it takes
    r = evaluate_row("xgboost_30s", X, y, cv=2,
                     params=lambda row: {"n_estimators": 3, "max_epochs": 2})
    assert r.params == {"n_estimators": 3}


def test_table_notes_each_explanation_once(clips):
    message = ("PretrainedWeightsNotFoundError: ImageNet weights not found at "
               "/home/u/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth ...")
    results = [
        RowResult("resnet18_pretrained_30s_mel", "t", 0.77, "p", status="skipped",
                  message=message, n_tracks=12),
        RowResult("resnet18_pretrained_3s_mv_mel", "t", 0.83, "p", status="skipped",
                  message=message, n_tracks=12),
        RowResult("xgboost_3s_mv", "t", None, "p", scores=[0.5, 0.7], n_tracks=12,
                  majority=1 / 3),
    ]
    for markdown in (False, True):
        text = format_table(results, markdown=markdown)
        assert text.count("resnet18-f37072fd.pth") == 1
        assert ("[1] resnet18_pretrained_30s_mel, resnet18_pretrained_3s_mv_mel: skipped: "
                "PretrainedWeightsNotFoundError") in text
        assert "77.0% (study, 10-genre GTZAN)" in text
        assert "not measured (study, 10-genre GTZAN)" in text
        assert "60.0% +- 10.0" in text and "33.3%" in text


def test_reference_rows_are_labelled_with_their_source():
    source = "Pons & Serra, sklearn-audio-transfer-learning: 77.24 % on the filtered split"
    r = RowResult("musicnn_row", "t", None, "p", scores=[0.5], beyond_study=True,
                  reference_accuracy=0.7724, reference=source)
    none = RowResult("musicnn_other", "t", None, "p", scores=[0.5], beyond_study=True,
                     reference="No published figure for this recipe (soft vote).")
    lines = format_table([r, none]).splitlines()
    assert "77.2% (reference: Pons & Serra)" in lines[2] and "study" not in lines[2]
    assert "-- (beyond the study; none published)" in lines[3]
    assert f"[1] musicnn_row: published figure: {source}" in lines
    assert "[2] musicnn_other: published figure: No published figure" in lines[-1]


def test_write_results_writes_every_row_file(clips, tmp_path):
    X, y, ids = clips
    results = evaluate_rows(["xgboost_30s", "xgboost_3s"], X, y, cv=2,
                            params={"n_estimators": 5}, track_ids=ids)
    results.append(RowResult("resnet18_pretrained_30s_mel", "t", 0.77, "p",
                             status="skipped", message="PretrainedWeightsNotFoundError: x"))
    paths = write_results(results, tmp_path / "out", meta={"data": "synthetic"})
    names = {p.relative_to(tmp_path / "out").as_posix() for p in paths}
    assert names == {"results.csv", "results.md"} | {
        f"{row}/{f}" for row in ("xgboost_30s", "xgboost_3s")
        for f in ("predictions.csv", "classification_report.txt", "confusion_matrix.png")}
    with open(tmp_path / "out" / "xgboost_30s" / "predictions.csv") as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == len(X)
    assert set(lines[0]) == {"track", "true_genre", "predicted_genre", "fold",
                             "proba_classical", "proba_jazz", "proba_metal"}
    with open(tmp_path / "out" / "xgboost_3s" / "predictions.csv") as fh:
        assert "segment" in next(csv.reader(fh))
    report = (tmp_path / "out" / "xgboost_30s" / "classification_report.txt").read_text()
    assert "precision" in report and "metal" in report and "12 clips" in report
    png = (tmp_path / "out" / "xgboost_30s" / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    md = (tmp_path / "out" / "results.md").read_text()
    assert "- data: synthetic" in md
    assert "[confusion](xgboost_30s/confusion_matrix.png)" in md
    summary = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert [r["row"] for r in summary] == [r.row for r in results]
    assert summary[0] == {k: str(v) for k, v in results[0].as_dict().items()}
    assert summary[2]["status"] == "skipped" and summary[2]["n_folds"] == "0"


def test_rows_sharing_a_setting_run_together(clips, count_features):
    X, y, _ = clips
    done = []
    rows = ["xgboost_3s", "xgboost_30s", "xgboost_3s_mv"]
    results = evaluate_rows(rows, X, y, cv=2, params={"n_estimators": 5},
                            callback=lambda r: done.append(r.row))
    # the two rows on 3 s segment features run one after the other; results keep the order
    assert done == ["xgboost_3s", "xgboost_3s_mv", "xgboost_30s"]
    assert [r.row for r in results] == rows
    assert count_features == {X.shape[1]: len(X), X.shape[1] // 2: 2 * len(X)}


def test_folds_fitted_in_parallel_give_the_serial_results(clips, count_features):
    """fold_jobs=2: the same scores, predictions and probabilities as one process."""
    X, y, _ = clips
    rows = ["cnn_30s_mel", "resnet18_scratch_3s_mv_db", "resnet18_scratch_3s_prob_db",
            "xgboost_3s"]

    def small(row):
        return {"max_epochs": 1, "valid_fraction": None, "freq_pool": 8,
                "n_estimators": 3}

    serial = evaluate_rows(rows, X, y, cv=2, params=small)
    parallel = evaluate_rows(rows, X, y, cv=2, params=small, fold_jobs=2)
    for a, b in zip(serial, parallel):
        assert (a.status, b.status) == ("ok", "ok"), (a.message, b.message)
        assert a.scores == b.scores
        for k in ("index", "fold", "y_true", "y_pred"):
            np.testing.assert_array_equal(a.predictions[k], b.predictions[k])
        if a.predictions["proba"] is not None:
            np.testing.assert_array_equal(a.predictions["proba"], b.predictions["proba"])
    assert "reuses the models fitted" in " ".join(parallel[2].notes)
    # the features of xgboost_3s were computed in this process, once per segment
    # in each run (the parent fills the cache before handing it to the workers)
    assert count_features == {3 * 22050: 2 * len(y) * 2}


def test_fold_workers_are_bounded_by_the_folds_to_fit(monkeypatch):
    monkeypatch.setattr(reproduce.os, "cpu_count", lambda: 4)
    assert reproduce._fold_workers(None, 3) == 1
    assert reproduce._fold_workers(2, 3) == 2
    assert reproduce._fold_workers(8, 3) == 3
    assert reproduce._fold_workers(-1, 3) == 3
    assert reproduce._fold_workers(-1, 10) == 4
    assert reproduce._fold_workers(-2, 10) == 3
    assert reproduce._fold_workers(4, 1) == 1  # one fit (or none): no worker processes
