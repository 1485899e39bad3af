"""The 57 summary features of Kaggle's GTZAN tables, equal to librosa's and ~10x faster.

Kaggle's "GTZAN Dataset - Music Genre Classification" ships two tables
(``features_30_sec.csv``, ``features_3_sec.csv``) with, per clip, the mean
and variance of librosa features over time: chroma, RMS, spectral
centroid, bandwidth and roll-off, zero-crossing rate, the harmonic and
percussive waveforms of HPSS, 20 MFCCs, plus one tempo estimate.
:class:`FeatureExtractor` computes those 57 columns, in the tables' order.

Which options the tables were made with
---------------------------------------
Comparing librosa with the published values (51 development tracks of the
30 s table, 300 segments of the 3 s table) shows that the tables were made
with librosa's defaults *of its time*, which differ from today's (0.10+)
in three places. With them, all 57 columns are reproduced to float32
rounding (median relative error < 2e-6 on every column, the near-zero HPSS
means included; largest absolute error 8e-6, on a near-zero MFCC mean;
the tempo exactly):

* the STFT, the mel spectrogram and RMS pad the signal by reflection
  (``pad_mode="reflect"``; ``"constant"`` since librosa 0.10); with zero
  padding the MFCC means drift by up to 40%;
* the tempo is that of ``librosa.beat.tempo(y=y, sr=sr)``, whose onset
  envelope then aggregated the mel bands with the *median*
  (``onset_strength(..., aggregate=np.median)``); today's mean gives
  another tempo on ~40% of the tracks;
* the HPSS waveforms of ``librosa.effects.hpss`` are ``istft`` without
  ``length`` (``hop_length * (n_frames - 1)`` samples, the last partial
  hop dropped), zero-padded to the clip's length with ``fix_length``;
  today's ``length=len(y)`` moves the near-zero means by ~30%.

Kaggle's 3 s rows are the features of ``y[s * 66150 : s * 66150 + 66149]``
(segment ``s``, 66149 samples: the ``length`` column), for ``s = 0 .. 9``
with ``(s + 1) * 66150 < len(y)`` (so 661500-sample tracks have 9 rows).

How it is made fast
-------------------
The straight librosa calls (:func:`_reference_features`) compute the same
STFT seven times and spend ~85% of the time in the two 31-wide median
filters of HPSS (``scipy.ndimage.median_filter``). Here, per clip:

* one STFT (``n_fft=2048``, hop 512, Hann, centred, reflect padding) gives
  the magnitude for centroid, bandwidth and roll-off, its square for chroma
  and the mel power spectrogram, whose dB scale feeds both the MFCCs and
  the onset envelope of the tempo; the HPSS uses the same STFT;
* the medians come from :func:`specgenre._median.median_filter_1d`, an
  exact running median (bit-for-bit equal to scipy's), ~50x faster;
* numba kernels (:mod:`specgenre._feature_kernels`) replace the chains of
  full-size numpy temporaries of the HPSS masks, the inverse STFT, the
  spectral centroid / bandwidth / roll-off and the zero-crossing rate,
  with the same floating-point operations;
* chroma (with its tuning estimate), RMS, mel spectrogram, MFCC, onset
  envelope and tempo are librosa's own functions on the shared arrays.

The result equals the straight calls to float rounding: bit for bit on
every column but the spectral centroid and bandwidth, whose per-frame
sums numpy adds pairwise and the kernel sequentially (relative
differences ~1e-15).
"""

import numbers
import time
import warnings
from contextlib import contextmanager
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._parallel import chunk_slices, parallel_map
from ._validation import Interval, validate_params

__all__ = ["FeatureExtractor", "FEATURE_NAMES"]

# STFT / frame parameters of every feature (librosa's defaults)
N_FFT = 2048
HOP_LENGTH = 512
# Kaggle's tables were made with librosa < 0.10, whose STFT padded by reflection
PAD_MODE = "reflect"
N_MFCC = 20
HPSS_KERNEL = 31
# samples of audio per parallel task: about one 30 s track (~0.2 s of work),
# so that the progress bar moves per track and the workers stay balanced
_SAMPLES_PER_TASK = 700_000

_MEAN_VAR_GROUPS = (
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    "harmony",
    "perceptr",
)


def _check_input_features(estimator, input_features):
    """Refuse ``input_features`` that do not describe the input seen in ``fit``.

    Names must equal ``feature_names_in_`` when ``fit`` saw a DataFrame, else
    there must be ``n_features_in_`` of them (scikit-learn's rule for
    ``get_feature_names_out``).
    """
    if input_features is None:
        return
    input_features = np.asarray(input_features, dtype=object)
    names_in = getattr(estimator, "feature_names_in_", None)
    if names_in is not None:
        if not np.array_equal(names_in, input_features):
            raise ValueError("input_features is not equal to feature_names_in_")
    elif input_features.ndim != 1 or len(input_features) != estimator.n_features_in_:
        raise ValueError(
            f"input_features should have length equal to number of features "
            f"({estimator.n_features_in_}), got {input_features.size}"
        )


def _feature_names():
    names = [f"{group}_{stat}" for group in _MEAN_VAR_GROUPS for stat in ("mean", "var")]
    names.append("tempo")
    names += [f"mfcc{i}_{stat}" for i in range(1, N_MFCC + 1) for stat in ("mean", "var")]
    return tuple(names)


#: The 57 output columns, in the order of Kaggle's CSV tables.
FEATURE_NAMES = _feature_names()


def _tempo_function():
    """``librosa.feature.tempo`` (imported when first needed)."""
    import librosa

    return librosa.feature.tempo


def _mean_var(a):
    # np.mean / np.var in the array's dtype, as Kaggle's np.mean(feature) did
    return float(np.mean(a)), float(np.var(a))


def _reference_features(y, sr=22050):
    """Kaggle's 57 features by the straight librosa calls, one feature at a time.

    The slow reference that :class:`FeatureExtractor` reproduces: every
    feature recomputes its own STFT, and HPSS uses
    ``scipy.ndimage.median_filter``. The options are those Kaggle's tables
    were made with (the defaults of librosa at the time, see the module
    documentation): ``pad_mode="reflect"`` for the STFT-based features and
    RMS, a median-aggregated onset envelope for the tempo, and HPSS
    waveforms of ``hop_length * (n_frames - 1)`` samples zero-padded to the
    clip's length.

    Parameters
    ----------
    y : ndarray of shape (n_samples,), float32
        One mono clip.
    sr : int, default=22050
        Sampling rate.

    Returns
    -------
    features : ndarray of shape (57,), float64
        In the order of :data:`FEATURE_NAMES`.
    """
    import librosa

    pm = PAD_MODE
    out = []

    def add(a):
        out.extend(_mean_var(a))

    add(librosa.feature.chroma_stft(y=y, sr=sr, pad_mode=pm))
    add(librosa.feature.rms(y=y, pad_mode=pm))
    add(librosa.feature.spectral_centroid(y=y, sr=sr, pad_mode=pm))
    add(librosa.feature.spectral_bandwidth(y=y, sr=sr, pad_mode=pm))
    add(librosa.feature.spectral_rolloff(y=y, sr=sr, pad_mode=pm))
    add(librosa.feature.zero_crossing_rate(y))
    # librosa.effects.hpss(y) as it was: reflect-padded STFT, and istft
    # without `length` (hop * (n_frames - 1) samples) zero-padded to len(y)
    D = librosa.stft(y, pad_mode=pm)
    D_harm, D_perc = librosa.decompose.hpss(D)
    add(librosa.util.fix_length(librosa.istft(D_harm, dtype=y.dtype), size=len(y)))
    add(librosa.util.fix_length(librosa.istft(D_perc, dtype=y.dtype), size=len(y)))
    onset = librosa.onset.onset_strength(y=y, sr=sr, aggregate=np.median, pad_mode=pm)
    out.append(float(np.ravel(_tempo_function()(onset_envelope=onset, sr=sr))[0]))
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC, pad_mode=pm)
    for row in mfcc:
        add(row)
    return np.asarray(out, dtype=np.float64)


@contextmanager
def _timed(timings, group):
    """Add the time spent in the block to ``timings[group]`` (when a dict is given).

    The clock is ``timings["clock"]`` when present (e.g. ``time.process_time``),
    else ``time.perf_counter``.
    """
    if timings is None:
        yield
        return
    clock = timings.get("clock", time.perf_counter)
    start = clock()
    try:
        yield
    finally:
        timings[group] = timings.get(group, 0.0) + clock() - start


def _hpss_waveforms(D, S, n_samples, timings=None):
    """``librosa.effects.hpss``'s two waveforms, from a precomputed STFT.

    The steps of ``librosa.decompose.hpss`` (median filters along time and
    frequency with ``mode="reflect"``, soft masks of power 2, masked
    magnitude times phase) and ``librosa.istft(..., dtype=float32)``
    zero-padded to ``n_samples`` (as Kaggle's librosa did), with the exact
    running median and numba kernels for the masks and the overlap-add.
    """
    from ._feature_kernels import hpss_spectra, istft
    from ._median import median_filter_1d

    with _timed(timings, "hpss_median"):
        harm = median_filter_1d(S, HPSS_KERNEL, axis=-1)
        perc = median_filter_1d(S, HPSS_KERNEL, axis=-2)
    with _timed(timings, "hpss_masks"):
        D_harm, D_perc = hpss_spectra(D, S, harm, perc)
        del harm, perc
    with _timed(timings, "hpss_istft"):
        out = np.zeros((2, n_samples), dtype=np.float32)
        for row, D_part in zip(out, (D_harm, D_perc)):
            y_part = istft(D_part, hop_length=HOP_LENGTH)
            row[: len(y_part)] = y_part[:n_samples]
    return out[0], out[1]


def _clip_features(y, sr=22050, timings=None):
    """Kaggle's 57 features of one clip, sharing one STFT across features.

    Equal to :func:`_reference_features` (same librosa functions on the
    same spectrograms; exact medians).

    Parameters
    ----------
    y : ndarray of shape (n_samples,), float32
    sr : int
    timings : dict, optional
        When given, seconds spent per group of features are added to it
        (measured with ``timings["clock"]`` if set, else wall-clock).

    Returns
    -------
    features : ndarray of shape (57,), float64
    """
    import librosa

    from ._feature_kernels import spectral_stats, zero_crossing_rate

    feats = {}
    with _timed(timings, "stft"):
        D = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH, pad_mode=PAD_MODE)
        S = np.abs(D)
    with _timed(timings, "chroma"):
        P = S**2
        with warnings.catch_warnings():
            # silent or very short clips have no pitched bin: librosa then assumes a
            # tuning of 0 (what Kaggle's values hold), which is right; the warning is noise
            warnings.filterwarnings("ignore", "Trying to estimate tuning from empty frequency")
            feats["chroma_stft"] = librosa.feature.chroma_stft(S=P, sr=sr)
    with _timed(timings, "spectral"):
        freq = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
        (feats["spectral_centroid"], feats["spectral_bandwidth"],
         feats["rolloff"]) = spectral_stats(S, freq)
    with _timed(timings, "rms_zcr"):
        feats["rms"] = librosa.feature.rms(y=y, pad_mode=PAD_MODE)
        feats["zero_crossing_rate"] = zero_crossing_rate(y)
    with _timed(timings, "mfcc"):
        log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=P, sr=sr))
        del P
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
    with _timed(timings, "tempo"):
        onset = librosa.onset.onset_strength(S=log_mel, sr=sr, aggregate=np.median)
        tempo = float(np.ravel(_tempo_function()(onset_envelope=onset, sr=sr))[0])
    feats["harmony"], feats["perceptr"] = _hpss_waveforms(D, S, len(y), timings)

    out = []
    for group in _MEAN_VAR_GROUPS:
        out.extend(_mean_var(feats[group]))
    out.append(tempo)
    for row in mfcc:
        out.extend(_mean_var(row))
    return np.asarray(out, dtype=np.float64)


def _clip_error(index, y, reason):
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return ValueError(
        f"FeatureExtractor: clip {index} (row {index} of X) has no finite features: "
        f"{reason}. Its samples reach |y| = {peak:.3g}; waveforms are expected at audio "
        "scale (about [-1, 1], as librosa.load gives), and spectrograms of samples "
        "beyond ~1e16 overflow float32."
    )


def _features_block(task, sr):
    """Features of a block of clips (one parallel task): ``task = (first_index, X)``.

    A clip whose features cannot be computed, or are not all finite, raises
    ValueError naming its row in the whole input.
    """
    from librosa.util.exceptions import ParameterError

    start, X = task
    # C-ordered, writable rows (e.g. from an F-ordered or read-only memmap X)
    X = np.require(X, dtype=np.float32, requirements=["C", "W"])
    out = np.empty((len(X), len(FEATURE_NAMES)), dtype=np.float64)
    for i, y in enumerate(X):
        try:
            out[i] = _clip_features(y, sr)
        except ParameterError as exc:  # e.g. librosa's "Input must be finite" on overflow
            raise _clip_error(start + i, y, f"librosa raised {exc}") from exc
        bad = ~np.isfinite(out[i])
        if bad.any():
            names = ", ".join(np.asarray(FEATURE_NAMES)[bad])
            raise _clip_error(start + i, y, f"{names} not finite")
    return out


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """Kaggle's 57 GTZAN features (librosa means and variances) of waveforms.

    Every clip becomes the row Kaggle's ``features_30_sec.csv`` /
    ``features_3_sec.csv`` tables give it (columns 3 to 59, same names and
    order, see :meth:`get_feature_names_out`): the mean and variance over
    time of chroma (STFT), RMS energy, spectral centroid, bandwidth and
    roll-off, zero-crossing rate, the harmonic ("harmony") and percussive
    ("perceptr") waveforms of HPSS and 20 MFCCs, plus the tempo (BPM).

    The values are those of the straight librosa calls with the options the
    tables were made with (see the module documentation: reflect-padded
    STFT, median-aggregated onset envelope for the tempo, HPSS waveforms cut
    to whole hops), computed ~10x faster: one STFT shared by all features,
    an exact running median for HPSS and numba kernels.

    Parameters
    ----------
    sr : int, default=22050
        Sampling rate of the waveforms.
    n_jobs : int or None, default=None
        Parallel workers over clips (joblib; ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context, ``-1`` all cores).
    progress : bool, default=False
        Show a tqdm progress bar.

    Attributes
    ----------
    n_features_in_ : int
        Samples per waveform seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` in :meth:`fit` has string column names.

    See Also
    --------
    ClipSegmenter : cuts clips into 3 s segments (66150 samples; Kaggle's 3 s
        rows are of 66149, see Notes).
    specgenre.load_gtzan_features : Kaggle's published tables.

    Notes
    -----
    *Fidelity.* On the 51 GTZAN development tracks (Kaggle's
    ``features_30_sec.csv``) and the 300 3 s segments of their classical,
    jazz and rock tracks (``features_3_sec.csv``), every column matches the
    table to float32 rounding on every row (median relative error < 2e-6,
    the tempo exactly), the near-zero HPSS means included. Kaggle's 3 s rows
    are the features of ``y[s * 66150 : s * 66150 + 66149]``, segment ``s``
    (see the module documentation).

    *Short clips.* Every feature is defined for clips of at least one
    sample, but clips shorter than ``n_fft = 2048`` samples (93 ms at
    22.05 kHz) have no complete analysis frame: librosa warns and the
    values mostly describe the reflected padding.

    *Silence.* All-zero clips give finite features, as librosa does: zero
    chroma, RMS, spectral statistics, zero-crossing rate and HPSS
    statistics, MFCCs of the -100 dB floor, and the tempo at the mode of
    librosa's tempo prior (117.5 BPM with librosa 0.11, the bin closest to
    120 BPM). Constant (DC) clips, single impulses, clips of one sample and
    tiny (subnormal) amplitudes give finite values too. A clip whose
    features are not all finite raises ValueError naming its row: that
    happens only for absurd amplitudes (samples beyond ~1e16, where the
    float32 power spectrogram overflows and librosa refuses it), never
    silently as 0.

    Input is cast to float32 (as ``librosa.load`` returns); the output is
    float64.

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre import FeatureExtractor
    >>> t = np.arange(3 * 22050) / 22050
    >>> X = (0.5 * np.sin(2 * np.pi * 440 * t))[None, :].astype(np.float32)
    >>> fx = FeatureExtractor()
    >>> F = fx.fit_transform(X)
    >>> F.shape
    (1, 57)
    >>> fx.get_feature_names_out()[:3].tolist()
    ['chroma_stft_mean', 'chroma_stft_var', 'rms_mean']
    >>> round(float(F[0, 2]), 3)  # mean RMS of a sine of amplitude 0.5: 0.5 / sqrt(2)
    0.354
    """

    _per_sample_output = True  # one output per sample, nothing learned: see _cache

    _constraints = {
        "sr": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_jobs": [numbers.Integral, None],
        "progress": ["boolean"],
    }

    def __init__(self, *, sr=22050, n_jobs=None, progress=False):
        self.sr = sr
        self.n_jobs = n_jobs
        self.progress = progress

    def fit(self, X, y=None):
        """Check the parameters and record the waveform length.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms.
        y : ignored

        Returns
        -------
        self : FeatureExtractor
        """
        validate_params(self)
        validate_data(self, X, dtype=np.float32, ensure_all_finite=True)
        return self

    def transform(self, X):
        """Compute the 57 features of every clip.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms, finite, as long as those seen in :meth:`fit`.

        Returns
        -------
        features : ndarray of shape (n_clips, 57), float64
            Columns in the order of :meth:`get_feature_names_out`.

        Raises
        ------
        ValueError
            If ``X`` is not finite, or a clip's features are not all finite
            (e.g. samples of absurd amplitude); the message names the clip's
            row.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, ensure_all_finite=True, reset=False)
        batch_size = max(1, _SAMPLES_PER_TASK // max(X.shape[1], 1))
        slices = chunk_slices(len(X), -(-len(X) // batch_size))
        parts = parallel_map(
            partial(_features_block, sr=int(self.sr)),
            [(s.start, X[s]) for s in slices],  # each worker receives only its rows
            n_jobs=self.n_jobs,
            progress=self.progress,
            desc="features",
            # numba-compiled code (librosa's and ours) is compiled and cached here
            # once, never by several fresh workers at once (see parallel_map)
            first_here=True,
        )
        return np.concatenate(parts, axis=0)

    def get_feature_names_out(self, input_features=None):
        """Names of the 57 output columns, as in Kaggle's tables.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the input seen in :meth:`fit` (the output
            names do not depend on it).

        Returns
        -------
        names : ndarray of str objects, shape (57,)
        """
        check_is_fitted(self, "n_features_in_")
        _check_input_features(self, input_features)
        return np.asarray(FEATURE_NAMES, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
