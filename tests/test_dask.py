"""Scale-out: joblib's dask backend on a LocalCluster gives the same results as a local run."""

import csv

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed")

from joblib import parallel_config  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from specgenre import FeatureExtractor, XGBoostClassifier, make_genre_clips  # noqa: E402

# heavy (a Dask cluster / fresh interpreters): still run by CI's `nox -s tests`
pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def clips():
    b = make_genre_clips(4, genres=["classical", "metal", "hiphop"], duration=4.0,
                         random_state=0)
    return b.data, np.asarray(b.target)


def test_feature_extraction_on_dask_equals_local(client, clips):
    X, _ = clips
    local = FeatureExtractor(n_jobs=1).fit_transform(X)
    with parallel_config(backend="dask"):
        remote = FeatureExtractor(n_jobs=-1).fit_transform(X)
    # Equal up to float32 round-off: BLAS reductions in a worker process run with another
    # thread count than in this one (a local n_jobs=2 run differs from n_jobs=1 the same way).
    np.testing.assert_allclose(remote, local, rtol=1e-5, atol=1e-6)


def test_grid_search_on_dask_equals_local(client, clips):
    X, y = clips
    F = FeatureExtractor().fit_transform(X)
    pipe = Pipeline([("clf", XGBoostClassifier(n_estimators=10, random_state=0, n_jobs=1))])
    grid = {"clf__max_depth": [2, 4], "clf__learning_rate": [0.1, 0.3]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    local = GridSearchCV(pipe, grid, cv=cv, n_jobs=1).fit(F, y)
    with parallel_config(backend="dask"):
        remote = GridSearchCV(pipe, grid, cv=cv, n_jobs=-1).fit(F, y)
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"])
    assert remote.best_params_ == local.best_params_
    # the work really ran on the cluster's worker processes
    assert len(client.scheduler_info()["workers"]) == 2


def test_reproduce_fits_its_folds_on_the_cluster_with_the_local_scores(client, clips,
                                                                        tmp_path):
    import torch

    from specgenre.cli import main
    from specgenre.evaluation import evaluate_rows

    X, y = clips
    rows = ["xgboost_30s", "xgboost_3s_mv", "cnn_30s_mel"]
    params = {"n_estimators": 20, "max_epochs": 1, "valid_fraction": None}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: torch's sums are the same
    try:
        local = evaluate_rows(rows, X, y, cv=2, params=params)
    finally:
        torch.set_num_threads(threads)
    with distributed.get_task_stream(client) as tasks:
        remote = evaluate_rows(rows, X, y, cv=2, params=params, client=client)
    fits = [t for t in tasks.data if t["key"].startswith("_fit_fold_timed")]
    # 2 folds of each fitted row (xgboost_3s_mv's folds are fitted, xgboost_30s's too)
    assert len(fits) == 6 and {t["worker"] for t in fits} == set(
        client.scheduler_info()["workers"])
    for a, b in zip(local, remote):
        assert b.status == a.status == "ok", (b.row, b.message)
        assert b.scores == a.scores and b.balanced_accuracy_scores == a.balanced_accuracy_scores
        np.testing.assert_array_equal(b.predictions["y_pred"], a.predictions["y_pred"])
        if a.predictions["proba"] is not None:
            np.testing.assert_array_equal(b.predictions["proba"], a.predictions["proba"])
        assert b.cpu_seconds > 0
    # the CLI's --scheduler: the same results table and predictions
    base = ["reproduce", "--rows", "xgboost_30s", "--param", "n_estimators=20",
            "--n-per-genre", "3", "--duration", "4", "-q"]
    scheduler = client.scheduler.address
    assert main([*base, "--out", str(tmp_path / "here")]) == 0
    assert main([*base, "--out", str(tmp_path / "there"), "--scheduler", scheduler]) == 0
    for name in ("xgboost_30s/predictions.csv", "results.csv"):
        with open(tmp_path / "here" / name) as a, open(tmp_path / "there" / name) as b:
            here, there = list(csv.DictReader(a)), list(csv.DictReader(b))
        for r in here + there:  # times differ; every other column is the same
            for key in ("seconds", "cpu_seconds", "transform_seconds"):
                r.pop(key, None)
        assert here == there
