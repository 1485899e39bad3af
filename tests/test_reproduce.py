"""Tests of the harness ``specgenre reproduce`` runs: folds, caching, outcomes (evaluation), files
(report)."""

import csv
import importlib.util

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import specgenre.evaluation as evaluation
from specgenre import (
    ALL_ROWS,
    STUDY_ROWS,
    ClipSegmenter,
    FeatureExtractor,
    PretrainedWeightsNotFoundError,
    TrackAggregator,
    make_genre_clips,
    make_row,
)
from specgenre.evaluation import (
    RowResult,
    accepted_params,
    check_params,
    evaluate_row,
    evaluate_rows,
)
from specgenre.report import format_table, write_results

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
    monkeypatch.setattr(evaluation, "make_row", lambda name, **kw: make_pipeline(
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

    monkeypatch.setattr(evaluation, "make_row", fake_row)
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
    assert summary[0] == {**{k: str(v) for k, v in results[0].as_dict().items()},
                          "skipped_files": "0"}
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
            np.testing.assert_array_equal(a.predictions["proba"], b.predictions["proba"], err_msg=a.row)
    assert "reuses the models fitted" in " ".join(parallel[2].notes)
    # the features of xgboost_3s were computed in this process, once per segment
    # in each run (the parent computes them before handing them to the workers)
    assert count_features == {3 * 22050: 2 * len(y) * 2}


def test_the_next_rows_folds_reach_the_pool_while_a_rows_last_folds_run(clips, monkeypatch):
    """One pool for all rows: a row starts when the previous row's folds are down to
    its last round (one per worker), not when they are all done; a row that reuses
    another's models waits for them; the scores are those of one row at a time."""
    X, y, _ = clips
    rows = ["xgboost_30s", "resnet18_scratch_3s_mv_db", "resnet18_scratch_3s_prob_db",
            "cnn_30s_mel"]

    def small(row):
        return {"max_epochs": 1, "valid_fraction": None, "freq_pool": 8, "n_estimators": 3}

    made, seen = [], []
    start = evaluation._Run.start

    def recording_start(self, name, *args, **kwargs):
        seen.append((name, [(s.row.name, len(s.outputs), len(s.todo)) for s in made
                            if s.pooled]))
        made.append(start(self, name, *args, **kwargs))
        return made[-1]

    monkeypatch.setattr(evaluation._Run, "start", recording_start)
    pooled = evaluate_rows(rows, X, y, cv=3, params=small, fold_jobs=2)
    monkeypatch.undo()
    alone = [evaluate_rows([row], X, y, cv=3, params=small, fold_jobs=2)[0] for row in rows]
    assert [r.scores for r in pooled] == [r.scores for r in alone]
    assert all(r.status == "ok" for r in pooled), [r.message for r in pooled]
    state = dict(seen)
    # 3 folds, 2 workers: the next row starts once the first fold is back
    assert state["resnet18_scratch_3s_mv_db"] == [("xgboost_30s", 1, 3)]
    # its twin reuses its models: it starts once they are all back (and xgboost's)
    assert ("resnet18_scratch_3s_mv_db", 3, 3) in state["resnet18_scratch_3s_prob_db"]
    assert "reuses the models fitted" in " ".join(pooled[2].notes)
    assert ("resnet18_scratch_3s_mv_db", 3, 3) in state["cnn_30s_mel"]


def _watch_fold_fits(monkeypatch):
    """``{row: [(shape of a training sample, dtype of the test samples)]}``, one entry
    per fold fitted in this process, filled as :func:`evaluate_rows` runs."""
    fed = {}
    fit_fold = evaluation._fit_fold

    def spy(est, row, train, X_test, threads=None):
        fed.setdefault(row.name, []).append((np.asarray(train[0]).shape[1:], X_test.dtype))
        return fit_fold(est, row, train, X_test, threads)

    monkeypatch.setattr(evaluation, "_fit_fold", spy)
    return fed


def test_folds_are_fed_item_numbers_and_score_as_with_waveforms(clips, monkeypatch):
    """The front steps' outputs are computed once, before the folds, which then get no
    waveforms: the same scores, predictions and probabilities as recomputing them in
    every fold (cache=False), for clip rows, voting rows (hard and soft, one sharing
    the other's fits) and a segment-level row."""
    X, y, ids = clips
    rows = ["cnn_30s_mel", "resnet18_scratch_3s_mv_db", "resnet18_scratch_3s_prob_db",
            "xgboost_3s", "xgboost_3s_mv"]

    def small(row):
        return {"max_epochs": 1, "valid_fraction": None, "freq_pool": 8,
                "n_estimators": 3}

    fed = _watch_fold_fits(monkeypatch)
    keyed = evaluate_rows(rows, X, y, cv=2, params=small, track_ids=ids)
    # one column of item numbers per sample; the MV row reused the Prob row's fits
    assert fed == {name: [((1,), np.dtype(np.int64))] * 2
                   for name in rows if name not in ("resnet18_scratch_3s_prob_db",
                                                    "xgboost_3s_mv")}
    fed.clear()
    plain = evaluate_rows(rows, X, y, cv=2, params=small, track_ids=ids, cache=False)
    assert fed["cnn_30s_mel"][0][0] == X.shape[1:]  # waveforms
    for a, b in zip(keyed, plain):
        assert (a.status, b.status) == ("ok", "ok"), (a.row, a.message, b.message)
        assert a.scores == b.scores, a.row
        for k in ("index", "segment", "fold", "y_true", "y_pred"):
            if a.predictions[k] is None:
                assert b.predictions[k] is None
            else:
                np.testing.assert_array_equal(a.predictions[k], b.predictions[k])
        if a.predictions["proba"] is None:
            assert b.predictions["proba"] is None
        else:
            np.testing.assert_allclose(a.predictions["proba"], b.predictions["proba"],
                                       rtol=1e-6, atol=1e-7)


def test_outputs_are_dropped_after_the_last_row_that_needs_them(clips, monkeypatch):
    X, y, ids = clips
    runs = []

    class Run(evaluation._Run):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            runs.append(self)

    monkeypatch.setattr(evaluation, "_Run", Run)
    held = []

    def callback(result):
        assert result.status == "ok", result.message
        held.append((result.row, runs[0].cache.n_stored(), len(runs[0].items)))

    evaluate_rows(["xgboost_3s", "xgboost_30s", "xgboost_3s_mv"], X, y, cv=2,
                  params={"n_estimators": 3}, track_ids=ids, callback=callback)
    # the segments' features (and which segment is which) serve both 3 s rows, then go
    assert held == [("xgboost_3s", 2 * len(X), 1), ("xgboost_3s_mv", 0, 0),
                    ("xgboost_30s", 0, 0)]


def test_every_rows_front_step_is_computed_once_per_sample():
    """Every study row starts with a step that declares one output per sample
    (``_per_sample_output``), so reproduce computes it once and feeds the folds item
    numbers instead of decoding their waveforms again."""
    from specgenre._cache import _front_path

    uncached = [name for name in ALL_ROWS if _front_path(make_row(name))[1] is None]
    assert uncached == []


@pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                    reason="official musicnn weights not installed")
def test_musicnn_rows_fed_item_numbers_score_as_with_waveforms(monkeypatch):
    """The 30 s and 3 s musicnn rows: embeddings (or fine-tuning's patches) computed
    once per clip and segment give the scores of computing them from every fold's
    clips again (cache=False)."""
    b = make_genre_clips(6, genres=["classical", "metal"], duration=6.0, random_state=1)
    X, y = b.data, np.asarray(b.target)
    rows = ["musicnn_msd_svm_30s", "musicnn_msd_3s_mv", "musicnn_msd_3s_prob",
            "musicnn_finetune_3s_prob"]
    params = {"max_epochs": 1, "valid_fraction": None}
    fed = _watch_fold_fits(monkeypatch)
    keyed = evaluate_rows(rows, X, y, cv=2, params=params)
    # one column of item numbers per sample, no waveforms
    assert fed["musicnn_finetune_3s_prob"] == [((1,), np.dtype(np.int64))] * 2
    plain = evaluate_rows(rows, X, y, cv=2, params=params, cache=False)
    for a, b in zip(keyed, plain):
        assert (a.status, b.status) == ("ok", "ok"), (a.row, a.message, b.message)
        assert a.scores == b.scores, a.row
        np.testing.assert_array_equal(a.predictions["y_pred"], b.predictions["y_pred"])
        if a.predictions["proba"] is not None:
            np.testing.assert_allclose(a.predictions["proba"], b.predictions["proba"],
                                       rtol=1e-5, atol=1e-7)


def test_fold_workers_are_bounded_by_the_folds_to_fit(monkeypatch):
    monkeypatch.setattr(evaluation.os, "cpu_count", lambda: 4)
    assert evaluation._fold_workers(None, 3) == 1
    assert evaluation._fold_workers(2, 3) == 2
    assert evaluation._fold_workers(8, 3) == 3
    assert evaluation._fold_workers(-1, 3) == 3
    assert evaluation._fold_workers(-1, 10) == 4
    assert evaluation._fold_workers(-2, 10) == 3
    assert evaluation._fold_workers(4, 1) == 1  # one fit (or none): no worker processes


# --------------------------------------------------------------------------- parallel folds
def _run(X, y, ids, fold_jobs=None, **kw):
    return evaluation._Run(X, y, cv=2, split=None, random_state=0, n_jobs=None,
                           params={"n_estimators": 3}, progress=False, track_ids=ids,
                           cache=True, fold_jobs=fold_jobs, **kw)


@pytest.mark.parametrize("name", ["xgboost_3s_mv", "xgboost_3s", "xgboost_30s"])
def test_workers_are_handed_exactly_what_their_front_step_is_given(clips, name):
    """The parent computes the front step's inputs (3 s segments for a voting row)."""
    X, y, ids = clips
    runs, results = {}, {}
    for jobs in (None, 2):
        runs[jobs] = run = _run(X, y, ids, fold_jobs=jobs)
        est, applied = run.build(name)
        results[jobs] = run.evaluate(name, est, applied)
        assert results[jobs].status == "ok", results[jobs].message
    serial, parallel = runs[None], runs[2]
    clip_row = name == "xgboost_30s"
    # each input once, shaped as the front step gets it: a clip, or a 3 s segment
    # (cut inside the TrackAggregator of xgboost_3s_mv)
    assert parallel.cache.computed == (len(X) if clip_row else 2 * len(X))
    assert {shape for _, shape in parallel.cache.settings()} == {
        X.shape[1:] if clip_row else (3 * 22050,)}
    # the workers computed nothing, and looked up all that the serial run's folds
    # looked up (training and test inputs of both folds, tie-breaks included)
    assert parallel.cache.worker_computed == 0
    assert parallel.cache.worker_reused == serial.cache.reused > 0
    assert serial.cache.computed == parallel.cache.computed
    assert results[None].scores == results[2].scores


def test_folds_are_disjoint_by_track(clips):
    X, y, ids = clips
    # two excerpts of each track: the folds keep a track's clips together
    X2, y2, ids2 = np.concatenate([X, X[:, ::-1].copy()]), np.r_[y, y], np.r_[ids, ids]
    for name in ["xgboost_30s", "xgboost_3s"]:  # clip-level and segment-level samples
        run = _run(X2, y2, ids2)
        folds = run.fold_data(STUDY_ROWS[name])
        assert len(folds) == 2
        for (train, test), ((_, _, clip_train), (_, _, clip_test)) in zip(run.folds, folds):
            train_tracks, test_tracks = set(ids2[train][clip_train]), set(ids2[test][clip_test])
            assert not train_tracks & test_tracks, name
            assert train_tracks | test_tracks == set(ids)
    r = evaluate_row("xgboost_3s", X2, y2, cv=2, params={"n_estimators": 3}, track_ids=ids2)
    fold_of = {}
    for track, fold in zip(r.predictions["track"], r.predictions["fold"]):
        fold_of.setdefault(track, set()).add(fold)
    assert len(fold_of) == len(ids) and all(len(f) == 1 for f in fold_of.values())
    assert r.n_tracks == len(ids)
    # a fixed split with a track on both sides is refused
    with pytest.raises(ValueError, match=f"split: 1 track.*{ids[0]}"):
        evaluate_row("xgboost_30s", X2, y2, split=(np.arange(3), np.array([len(X)])),
                     track_ids=ids2)


def test_fold_models_from_workers_carry_no_cached_outputs(clips):
    import pickle

    from specgenre._cache import _KeyedFront

    X, y, ids = clips
    run = _run(X, y, ids, fold_jobs=2)
    name = "xgboost_3s"
    est, applied = run.build(name)
    key = evaluation._fit_key(est, STUDY_ROWS[name])
    assert run.evaluate(name, est, applied, key=key, keep_fit=True).status == "ok"
    models = run.fitted[key]  # fitted in the workers, kept for another row
    assert len(models) == 2 and run.cache.n_stored() == 2 * len(X)
    (table,) = run.cache._tables.values()
    output = next(iter(table.values()))
    sizes = []
    for model in models:
        front = model.steps[0][1]
        assert isinstance(front, _KeyedFront)  # fed item numbers, not waveforms
        assert front.cache is run.cache  # back in the parent: its own cache again
        pickled = pickle.dumps(model)
        assert output.tobytes() not in pickled
        sizes.append(len(pickled))
    assert len(pickle.dumps(run.cache)) < 200  # a cache pickles as its token
    run.cache.keep(set())  # the same pickles with the parent's tables emptied
    assert [len(pickle.dumps(m)) for m in models] == sizes


# --------------------------------------------------------------------------- declared facts
def test_weights_to_load_follow_declarations_not_names():
    def kinds(name, **params):
        est = make_row(name, **params)
        return [kind for kind, _ in evaluation._weights_needed(ALL_ROWS[name], est)]

    assert kinds("resnet18_scratch_30s_mel") == []
    assert kinds("resnet18_scratch_30s_mel", pretrained=True) == ["imagenet"]  # --param
    assert kinds("resnet18_pretrained_3s_mv_db") == ["imagenet"]
    assert kinds("resnet18_pretrained_3s_mv_db", pretrained=False) == []
    assert kinds("xgboost_3s_mv") == [] and kinds("cnn_30s_mel") == []
    pytest.importorskip("torch")
    from specgenre.musicnn import MusicnnClassifier, MusicnnEmbedding

    for name, cls in [("musicnn_msd_svm_30s", MusicnnEmbedding),
                      ("musicnn_msd_3s_prob", MusicnnEmbedding),
                      ("musicnn_msd_probe_30s", MusicnnEmbedding),
                      ("musicnn_msd_pons_3s_mv", MusicnnEmbedding),
                      ("musicnn_finetune_3s_prob", MusicnnClassifier)]:
        (kind, part), = evaluation._weights_needed(ALL_ROWS[name], make_row(name))
        assert kind == "musicnn" and isinstance(part, cls), name


def test_protocol_says_how_often_segments_start():
    assert evaluation._protocol(ALL_ROWS["musicnn_msd_pons_3s_mv"], 3, None) == (
        "3-fold stratified CV by track; clip accuracy, majority vote of 3 s segments every 1 s")
    assert evaluation._protocol(ALL_ROWS["musicnn_msd_3s_mv"], 3, None) == (
        "3-fold stratified CV by track; clip accuracy, majority vote of 3 s segments")


# --------------------------------------------------------------------------- metrics
def test_rows_report_balanced_accuracy_and_macro_f1_per_fold(clips, tmp_path):
    from sklearn.metrics import balanced_accuracy_score, f1_score

    X, y, ids = clips
    r = evaluate_row("xgboost_30s", X, y, cv=3, params={"n_estimators": 5}, track_ids=ids)
    p = r.predictions
    assert len(r.balanced_accuracy_scores) == len(r.macro_f1_scores) == 3
    for fold in range(3):
        m = p["fold"] == fold
        assert r.balanced_accuracy_scores[fold] == pytest.approx(
            balanced_accuracy_score(p["y_true"][m], p["y_pred"][m]))
        assert r.macro_f1_scores[fold] == pytest.approx(
            f1_score(p["y_true"][m], p["y_pred"][m], average="macro", zero_division=0))
    assert r.balanced_accuracy_mean == pytest.approx(np.mean(r.balanced_accuracy_scores))
    assert r.balanced_accuracy_std == pytest.approx(np.std(r.balanced_accuracy_scores))
    assert r.macro_f1_mean == pytest.approx(np.mean(r.macro_f1_scores))
    assert r.macro_f1_std == pytest.approx(np.std(r.macro_f1_scores))
    write_results([r], tmp_path)
    (line,) = csv.DictReader(open(tmp_path / "results.csv"))
    assert line["balanced_accuracy_mean"] == f"{r.balanced_accuracy_mean:.4f}"
    assert line["balanced_accuracy_std"] == f"{r.balanced_accuracy_std:.4f}"
    assert line["macro_f1_mean"] == f"{r.macro_f1_mean:.4f}"
    assert line["macro_f1_std"] == f"{r.macro_f1_std:.4f}"


def test_tables_show_each_metric_as_mean_and_std():
    ok = RowResult("xgboost_30s", "t", 0.74, "p", scores=[0.5, 0.7], n_tracks=12,
                   balanced_accuracy_scores=[0.4, 0.6], macro_f1_scores=[0.2, 0.4])
    failed = RowResult("cnn_30s_mel", "t", 0.66, "p", status="failed", message="boom")
    for markdown in (False, True):
        text = format_table([ok, failed], markdown=markdown)
        header, _, first, second = text.splitlines()[:4]
        assert "balanced accuracy" in header and "macro F1" in header
        assert "60.0% +- 10.0" in first and "50.0% +- 10.0" in first
        assert "30.0% +- 10.0" in first
        assert "failed" in second and "+-" not in second
    assert failed.as_dict()["macro_f1_mean"] == "nan"
    one_fold = RowResult("x", "t", None, "p", scores=[0.5], balanced_accuracy_scores=[0.25],
                         macro_f1_scores=[0.125])
    assert "25.0%" in format_table([one_fold]).splitlines()[2]
    assert np.isnan(one_fold.macro_f1_std)


def test_write_results_names_the_input_files_it_skipped(tmp_path):
    from pathlib import Path

    results = [RowResult("xgboost_30s", "t", 0.74, "p", scores=[0.5, 0.7], n_tracks=10),
               RowResult("cnn_30s_mel", "t", 0.66, "p", status="failed", message="x")]
    skipped = [("/data/jazz/jazz.00054.wav", "cannot decode: the file is empty"),
               (Path("/data/rock/rock.00001.au"), "LibsndfileError:\n unknown format")]
    write_results(results, tmp_path / "out", skipped=skipped, meta={"data": "/data"})
    md = (tmp_path / "out" / "results.md").read_text()
    assert "## Skipped input files" in md
    assert "2 input file(s) could not be read, so 2 track(s) were dropped" in md
    assert "- `/data/jazz/jazz.00054.wav`: cannot decode: the file is empty" in md
    assert "- `/data/rock/rock.00001.au`: LibsndfileError: unknown format" in md
    assert md.index("| xgboost_30s") < md.index("## Skipped input files")
    lines = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert [line["skipped_files"] for line in lines] == ["2", "2"]
    # nothing skipped: no section, a count of zero
    write_results(results, tmp_path / "none")
    assert "Skipped" not in (tmp_path / "none" / "results.md").read_text()
    lines = list(csv.DictReader(open(tmp_path / "none" / "results.csv")))
    assert [line["skipped_files"] for line in lines] == ["0", "0"]


def test_confusion_picture_shows_counts_beside_recall():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from specgenre.plotting import plot_confusion_matrix

    y = np.array(["a", "a", "a", "b"])
    pred = np.array(["a", "a", "b", "b"])

    def texts(**kw):
        disp = plot_confusion_matrix(y, pred, ax=Figure().subplots(), **kw)
        return [[t.get_text() for t in row] for row in disp.text_]

    assert texts(counts=True) == [["0.67\n(2)", "0.33\n(1)"], ["0.00\n(0)", "1.00\n(1)"]]
    assert texts(counts=True, labels=["b", "a"])[0] == ["1.00\n(1)", "0.00\n(0)"]
    assert texts() == [["0.67", "0.33"], ["0.00", "1.00"]]
    assert texts(counts=True, normalize=None) == [["2", "1"], ["0", "1"]]


# --------------------------------------------------------------------------- quoted figures
def _quoted_demo_table():
    """``{row: [accuracy, balanced accuracy, macro-F1]}`` as results.rst quotes the demo."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "user_guide" / "results.rst").read_text()
    after = text.split("\nThe main job on synthetic data\n", 1)[1].split("\n", 1)[1]
    section = re.split(r"\n[^\n]+\n-{4,}\n", after)[0]  # up to the next heading
    quoted = {}
    for block in section.split("   * - ")[1:]:
        name = re.match(r"``(\w+)``", block)
        figures = re.findall(r"(\d+\.\d) \+- (\d+\.\d) %", block)
        if name and len(figures) == 3:
            quoted[name.group(1)] = [(float(m), float(s)) for m, s in figures]
    return quoted


@pytest.mark.slow
def test_demo_figures_quoted_in_the_docs_are_what_the_demo_prints(tmp_path, monkeypatch):
    # results.rst quotes `specgenre reproduce` with its defaults (nox -s demo): the figures
    # must be what the command prints today. The network rows depend on torch's thread
    # count, which follows the number of cores, and on the precision "auto" picks (bf16
    # on CPUs with native bfloat16): they are compared on 2 such cores only, as the docs
    # say; the XGBoost rows everywhere.
    import os
    import re

    from specgenre._precision import resolve_precision
    from specgenre.cli import main

    quoted = _quoted_demo_table()
    assert {"cnn_30s_mel", "resnet18_scratch_30s_mel", "xgboost_30s", "xgboost_3s",
            "xgboost_3s_mv"} <= set(quoted)
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "-o", str(tmp_path / "demo"), "-q"]) == 0
    table = (tmp_path / "demo" / "results.md").read_text()  # the printed table, as markdown
    printed = {line.split(" | ")[0][2:]: line for line in table.splitlines()
               if line.startswith("| ")}
    for row, figures in quoted.items():
        if not row.startswith("xgboost") and (os.cpu_count() != 2
                                              or resolve_precision("auto") != "bf16"):
            continue
        got = [(float(m), float(s))
               for m, s in re.findall(r"(\d+\.\d)% \+- (\d+\.\d)", printed[row])]
        assert got == figures, row
