"""musicnn's input: log-compressed mel patches, computed as the official extractor does.

The official ``musicnn.extractor.batch_data`` (v0.1.0):

1. ``librosa.load(file, sr=16000)``: mono, resampled to 16 kHz with librosa's
   default ``res_type="soxr_hq"`` (librosa 0.10/0.11);
2. ``librosa.feature.melspectrogram(y, sr=16000, hop_length=256, n_fft=512,
   n_mels=96).T``: mel power (centred frames, Hann window, Slaney mel
   filters), ``(frames, 96)``;
3. rounded to float16, then ``np.log10(10000 * x + 1)``. Under numpy 1.x the
   multiply promotes to float32 (``10000`` is a ``uint16`` scalar there); under
   numpy 2 it stays float16 and overflows to ``inf`` for any power above
   6.55. The numpy-1 (intended) arithmetic is used here: float16 rounding,
   then float32;
4. cut into patches of 187 frames (3 s) starting every 187 frames (no
   overlap, ``input_overlap=False``). A final partial patch is dropped, and a
   clip shorter than one patch gives no patch at all (the official code then
   fails with an ``UnboundLocalError``; here it is a clear ``ValueError``).

:func:`musicnn_patches` takes a waveform at any sample rate, so a file loaded
at its native rate gives the official patches; at another rate (e.g. the
library's 22050 Hz after loading a 44.1 kHz file) it differs from the
official pipeline only by resampling twice.
"""

import numbers

import numpy as np

from .. import _memory
from ..audio import resample

__all__ = [
    "MUSICNN_SR", "N_FFT", "HOP_LENGTH", "N_MELS", "N_FRAMES", "MIN_SAMPLES",
    "musicnn_logmel", "musicnn_patches", "musicnn_patches_batch",
]

#: Sample rate of musicnn's input, Hz.
MUSICNN_SR = 16000
#: FFT size and hop of the mel spectrogram.
N_FFT = 512
HOP_LENGTH = 256
#: Mel bands.
N_MELS = 96
#: Frames per patch: ``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``.
N_FRAMES = 187
#: Fewest samples at 16 kHz that give one patch (centred frames: ``1 + n // 256 >= 187``).
MIN_SAMPLES = (N_FRAMES - 1) * HOP_LENGTH


def _check_sr(sr):
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or not sr > 0:
        raise ValueError(f"sr must be a positive number (Hz), got {sr!r}")
    return int(sr) if float(sr).is_integer() else float(sr)


def _check_wave(y, name="y"):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D mono waveform, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"{name} must hold floating-point samples, got dtype {y.dtype}")
    y = y.astype(np.float32, copy=False)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} holds NaN or infinite samples")
    return y


def musicnn_logmel(y, sr):
    """The whole log-mel spectrogram musicnn sees, ``(frames, 96)`` float32.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Mono waveform, floating point.
    sr : int
        Its sample rate; resampled to 16 kHz (soxr_hq) when different.

    Returns
    -------
    logmel : ndarray of shape (1 + n_samples_16k // 256, 96), float32
        ``log10(10000 * float16(mel power) + 1)`` with the multiply in float32.
    """
    import librosa

    sr = _check_sr(sr)
    y = resample(_check_wave(y), sr, MUSICNN_SR)
    mel = librosa.feature.melspectrogram(y=y, sr=MUSICNN_SR, hop_length=HOP_LENGTH,
                                         n_fft=N_FFT, n_mels=N_MELS).T
    mel = mel.astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000) * mel + np.float32(1))


def _patch(logmel):
    n_patches = (logmel.shape[0] - N_FRAMES) // N_FRAMES + 1 if logmel.shape[0] >= N_FRAMES \
        else 0
    return logmel[:n_patches * N_FRAMES].reshape(n_patches, N_FRAMES, N_MELS)


def musicnn_patches(y, sr):
    """Non-overlapping 3 s log-mel patches of a waveform, as musicnn's extractor makes them.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Mono waveform, floating point, finite.
    sr : int
        Its sample rate (Hz); resampled to :data:`MUSICNN_SR` with soxr_hq,
        as ``librosa.load(file, sr=16000)`` does.

    Returns
    -------
    patches : ndarray of shape (n_patches, 187, 96), float32
        ``n_patches = (n_frames - 187) // 187 + 1`` with
        ``n_frames = 1 + n_samples_16k // 256``; the final partial patch is dropped.

    Raises
    ------
    ValueError
        Bad input, or a clip shorter than one patch (fewer than
        :data:`MIN_SAMPLES` samples at 16 kHz, about 2.98 s).
    """
    logmel = musicnn_logmel(y, sr)
    if logmel.shape[0] < N_FRAMES:
        seconds = MIN_SAMPLES / MUSICNN_SR
        raise ValueError(
            f"clip too short for musicnn: {logmel.shape[0]} frames at 16 kHz, one patch needs "
            f"{N_FRAMES} (at least {seconds:.3f} s of audio; got "
            f"{len(np.asarray(y)) / sr:.3f} s)")
    return np.ascontiguousarray(_patch(logmel))


def musicnn_patches_batch(Y, sr):
    """:func:`musicnn_patches` of every row of ``Y``, stacked, with the row of each patch.

    Parameters
    ----------
    Y : ndarray of shape (n_clips, n_samples)
        Mono waveforms of equal length, floating point.
    sr : int
        Their sample rate.

    Returns
    -------
    patches : ndarray of shape (n_clips * n_per_clip, 187, 96), float32
        Clip 0's patches first, in time order, then clip 1's, ...
    clip_index : ndarray of shape (n_clips * n_per_clip,), int64
        Row of ``Y`` each patch comes from.

    Raises
    ------
    ValueError
        Bad input, or clips shorter than one patch (the error names the row).
    """
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"Y must be 2-D (n_clips, n_samples), got shape {Y.shape}")
    out = []
    for i, y in enumerate(Y):
        try:
            out.append(musicnn_patches(y, sr))
        except ValueError as exc:
            raise ValueError(f"row {i} of Y: {exc}") from None
    if not out:
        return np.empty((0, N_FRAMES, N_MELS), np.float32), np.empty(0, np.int64)
    clip_index = np.repeat(np.arange(len(out), dtype=np.int64), [len(p) for p in out])
    return _memory.concatenate(out), clip_index
