"""numba kernels for :mod:`specgenre.features`: librosa's arithmetic in one pass.

Each kernel performs the same floating-point operations, in the same order
and precision, as the librosa (0.10-0.11) code it replaces, so the results
are equal to librosa's (to the last bit in practice, barring the sign of
zeros), but without the dozen full-size temporaries numpy needs:

* :func:`spectral_stats` -- ``spectral_centroid``, ``spectral_bandwidth``
  (its default ``p=2``, ``norm=True``) and ``spectral_rolloff`` (its default
  ``roll_percent=0.85``) of a magnitude spectrogram;
* :func:`zero_crossing_rate` -- ``librosa.feature.zero_crossing_rate(y)``
  with its defaults (frames of 2048, hop 512, centred with edge padding,
  threshold 1e-10, zero counted as positive);
* :func:`hpss_spectra` -- the soft masks of ``librosa.decompose.hpss``
  (power 2, margin 1) applied to a complex STFT, given the two median
  filtered magnitudes.

The kernels take float32 data (complex64 STFTs), the precision of
librosa's features of float32 audio. They are compiled on first use and cached on disk (``cache=True``).
"""

import functools

import numba
import numpy as np

__all__ = ["spectral_stats", "zero_crossing_rate", "hpss_spectra", "istft"]


def _as_float32(a, name):
    # the kernels replicate float32 arithmetic (librosa's on float32 audio)
    a = np.asarray(a)
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be float32; got {a.dtype}.")
    return np.ascontiguousarray(a)


@numba.njit(cache=True, nogil=True)
def _spectral_stats(ST, freq, tiny, roll_percent, centroid, bandwidth, rolloff):  # pragma: no cover
    n_frames, n_bins = ST.shape
    for t in range(n_frames):
        s_t = ST[t]
        # L1 norm (util.normalize sums |S| in float64) and total energy of
        # spectral_rolloff's cumulative sum (in float32)
        length = 0.0
        total = np.float32(0.0)
        for f in range(n_bins):
            length += np.float64(abs(s_t[f]))
            total += s_t[f]
        if length < tiny:
            length = 1.0
        threshold = roll_percent * total
        # centroid = sum(freq * S / |S|_1); roll-off = first frequency whose
        # cumulative energy reaches roll_percent of the total
        c = 0.0
        cum = np.float32(0.0)
        roll = 0.0
        found = False
        for f in range(n_bins):
            s = s_t[f]
            c += freq[f] * np.float64(np.float32(np.float64(s) / length))
            cum += s
            if not found and cum >= threshold:
                found = True
                roll = freq[f]
        # bandwidth = sqrt(sum(S / |S|_1 * (freq - centroid) ** 2))
        acc = 0.0
        for f in range(n_bins):
            dev = abs(c - freq[f])
            acc += np.float64(np.float32(np.float64(s_t[f]) / length)) * (dev * dev)
        centroid[t] = c
        rolloff[t] = roll
        bandwidth[t] = np.sqrt(acc)


def spectral_stats(S, freq, roll_percent=0.85):
    """Spectral centroid, bandwidth and roll-off of every frame, as librosa.

    Parameters
    ----------
    S : ndarray of shape (n_bins, n_frames), float32
        Magnitude spectrogram (non-negative, finite); fastest when
        F-ordered, as ``np.abs(librosa.stft(y))`` is.
    freq : ndarray of shape (n_bins,), float64
        Centre frequency of every bin (``librosa.fft_frequencies``).
    roll_percent : float, default=0.85
        Roll-off percentage.

    Returns
    -------
    centroid, bandwidth, rolloff : ndarrays of shape (1, n_frames), float64
        ``librosa.feature.spectral_centroid(S=S)``,
        ``spectral_bandwidth(S=S)`` and ``spectral_rolloff(S=S)``. The roll-off
        is exact; numpy sums the L1 norms and centroids pairwise, this kernel
        sequentially, so centroid and bandwidth may differ by a few ulps.
    """
    ST = _as_float32(np.asarray(S).T, "S")
    n_frames = ST.shape[0]
    out = np.empty((3, 1, n_frames), dtype=np.float64)
    tiny = float(np.finfo(np.float32).tiny)
    _spectral_stats(ST, np.ascontiguousarray(freq, dtype=np.float64), tiny,
                    np.float32(roll_percent), out[0, 0], out[1, 0], out[2, 0])
    return out[0], out[1], out[2]


@numba.njit(cache=True, nogil=True)
def _zcr_counts(y, frame_length, hop_length, threshold, counts):  # pragma: no cover
    n = y.shape[0]
    pad = frame_length // 2
    n_padded = n + 2 * pad
    # crossings[p] (p >= 1): sign change between padded samples p - 1 and p,
    # accumulated: cum[p] = sum of crossings[1..p]
    cum = np.zeros(n_padded, dtype=np.int64)
    prev = False
    for p in range(n_padded):
        i = min(max(p - pad, 0), n - 1)  # np.pad(mode="edge")
        x = np.float64(y[i])
        neg = False
        if not (-threshold <= x <= threshold):
            neg = np.signbit(x)
        if p > 0:
            cum[p] = cum[p - 1] + (1 if neg != prev else 0)
        prev = neg
    for j in range(counts.shape[0]):
        start = j * hop_length
        # the first sample of every frame is not a crossing (pad=False)
        counts[j] = cum[start + frame_length - 1] - cum[start]


def zero_crossing_rate(y, frame_length=2048, hop_length=512, threshold=1e-10):
    """``librosa.feature.zero_crossing_rate(y)`` with librosa's defaults.

    Parameters
    ----------
    y : ndarray of shape (n_samples,), float32
        Waveform, at least one sample.
    frame_length, hop_length : int
        Frame geometry (centred frames, edge padding).
    threshold : float
        Samples with ``|y| <= threshold`` count as zero (positive).

    Returns
    -------
    zcr : ndarray of shape (1, n_frames), float64
        Fraction of sign changes in every frame.
    """
    y = _as_float32(y, "y")
    n_frames = 1 + len(y) // hop_length
    counts = np.empty(n_frames, dtype=np.int64)
    _zcr_counts(y, int(frame_length), int(hop_length), float(threshold), counts)
    return (counts / float(frame_length))[None, :]


@numba.njit(cache=True, nogil=True)
def _hpss_spectra(D, S, harm, perc, tiny, out_harm, out_perc):  # pragma: no cover
    # D, out_*: float32 views (..., 2 * n) of complex arrays (re, im interleaved)
    n_rows, n = S.shape
    one = np.float32(1.0)
    zero = np.float32(0.0)
    half = np.float32(0.5)
    for r in range(n_rows):
        for k in range(n):
            s = S[r, k]
            # librosa.magphase: phase = D / |D|, with 1 where |D| == 0
            z = one if s == zero else zero
            mag_nonzero = s + z
            phase_re = D[r, 2 * k] / mag_nonzero + z
            phase_im = D[r, 2 * k + 1] / mag_nonzero
            # librosa.util.softmask(X, X_ref, power=2, split_zeros=True)
            h = harm[r, k]
            p = perc[r, k]
            big = h if h >= p else p
            bad = big < tiny
            big = one if bad else big
            a = h / big
            a = a * a
            b = p / big
            b = b * b
            mask_h = half if bad else a / (a + b)
            mask_p = half if bad else b / (b + a)
            # (S * mask) * phase
            mh = s * mask_h
            mp = s * mask_p
            out_harm[r, 2 * k] = mh * phase_re
            out_harm[r, 2 * k + 1] = mh * phase_im
            out_perc[r, 2 * k] = mp * phase_re
            out_perc[r, 2 * k + 1] = mp * phase_im


def hpss_spectra(D, S, harm, perc):
    """Harmonic and percussive STFTs of ``librosa.decompose.hpss(D)``.

    Parameters
    ----------
    D : ndarray of shape (n_bins, n_frames), complex64
        STFT, C- or F-ordered (``librosa.stft`` gives F order).
    S : ndarray, same shape and memory order, float32
        ``np.abs(D)``.
    harm, perc : ndarrays, same shape and memory order, float32
        ``S`` median filtered along time and along frequency.

    Returns
    -------
    D_harm, D_perc : ndarrays like ``D``
        ``(S * mask_harm) * phase`` and ``(S * mask_perc) * phase`` with
        librosa's soft masks (power 2, margins 1).
    """
    if D.dtype != np.complex64:
        raise TypeError(f"D must be complex64; got {D.dtype}.")
    # work on the C-ordered views: (frames, bins) for F-ordered input
    flip = not D.flags.c_contiguous
    views = [a.T if flip else a for a in (D, S, harm, perc)]
    Dv, S, harm, perc = ([np.ascontiguousarray(views[0])]
                         + [_as_float32(a, name) for a, name in
                            zip(views[1:], ("S", "harm", "perc"))])
    out_harm = np.empty_like(Dv)
    out_perc = np.empty_like(Dv)
    tiny = np.float32(np.finfo(np.float32).tiny)
    _hpss_spectra(Dv.view(np.float32), S, harm, perc, tiny,
                  out_harm.view(np.float32), out_perc.view(np.float32))
    if flip:
        return out_harm.T, out_perc.T
    return out_harm, out_perc


@numba.njit(cache=True, nogil=True)
def _overlap_add(frames, window, hop_length, offset, y):  # pragma: no cover
    # frames: (n_frames, n_fft) float32 time frames; frame j starts at sample
    # j * hop_length - offset of y. librosa adds the float64 windowed frames
    # into the float32 signal one frame after the other, in frame order.
    n_frames, n_fft = frames.shape
    n = y.shape[0]
    for j in range(n_frames):
        start = j * hop_length - offset
        k0 = max(0, -start)
        k1 = min(n_fft, n - start)
        for k in range(k0, k1):
            y[start + k] = np.float32(np.float64(y[start + k]) + window[k] * np.float64(frames[j, k]))


@functools.lru_cache(maxsize=16)
def _istft_envelope(n_fft, hop_length, n_frames, length):
    """Window sum-square of librosa.istft (centred), as (divisor, nonzero mask)."""
    import librosa

    wss = librosa.filters.window_sumsquare(window="hann", n_frames=n_frames, n_fft=n_fft,
                                           hop_length=hop_length, dtype=np.float32)
    wss = librosa.util.fix_length(wss[n_fft // 2:], size=length)
    nonzero = wss > np.finfo(np.float32).tiny
    wss.setflags(write=False)
    nonzero.setflags(write=False)
    return wss, nonzero


@functools.lru_cache(maxsize=4)
def _hann(n_fft):
    import librosa

    w = librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float64)
    w.setflags(write=False)
    return w


def istft(D, length=None, hop_length=512):
    """``librosa.istft(D, dtype=np.float32, length=length)`` (Hann window, centred).

    The same inverse FFTs (librosa's FFT library), the same float64
    windowing and float32 overlap-add in frame order and the same
    window-envelope normalisation, without librosa's block loop and with
    the envelope cached per shape.

    Parameters
    ----------
    D : ndarray of shape (1 + n_fft // 2, n_frames), complex64
        STFT.
    length : int or None, default=None
        Samples of the output; ``None`` gives librosa's default,
        ``hop_length * (n_frames - 1)`` samples.
    hop_length : int, default=512

    Returns
    -------
    y : ndarray of shape (length,), float32
    """
    import librosa

    n_fft = 2 * (D.shape[-2] - 1)
    if length is None:
        n_frames = D.shape[-1]
        length = hop_length * (n_frames - 1)
    else:
        n_frames = min(D.shape[-1], int(np.ceil((length + 2 * (n_fft // 2)) / hop_length)))
    # (n_frames, n_fft) C-ordered frames: the transform axis is contiguous
    # for librosa's F-ordered STFTs
    frames = librosa.get_fftlib().irfft(D[:, :n_frames].T, n=n_fft, axis=-1)
    y = np.zeros(length, dtype=np.float32)
    _overlap_add(np.ascontiguousarray(frames, dtype=np.float32), _hann(n_fft), hop_length,
                 n_fft // 2, y)
    wss, nonzero = _istft_envelope(n_fft, hop_length, n_frames, length)
    y[nonzero] /= wss[nonzero]
    return y
