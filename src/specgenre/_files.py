"""Writing files safely: all or nothing.

:func:`atomic_write` writes to a temporary file in the destination's folder
and moves it onto the destination with :func:`os.replace` only when the
writing finished without an exception, so a crash, a full disk or Ctrl-C
never leaves a half-written file under the final name (readers see either the
old file or the complete new one).
"""

import contextlib
import os
import tempfile

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path, mode="wb", **kwargs):
    """Open a temporary file next to ``path``; on success it replaces ``path``.

    Parameters
    ----------
    path : str or path-like
        The file to (re)write. Its folder must exist (it is not created).
    mode : {"wb", "w"}, default="wb"
        Binary or text writing.
    **kwargs
        Passed to :func:`open` (e.g. ``encoding="utf-8"`` for text).

    Yields
    ------
    file : file object
        The open temporary file. Write to it inside the ``with`` block; do not
        close it yourself.

    Notes
    -----
    The temporary file is ``.<name>.<random>.partial`` in the same folder (so
    :func:`os.replace` stays on one file system) and is removed whenever the
    block raises, :class:`KeyboardInterrupt` included. The data is not
    fsync'ed: the replacement is atomic for other processes, not necessarily
    durable across a power loss.

    Examples
    --------
    >>> import os, tempfile
    >>> from specgenre._files import atomic_write
    >>> folder = tempfile.mkdtemp()
    >>> with atomic_write(os.path.join(folder, "a.txt"), "w") as fh:
    ...     _ = fh.write("hello")
    >>> open(os.path.join(folder, "a.txt")).read()
    'hello'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial",
                               dir=folder)
    try:
        try:
            fh = os.fdopen(fd, mode, **kwargs)
        except BaseException:
            os.close(fd)
            raise
        with fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
