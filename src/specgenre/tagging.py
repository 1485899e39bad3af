"""Top tags of audio files by a pretrained musicnn tagger, block by block.

:func:`tag_files` gives each file's most likely tags
(:func:`~specgenre.musicnn.top_tags` of the file at its own sample rate, as
the official tagger reads it), here or on a Dask cluster;
:func:`write_tag_table` appends them to a CSV (or Parquet) table as they
come, resumable after an interruption. ``specgenre tags`` is these functions.
"""

import functools

__all__ = ["tag_files", "write_tag_table"]


def _tag_block(paths, model, n, device):
    """The job's block function: ``(tags, error)`` of each file of ``paths``."""
    from .audio import AudioLoadError, read_audio
    from .musicnn import top_tags

    out = []
    for path in paths:
        try:
            y, sr = read_audio(path)  # the file's own rate: exactly the official tagger's input
            out.append((top_tags(y, sr=sr, model=model, n=n, device=device), ""))
        except AudioLoadError as exc:
            out.append(([], exc.reason))
        except ValueError as exc:
            out.append(([], str(exc)))
    return out


def tag_files(files, *, model="MSD_musicnn", n=5, device="cpu", block_size=None, client=None,
              progress=False):
    """The ``n`` most likely tags of each audio file.

    Parameters
    ----------
    files : iterable of str or path-like
        Audio files (read whole, at their own sample rate, one at a time).
    model : {"MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"}, default="MSD_musicnn"
    n : int, default=5
        Tags per file.
    device : str, default="cpu"
        Torch device.
    block_size : int, optional
        Files per block (default: 1 here, 16 on a cluster).
    client : dask.distributed.Client or str, optional
        Tag the blocks on this cluster (see
        :func:`~specgenre.filejobs.map_file_blocks`); its workers need the
        official weights too.
    progress : bool, default=False
        Show a progress bar (files/s, time left).

    Yields
    ------
    file : str
        The file, as given, in order.
    tags : list of (str, float)
        Its ``n`` tags and their mean probabilities, most likely first (empty
        when it could not be tagged).
    error : str
        Why it could not be tagged ("" when it was).

    Raises
    ------
    MusicnnWeightsNotFoundError
        The official weights are not installed.
    """
    from .filejobs import _per_file_block_size, map_file_blocks

    files = [str(f) for f in files]
    blocks = map_file_blocks(_tag_block, files, args=(model, n, device),
                             block_size=_per_file_block_size(block_size, client),
                             client=client, progress=progress, desc="tagging")
    pos = 0
    for _, results in blocks:
        for tags, error in results:
            yield files[pos], tags, error
            pos += 1


def write_tag_table(files, path, *, n=5, resume=False, callback=None, **kwargs):
    """Tag audio files and append the tags to the CSV file ``path`` as they come.

    Parameters
    ----------
    files : iterable of str or path-like
    path : str or path-like
        CSV file of columns ``file``, ``tag_1``, ``p_1``, ..., ``tag_<n>``,
        ``p_<n>``, ``error``, ``file_size``, ``file_mtime_ns``; or, ending in
        ``.parquet``, a folder of Parquet part files with these columns
        (:class:`~specgenre.filejobs.ParquetTable`).
    n : int, default=5
        Tags per file.
    resume : bool, default=False
        Go on with the table at ``path`` (written with the same ``n``): files
        tagged before and unchanged since (size, modification time) are not
        tagged again; files that failed are.
    callback : callable, optional
        ``callback(file, tags, error)`` for each file tagged in this run, once
        its row is written.
    **kwargs
        ``model``, ``device``, ``block_size``, ``client``, ``progress`` of
        :func:`tag_files`.

    Returns
    -------
    report : ~specgenre.filejobs.FileJobReport
        ``skipped`` lists ``(file, error)`` of the files that could not be tagged.
    """
    from .filejobs import (
        KEY_COLUMNS,
        FileJobReport,
        _per_file_block_size,
        append_file_rows,
        open_table,
    )

    files = [str(f) for f in files]
    header = ["file", *(f"{c}_{k}" for k in range(1, n + 1) for c in ("tag", "p")), "error",
              *KEY_COLUMNS[1:]]
    table = open_table(path, header, types={f"p_{k}": "float64" for k in range(1, n + 1)},
                       resume=resume, redo=lambda record: record["error"])
    todo = [f for f in files if not table.is_done(f)]
    report = FileJobReport(len(files), n_resumed=len(files) - len(todo))
    size = _per_file_block_size(kwargs.get("block_size"), kwargs.get("client"))
    results = (
        (file, error, [file, *([v for t, p in tags for v in (t, repr(p))] or [""] * (2 * n)),
                       error],
         None if callback is None else functools.partial(callback, file, tags, error))
        for file, tags, error in tag_files(todo, n=n, **kwargs))
    return append_file_rows(table, todo, results, report, rows_per_append=size)
