"""Jobs over collections of files of any size: block by block, resumable, local or on Dask.

A file job (the 57-feature table, judging songs) turns every file of a list
into rows of a table. :func:`map_file_blocks` runs a job's *block function*
on consecutive blocks of files, here or on a :mod:`dask.distributed`
cluster, and yields each block's results in file order as soon as they are
ready; :class:`CsvTable` appends each block's rows to a CSV file as it
finishes. Memory therefore depends on the block size, not on the number of
files, and an interrupted job loses at most the blocks in progress.

Every row of a :class:`CsvTable` carries its file's key: the path as given,
its size in bytes and its modification time in nanoseconds (the columns
:data:`KEY_COLUMNS`). Reopened with ``resume=True``, the table keeps the rows
of the files that have not changed since, drops the rows of those that did
(and a last row cut short by a crash), and :meth:`CsvTable.is_done` tells the
job which files to skip: every file ends up in the table exactly once.

On a cluster, the client ships only file paths (and the job's parameters,
scattered once); workers read the files themselves, so the paths must name
the same files on every machine. The results are equal to a local run's:
the same function runs on the same files.
"""

import argparse
import contextlib
import csv
import io
import os
import warnings
from collections import deque
from dataclasses import dataclass, field

from .errors import CollectionError

__all__ = ["KEY_COLUMNS", "CsvTable", "FileJobError", "FileJobReport", "add_job_arguments",
           "cluster", "connect", "file_key", "map_file_blocks"]

#: Columns keying each row to its file: path, size (bytes), modification time (ns).
KEY_COLUMNS = ("file", "file_size", "file_mtime_ns")


class FileJobError(CollectionError):
    """A job over files cannot be done as asked (nothing was done).

    Its output holds another table, its cluster cannot be reached, or its
    block size is not a positive number of files.
    """


@dataclass
class FileJobReport:
    """What a job over files did.

    Parameters
    ----------
    n_files : int
        Files given.
    n_resumed : int
        Files already in the output (``resume=True``), not read again.
    n_rows : int
        Rows in the output at the end (those kept and those added).
    skipped : list of (str, str)
        ``(path, reason)`` of each file that could not be read, left out.
    """

    n_files: int
    n_resumed: int = 0
    n_rows: int = 0
    skipped: list = field(default_factory=list)


def connect(address, *, timeout=30):
    """A :class:`dask.distributed.Client` of the scheduler at ``address``.

    Parameters
    ----------
    address : str
        The scheduler's address, e.g. ``"tcp://10.0.0.5:8786"``.
    timeout : float, default=30
        Seconds to wait for it.

    Returns
    -------
    client : dask.distributed.Client

    Raises
    ------
    FileJobError
        When ``dask.distributed`` is not installed or the scheduler cannot be
        reached.
    """
    try:
        from distributed import Client
    except ImportError:
        raise FileJobError("running on a Dask cluster needs dask.distributed: "
                           "pip install 'specgenre[dask]'") from None
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise FileJobError(f"cannot reach the Dask scheduler at {address}: {reason}") from None


@contextlib.contextmanager
def cluster(address=None):
    """Context of a client of the Dask scheduler at ``address`` (None: no cluster).

    Yields :func:`connect`'s client, closed at the end (the cluster goes on),
    or None when ``address`` is None, for the jobs' ``client`` argument.
    """
    if address is None:
        yield None
        return
    with connect(address) as client:
        yield client


class _JobOption(argparse.Action):
    """Store an option's value under its name in the dict ``namespace.job``."""

    def __call__(self, parser, namespace, values, option_string=None):
        value = True if self.nargs == 0 else values
        namespace.job = {**namespace.job, self.dest: value}


def add_job_arguments(parser, *, block_size=None, output="output file"):
    """Add a file job's options to an :mod:`argparse` parser: ``--block-size``, ``--resume``,
    ``--scheduler`` (``specgenre features``, ``predict`` and ``tags`` take them).

    The parsed options are the dict ``args.job`` of the jobs' keyword arguments
    ``block_size``, ``resume`` and ``client`` (the scheduler's address or None).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    block_size : int, optional
        Default of ``--block-size`` (None: the job's own).
    output : str, default="output file"
        What ``--resume`` goes on with, in the help text.
    """
    parser.set_defaults(job={"block_size": block_size, "resume": False, "client": None})
    parser.add_argument(
        "--block-size", type=int, dest="block_size", action=_JobOption, metavar="N",
        help=f"files read and processed at once: memory grows with it, not with the number "
             f"of files (default {block_size or '1, 16 on a cluster'})")
    parser.add_argument(
        "--resume", dest="resume", action=_JobOption, nargs=0,
        help=f"go on with the {output} of an interrupted run: its files that have not changed "
             "since (size, modification time) are not done again")
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", dest="client", action=_JobOption,
        help="run on the Dask cluster of this scheduler (tcp://host:8786); its workers read "
             "the files, so they must see the same paths")


def file_key(path):
    """``(path, size, mtime_ns)`` of a file as it is now; ``(path, -1, -1)`` if it is missing.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    key : tuple of (str, int, int)
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError:
        return path, -1, -1
    return path, int(st.st_size), int(st.st_mtime_ns)


def _same_file(a, b):
    return os.path.abspath(a) == os.path.abspath(b)


class CsvTable:
    """A CSV table written block by block, each row keyed by its file.

    Use :meth:`open`; then :meth:`append` the rows of each finished block.

    Parameters
    ----------
    path : str
        The CSV file.
    header : list of str
        Its columns; they hold :data:`KEY_COLUMNS` (``file`` may come first).
    done : dict
        ``{absolute path: (size, mtime_ns)}`` of the files already in the table.
    n_rows : int
        Rows in the table.
    """

    def __init__(self, path, header, done, n_rows):
        self.path, self.header, self.done, self.n_rows = path, header, done, n_rows

    @classmethod
    def open(cls, path, header, *, resume=False, redo=None):
        """Start a table (or, with ``resume``, go on with one) at ``path``.

        Parameters
        ----------
        path : str or path-like
            The CSV file; its folder must exist.
        header : list of str
            Its columns, holding :data:`KEY_COLUMNS`.
        resume : bool, default=False
            Keep the rows already in ``path`` of files whose size and
            modification time are unchanged, instead of starting afresh. The
            table must have been written with the same columns.
        redo : callable, optional
            ``redo(record)`` is true for a row (a dict of ``header``) whose
            file must be done again even though it did not change (e.g. a
            row recording an error).

        Returns
        -------
        table : CsvTable

        Raises
        ------
        FileJobError
            With ``resume``, when ``path`` holds other columns than ``header``.
        """
        from ._files import atomic_write

        path, header = os.fspath(path), list(header)
        missing = [c for c in KEY_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"header lacks the key column(s) {missing}")
        if resume and os.path.exists(path) and not os.path.isfile(path):
            raise FileJobError(f"resuming needs an output file; {path} is not one")
        if not resume or not os.path.exists(path) or os.path.getsize(path) == 0:
            with open(path, "wb") as fh:
                fh.write(_csv_bytes([header]))
            return cls(path, header, {}, 0)
        with open(path, "rb") as fh:
            data = fh.read()
        complete = data[:data.rfind(b"\n") + 1]  # a last line cut short by a crash is dropped
        try:
            lines = list(csv.reader(io.StringIO(complete.decode("utf-8"), newline="")))
        except (UnicodeDecodeError, csv.Error):
            lines = []
        if not lines or lines[0] != header:
            raise FileJobError(f"{path} holds other columns than this job writes (another "
                             "command or options?); remove it, or write to another file")
        rows = [r for r in lines[1:] if len(r) == len(header)]
        col = {c: header.index(c) for c in KEY_COLUMNS}
        now, keep_file = {}, {}
        for row in rows:  # a file is done when all its rows match the file as it is now
            name = os.path.abspath(row[col["file"]])
            if name not in now:
                now[name] = file_key(name)[1:]
            ok = (row[col["file_size"]], row[col["file_mtime_ns"]]) == tuple(map(str, now[name]))
            ok = ok and not (redo and redo(dict(zip(header, row))))
            keep_file[name] = keep_file.get(name, True) and ok
        kept = [r for r in rows if keep_file[os.path.abspath(r[col["file"]])]]
        if len(kept) != len(lines) - 1 or len(complete) != len(data):
            with atomic_write(path, "wb") as fh:  # the stale rows go, all or nothing
                fh.write(_csv_bytes([header, *kept]))
        done = {name: now[name] for name, ok in keep_file.items() if ok}
        return cls(path, header, done, len(kept))

    def is_done(self, path):
        """Whether the table holds the rows of ``path`` as the file is now."""
        name = os.path.abspath(os.fspath(path))
        return name in self.done and self.done[name] == file_key(name)[1:]

    def append(self, rows):
        """Append rows (lists in the order of the header) in one write.

        The rows of a block reach the file together or not at all: they are
        written by one system call, and cut back if it writes only part of
        them (a full disk).
        """
        if not rows:
            return
        data = _csv_bytes(rows)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(f"{self.path}: only {written} of {len(data)} bytes written")
            except BaseException:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
        self.n_rows += len(rows)


def _csv_bytes(rows):
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode("utf-8")


def _blocks(items, block_size, first_alone):
    start = 0
    if first_alone and items:
        yield items[:1]
        start = 1
    for i in range(start, len(items), block_size):
        yield items[i:i + block_size]


def _with_warnings(func, block, *args):
    """``func(block, *args)`` and the warnings it raised, to be raised again by the caller."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(block, *args)
    return result, [(w.message, w.category) for w in caught]


def map_file_blocks(func, files, *, args=(), block_size=64, client=None, progress=False,
                    desc="files"):
    """Run ``func`` on consecutive blocks of ``files``; yield each block's results in order.

    Parameters
    ----------
    func : callable
        ``func(block, *args)``: ``block`` is a list of paths; it returns a list
        of one result per path. A top-level function (it is pickled to reach
        a cluster's workers). Warnings it raises are raised again here.
    files : sequence of str or path-like
        The files, in the order the results come back.
    args : tuple, default=()
        Further arguments of ``func`` (scattered to a cluster's workers once).
    block_size : int, default=64
        Files per block: memory grows with it, not with ``len(files)``.
    client : dask.distributed.Client or str, optional
        Run the blocks on this cluster (or that of the scheduler at this
        address, connected to for the job), a few blocks per worker at a time;
        the workers read the files themselves (give paths they can open,
        e.g. absolute paths on a shared file system). Default: here, one
        block after another.
    progress : bool, default=False
        Show a progress bar of files done, with files/s and the time left.
    desc : str, default="files"
        Label of the progress bar.

    Yields
    ------
    block : list of str
        Paths of the block.
    results : list
        ``func``'s results for them.
    """
    from tqdm.auto import tqdm

    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise FileJobError(f"the block size must be a positive number of files; got "
                           f"{block_size!r}")
    files = [os.fspath(f) for f in files]
    bar = tqdm(total=len(files), desc=desc, unit="file", disable=not progress, leave=False)
    try:
        with cluster(client) if isinstance(client, str) else contextlib.nullcontext(client) as c:
            if c is None:
                runs = ((b, _with_warnings(func, b, *args))
                        for b in _blocks(files, block_size, False))
            else:
                runs = _on_cluster(c, func, files, args, block_size)
            for block, (results, caught) in runs:
                for message, category in caught:
                    warnings.warn(message, category, stacklevel=2)
                bar.update(len(block))
                yield block, results
    finally:
        bar.close()


def _on_cluster(client, func, files, args, block_size):
    """``(block, (results, warnings))`` of each block, computed on ``client``'s workers."""
    # workers open the files themselves: absolute paths, whatever their working folder
    files = [os.path.abspath(f) for f in files]
    shared = [client.scatter(a, broadcast=True, hash=False) for a in args]
    window = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    # the first file alone: numba-compiled code is compiled and cached once before the
    # other workers start (fresh processes compiling at once race on numba's cache)
    blocks = _blocks(files, block_size, first_alone=True)
    pending = deque()
    try:
        first = next(blocks, None)
        if first is not None:
            pending.append((first, client.submit(_with_warnings, func, first, *shared,
                                                 pure=False)))
        while pending:
            block, future = pending.popleft()
            result = future.result()
            for b in blocks:  # after the first block, keep `window` blocks in flight
                pending.append((b, client.submit(_with_warnings, func, b, *shared,
                                                 pure=False)))
                if len(pending) >= window:
                    break
            yield block, result
    finally:
        for _, future in pending:
            future.cancel()
