"""Development sessions for specgenre: ``nox -s tests | lint | docs | demo | bench | tests_lowest``.

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

Lowest versions: ``nox -s tests_lowest``
----------------------------------------
Proves the lower bounds in ``pyproject.toml``: it runs the test suite in a
SECOND environment, ``.nox/specgenre-lowest`` (or the folder named by
``SPECGENRE_LOWEST_VENV``), where every direct dependency, of specgenre and
of its ``test`` extra, is installed at the lowest version its ``>=`` bound
allows. pip cannot resolve "lowest" by itself, so the session writes those
pins into ``<env>/lowest-constraints.txt`` (``numpy>=1.24`` becomes
``numpy==1.24``) and installs ``pip install -c lowest-constraints.txt -e
".[test]"``; dependencies of dependencies get the newest versions that fit.
A direct dependency without a lower bound is an error; the ``docs``,
``lint`` and ``bench`` extras are not covered. The environment is
kept and reused like the shared one (its stamp hashes ``pyproject.toml``);
it holds its own copy of torch (several GB): about 3 minutes to create
here, then about 5 minutes of tests with 2 workers (287 s measured). Not run
by a plain ``nox``; ``.ci/run`` runs it as stage ``lowest`` (left out with
``SPECGENRE_CI_LOWEST=0``). Arguments after ``--`` replace
the default ``-m "not slow"``, e.g. ``nox -s tests_lowest -- tests/test_boosting.py``.
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
# the lowest-versions environment (nox -s tests_lowest): the extras whose bounds it pins too
LOWEST_EXTRAS = "test"
CONSTRAINTS_NAME = "lowest-constraints.txt"
LINT_PATHS = ["src", "tests", "benchmarks", "examples", "docs/conf.py", "noxfile.py"]


def _venv_dir() -> Path:
    env = os.environ.get("SPECGENRE_VENV")
    return Path(env).expanduser().absolute() if env else ROOT / ".nox" / "specgenre-env"


def _venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _lowest_venv_dir() -> Path:
    env = os.environ.get("SPECGENRE_LOWEST_VENV")
    return Path(env).expanduser().absolute() if env else ROOT / ".nox" / "specgenre-lowest"


def _install_key(python: Path, extras: str = EXTRAS, constraints: str = "") -> str:
    """What the installed environment depends on: a change means reinstall."""
    h = hashlib.sha256()
    h.update((ROOT / "pyproject.toml").read_bytes())
    h.update(f"\0{extras}\0{','.join(NO_DEPS)}\0{ROOT}\0{python}".encode())
    if constraints:
        h.update(f"\0{constraints}".encode())
    return h.hexdigest()


def lowest_pins(extras: str = LOWEST_EXTRAS) -> list[str]:
    """``name==version`` for each direct dependency at the lower bound pyproject.toml gives.

    Covers ``[project] dependencies`` and the named extras (comma-separated).
    A requirement whose environment marker does not apply here is left out;
    one with several lower bounds (in several places) gets the highest.
    """
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in filter(None, extras.split(",")):
        texts += optional[extra]
    pins: dict[str, Version] = {}
    for text in texts:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        if not lows:
            raise ValueError(
                f"pyproject.toml: {text!r} has no lower bound (>=): nox -s tests_lowest "
                "cannot test its lowest version."
            )
        name = canonicalize_name(req.name)
        pins[name] = max([*lows, pins.get(name, lows[0])])
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


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


def _create_or_update(session: nox.Session, venv: Path, extras: str = EXTRAS,
                      constraints: str = "") -> str:
    """Make ``venv`` hold specgenre[extras] (editable), within ``constraints`` if given."""
    python = _venv_python(venv)
    if not python.exists():
        base = os.environ.get("SPECGENRE_PYTHON", sys.executable)
        session.log(f"Creating the shared environment {venv} with {base}")
        session.run(base, "-m", "venv", str(venv), external=True)
        session.run(str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip",
                    external=True)
    stamp = venv / STAMP_NAME
    key = _install_key(python, extras, constraints)
    try:
        installed = json.loads(stamp.read_text())["key"]
    except (OSError, ValueError, KeyError):
        installed = None
    if installed != key:
        session.log(f"Installing specgenre[{extras}] (editable) into {venv}")
        start = time.perf_counter()
        pip_args = []
        if constraints:
            constraints_file = venv / CONSTRAINTS_NAME
            constraints_file.write_text(constraints)
            pip_args = ["-c", str(constraints_file)]
        session.run(str(python), "-m", "pip", "install", *pip_args, "-e", f".[{extras}]",
                    external=True)
        session.run(str(python), "-m", "pip", "install", "--no-deps", *NO_DEPS,
                    external=True)
        elapsed = time.perf_counter() - start
        session.log(f"Installed in {elapsed:.0f} s")
        stamp.write_text(json.dumps({"key": key, "extras": extras, "root": str(ROOT),
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


@nox.session(venv_backend="none", default=False)
def tests_lowest(session: nox.Session) -> None:
    """Run the tests with every direct dependency at its lowest declared version.

    See the module docstring. Default pytest arguments: ``-m "not slow"``
    (replaced by any given after ``--``).
    """
    try:
        pins = lowest_pins()
    except ValueError as exc:
        session.error(str(exc))
    constraints = "".join(f"{pin}\n" for pin in pins)
    venv = _lowest_venv_dir()
    with _locked(venv):
        python = _create_or_update(session, venv, LOWEST_EXTRAS, constraints)
    _check_pins(session, python, pins)
    n_cpus = _cpu_count()
    args = ["-m", "pytest", "-ra", "--durations=15"]
    if n_cpus > 1:
        args += ["-n", str(n_cpus), "--dist", "loadscope"]
    session.run(python, *args, *(session.posargs or ["-m", "not slow"]), external=True,
                env=_env(python, **_threads_env(1)))


def _check_pins(session: nox.Session, python: str, pins: list[str]) -> None:
    """Fail unless the environment holds the pinned versions; log them.

    pip keeps the pins, but something installed into the environment by
    hand could have moved one since.
    """
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    listing = session.run(python, "-m", "pip", "list", "--format=json",
                          "--disable-pip-version-check", external=True, silent=True,
                          env=_env(python))
    listing = next(line for line in listing.splitlines() if line.startswith("["))
    installed = {canonicalize_name(d["name"]): d["version"] for d in json.loads(listing)}
    found, wrong = [], []
    for pin in pins:
        name, _, want = pin.partition("==")
        have = installed.get(name)
        if have is None or Version(Version(have).base_version) != Version(want):
            wrong.append(f"{name} {have or 'missing'} (want {want})")
        found.append(f"{name} {have}")
    if wrong:
        stamp = Path(python).parent.parent / STAMP_NAME
        session.error(f"not the lowest versions: {', '.join(wrong)}; delete {stamp} to "
                      "reinstall")
    session.log("Lowest versions under test: " + ", ".join(found))


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
