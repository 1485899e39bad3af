"""Shared fixtures: real data from ../shared (skipped when absent) and tiny synthetic audio.

Every cache the code under test may write (torch hub and converted weights, numba's
compiled functions, matplotlib's font cache, anything else under ``XDG_CACHE_HOME``) is
sent to a temporary folder of the test session, set here, at import, before anything
imports torch, numba, matplotlib or specgenre. Under pytest-xdist the controller makes the
folder (workers inherit its environment) and each worker gets its own subfolder:
processes that JIT-compile the same cached numba function for the first time at once
race on numba's cache index and can leave it pointing at the wrong machine code, and
each worker converts the official musicnn weights once into its own TORCH_HOME. The
controller (or the single process) removes the folder at the end of the session.
"""

import os
import shutil
import tempfile
from pathlib import Path

#: Environment variable -> subfolder of the session's cache folder.
CACHE_ENV = {
    "TORCH_HOME": "torch",
    "XDG_CACHE_HOME": "xdg_cache",
    "NUMBA_CACHE_DIR": "numba",
    "MPLCONFIGDIR": "matplotlib",
    "LIBROSA_DATA_DIR": "librosa_data",
}
_SESSION_ENV = "SPECGENRE_TEST_SESSION_DIR"


def _session_caches():
    """Point every cache variable into the session folder; True if this process made it."""
    base = os.environ.get(_SESSION_ENV)
    made = base is None or not os.path.isdir(base)
    if made:
        base = tempfile.mkdtemp(prefix="specgenre-tests-")
        os.environ[_SESSION_ENV] = base
    process = os.path.join(base, os.environ.get("PYTEST_XDIST_WORKER", "main"))
    for var, name in CACHE_ENV.items():
        path = os.path.join(process, name)
        os.makedirs(path, exist_ok=True)
        os.environ[var] = path
    return base, made


SESSION_DIR, _MADE_SESSION_DIR = _session_caches()


def pytest_unconfigure(config):
    if _MADE_SESSION_DIR:
        shutil.rmtree(SESSION_DIR, ignore_errors=True)


import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPECGENRE_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"


def _require(path):
    if not path.exists():
        pytest.skip(f"real GTZAN material not found at {path} (set SPECGENRE_SHARED)")
    return path


@pytest.fixture(scope="session")
def gtzan_dev():
    """Root of the 51 FLAC dev tracks (``<genre>/<genre>.000NN.flac``)."""
    return _require(DATA / "gtzan_dev")


@pytest.fixture(scope="session")
def gtzan_features_dir():
    """Folder with Kaggle's feature tables."""
    return _require(DATA / "gtzan_features")


@pytest.fixture(scope="session")
def gtzan_splits_dir():
    return _require(DATA / "gtzan_splits")


@pytest.fixture
def one_torch_thread():
    """Tiny inputs run fastest (and are reproducible) on one torch thread; restore afterwards."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME, offline (SPECGENRE_OFFLINE): no weights can be downloaded."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("SPECGENRE_OFFLINE", "1")
    return home


class CreatesMarker:
    """Unpickling this object creates the file ``path``: a stand-in for any code a pickle runs."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def code_running_object(tmp_path):
    """``(obj, marker)``: unpickling ``obj`` would create the file ``marker`` (checked here).

    Put ``obj`` in a crafted pickle where a file of weights is looked up, load, and
    assert that ``marker`` does not exist: nothing was unpickled the unsafe way.
    """
    import pickle

    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(CreatesMarker(probe))).close()
    assert probe.exists()
    marker = tmp_path / "marker"
    return CreatesMarker(marker), marker


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def write_wav(path, y, sr=22050, subtype="PCM_16"):
    """Write a float waveform (1-D mono or 2-D (n, channels)) to ``path``."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(y), sr, subtype=subtype)
    return path
