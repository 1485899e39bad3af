"""Judging whole songs: cut into the model's windows, combined by the model's own vote.

A row's model takes samples of one length: its 3 s segments for voting rows
(and ``xgboost_3s``), its 30 s clip otherwise. A song of any length is cut into
consecutive windows of that length from its start (the last partial window
dropped); the windows are combined by the model's own vote
(:meth:`TrackAggregator.vote <specgenre.TrackAggregator.vote>`): mean
probabilities, or a majority vote for "3 s + MV" rows. A model without
voting (30 s rows) averages its windows' probabilities. A song shorter than
one window is padded with silence or looped, with a
:class:`~specgenre.errors.ShortAudioWarning`, or refused.

For collections of any size, :func:`judge_file_blocks` judges the files block
by block, here or on a Dask cluster, and :func:`write_judgement_table` writes
the verdicts to a CSV file as they come, resumable after an interruption.
"""

import functools
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import ShortAudioWarning

__all__ = ["Judgement", "judge", "judge_file_blocks", "judge_files", "predict_files",
           "write_judgement_table", "write_judgements"]

_SHORT = ("pad", "loop", "skip")


@dataclass
class Judgement:
    """The verdict on one song.

    Parameters
    ----------
    file : str
        The song's file ("" for a waveform judged directly).
    genre : str or None
        The genre found (None when the file could not be judged).
    scores : dict
        ``{genre: score}`` for every class of the model: mean probabilities,
        or, for majority-vote models, the share of windows voting for each
        genre (``score_kind`` says which); the genre found has the largest.
    score_kind : {"probability", "vote share"}
    windows : int
        Windows judged.
    seconds : float
        Length of the audio judged, in seconds (before any padding).
    short : {None, "pad", "loop"}
        How a song shorter than one window was filled (None: it was not short).
    window_genres : list of str
        Each window's own prediction, in order.
    window_scores : ndarray or None
        Each window's class probabilities (models that vote with them).
    window_seconds : float
        Length of one window, in seconds.
    error : str
        Why the file could not be judged ("" when it was).
    """

    file: str
    genre: str | None = None
    scores: dict = field(default_factory=dict)
    score_kind: str = "probability"
    windows: int = 0
    seconds: float = 0.0
    short: str | None = None
    window_genres: list = field(default_factory=list)
    window_scores: np.ndarray | None = None
    window_seconds: float = 0.0
    error: str = ""

    def as_text(self, *, top=3, windows=False):
        """The verdict as text: ``file, genre, top scores, (windows)``, tab-separated, and
        with ``windows`` one more line per window."""
        best = sorted(self.scores.items(), key=lambda kv: -kv[1])[:top]
        note = {"pad": ", padded", "loop": ", looped"}.get(self.short, "")
        lines = [f"{self.file}\t{self.genre}\t" + ", ".join(f"{g} {p:.2f}" for g, p in best)
                 + f"\t({self.windows} window{'s' * (self.windows != 1)}{note})"]
        w = self.window_seconds
        lines += [f"  window {k} ({k * w:g}-{(k + 1) * w:g} s)\t{genre}"
                  for k, genre in enumerate(self.window_genres if windows else [])]
        return "\n".join(lines)

    def as_record(self, classes, *, windows=False):
        """The verdict as a flat dict: file, genre, score kind, windows, seconds, short,
        ``p_<genre>`` for each of ``classes``, error (and the window genres with
        ``windows``)."""
        record = {"file": self.file, "genre": self.genre or "", "score_kind": self.score_kind,
                  "windows": self.windows, "seconds": self.seconds, "short": self.short or "",
                  **{f"p_{c}": self.scores.get(c, "") for c in classes}, "error": self.error}
        if windows:
            record["window_genres"] = list(self.window_genres)
        return record


def _window_samples(model):
    """Samples per window of a trained model (its segments', else its clips')."""
    segmenter = getattr(model.estimator, "segmenter_", None)
    if segmenter is not None:
        return int(segmenter.segment_length_)
    return int(round(model.window_seconds * model.sr))


def judge(model, y, *, short="pad", file=""):
    """Judge one decoded song.

    Parameters
    ----------
    model : TrainedModel
        As returned by :func:`~specgenre.train_row` or
        :func:`~specgenre.load_model`.
    y : ndarray of shape (n_samples,)
        The song, mono, at ``model.sr``.
    short : {"pad", "loop", "skip"}, default="pad"
        A song shorter than one window: padded with silence, looped from its
        start (both with a :class:`~specgenre.errors.ShortAudioWarning` naming
        its length), or refused with a ``ValueError``.
    file : str, default=""
        Name of the song, for messages and the verdict.

    Returns
    -------
    judgement : Judgement
    """
    from .aggregate import TrackAggregator, soft_vote

    if short not in _SHORT:
        raise ValueError(f"short must be one of {_SHORT}; got {short!r}.")
    y = np.asarray(y, dtype=np.float32)
    n = _window_samples(model)
    seconds, filled = len(y) / model.sr, None
    if len(y) < n:
        what = f"{file or 'the audio'} lasts {seconds:.1f} s, shorter than the model's " \
               f"{n / model.sr:g} s window"
        if short == "skip":
            raise ValueError(f"{what} (skipped; pad or loop it to judge it)")
        filled = short
        warnings.warn(f"{what}: {'padded with silence' if short == 'pad' else 'looped'} to "
                      "fill it; the verdict is less reliable", ShortAudioWarning, stacklevel=2)
        y = np.pad(y, (0, n - len(y)), mode="constant" if short == "pad" else "wrap")
    k = len(y) // n
    windows = y[:k * n].reshape(k, n)
    est, classes = model.estimator, [str(c) for c in model.estimator.classes_]
    if isinstance(est, TrackAggregator):
        vote = est.vote(windows)
        kind = "probability" if est.voting == "soft" else "vote share"
        scores, window_genres, window_scores = vote.scores[0], vote.segment_labels, \
            vote.segment_proba
    else:  # a model of whole windows: mean of their probabilities
        window_scores = np.asarray(est.predict_proba(windows), dtype=np.float64)
        scores = soft_vote(window_scores, np.zeros(k, dtype=np.intp))[0]
        window_genres, kind = np.asarray(est.classes_)[np.argmax(window_scores, axis=1)], \
            "probability"
    return Judgement(file=str(file), genre=classes[int(np.argmax(scores))],
                     scores={c: float(s) for c, s in zip(classes, scores)}, score_kind=kind,
                     windows=k, seconds=round(seconds, 3), short=filled,
                     window_genres=[str(g) for g in window_genres], window_scores=window_scores,
                     window_seconds=n / model.sr)


def judge_files(model, files, *, max_seconds=None, short="pad", on_error="skip"):
    """Judge audio files, each whole (or its first ``max_seconds``).

    Parameters
    ----------
    model : TrainedModel
    files : iterable of str or path-like
        WAV, FLAC, MP3, OGG, AIFF, AU files, any sample rate, mono or stereo.
    max_seconds : float, optional
        Judge only the first ``max_seconds`` of each file.
    short : {"pad", "loop", "skip"}, default="pad"
        See :func:`judge`.
    on_error : {"skip", "raise"}, default="skip"
        ``"skip"``: a file that cannot be read or judged gets a
        :class:`Judgement` with ``error`` set, and the others go on.

    Yields
    ------
    judgement : Judgement
        One per file, in order, as soon as it is judged.
    """
    from .audio import AudioLoadError, read_audio

    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise'; got {on_error!r}.")
    for path in files:
        try:
            y, _ = read_audio(path, sr=model.sr)
            if max_seconds:
                y = y[:int(round(max_seconds * model.sr))]
            yield judge(model, y, short=short, file=str(path))
        except (AudioLoadError, ValueError) as exc:
            if on_error == "raise":
                raise
            reason = exc.reason if isinstance(exc, AudioLoadError) else str(exc)
            yield Judgement(file=str(path), error=reason.removeprefix(f"{path} "))


def write_judgements(judgements, fh, *, fmt="csv", classes, windows=False):
    """Write verdicts to the text file ``fh`` (open, or a path) as CSV or JSON.

    Parameters
    ----------
    judgements : list of Judgement
    fh : file object or path-like
        Opened for writing text (``newline=""`` for CSV), or the file to
        write (whole or not at all: written under a temporary name, then
        moved).
    fmt : {"csv", "json"}, default="csv"
        CSV: one line per file (:meth:`Judgement.as_record`, without window
        genres); JSON: a list of records.
    classes : list of str
        The model's genres (one ``p_<genre>`` column each).
    windows : bool, default=False
        JSON only: add each file's window genres.
    """
    import csv
    import json

    if isinstance(fh, (str, os.PathLike)):
        from ._files import atomic_write

        with atomic_write(fh, "w", newline="", encoding="utf-8") as out:
            return write_judgements(judgements, out, fmt=fmt, classes=classes, windows=windows)

    records = [j.as_record(classes, windows=windows and fmt == "json") for j in judgements]
    if fmt == "json":
        json.dump(records, fh, indent=1)
        fh.write("\n")
    elif fmt == "csv":
        fields = list(Judgement("").as_record(classes))
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    else:
        raise ValueError(f"fmt must be 'csv' or 'json'; got {fmt!r}.")


def _judge_block(paths, model, max_seconds, short):
    """The job's block function: the verdict on each file of ``paths``."""
    return list(judge_files(model, paths, max_seconds=max_seconds, short=short))


def judge_file_blocks(model, files, *, max_seconds=None, short="pad", block_size=None,
                      client=None, progress=False):
    """Judge audio files block by block, here or on a Dask cluster.

    The verdicts are those of :func:`judge_files` (which reads one file at a
    time), in the same order; with ``client``, blocks of files are judged by
    the cluster's workers, which read the files themselves.

    Parameters
    ----------
    model : TrainedModel
    files : iterable of str or path-like
    max_seconds, short
        See :func:`judge_files`.
    block_size : int, optional
        Files per block (default: 1 here, 16 on a cluster).
    client : dask.distributed.Client or str, optional
        The cluster, or its scheduler's address (the model is sent to each
        worker once).
    progress : bool, default=False
        Show a progress bar (files/s, time left).

    Yields
    ------
    judgement : Judgement
        One per file, in order (its ``file`` as given); a file that could not
        be read or judged has ``error`` set.
    """
    from .filejobs import _per_file_block_size, map_file_blocks

    files = [str(f) for f in files]
    block_size = _per_file_block_size(block_size, client)
    blocks = map_file_blocks(_judge_block, files, args=(model, max_seconds, short),
                             block_size=block_size, client=client, progress=progress,
                             desc="judging")
    pos = 0
    for _, judgements in blocks:
        for j in judgements:
            j.file, pos = files[pos], pos + 1  # a cluster's workers got absolute paths
            j.error = j.error.replace(os.path.abspath(j.file), j.file)
            yield j


def write_judgement_table(model, files, path, *, max_seconds=None, short="pad",
                          block_size=None, resume=False, client=None, progress=False,
                          callback=None):
    """Judge audio files and append each block's verdicts to the CSV file ``path``.

    Parameters
    ----------
    model : TrainedModel
    files : iterable of str or path-like
    path : str or path-like
        CSV file (or, ending in ``.parquet``, a folder of Parquet part files:
        :class:`~specgenre.filejobs.ParquetTable`): the columns of
        :func:`write_judgements` followed by ``file_size`` and
        ``file_mtime_ns``, which key each row to its file.
    max_seconds, short, block_size, client, progress
        See :func:`judge_file_blocks`.
    resume : bool, default=False
        Go on with the table at ``path`` (written by this function for a model
        of the same classes): files judged before and unchanged since (size,
        modification time) are not judged again; files that failed are.
    callback : callable, optional
        ``callback(judgement)`` for each file judged in this run, once its
        row is written.

    Returns
    -------
    report : ~specgenre.filejobs.FileJobReport
        ``skipped`` lists ``(file, error)`` of the files that could not be
        judged (their rows hold the error).
    """
    from .filejobs import FileJobReport, _per_file_block_size, append_file_rows, open_table

    files = [str(f) for f in files]
    classes = [str(c) for c in model.classes]
    header = [*Judgement("").as_record(classes), "file_size", "file_mtime_ns"]
    types = {"windows": "int64", "seconds": "float64",
             **{f"p_{c}": "float64" for c in classes}}
    table = open_table(path, header, types=types, resume=resume,
                       redo=lambda record: record["error"])
    todo = [f for f in files if not table.is_done(f)]
    report = FileJobReport(len(files), n_resumed=len(files) - len(todo))
    size = _per_file_block_size(block_size, client)
    results = (
        (j.file, j.error, list(j.as_record(classes).values()),
         None if callback is None else functools.partial(callback, j))
        for j in judge_file_blocks(model, todo, max_seconds=max_seconds, short=short,
                                   block_size=size, client=client, progress=progress))
    return append_file_rows(table, todo, results, report, rows_per_append=size)


def predict_files(model, files, output=None, *, fmt="csv", windows=False, resume=False,
                  callback=None, **kwargs):
    """Judge audio files and write the verdicts: ``specgenre predict`` as Python.

    Parameters
    ----------
    model : TrainedModel
    files : iterable of str or path-like
    output : str, path-like or file object, optional
        Where to write the verdicts (None: nowhere, for ``fmt="text"``).
        CSV or Parquet to a file is written as the files are judged
        (:func:`write_judgement_table`, resumable); otherwise the verdicts are
        written at the end (:func:`write_judgements`).
    fmt : {"csv", "json", "parquet", "text"}, default="csv"
        ``"text"``: nothing is written (``callback`` shows the verdicts).
        ``"parquet"``: ``output`` is a path ending in ``.parquet``.
    windows : bool, default=False
        JSON only: add each file's window genres.
    resume : bool, default=False
        Go on with the CSV file ``output`` (see :func:`write_judgement_table`).
    callback : callable, optional
        ``callback(judgement)`` for each file judged, in order.
    **kwargs
        ``max_seconds``, ``short``, ``block_size``, ``client``, ``progress`` of
        :func:`judge_file_blocks`.

    Returns
    -------
    report : ~specgenre.filejobs.FileJobReport
        ``n_rows``: verdicts in ``output``; ``skipped``: ``(file, error)`` of
        the files that could not be judged.

    Raises
    ------
    ~specgenre.filejobs.FileJobError
        ``resume`` without a CSV or Parquet file ``output``; ``fmt="parquet"``
        without an ``output`` path ending in ``.parquet``, or another ``fmt``
        with one.
    """
    from .filejobs import FileJobError, FileJobReport

    streamed = fmt in ("csv", "parquet") and isinstance(output, (str, os.PathLike))
    if (fmt == "parquet") != (streamed and os.fspath(output).lower().endswith(".parquet")):
        raise FileJobError(f"the format {fmt} does not go with the output {output}: Parquet "
                           "is written to a path ending in .parquet")
    if resume and not streamed:
        raise FileJobError("resuming needs a CSV or Parquet output (-o FILE.csv|.parquet)")
    if streamed:  # rows appended as files are judged
        return write_judgement_table(model, files, output, resume=resume, callback=callback,
                                     **kwargs)
    kwargs.pop("progress", None)
    results = []
    for j in judge_file_blocks(model, files, **kwargs):
        results.append(j)
        if callback is not None:
            callback(j)
    if fmt != "text":
        write_judgements(results, output, fmt=fmt, classes=model.classes, windows=windows)
    return FileJobReport(len(results), n_rows=len(results),
                         skipped=[(j.file, j.error) for j in results if j.error])
