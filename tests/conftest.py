"""Shared fixtures: real data from ../shared (skipped when absent) and tiny synthetic audio."""

import os
import tempfile
from pathlib import Path

# One numba cache folder per pytest-xdist worker, set before anything imports numba.
# Worker processes that JIT-compile the same cached function (librosa's pitch tracking,
# our feature kernels) for the first time at once race on numba's cache index and can
# leave it pointing at the wrong machine code: every later load then crashes. The library
# itself compiles in the parent before starting its own workers (parallel_map's
# first_here); separate test processes need separate caches.
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker:
    _base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), f"specgenre-numba-cache-{os.getuid()}")
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(_base, _worker)

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
