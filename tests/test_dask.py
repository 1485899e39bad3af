"""Scale-out: joblib's dask backend on a LocalCluster gives the same results as a local run."""

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
