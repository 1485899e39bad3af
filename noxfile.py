"""Development sessions for specgenre: ``nox -s tests | lint | docs | demo | bench``.

All sessions share ONE virtual environment, because the dependencies (torch
above all: a multi-GB install) are the same for every session. Nox itself
creates one environment per session, so the sessions here use
``venv_backend="none"`` and run everything with the shared environment's
interpreter, which this file creates and keeps up to date:

* location: ``.nox/specgenre-env`` in the repository, or the folder named by
  the ``SPECGENRE_VENV`` environment variable (e.g. an existing development
  environment, ``SPECGENRE_VENV=.venv nox -s tests``);
* it is created (``python -m venv``) with the interpreter that runs nox, or
  the one named by ``SPECGENRE_PYTHON``;
* specgenre is installed into it in editable mode with every extra the
  sessions need (``pip install -e ".[test,lint,docs,bench]"``), then the
  official musicnn weights (``pip install --no-deps musicnn``);
* the install is skipped when a stamp file in the environment matches the
  hash of ``pyproject.toml`` (plus the extras, the repository path and the
  environment's Python), so later sessions start at once. Editing
  ``pyproject.toml`` triggers a new ``pip install`` (quick when little
  changed); deleting ``<env>/.specgenre-install-stamp`` forces one.

Extra arguments after ``--`` go to the underlying command, e.g.
``nox -s tests -- tests/test_segment.py -x`` or ``nox -s docs -- -E``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "none"
# plain `nox` runs the checks CI runs; demo and bench are asked for by name
nox.options.sessions = ["tests", "lint", "docs"]

ROOT = Path(__file__).resolve().parent
EXTRAS = "test,lint,docs,bench"
# Installed after specgenre, without dependencies: the musicnn wheel carries the official
# pretrained checkpoints (read without TensorFlow) but pins numpy<1.17 in its metadata.
NO_DEPS = ("musicnn",)
STAMP_NAME = ".specgenre-install-stamp"
LINT_PATHS = ["src", "tests", "benchmarks", "examples", "docs/conf.py", "noxfile.py"]


def _venv_dir() -> Path:
    env = os.environ.get("SPECGENRE_VENV")
    return Path(env).expanduser().absolute() if env else ROOT / ".nox" / "specgenre-env"


def _venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _install_key(python: Path) -> str:
    """What the installed environment depends on: a change means reinstall."""
    h = hashlib.sha256()
    h.update((ROOT / "pyproject.toml").read_bytes())
    h.update(f"\0{EXTRAS}\0{','.join(NO_DEPS)}\0{ROOT}\0{python}".encode())
    return h.hexdigest()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _locked(venv: Path):
    """Hold an exclusive lock on the environment (two nox runs at once wait in turn)."""
    venv.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no locking
        yield
        return
    with open(venv / ".specgenre-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def shared_env(session: nox.Session) -> str:
    """Create or update the shared environment; return its Python interpreter."""
    venv = _venv_dir()
    with _locked(venv):
        return _create_or_update(session, venv)


def _create_or_update(session: nox.Session, venv: Path) -> str:
    python = _venv_python(venv)
    if not python.exists():
        base = os.environ.get("SPECGENRE_PYTHON", sys.executable)
        session.log(f"Creating the shared environment {venv} with {base}")
        session.run(base, "-m", "venv", str(venv), external=True)
        session.run(str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip",
                    external=True)
    stamp = venv / STAMP_NAME
    key = _install_key(python)
    try:
        installed = json.loads(stamp.read_text())["key"]
    except (OSError, ValueError, KeyError):
        installed = None
    if installed != key:
        session.log(f"Installing specgenre[{EXTRAS}] (editable) into {venv}")
        start = time.perf_counter()
        session.run(str(python), "-m", "pip", "install", "-e", f".[{EXTRAS}]",
                    external=True)
        session.run(str(python), "-m", "pip", "install", "--no-deps", *NO_DEPS,
                    external=True)
        elapsed = time.perf_counter() - start
        session.log(f"Installed in {elapsed:.0f} s")
        stamp.write_text(json.dumps({"key": key, "extras": EXTRAS, "root": str(ROOT),
                                     "install_seconds": round(elapsed, 1)}))
    else:
        session.log(f"Reusing the shared environment {venv} (up to date with pyproject.toml)")
    return str(python)


def _env(python: str, **extra: str) -> dict[str, str]:
    """Environment variables for commands run with the shared interpreter."""
    bindir = str(Path(python).parent)
    env = {
        "VIRTUAL_ENV": str(Path(bindir).parent),
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg"),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def _threads_env(n_threads: int) -> dict[str, str]:
    """Cap BLAS/OpenMP/torch/numba threads, unless the caller already set them."""
    names = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"]
    return {name: os.environ.get(name, str(n_threads)) for name in names}


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest, one xdist worker per CPU, one thread per worker)."""
    python = shared_env(session)
    n_cpus = _cpu_count()
    args = ["-m", "pytest", "-ra", "--durations=15"]
    if n_cpus > 1:
        # tests are mostly small and Python-bound: processes beat threads;
        # loadscope keeps a module's (module-scoped) fixtures on one worker
        args += ["-n", str(n_cpus), "--dist", "loadscope"]
    # one thread per worker process: n_cpus workers already fill the machine,
    # and oversubscribed torch/BLAS threads only slow every worker down
    session.run(python, *args, *session.posargs, external=True,
                env=_env(python, **_threads_env(1)))


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """Check the code with ruff (rules in pyproject.toml)."""
    python = shared_env(session)
    paths = [p for p in LINT_PATHS if (ROOT / p).exists()]
    session.run(python, "-m", "ruff", "check", *paths, *session.posargs, external=True,
                env=_env(python))


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """Build the HTML docs (warnings are errors; runs the example gallery)."""
    python = shared_env(session)
    # autosummary stubs are regenerated on every build; stale ones (of a
    # renamed or removed name) would be orphan pages, i.e. warnings
    shutil.rmtree(ROOT / "docs" / "generated", ignore_errors=True)
    out = ROOT / "docs" / "_build" / "html"
    session.run(python, "-m", "sphinx", "-b", "html", "-W", "--keep-going",
                *session.posargs, str(ROOT / "docs"), str(out), external=True,
                env=_env(python))
    session.log(f"Docs built: {out / 'index.html'}")


@nox.session(venv_backend="none", default=False)
def demo(session: nox.Session) -> None:
    """Run the main job on built-in synthetic data (no download needed)."""
    python = shared_env(session)
    session.run(python, "-m", "specgenre.cli", "reproduce", *session.posargs,
                external=True, env=_env(python))


@nox.session(venv_backend="none", default=False)
def bench(session: nox.Session) -> None:
    """Run every ``benchmarks/*.py`` script in turn with its default arguments.

    ``nox -s bench -- NAME ...`` runs only the scripts whose file name contains
    one of the NAMEs.
    """
    python = shared_env(session)
    scripts = sorted((ROOT / "benchmarks").glob("*.py"))
    scripts = [s for s in scripts if not s.name.startswith("_")]
    if session.posargs:
        scripts = [s for s in scripts if any(k in s.name for k in session.posargs)]
    if not scripts:
        session.error("no benchmark script found in benchmarks/")
    for script in scripts:
        session.log(f"--- {script.relative_to(ROOT)}")
        start = time.perf_counter()
        session.run(python, str(script), external=True, env=_env(python))
        session.log(f"--- {script.name} took {time.perf_counter() - start:.0f} s")
