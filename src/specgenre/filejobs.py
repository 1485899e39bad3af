"""Jobs over collections of files of any size: block by block, resumable, local or on Dask.

A file job (the 57-feature table, judging songs) turns every file of a list
into rows of a table. :func:`map_file_blocks` runs a job's *block function*
on consecutive blocks of files, here or on a :mod:`dask.distributed`
cluster, and yields each block's results in file order as soon as they are
ready; :func:`open_table` gives a table that appends each block's rows as it
finishes: a CSV file (:class:`CsvTable`) or, for a path ending in
``.parquet``, a folder of Parquet part files (:class:`ParquetTable`, with
``pyarrow``). Memory therefore depends on the block size, not on the number
of files, and an interrupted job loses at most the blocks in progress.

Every row of a table carries its file's key: the path as given,
its size in bytes and its modification time in nanoseconds (the columns
:data:`KEY_COLUMNS`). Reopened with ``resume=True``, a table keeps the rows
of the files that have not changed since, drops the rows of those that did
(and a last row cut short by a crash), and :meth:`~CsvTable.is_done` tells the
job which files to skip: every file ends up in the table exactly once.

On a cluster, the client ships only file paths (and the job's parameters,
scattered once); workers read the files themselves, so the paths must name
the same files on every machine. The results are equal to a local run's:
the same function runs on the same files.
"""

import contextlib
import csv
import io
import os
import re
import warnings
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import CollectionError

__all__ = ["KEY_COLUMNS", "CsvTable", "FileJobError", "FileJobReport", "ParquetTable",
           "append_file_rows", "cluster", "connect", "file_key",
           "map_file_blocks", "open_table"]

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


def _per_file_block_size(block_size, client):
    """``block_size``, or the default of the jobs that read one file at a time
    (``predict``, ``tags``, embeddings): 1 file here, 16 on a cluster."""
    return block_size or (1 if client is None else 16)


def append_file_rows(table, todo, results, report, *, rows_per_append):
    """Append one row per file of ``todo`` to ``table`` as its result comes.

    The file keys are taken first, before ``results`` reads any file, so that
    a file changed meanwhile is redone on resume.

    Parameters
    ----------
    table : CsvTable or ParquetTable
        The output (:func:`open_table`).
    todo : list of str
        The files still to do, in the order ``results`` yields them.
    results : iterable of (str, str, list, callable or None)
        ``(file, error, cells, after)`` per file: the row is ``cells``
        followed by the file's size and modification time; a non-empty
        ``error`` puts ``(file, error)`` in ``report.skipped``; ``after()``,
        when given, is called once the row is written.
    report : FileJobReport
        Updated: ``skipped`` and ``n_rows``.
    rows_per_append : int
        Rows gathered before each append (the rows a crash may lose).

    Returns
    -------
    report : FileJobReport
    """
    keys = iter([file_key(f) for f in todo])
    pending = []

    def flush():
        table.append([row for row, _ in pending])
        for _, after in pending:
            if after is not None:
                after()
        pending.clear()

    for file, error, cells, after in results:
        if error:
            report.skipped.append((file, error))
        pending.append(([*cells, *next(keys)[1:]], after))
        if len(pending) == rows_per_append:
            flush()
    flush()
    report.n_rows = table.n_rows
    return report


def _same_file(a, b):
    return os.path.abspath(a) == os.path.abspath(b)


def _check_header(header):
    header = list(header)
    missing = [c for c in KEY_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"header lacks the key column(s) {missing}")
    return header


def open_table(path, header, *, types=None, resume=False, redo=None):
    """Start (or, with ``resume``, go on with) a table at ``path``: Parquet or CSV by its suffix.

    Parameters
    ----------
    path : str or path-like
        A folder of Parquet part files when it ends in ``.parquet``
        (:class:`ParquetTable`, needs ``pyarrow``), else a CSV file
        (:class:`CsvTable`). Its parent folder must exist.
    header : list of str
        The columns, holding :data:`KEY_COLUMNS`.
    types : dict, optional
        ``{column: "int64" | "float64" | "float32" | "str"}`` (default
        ``"str"``; the key columns' sizes and times are ``"int64"``): the
        Parquet columns' types. A CSV file holds text.
    resume, redo
        See :meth:`CsvTable.open`.

    Returns
    -------
    table : CsvTable or ParquetTable
    """
    if os.fspath(path).lower().endswith(".parquet"):
        return ParquetTable.open(path, header, types=types, resume=resume, redo=redo)
    return CsvTable.open(path, header, resume=resume, redo=redo)


class _KeyedTable:
    """What the tables share: rows keyed by file, ``done`` files, ``n_rows``."""

    def __init__(self, path, header, done, n_rows):
        self.path, self.header, self.done, self.n_rows = path, header, done, n_rows

    def is_done(self, path):
        """Whether the table holds the rows of ``path`` as the file is now."""
        name = os.path.abspath(os.fspath(path))
        return name in self.done and self.done[name] == file_key(name)[1:]


class CsvTable(_KeyedTable):
    """A CSV table written block by block, each row keyed by its file.

    Use :meth:`open` (or :func:`open_table`); then :meth:`append` the rows of
    each finished block.

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

        path, header = os.fspath(path), _check_header(header)
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


#: A Parquet table's part files; hidden files (``.``, ``_``) are not parts, as for pyarrow.
_PART = re.compile(r"part-(\d+)\.parquet")
_TYPES = ("int64", "float64", "float32", "str")


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise FileJobError("writing a Parquet table (a .parquet output) needs pyarrow: "
                           "pip install 'specgenre[parquet]'") from None
    return pyarrow, pyarrow.parquet


def _arrow_type(pa, kind):
    return {"int64": pa.int64(), "float64": pa.float64(), "float32": pa.float32(),
            "str": pa.string()}[kind]


def _cell(kind, value):
    """``value`` (a number, or its text as a CSV row holds it) as a Parquet cell of ``kind``."""
    if value is None or (kind != "str" and value == ""):
        return None
    if kind == "str":
        return str(value)
    return int(value) if kind == "int64" else float(value)


class _Record(Mapping):
    """Row ``i`` of a pyarrow table as a read-only dict, its cells read when asked for."""

    def __init__(self, table, i):
        self._table, self._i = table, i

    def __getitem__(self, column):
        return self._table.column(column)[self._i].as_py()

    def __iter__(self):
        return iter(self._table.column_names)

    def __len__(self):
        return self._table.num_columns


class ParquetTable(_KeyedTable):
    """A Parquet table written block by block: a folder of part files, each row keyed by its file.

    Use :meth:`open` (or :func:`open_table`); then :meth:`append` the rows of
    each finished block.

    The table is the folder ``path`` (e.g. ``features.parquet/``) of files
    ``part-000000.parquet``, ``part-000001.parquet``, ...; pyarrow, pandas
    (``pd.read_parquet(path)``), Dask and Spark read the folder as one table,
    its parts in the order of their numbers. A Parquet file cannot be
    appended to once written, so every :meth:`append` writes a whole part
    file under a hidden temporary name and moves it into place: a part is
    there complete or not at all, and readers never see half a part. The
    blocks of one run go to the same part (rewritten with each new block)
    until it holds :attr:`rows_per_part` rows or :attr:`bytes_per_part`
    bytes (in memory), then to a new one, so that small blocks do not make a
    part file per file, and a block rewrites at most about a megabyte. A resumed run drops the
    stale rows by rewriting the parts that hold them (each on its own,
    atomically) and appends to new parts.

    Parameters
    ----------
    path : str
        The folder.
    header : list of str
        Its columns; they hold :data:`KEY_COLUMNS`.
    done : dict
        ``{absolute path: (size, mtime_ns)}`` of the files already in the table.
    n_rows : int
        Rows in the table.
    schema : pyarrow.Schema
        The columns' names and types.
    next_part : int
        Number of the next part file.
    """

    #: A part takes the blocks of a run until it holds this many rows ...
    rows_per_part = 4096
    #: ... or this many bytes of data.
    bytes_per_part = 1 << 20

    def __init__(self, path, header, done, n_rows, schema, next_part):
        super().__init__(path, header, done, n_rows)
        self.schema, self._next = schema, next_part
        self._part = None  # (number, pyarrow table) of the part being filled by this run

    @classmethod
    def open(cls, path, header, *, types=None, resume=False, redo=None):
        """Start a table (or, with ``resume``, go on with one) in the folder ``path``.

        Parameters
        ----------
        path : str or path-like
            The folder (made if missing; its parent must exist). Without
            ``resume``, the part files of a table already there are removed.
        header : list of str
            The columns, holding :data:`KEY_COLUMNS`.
        types : dict, optional
            Type of each column: see :func:`open_table`.
        resume, redo
            See :meth:`CsvTable.open`.

        Returns
        -------
        table : ParquetTable

        Raises
        ------
        FileJobError
            ``pyarrow`` is not installed; ``path`` is a file, or a folder
            holding other files than a table's parts; with ``resume``, the
            parts hold other columns than ``header`` (or of other types).
        """
        pa, pq = _pyarrow()
        path, header = os.fspath(path), _check_header(header)
        types = {**dict(types or {}), "file_size": "int64", "file_mtime_ns": "int64"}
        bad = {c: t for c, t in types.items() if t not in _TYPES}
        if bad:
            raise ValueError(f"unknown column types {bad}; choose from {list(_TYPES)}")
        schema = pa.schema([(c, _arrow_type(pa, types.get(c, "str"))) for c in header])
        if os.path.exists(path) and not os.path.isdir(path):
            raise FileJobError(f"{path} is a file; a Parquet table (.parquet) is written as a "
                               "folder of part files: remove it, or write to another name")
        if not os.path.exists(path):
            os.mkdir(path)
        parts = _table_parts(path)
        if not resume:
            for number in parts:
                os.remove(_part_path(path, number))
            parts = {}
        table = cls(path, header, {}, 0, schema, max(parts, default=-1) + 1)
        keep_file, now = {}, {}
        for number in parts:  # a file is done when all its rows match the file as it is now
            part = pq.read_table(_part_path(path, number))
            if not part.schema.equals(schema):
                raise FileJobError(f"{path} holds other columns than this job writes (another "
                                   "command or options?); remove it, or write to another name")
            keys = zip(*(part.column(c).to_pylist() for c in KEY_COLUMNS))
            for i, (name, size, mtime) in enumerate(keys):
                name = os.path.abspath(name)
                if name not in now:
                    now[name] = file_key(name)[1:]
                ok = (size, mtime) == now[name] and not (redo and redo(_Record(part, i)))
                keep_file[name] = keep_file.get(name, True) and ok
        for number in parts:  # the stale rows go: each part rewritten whole, or removed (empty)
            part = pq.read_table(_part_path(path, number))
            keep = [keep_file[os.path.abspath(f)] for f in part.column("file").to_pylist()]
            if keep and all(keep):
                table.n_rows += part.num_rows
            elif any(keep):
                table._write(number, part.filter(pa.array(keep)))
                table.n_rows += sum(keep)
            else:
                os.remove(_part_path(path, number))
        table.done = {name: now[name] for name, ok in keep_file.items() if ok}
        if not table.n_rows:  # an empty table still has its columns: an empty part
            table.append([])
        return table

    def append(self, rows):
        """Append rows (lists in the order of the header): the part file holding them is
        written whole, then moved into place.

        Cells are numbers or strings; a numeric column's cells may be their
        text (as a CSV row holds them), and ``None`` or ``""`` is a missing
        value there.
        """
        pa, _ = _pyarrow()
        if not rows and self._part is not None:
            return
        columns = [[_cell(kind, row[j]) for row in rows]
                   for j, kind in enumerate(self._kinds())]
        block = pa.Table.from_arrays([pa.array(c, type=f.type)
                                      for c, f in zip(columns, self.schema)], schema=self.schema)
        current = None if self._part is None else self._part[1]
        if current is not None and (current.num_rows < self.rows_per_part
                                    and current.nbytes < self.bytes_per_part):
            number, block = self._part[0], pa.concat_tables([self._part[1], block])
        else:
            number, self._next = self._next, self._next + 1
        self._write(number, block)
        self._part = (number, block)
        self.n_rows += len(rows)

    def _kinds(self):
        pa, _ = _pyarrow()
        names = {_arrow_type(pa, k): k for k in _TYPES}
        return [names[f.type] for f in self.schema]

    def _write(self, number, table):
        from ._files import atomic_write

        _, pq = _pyarrow()
        with atomic_write(_part_path(self.path, number), "wb") as fh:
            pq.write_table(table, fh)


def _part_path(folder, number):
    return os.path.join(folder, f"part-{number:06d}.parquet")


def _table_parts(folder):
    """``{number: name}`` of the part files in ``folder``; leftover temporary files go.

    Raises FileJobError when it holds other visible files (not a table's folder).
    """
    parts, others = {}, []
    for name in sorted(os.listdir(folder)):
        if (m := _PART.fullmatch(name)) is not None:
            parts[int(m.group(1))] = name
        elif name.startswith(".part-") and name.endswith(".partial"):
            with contextlib.suppress(OSError):  # a part being written when a run was killed
                os.remove(os.path.join(folder, name))
        elif not name.startswith((".", "_")):
            others.append(name)
    if others:
        raise FileJobError(f"{folder} holds other files than a Parquet table's parts "
                           f"({', '.join(others[:3])}); remove them, or write to another name")
    return dict(sorted(parts.items()))


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
