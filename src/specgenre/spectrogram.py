"""dB-scaled STFT and mel spectrograms of waveform batches, equal to librosa's."""

import numbers
from functools import lru_cache, partial

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _memory
from ._parallel import chunk_slices, parallel_map
from ._spectrogram_input import check_spectrograms
from ._torchutil import torch_threads
from ._validation import Interval, StrOptions, validate_params

__all__ = ["BandStatistics", "SpectrogramTransformer"]

# librosa's amin: amplitude_to_db uses 1e-5 on magnitudes (1e-10 on power),
# power_to_db 1e-10 on power; both scales clamp power at this value.
_AMIN_POWER = 1e-10
# frames per FFT call: whole rows are batched up to this many frames (3 rows of
# 130 frames for 3 s segments: faster than 1 or 5-7 rows per call for both scales,
# benchmarks/bench_spectrogram.py), longer rows are cut into blocks of frames;
# at most _FFT_MAX_BYTES of windowed frames per call, for large n_fft
_FFT_FRAMES = 400
_FFT_MAX_BYTES = 1 << 23
# most rows per parallel task (when n_jobs > 1 or progress=True)
_ROWS_PER_TASK = 256
# mel filters per dense band of the filterbank (see _mel_bands)
_MEL_GROUP = 8


@lru_cache(maxsize=32)
def _window(n_fft, dtype):
    """Periodic Hann window, as ``librosa.filters.get_window("hann", n_fft)``."""
    from scipy.signal import get_window

    w = get_window("hann", n_fft, fftbins=True).astype(dtype)
    w.setflags(write=False)
    return w


@lru_cache(maxsize=32)
def _mel_bands(sr, n_fft, n_mels):
    """librosa's mel filterbank, cut into dense bands of ``_MEL_GROUP`` filters.

    Each mel filter is non-zero over a few neighbouring FFT bins only, so
    the ``(n_mels, n_bins)`` matrix is mostly zeros. Consecutive filters are
    grouped and each group is multiplied with just the bins it covers:
    the same products and sums as the full matrix product (the skipped
    terms are exact zeros), with ~14x fewer operations for 128 mels and
    2048-point FFTs.

    Returns a tuple of ``(m0, m1, lo, hi, W)``: filters ``m0:m1`` use bins
    ``lo:hi`` with weights ``W`` of shape ``(m1 - m0, hi - lo)``, float32.
    Groups whose filters are all empty (``n_mels`` too large for ``n_fft``)
    are left out: their rows of the output are zeros.
    """
    import librosa

    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, dtype=np.float32)
    bands = []
    for m0 in range(0, n_mels, _MEL_GROUP):
        m1 = min(m0 + _MEL_GROUP, n_mels)
        nz = np.flatnonzero(fb[m0:m1].any(axis=0))
        if len(nz) == 0:  # empty filters (n_mels too large for n_fft): zeros
            continue
        lo, hi = int(nz[0]), int(nz[-1]) + 1
        W = np.ascontiguousarray(fb[m0:m1, lo:hi])
        W.setflags(write=False)
        bands.append((m0, m1, lo, hi, W))
    return tuple(bands)


def _n_frames(n_samples, n_fft, hop_length):
    # librosa.stft with center=True pads n_fft // 2 samples on both sides
    return 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop_length


def _to_db(S, ref, top_db):
    """``librosa.power_to_db(S[k], ref=ref[k], amin=1e-10, top_db=top_db)`` for each image, in place.

    ``S`` is a stack ``(k, freq, frames)`` of power images, ``ref`` their
    reference powers (``(k,)``).
    """
    # same dtype as librosa's arithmetic: silence (ref clamped to amin, like
    # every bin) gives exactly 0 dB
    amin = S.dtype.type(_AMIN_POWER)
    np.maximum(S, amin, out=S)
    np.log10(S, out=S)
    S *= 10.0
    S -= (10.0 * np.log10(np.maximum(ref.astype(S.dtype), amin)))[:, None, None]
    if top_db is not None:
        np.maximum(S, (S.max(axis=(1, 2)) - top_db)[:, None, None], out=S)
    return S


def _buffers(rows, n, n_fft, hop_length, n_frames, chunk, fft_dtype, power_dtype):
    """Work arrays of :func:`_power_images` for up to ``rows`` rows of ``n`` samples.

    Returns ``(xp, frames, block, power)``: ``xp`` the rows with their centre
    padding (zeros, kept between calls), ``frames`` a strided view of its
    frames (a torch tensor), ``block`` the windowed frames of one FFT call
    (a torch tensor) and ``power`` the power spectra of whole rows.
    """
    import torch

    xp = np.zeros((rows, n + 2 * (n_fft // 2)), dtype=np.float32)
    frames = torch.from_numpy(xp).unfold(1, n_fft, hop_length)
    block = torch.from_numpy(np.empty((rows, chunk, n_fft), dtype=fft_dtype))
    power = np.empty((rows, n_frames, n_fft // 2 + 1), dtype=power_dtype)
    return xp, frames, block, power


def _power_images(S, X, win, chunk, bands, bufs):
    """Fill ``S`` (rows, freq, frames) with the power (or mel power) spectrograms of ``X``.

    ``X`` holds the rows (rows, n). ``win`` is the window, a torch tensor of
    the FFT's dtype. ``bands`` are the mel bands of :func:`_mel_bands`, or
    None for the STFT power. ``bufs`` are the :func:`_buffers` for at least
    ``len(X)`` rows, ``chunk`` frames per FFT call (all frames of a row when
    rows are batched).

    The FFT is torch's (MKL where torch has it), in the precision of
    ``win``, one call for all frames of the batch of rows: per frame 1.2-1.5x
    faster than scipy's pocketfft for float32 frames
    (``benchmarks/bench_spectrogram.py``); the caller sets torch's threads.
    The frames are windowed by torch too (~1.5x faster than numpy's multiply
    of the same strided view, the same products). The results do not depend on the
    batching (each frame is transformed on its own;
    ``tests/test_spectrogram.py`` checks this).
    """
    import torch

    r, n = X.shape
    pad = len(win) // 2
    n_frames = S.shape[-1]
    xp, frames, block, power = bufs
    xp[:r, pad : pad + n] = X  # the padding stays zero
    for j in range(0, n_frames, chunk):
        c = min(chunk, n_frames - j)
        blk = block[:r, :c]
        torch.mul(frames[:r, j : j + c], win, out=blk)
        spec = torch.fft.rfft(blk, dim=-1).numpy()
        # |X| then squared, as librosa (numpy's complex abs is ~10x torch's here,
        # and ~1.5x faster on contiguous spectra than on transposed ones)
        np.abs(spec, out=power[:r, j : j + c], casting="same_kind")
    power = power[:r]
    np.square(power, out=power)
    if bands is None:  # "db": the STFT power itself
        S[...] = power.transpose(0, 2, 1)
        return
    if sum(m1 - m0 for m0, m1, *_ in bands) < S.shape[1]:
        S[...] = 0.0  # filters left out of the bands are empty
    for m0, m1, lo, hi, W in bands:
        np.matmul(W, power[:, :, lo:hi].transpose(0, 2, 1), out=S[:, m0:m1])


def _spectrogram_block(X, *, scale, sr, n_fft, hop_length, n_mels, top_db, fft_dtype):
    """Spectrograms of the rows of ``X`` (float32, 2-D): float32 (n, 1, freq, frames).

    Rows are transformed in batches (their frames in one FFT call), but
    every row has its own reference maximum and every frame is transformed
    on its own, so results do not depend on how rows are batched.
    """
    import torch

    m, n = X.shape
    n_bins = n_fft // 2 + 1
    n_frames = _n_frames(n, n_fft, hop_length)
    fft_dtype = np.dtype(fft_dtype)
    win = torch.tensor(_window(n_fft, fft_dtype.type))
    per_call = max(1, min(_FFT_FRAMES, _FFT_MAX_BYTES // (n_fft * fft_dtype.itemsize)))
    rows = max(1, min(m, per_call // n_frames))  # rows per FFT call
    chunk = min(n_frames, per_call)  # frames per FFT call: whole rows when rows > 1
    bands = _mel_bands(sr, n_fft, n_mels) if scale == "mel" else None
    n_out = n_bins if scale == "db" else n_mels

    out = _memory.empty((m, 1, n_out, n_frames), np.float32)
    bufs = _buffers(rows, n, n_fft, hop_length, n_frames, chunk, fft_dtype, np.float32)
    for i in range(0, m, rows):
        S = out[i : i + rows, 0]
        with np.errstate(over="ignore", invalid="ignore"):
            _power_images(S, X[i : i + rows], win, chunk, bands, bufs)
            ref = S.max(axis=(1, 2))
            _to_db(S, ref, top_db)
        for k in np.flatnonzero(~np.isfinite(ref)):
            # |X|^2 overflowed float32 (samples beyond ~1e15): redo this row
            # in float64, which holds any spectrum of float32 input
            S64 = np.empty((1,) + S.shape[1:], dtype=np.float64)
            _power_images(S64, X[i + k : i + k + 1], torch.tensor(_window(n_fft, np.float64)),
                          chunk, bands,
                          _buffers(1, n, n_fft, hop_length, n_frames, chunk, np.float64,
                                   np.float64))
            S[k] = _to_db(S64, S64.max(axis=(1, 2)), top_db)[0]
    return out


class SpectrogramTransformer(TransformerMixin, BaseEstimator):
    """dB-scaled STFT or mel spectrograms of waveforms, as images for CNNs.

    Turns waveforms of shape ``(n, n_samples)`` into float32 images of
    shape ``(n, 1, n_freqs, n_frames)``. Each row is transformed on its own,
    so the input may be whole clips or segments (e.g. from
    :class:`ClipSegmenter`). The two scales are the study's:

    * ``"db"``: ``librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=1024,
      hop_length=512)), ref=np.max)``: Hann window, centred frames padded
      with zeros (librosa's defaults), ``n_fft // 2 + 1`` frequency rows;
    * ``"mel"``: ``librosa.power_to_db(librosa.feature.melspectrogram(y=y,
      sr=sr, n_fft=2048, hop_length=512, n_mels=128), ref=np.max)``.

    Each image is scaled to its own maximum (``ref=np.max`` per row: the
    loudest bin is 0 dB) and floored at ``-top_db``, so values lie in
    ``[-top_db, 0]``. A silent row (all zeros) gives an image of zeros
    (every bin equals the clamped maximum), like librosa. The output is
    finite for any finite input (librosa's float32 arithmetic overflows to
    NaN for samples beyond ~1e15; such rows are redone in float64 here).

    The result equals librosa's functions applied to each row to within
    0.01 dB with the default float32 FFT, and to within 1e-3 dB with
    ``fft_dtype="float64"`` (see that parameter). It is computed batched:
    windows and mel filterbanks are cached, the frames of several rows are
    windowed and transformed in one call (torch's FFT, MKL where available;
    long rows in blocks of frames), and the mel projection only multiplies
    the non-zero band of each filter.

    Parameters
    ----------
    scale : {"mel", "db"}, default="mel"
        ``"mel"`` for dB-scaled mel power spectrograms, ``"db"`` for the
        dB-scaled STFT magnitude.
    sr : int, default=22050
        Sample rate of the waveforms, in Hz (used by the mel filterbank).
    n_fft : int or None, default=None
        FFT size (window length). ``None`` means 1024 for ``"db"`` and
        2048 for ``"mel"``, the study's choices.
    hop_length : int, default=512
        Samples between the starts of consecutive frames.
    n_mels : int, default=128
        Mel bands (``"mel"`` only).
    top_db : float or None, default=80.0
        Floor of the output, in dB below each image's maximum (librosa's
        default). ``None`` keeps the full range down to the ``amin`` clamp
        (power 1e-10).
    fft_dtype : {"float32", "float64"}, default="float32"
        Precision of the FFT. ``"float32"`` computes the spectrograms
        ~2x faster (CPU time of the 3 s images of the 51 GTZAN dev tracks,
        ``benchmarks/bench_spectrogram.py``: 6.1-6.4 against 12.6-13.4 ms
        per track for ``"mel"``, 4.9-5.1 against 8.2-12.1 ms for ``"db"``);
        its round-off (~1e-8 of each frame's energy)
        shows only in bins near the ``-top_db`` floor: on the 510 3 s
        segments of the 51 GTZAN dev tracks the largest difference to
        librosa is 3.9e-3 dB for ``"db"`` and 4.5e-4 dB for ``"mel"``, within
        0.01 dB. ``"float64"`` is what librosa computes (1.5e-5 dB there).
    dtype : {"float32", "float16"}, default="float32"
        dtype of the output. ``"float16"`` halves the memory of stored
        spectrograms (a 3 s dB image is 513 x 130 values: 267 kB in float32,
        so the ten segments of 1000 clips take 2.7 GB, 1.3 GB in float16) at
        a rounding error of at most 0.031 dB on values in ``[-64, 0]`` dB and
        0.063 dB below (float16's spacing there). The spectrogram
        classifiers take float16 as it is and compute in float32.
    n_jobs : int or None, default=None
        Row blocks transformed in parallel (threads).
    progress : bool, default=False
        Show a tqdm progress bar.

    Attributes
    ----------
    n_features_in_ : int
        Samples per waveform seen in :meth:`fit`.
    n_fft_ : int
        FFT size used.
    n_freqs_ : int
        Frequency rows of the output: ``n_fft_ // 2 + 1`` or ``n_mels``.
    n_frames_ : int
        Time frames of the output: ``1 + (n_samples + 2 * (n_fft_ // 2) - n_fft_) //
        hop_length``, i.e. ``1 + n_samples // hop_length`` for even ``n_fft``.

    See Also
    --------
    ClipSegmenter : cuts clips into the segments this transformer renders.
    librosa.stft, librosa.feature.melspectrogram, librosa.amplitude_to_db

    Notes
    -----
    The output is 4-D, so there are no output feature names
    (``get_feature_names_out`` is not defined and ``set_output`` is not
    available). Input is cast to float32.

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre import SpectrogramTransformer
    >>> t = np.arange(3 * 22050) / 22050
    >>> X = np.sin(2 * np.pi * 440 * t)[None, :].astype(np.float32)
    >>> S = SpectrogramTransformer("mel").fit_transform(X)
    >>> S.shape, S.dtype, float(S.max()), float(S.min())
    ((1, 1, 128, 130), dtype('float32'), 0.0, -80.0)
    """

    _per_sample_output = True  # one output per sample, nothing learned: see _cache

    _constraints = {
        "scale": [StrOptions({"db", "mel"})],
        "sr": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_fft": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "hop_length": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_mels": [Interval(numbers.Integral, 1, None, closed="left")],
        "top_db": [Interval(numbers.Real, 0, None, closed="left"), None],
        "n_jobs": [numbers.Integral, None],
        "fft_dtype": [StrOptions({"float64", "float32"})],
        "dtype": [StrOptions({"float32", "float16"})],
        "progress": ["boolean"],
    }

    def __init__(
        self,
        scale="mel",
        *,
        sr=22050,
        n_fft=None,
        hop_length=512,
        n_mels=128,
        top_db=80.0,
        fft_dtype="float32",
        dtype="float32",
        n_jobs=None,
        progress=False,
    ):
        self.scale = scale
        self.sr = sr
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.top_db = top_db
        self.fft_dtype = fft_dtype
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.progress = progress

    def _resolved_n_fft(self):
        if self.n_fft is not None:
            return int(self.n_fft)
        return 1024 if self.scale == "db" else 2048

    def output_shape(self, n_samples):
        """Shape ``(1, n_freqs, n_frames)`` of one image for waveforms of ``n_samples``.

        Parameters
        ----------
        n_samples : int
            Samples per waveform.

        Returns
        -------
        shape : tuple of int
        """
        n_fft = self._resolved_n_fft()
        n_freqs = n_fft // 2 + 1 if self.scale == "db" else int(self.n_mels)
        return (1, n_freqs, _n_frames(int(n_samples), n_fft, int(self.hop_length)))

    def fit(self, X, y=None):
        """Check the parameters and record the waveform length.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms.
        y : ignored

        Returns
        -------
        self : SpectrogramTransformer
        """
        self._fit(X)
        return self

    def _fit(self, X):
        validate_params(self)
        X = validate_data(self, X, dtype=np.float32, ensure_all_finite=True)
        self.n_fft_ = self._resolved_n_fft()
        _, self.n_freqs_, self.n_frames_ = self.output_shape(X.shape[1])
        return X

    def fit_transform(self, X, y=None):
        """Fit to the waveforms and return their spectrograms (``X`` is checked once).

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms; finite values.
        y : ignored

        Returns
        -------
        S : ndarray of shape (n_clips, 1, n_freqs_, n_frames_)
            As :meth:`transform` returns.
        """
        return self._transform(self._fit(X))

    def transform(self, X):
        """Compute one spectrogram per waveform.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms with as many samples as in :meth:`fit`; finite values.

        Returns
        -------
        S : ndarray of shape (n_clips, 1, n_freqs_, n_frames_)
            Of ``dtype`` (float32 by default): dB values in ``[-top_db, 0]``, 0 at each image's maximum.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, ensure_all_finite=True, reset=False)
        return self._transform(X)

    def _transform(self, X):
        func = partial(
            _spectrogram_block,
            scale=self.scale,
            sr=int(self.sr),
            n_fft=self.n_fft_,
            hop_length=int(self.hop_length),
            n_mels=int(self.n_mels),
            top_db=None if self.top_db is None else float(self.top_db),
            fft_dtype=self.fft_dtype,
        )
        workers = effective_n_jobs(self.n_jobs)
        n_chunks = 1
        if workers > 1 or self.progress:  # blocks for every worker and a moving bar
            n_chunks = max(4 * workers, -(-len(X) // _ROWS_PER_TASK))
        slices = chunk_slices(len(X), n_chunks)
        # torch's FFT, numpy and BLAS release the GIL: threads share X and the result,
        # each block on one torch thread (n_jobs threads in all)
        with torch_threads(1):
            parts = parallel_map(func, [X[s] for s in slices], n_jobs=self.n_jobs,
                                 progress=self.progress, desc="spectrograms", prefer="threads")
        if len(parts) == 1 and self.dtype == "float32":
            return parts[0]
        # one result, filled and converted part by part (no float32 copy of the whole)
        out = _memory.empty((len(X),) + parts[0].shape[1:], self.dtype)
        for s, part in zip(slices, parts, strict=True):
            out[s] = part
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags



_BAND_STATS = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}


class BandStatistics(TransformerMixin, BaseEstimator):
    """Statistics over time of every frequency band of spectrograms: a flat feature table.

    Turns spectrograms ``(n, channels, freq, frames)`` (as made by
    :class:`SpectrogramTransformer`) into a 2-D table of
    ``channels * freq * len(stats)`` columns: for every band, its mean
    (and, as asked, standard deviation, minimum, maximum) over the frames.
    A quick baseline ahead of a linear model or gradient boosting, and a
    picklable replacement for ``FunctionTransformer(lambda S: ...)``
    (lambdas cannot be pickled, so a pipeline holding one cannot be saved).

    Parameters
    ----------
    stats : tuple of {"mean", "std", "min", "max"}, default=("mean",)
        Statistics per band, in this order for each band.

    Attributes
    ----------
    n_features_in_ : int
        Values per input sample (``channels * freq * frames``).
    input_shape_ : tuple of int
        ``(channels, freq, frames)`` of the spectrograms seen in :meth:`fit`
        (2-D input ``(n, frames)`` is one band: ``(1, 1, frames)``).
    feature_names_in_ : ndarray of str
        Column names, when fitted on a 2-D DataFrame.

    See Also
    --------
    SpectrogramTransformer : Waveforms to the spectrograms this summarises.

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre import BandStatistics
    >>> S = np.arange(24, dtype=np.float32).reshape(2, 1, 3, 4)  # 2 images, 3 bands
    >>> BandStatistics(stats=("mean", "max")).fit_transform(S)
    array([[ 1.5,  3. ,  5.5,  7. ,  9.5, 11. ],
           [13.5, 15. , 17.5, 19. , 21.5, 23. ]], dtype=float32)
    """

    _constraints = {"stats": [tuple, list]}

    def __init__(self, stats=("mean",)):
        self.stats = stats

    def _check_stats(self):
        stats = list(self.stats)
        unknown = [s for s in stats if s not in _BAND_STATS]
        if not stats or unknown:
            raise ValueError(
                f"stats must be a non-empty sequence of {sorted(_BAND_STATS)}; got "
                f"{self.stats!r}.")
        return stats

    def _validate(self, X, reset):
        return check_spectrograms(self, X, reset=reset, dtype=[np.float32, np.float64])

    def fit(self, X, y=None):
        """Check the parameters and record the spectrogram shape.

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, freq, frames)
            Spectrograms; 3-D input is one channel, 2-D input one band.
        y : ignored

        Returns
        -------
        self : BandStatistics
        """
        validate_params(self)
        self._check_stats()
        self._validate(X, reset=True)
        return self

    def transform(self, X):
        """Statistics of every band over the frames.

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, freq, frames)
            Spectrograms shaped like those seen in :meth:`fit`.

        Returns
        -------
        features : ndarray of shape (n_samples, channels * freq * len(stats))
            For each channel and band (channel-major), its statistics in the
            order of ``stats``; float32 for float32 input, else float64.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        columns = [_BAND_STATS[s](X, axis=-1) for s in self._check_stats()]
        return np.stack(columns, axis=-1).reshape(len(X), -1)

    def get_feature_names_out(self, input_features=None):
        """Column names: ``band{f}_{stat}`` (``ch{c}_band{f}_{stat}`` for several channels).

        Parameters
        ----------
        input_features : ignored
            Present for API consistency.

        Returns
        -------
        names : ndarray of str objects
        """
        check_is_fitted(self)
        channels, freq, _ = self.input_shape_
        prefix = (lambda c: f"ch{c}_") if channels > 1 else (lambda c: "")
        return np.asarray([f"{prefix(c)}band{f}_{stat}" for c in range(channels)
                           for f in range(freq) for stat in self._check_stats()], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32", "float64"]
        return tags
