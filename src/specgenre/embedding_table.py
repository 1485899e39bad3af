"""musicnn embeddings of audio files, one row per file, block by block.

:func:`embed_files` embeds each file whole, at its own sample rate (as the
official ``musicnn`` extractor reads it), with a pretrained
:class:`~specgenre.musicnn.MusicnnEmbedding` (its layer pooled over all of
the file's 3 s patches), here or on a Dask cluster;
:func:`write_embedding_table` appends the vectors to a CSV or Parquet table
as they come, resumable after an interruption. Memory depends on the block
size, not on the number of files::

    write_embedding_table(files, "embeddings.parquet", layer="penultimate",
                          resume=True)
"""

import functools

import numpy as np

__all__ = ["embed_files", "embedding_columns", "write_embedding_table"]

_PARAMS = ("model", "layer", "pooling", "batch_size", "device", "weights_dir", "precision")


def _settings(model, layer, pooling, batch_size, device, weights_dir, precision):
    return dict(zip(_PARAMS, (model, layer, pooling, batch_size, device, weights_dir,
                              precision)))


def embedding_columns(*, model="MSD_musicnn", layer="max_pool", pooling="mean",
                      weights_dir=None):
    """Names of the embedding's columns (:meth:`MusicnnEmbedding.get_feature_names_out`).

    Parameters
    ----------
    model, layer, pooling, weights_dir
        As in :class:`~specgenre.musicnn.MusicnnEmbedding`.

    Returns
    -------
    names : list of str

    Raises
    ------
    MusicnnWeightsNotFoundError
        The official weights are not installed (the network is loaded to
        learn the layer's width).
    """
    from .musicnn import MusicnnEmbedding, min_clip_samples

    emb = MusicnnEmbedding(model, layer=layer, pooling=pooling, sr=16000,
                           weights_dir=weights_dir)
    emb.fit(np.zeros((1, min_clip_samples(16000)), np.float32))
    return [str(c) for c in emb.get_feature_names_out()]


def _embed_block(paths, settings, max_seconds):
    """The job's block function: ``(vector or None, error)`` of each file of ``paths``."""
    from .audio import AudioLoadError, read_audio
    from .musicnn import MusicnnEmbedding

    out = []
    for path in paths:
        try:
            y, sr = read_audio(path)  # the file's own rate: the official extractor's input
            if max_seconds is not None:
                y = y[:int(round(max_seconds * sr))]
            X = y[None, :]
            out.append((MusicnnEmbedding(sr=sr, **settings).fit(X).transform(X)[0], ""))
        except AudioLoadError as exc:
            out.append((None, exc.reason))
        except ValueError as exc:  # shorter than one 3 s patch
            out.append((None, str(exc)))
    return out


def embed_files(files, *, model="MSD_musicnn", layer="max_pool", pooling="mean",
                max_seconds=None, batch_size=64, device="cpu", weights_dir=None,
                precision="fp32", block_size=None, client=None, progress=False):
    """The musicnn embedding of each audio file, block by block.

    Parameters
    ----------
    files : iterable of str or path-like
        Audio files (read whole, at their own sample rate, one at a time).
    model, layer, pooling, batch_size, device, weights_dir, precision
        As in :class:`~specgenre.musicnn.MusicnnEmbedding`: the layer is pooled
        over all of a file's 3 s patches.
    max_seconds : float, optional
        Embed only each file's first ``max_seconds`` seconds (default: all).
    block_size : int, optional
        Files per block (default: 1 here, 16 on a cluster).
    client : dask.distributed.Client or str, optional
        Embed the blocks on this cluster (see
        :func:`~specgenre.filejobs.map_file_blocks`); its workers need the
        official weights too.
    progress : bool, default=False
        Show a progress bar (files/s, time left).

    Yields
    ------
    file : str
        The file, as given, in order.
    vector : ndarray of shape (n_columns,), float32, or None
        Its embedding (columns :func:`embedding_columns`); None when it could
        not be embedded.
    error : str
        Why it could not be embedded ("" when it was): unreadable, or shorter
        than one 3 s patch.

    Raises
    ------
    ValueError
        A parameter of the embedding is not valid (before any file is read).
    MusicnnWeightsNotFoundError
        The official weights are not installed.
    """
    from ._validation import validate_params
    from .filejobs import _per_file_block_size, map_file_blocks
    from .musicnn import MusicnnEmbedding, musicnn_layers

    files = [str(f) for f in files]
    settings = _settings(model, layer, pooling, batch_size, device, weights_dir, precision)
    validate_params(MusicnnEmbedding(**settings))  # here, not as an error of every file
    if layer not in musicnn_layers(model):
        raise ValueError(f"layer {layer!r} is not an output of {model}; choose one of "
                         f"{list(musicnn_layers(model))}.")
    blocks = map_file_blocks(_embed_block, files, args=(settings, max_seconds),
                             block_size=_per_file_block_size(block_size, client),
                             client=client, progress=progress, desc="embedding")
    pos = 0
    for _, results in blocks:
        for vector, error in results:
            yield files[pos], vector, error
            pos += 1


def write_embedding_table(files, path, *, resume=False, callback=None, **kwargs):
    """Embed audio files and append the embeddings to the table ``path`` as they come.

    Parameters
    ----------
    files : iterable of str or path-like
    path : str or path-like
        CSV file, or a folder of Parquet part files when it ends in
        ``.parquet`` (:class:`~specgenre.filejobs.ParquetTable`, float32
        columns), of columns ``file``, the embedding's
        (:func:`embedding_columns`), ``error``, ``file_size`` and
        ``file_mtime_ns``: one row per file. The CSV holds each value's
        shortest float32 text (it reads back exactly).
    resume : bool, default=False
        Go on with the table at ``path`` (written with the same model, layer
        and pooling): files embedded before and unchanged since (size,
        modification time) are not embedded again; files that failed are.
    callback : callable, optional
        ``callback(file, vector, error)`` for each file embedded in this run,
        once its row is written.
    **kwargs
        ``model``, ``layer``, ``pooling``, ``max_seconds``, ``batch_size``,
        ``device``, ``weights_dir``, ``precision``, ``block_size``, ``client``,
        ``progress`` of :func:`embed_files`.

    Returns
    -------
    report : ~specgenre.filejobs.FileJobReport
        ``skipped`` lists ``(file, error)`` of the files that could not be
        embedded (their rows hold the error and no values).

    Raises
    ------
    MusicnnWeightsNotFoundError
        The official weights are not installed here (the table's columns are
        those of the layer, whose width the network tells).
    """
    from .filejobs import (
        KEY_COLUMNS,
        FileJobReport,
        _per_file_block_size,
        append_file_rows,
        open_table,
    )

    files = [str(f) for f in files]
    names = embedding_columns(**{k: kwargs[k] for k in ("model", "layer", "pooling",
                                                        "weights_dir") if k in kwargs})
    header = ["file", *names, "error", *KEY_COLUMNS[1:]]
    table = open_table(path, header, types=dict.fromkeys(names, "float32"), resume=resume,
                       redo=lambda record: record["error"])
    todo = [f for f in files if not table.is_done(f)]
    report = FileJobReport(len(files), n_resumed=len(files) - len(todo))
    size = _per_file_block_size(kwargs.get("block_size"), kwargs.get("client"))
    results = (
        (file, error,
         [file, *([""] * len(names) if vector is None else [str(v) for v in vector]), error],
         None if callback is None else functools.partial(callback, file, vector, error))
        for file, vector, error in embed_files(todo, **kwargs))
    return append_file_rows(table, todo, results, report, rows_per_append=size)
