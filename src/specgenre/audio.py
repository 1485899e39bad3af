"""Decoding audio files into fixed-length mono waveforms.

Three layers, from low to high:

* :func:`read_audio` decodes **one** file, whole, with every integrity check
  (unreadable, empty, truncated, NaN/inf samples) and optional mono mixing
  and resampling. It is :func:`librosa.load` with errors that name the file.
* :func:`load_audio` decodes **many** files into one float32 array of equal
  length rows (trimmed or padded), in parallel, and can *skip* bad files
  and report them: the entry point for batch jobs.
* :class:`AudioLoader` is the same thing as a scikit-learn transformer
  (file paths in, waveforms out) for use in a :class:`~sklearn.pipeline.Pipeline`.
  A transformer must return one row per input, so it cannot drop files:
  it always raises on a bad file.
"""

import numbers
import os
import re
from functools import partial
from typing import NamedTuple

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, TransformerMixin

from . import _memory
from ._parallel import chunk_slices, parallel_map
from ._validation import Interval, StrOptions, validate_call, validate_params

__all__ = ["AudioLoadError", "AudioBatch", "AudioLoader", "load_audio", "read_audio"]

#: ``np.pad`` modes accepted by ``pad_mode``.
PAD_MODES = ("constant", "edge", "wrap", "reflect", "symmetric")

#: Fraction of ``duration`` a file must last when ``min_duration="auto"``.
AUTO_MIN_FRACTION = 0.9

# libsndfile logs "data : 44100 (should be 22028)" when a header declares more
# audio bytes than the file holds (WAV/RF64/W64 "data", AU "Data Size",
# AIFF "SSND"); it then silently reads only what is there.
_SIZE_MISMATCH = re.compile(
    r"^\s*(?:data|Data Size|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE
)
# Sizes written by streaming encoders that did not know the length yet.
_PLACEHOLDER_SIZE = 0x7FFF0000
# libsndfile subtypes that store integers: their samples decode to finite floats,
# so the NaN/inf check (a pass over the samples) is skipped for them
_INTEGER_SUBTYPES = ("PCM_", "ALAC_", "ULAW", "ALAW")


class AudioLoadError(ValueError):
    """An audio file could not be turned into a valid waveform.

    Parameters
    ----------
    path : str or path-like
        The offending file.
    reason : str
        What is wrong with it.

    Attributes
    ----------
    path : str
        The offending file.
    reason : str
        What is wrong with it (the message without the path).
    """

    def __init__(self, path, reason):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep path/reason through pickling (joblib workers)
        return type(self), (self.path, self.reason)


class AudioBatch(NamedTuple):
    """What :func:`load_audio` returns.

    Attributes
    ----------
    X : ndarray of shape (n_loaded, n_samples), dtype float32
        One waveform per file that loaded, in input order.
    kept : ndarray of shape (n_files,), dtype bool
        ``kept[i]`` is True when file ``i`` is a row of ``X``; index labels
        with it (``y[kept]``) to keep them aligned with ``X``.
    errors : list of AudioLoadError
        One per skipped file, in input order; each has ``.path`` and ``.reason``.
    """

    X: np.ndarray
    kept: np.ndarray
    errors: list


def _check_truncation(sf_file, path):
    """Raise if the header promises more audio data than the file holds."""
    for declared, actual in _SIZE_MISMATCH.findall(sf_file.extra_info):
        declared, actual = int(declared), int(actual)
        if actual < declared < _PLACEHOLDER_SIZE:
            raise AudioLoadError(
                path,
                f"file is truncated: its header declares {declared} bytes of audio data "
                f"but only {actual} are present",
            )


def _decode(path, *, dtype="float32", head=None, out=None):
    """Decode ``path`` with soundfile; return ``(data (n, channels), native sr, direct)``.

    ``head=(sr, n)`` reads only the first ``n`` frames when the file's rate
    is ``sr`` (the rest would be trimmed anyway); otherwise the whole file.
    ``out`` (1-D, ``dtype``, ``n`` long) receives the samples when the file
    is mono at rate ``sr``: ``direct`` is then True and ``data`` a view of ``out``.
    """
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioLoadError(path, "no such file")
    if os.path.isdir(path):
        raise AudioLoadError(path, "is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioLoadError(path, "file is empty (0 bytes)")
    try:
        with sf.SoundFile(path) as f:
            n_declared, sr = f.frames, f.samplerate
            # integer codes (PCM, FLAC, ALAC, A/mu-law) scale to finite floats
            integer_coded = f.subtype.startswith(_INTEGER_SUBTYPES)
            _check_truncation(f, path)
            if n_declared == 0:
                raise AudioLoadError(path, "contains no audio frames")
            frames = head[1] if head is not None and head[0] == sr else -1
            direct = out is not None and frames >= 0 and f.channels == 1
            if direct:
                data = f.read(frames=frames, out=out)[:, None]
            else:
                data = f.read(frames=frames, dtype=dtype, always_2d=True)
    except AudioLoadError:
        raise
    except (sf.SoundFileError, RuntimeError, OSError, EOFError) as exc:
        # libsndfile's "Error opening '<path>': <why>": the error names the path already
        why = str(exc).replace(f"Error opening {str(path)!r}: ", "").rstrip(".")
        raise AudioLoadError(path, f"cannot be decoded ({why})") from exc
    expected = n_declared if frames < 0 else min(frames, n_declared)
    if len(data) < expected:
        raise AudioLoadError(
            path, f"file is truncated: decoded {len(data)} of the {expected} frames declared"
        )
    if len(data) == 0:
        raise AudioLoadError(path, "contains no audio frames")
    # a sum is finite iff every sample is (barring overflow: then count exactly)
    if data.dtype.kind == "f" and not integer_coded and not np.isfinite(data.sum()):
        bad = np.count_nonzero(~np.isfinite(data))
        if bad:
            raise AudioLoadError(path, f"contains {bad} non-finite samples (NaN or inf)")
    return data, sr, direct


def read_audio(path, *, sr=None, mono=True, dtype="float32"):
    """Decode one audio file, whole, with integrity checks.

    Behaves like ``librosa.load(path, sr=sr, mono=mono)`` (soundfile decode,
    mean of channels, soxr resampling) but every problem raises an
    :class:`AudioLoadError` naming the file: missing, unreadable or empty
    files, headers declaring more data than present (libsndfile would
    silently return the shorter signal), and NaN or inf samples.
    Silence is valid audio.

    Parameters
    ----------
    path : str or path-like
        WAV, FLAC, AU, OGG/Vorbis, AIFF, ... (anything libsndfile decodes).
    sr : int or None, default=None
        Resample to this rate (only when it differs from the file's);
        ``None`` keeps the file's rate.
    mono : bool, default=True
        Average the channels into one.
    dtype : {"float32", "float64", "int16", "int32"}, default="float32"
        Sample type. Integer types return the file's PCM samples unscaled
        and need ``sr=None`` and, for multi-channel files, ``mono=False``.

    Returns
    -------
    y : ndarray of shape (n_samples,) or (n_channels, n_samples)
        The waveform; floats are in [-1, 1) for PCM files. Mono (1-D) when
        ``mono=True``; otherwise channels first, like librosa.
    sr : int
        Its sample rate.

    Raises
    ------
    AudioLoadError
        The file is missing, cannot be decoded, is empty or truncated, or
        holds non-finite samples.

    Examples
    --------
    >>> from specgenre.audio import read_audio
    >>> y, sr = read_audio("blues.00000.flac")  # doctest: +SKIP
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64, np.int16, np.int32):
        raise ValueError(f"dtype must be float32, float64, int16 or int32; got {dtype}.")
    data, native_sr, _ = _decode(path, dtype=dtype.name)
    if dtype.kind == "i" and sr is not None and sr != native_sr:
        raise ValueError(f"resampling {os.fspath(path)!r} to sr={sr} needs a float dtype.")
    if mono:
        if data.shape[1] == 1:
            y = data[:, 0]
        elif dtype.kind == "i":
            raise ValueError(
                f"{os.fspath(path)!r} has {data.shape[1]} channels; mixing them to mono "
                "needs a float dtype (or pass mono=False)."
            )
        else:
            y = data.mean(axis=1, dtype=dtype)
    else:
        y = data.T
    y = np.ascontiguousarray(y)
    if sr is not None and sr != native_sr:
        y = resample(y, native_sr, sr)
        return y, int(sr)
    return y, int(native_sr)


def resample(y, orig_sr, target_sr):
    """``y`` from ``orig_sr`` to ``target_sr`` Hz as :func:`librosa.load` does it (soxr "HQ").

    Parameters
    ----------
    y : ndarray
        Waveform(s), time on the last axis; float32 stays float32.
    orig_sr, target_sr : int or float
        Sample rates, Hz.

    Returns
    -------
    y : ndarray
        ``y`` itself when the rates are equal.
    """
    if orig_sr == target_sr:
        return y
    import librosa

    return librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq")


def _mono_at(path, *, sr, n_samples=None, out=None):
    """Decode ``path`` to mono float32 at ``sr``; return ``(y, direct)``.

    ``direct`` is True when ``y`` was decoded straight into ``out[:len(y)]``.
    """
    head = None if n_samples is None else (sr, n_samples)
    data, native_sr, direct = _decode(path, dtype="float32", head=head, out=out)
    if direct:
        return data[:, 0], True
    y = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    if native_sr != sr:
        y = resample(np.ascontiguousarray(y), native_sr, sr)
    return y, False


def _check_min_length(path, length, sr, min_samples):
    if min_samples and length < min_samples:
        raise AudioLoadError(
            path,
            f"lasts {length / sr:.3f} s ({length} samples at sr={sr}), less than the "
            f"minimum of {min_samples / sr:.3f} s ({min_samples} samples); lower "
            "min_duration to pad it anyway",
        )


def _read_row(path, out, *, sr, min_samples, pad_mode):
    """Decode ``path`` into the row ``out``, trimmed at the tail or padded at the end."""
    n = len(out)
    y, direct = _mono_at(path, sr=sr, n_samples=n, out=out)
    length = len(y)
    _check_min_length(path, length, sr, min_samples)
    if not direct:
        length = min(length, n)
        out[:length] = y[:length]
    if length < n:
        if pad_mode == "constant":
            out[length:] = 0.0
        else:
            out[:] = np.pad(out[:length], (0, n - length), mode=pad_mode)


def _load_rows(paths, X, errors, rows, *, sr, min_samples, pad_mode, on_error, bar):
    """Decode ``paths[i]`` into ``X[i]`` for ``i`` in ``rows``; record failures in ``errors``."""
    for i in rows:
        try:
            _read_row(paths[i], X[i], sr=sr, min_samples=min_samples, pad_mode=pad_mode)
        except AudioLoadError as exc:
            if on_error == "raise":
                raise
            errors[i] = exc
        bar.update()


def _as_paths(paths, caller):
    """Turn a 1-D array-like (or a single column) of paths into a list of str."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{caller} expects a list or 1-D array of paths, got the single path "
            f"{paths!r}; wrap it in a list (or use specgenre.audio.read_audio for one file)."
        )
    if hasattr(paths, "to_numpy"):  # pandas Series / DataFrame
        paths = paths.to_numpy()
    arr = np.asarray(paths, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{caller} expects a 1-D array-like of file paths (or one column of them); "
            f"got an array of shape {arr.shape}."
        )
    out = []
    for i, p in enumerate(arr):
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(
                f"{caller} expects file paths (str or os.PathLike); element {i} is "
                f"{type(p).__name__} {p!r}."
            )
        out.append(os.fspath(p))
    return out


def _resolve_lengths(sr, duration, min_duration):
    n_samples = None if duration is None else int(round(sr * duration))
    if n_samples is not None and n_samples < 1:
        raise ValueError(f"duration={duration} at sr={sr} gives {n_samples} samples; need >= 1.")
    if isinstance(min_duration, str):  # "auto"
        min_seconds = 0.0 if duration is None else AUTO_MIN_FRACTION * duration
    else:
        min_seconds = float(min_duration)
        if duration is not None and min_seconds > duration:
            raise ValueError(
                f"min_duration={min_duration} is longer than duration={duration}."
            )
    return n_samples, int(np.ceil(sr * min_seconds - 1e-9))


_LOAD_PARAMS = {
    "sr": [Interval(numbers.Integral, 1, None, closed="left")],
    "duration": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "min_duration": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="left")],
    "pad_mode": [StrOptions(set(PAD_MODES))],
    "n_jobs": [numbers.Integral, None],
    "progress": ["boolean"],
}


def _load(paths, *, sr, duration, min_duration, pad_mode, on_error, n_jobs, progress):
    n_samples, min_samples = _resolve_lengths(sr, duration, min_duration)
    if n_samples is None:
        return _load_equal_lengths(paths, sr=sr, min_samples=min_samples, on_error=on_error,
                                   n_jobs=n_jobs, progress=progress)
    if not paths:
        return AudioBatch(np.empty((0, n_samples), np.float32), np.zeros(0, bool), [])
    # Files are decoded straight into their rows of one array (no per-file arrays,
    # no concatenation: the peak is the result itself), by threads when n_jobs > 1:
    # soundfile (cffi) and soxr release the GIL. The bar counts tracks.
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    X = _memory.empty((len(paths), n_samples), np.float32)
    errors = [None] * len(paths)
    workers = min(effective_n_jobs(n_jobs), len(paths))
    with tqdm(total=len(paths), desc="loading audio", unit="track", disable=not progress,
              leave=False) as bar:
        func = partial(_load_rows, paths, X, errors, sr=sr, min_samples=min_samples,
                       pad_mode=pad_mode, on_error=on_error, bar=bar)
        if workers == 1:
            func(range(len(paths)))
        else:
            blocks = [range(s.start, s.stop) for s in chunk_slices(len(paths), 4 * workers)]
            Parallel(n_jobs=workers, backend="threading")(delayed(func)(b) for b in blocks)
    kept = np.array([e is None for e in errors], dtype=bool)
    errors = [e for e in errors if e is not None]
    if errors:
        # move the kept rows up, in place: no second copy of the waveforms
        n_kept = 0
        for i in np.flatnonzero(kept):
            if i != n_kept:
                X[n_kept] = X[i]
            n_kept += 1
        X = X[:n_kept]
    return AudioBatch(X, kept, errors)


def _load_equal_lengths(paths, *, sr, min_samples, on_error, n_jobs, progress):
    """``duration=None``: decode whole files, which must all have the same length."""

    def one(path):
        try:
            y, _ = _mono_at(path, sr=sr)
            _check_min_length(path, len(y), sr, min_samples)
            return y
        except AudioLoadError as exc:
            if on_error == "raise":
                raise
            return exc

    results = parallel_map(one, paths, n_jobs=n_jobs, progress=progress,
                           desc="loading audio", prefer="threads")
    kept = np.array([not isinstance(r, AudioLoadError) for r in results], dtype=bool)
    errors = [r for r in results if isinstance(r, AudioLoadError)]
    waves = [(p, r) for p, r in zip(paths, results, strict=True)
             if not isinstance(r, AudioLoadError)]
    n_samples = len(waves[0][1]) if waves else 0
    for path, w in waves:
        if len(w) != n_samples:
            raise ValueError(
                f"duration=None needs files of equal length, but {waves[0][0]!r} has "
                f"{n_samples} samples and {path!r} has {len(w)} (at sr={sr}); set "
                "duration to trim or pad them."
            )
    X = _memory.empty((len(waves), n_samples), np.float32)
    for row, (_, w) in zip(X, waves, strict=True):
        row[:] = w
    return AudioBatch(X, kept, errors)


@validate_call(
    {"paths": "no_validation", **_LOAD_PARAMS, "on_error": [StrOptions({"raise", "skip"})]},
)
def load_audio(
    paths,
    *,
    sr=22050,
    duration=30.0,
    min_duration="auto",
    pad_mode="constant",
    on_error="raise",
    n_jobs=None,
    progress=False,
):
    """Decode audio files into equal-length mono float32 waveforms.

    Each file is decoded by :func:`read_audio` (soundfile; integrity checks),
    mixed to mono (mean of the channels), resampled with soxr when its rate
    is not ``sr``, then brought to ``round(sr * duration)`` samples:

    * longer files are **trimmed at the tail** (the first ``duration``
      seconds are kept);
    * shorter files are **padded at the end** (with zeros by default, see
      ``pad_mode``), provided they last at least ``min_duration``; shorter
      ones are errors, since a stub padded to ``duration`` would be mostly
      padding.

    Parameters
    ----------
    paths : array-like of str or path-like, shape (n_files,)
        Files to decode (a single column of a DataFrame is accepted too).
    sr : int, default=22050
        Sample rate of the output, in Hz.
    duration : float or None, default=30.0
        Length of the output rows in seconds. ``None`` keeps the decoded
        length and requires every file to have the same number of samples
        (after resampling); a ``ValueError`` names two files that differ.
    min_duration : float or "auto", default="auto"
        Files shorter than this many seconds (after resampling) are errors
        instead of being padded. ``"auto"`` is ``0.9 * duration`` (27 s for
        30 s clips: GTZAN's tracks last 29.93-30.65 s, so ordinary length
        jitter passes, while a stub or a badly cut file does not), or no
        minimum when ``duration=None``. ``0`` pads anything.
    pad_mode : {"constant", "edge", "wrap", "reflect", "symmetric"}, default="constant"
        How short files are padded at the end (:func:`numpy.pad` modes;
        ``"constant"`` pads zeros, ``"wrap"`` repeats the file from its start).
    on_error : {"raise", "skip"}, default="raise"
        ``"raise"``: the first bad file raises its :class:`AudioLoadError`.
        ``"skip"``: bad files are left out of ``X`` and listed in ``errors``.
    n_jobs : int or None, default=None
        Files decoded in parallel (threads; ``-1`` for all cores).
    progress : bool, default=False
        Show a tqdm progress bar.

    Returns
    -------
    batch : AudioBatch
        Named tuple ``(X, kept, errors)``: ``X`` float32 of shape
        ``(kept.sum(), n_samples)``, ``kept`` a boolean mask over ``paths``,
        ``errors`` the :class:`AudioLoadError` of every skipped file.

    Raises
    ------
    AudioLoadError
        With ``on_error="raise"``, for the first bad file (missing,
        undecodable, empty, truncated, non-finite samples, or shorter
        than ``min_duration``).

    See Also
    --------
    AudioLoader : the same as a scikit-learn transformer.
    read_audio : decode one file without trimming or padding.

    Examples
    --------
    >>> from specgenre import load_audio
    >>> X, kept, errors = load_audio(paths, on_error="skip")  # doctest: +SKIP
    >>> y = y[kept]  # doctest: +SKIP
    >>> for err in errors:  # doctest: +SKIP
    ...     print(err.path, err.reason)
    """
    paths = _as_paths(paths, "load_audio")
    return _load(
        paths,
        sr=sr,
        duration=duration,
        min_duration=min_duration,
        pad_mode=pad_mode,
        on_error=on_error,
        n_jobs=n_jobs,
        progress=progress,
    )


class AudioLoader(TransformerMixin, BaseEstimator):
    """Decode audio files into equal-length mono waveforms (paths in, float32 out).

    The transformer form of :func:`load_audio`: ``transform(paths)``
    returns a float32 array of shape ``(n_files, round(sr * duration))``,
    one row per path, in order. Files are decoded with soundfile, mixed to
    mono, resampled with soxr when their rate differs from ``sr``, trimmed
    at the tail or padded at the end. It is stateless: :meth:`fit` only
    checks the parameters.

    A transformer cannot drop rows, so any bad file raises an
    :class:`AudioLoadError` naming it. Batch jobs that must go on past bad
    files use :func:`load_audio` with ``on_error="skip"``.

    Parameters
    ----------
    sr : int, default=22050
        Sample rate of the output, in Hz.
    duration : float or None, default=30.0
        Length of the output rows in seconds; ``None`` keeps the decoded
        length and requires all files of a call to have the same length.
    min_duration : float or "auto", default="auto"
        Files shorter than this (in seconds) are errors instead of being
        padded; ``"auto"`` means ``0.9 * duration`` (no minimum when
        ``duration=None``). See :func:`load_audio`.
    pad_mode : {"constant", "edge", "wrap", "reflect", "symmetric"}, default="constant"
        How short files are padded at the end; ``"constant"`` pads zeros.
    n_jobs : int or None, default=None
        Files decoded in parallel (threads).
    progress : bool, default=False
        Show a tqdm progress bar.

    Attributes
    ----------
    n_samples_ : int or None
        Samples per output row, ``round(sr * duration)`` (None when
        ``duration=None``).

    See Also
    --------
    load_audio : the function form, which can skip bad files.
    ClipSegmenter : cuts the waveforms into segments.

    Examples
    --------
    >>> from specgenre import AudioLoader
    >>> X = AudioLoader(duration=30.0).fit_transform(paths)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (len(paths), 661500)
    """

    _constraints = dict(_LOAD_PARAMS)

    def __init__(
        self,
        *,
        sr=22050,
        duration=30.0,
        min_duration="auto",
        pad_mode="constant",
        n_jobs=None,
        progress=False,
    ):
        self.sr = sr
        self.duration = duration
        self.min_duration = min_duration
        self.pad_mode = pad_mode
        self.n_jobs = n_jobs
        self.progress = progress

    def _check_params(self):
        validate_params(self)
        return _resolve_lengths(self.sr, self.duration, self.min_duration)

    def fit(self, X, y=None):
        """Check the parameters and that ``X`` is a list of paths (no file is read).

        Parameters
        ----------
        X : array-like of str or path-like, shape (n_files,)
            Audio files.
        y : ignored

        Returns
        -------
        self : AudioLoader
        """
        n_samples, _ = self._check_params()
        _as_paths(X, type(self).__name__)
        self.n_samples_ = n_samples
        return self

    def transform(self, X):
        """Decode the files.

        Parameters
        ----------
        X : array-like of str or path-like, shape (n_files,)
            Audio files.

        Returns
        -------
        waveforms : ndarray of shape (n_files, n_samples), dtype float32

        Raises
        ------
        AudioLoadError
            For the first file that cannot be loaded.
        """
        self._check_params()
        paths = _as_paths(X, type(self).__name__)
        return _load(
            paths,
            sr=self.sr,
            duration=self.duration,
            min_duration=self.min_duration,
            pad_mode=self.pad_mode,
            on_error="raise",
            n_jobs=self.n_jobs,
            progress=self.progress,
        ).X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # input is a 1-D list of file paths, not a numeric matrix
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = False  # stateless: transform works unfitted
        tags.transformer_tags.preserves_dtype = []
        return tags

