"""Cutting clips into consecutive fixed-length segments."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import validate_data

from . import _memory
from ._validation import Interval, validate_params


class ClipSegmenter(TransformerMixin, BaseEstimator):
    """Cut each clip into consecutive segments of equal length.

    The study cut every 30 s GTZAN clip into ten 3 s segments; this
    transformer does the same for a whole batch at once: the segments are
    read through a strided view of the batch (no Python loop) and copied
    once into one contiguous float32 array.

    A clip of ``n`` samples gives ``1 + (n - L) // H`` segments, where
    ``L = round(segment_seconds * sr)`` is the segment length and
    ``H = round(hop_seconds * sr)`` the hop (``H = L`` by default: no overlap).
    Samples after the last whole segment are dropped.

    Parameters
    ----------
    segment_seconds : float, default=3.0
        Length of a segment in seconds.
    sr : int, default=22050
        Sample rate of the clips, in Hz.
    hop_seconds : float or None, default=None
        Distance between the starts of consecutive segments; ``None`` means
        ``segment_seconds`` (consecutive, non-overlapping segments).

    Attributes
    ----------
    n_features_in_ : int
        Number of samples per clip seen in :meth:`fit`.
    segment_length_ : int
        Samples per segment.
    hop_length_ : int
        Samples between segment starts.
    n_segments_ : int
        Segments per clip for clips of ``n_features_in_`` samples.

    See Also
    --------
    TrackAggregator : votes the segments' predictions back to one per clip.

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre import ClipSegmenter
    >>> clips = np.zeros((2, 30 * 22050), dtype=np.float32)
    >>> seg = ClipSegmenter(segment_seconds=3.0).fit(clips)
    >>> segments, clip_index = seg.segment(clips)
    >>> segments.shape, clip_index[:12].tolist()
    ((20, 66150), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    """

    _constraints = {
        "segment_seconds": [Interval(numbers.Real, 0, None, closed="neither")],
        "sr": [Interval(numbers.Integral, 1, None, closed="left")],
        "hop_seconds": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    def __init__(self, segment_seconds=3.0, *, sr=22050, hop_seconds=None):
        self.segment_seconds = segment_seconds
        self.sr = sr
        self.hop_seconds = hop_seconds

    def _lengths(self):
        seg = int(round(self.segment_seconds * self.sr))
        hop_s = self.segment_seconds if self.hop_seconds is None else self.hop_seconds
        hop = int(round(hop_s * self.sr))
        if seg < 1 or hop < 1:
            raise ValueError(
                f"segment_seconds={self.segment_seconds} and hop_seconds={self.hop_seconds} "
                f"at sr={self.sr} give segments of {seg} and hops of {hop} samples; "
                "both must be at least 1 sample."
            )
        return seg, hop

    def n_segments(self, n_samples):
        """Number of segments cut from a clip of ``n_samples`` samples (0 if too short)."""
        seg, hop = self._lengths()
        return 0 if n_samples < seg else 1 + (n_samples - seg) // hop

    def fit(self, X, y=None):
        """Check the parameters and that clips hold at least one segment.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms.
        y : ignored

        Returns
        -------
        self : ClipSegmenter
        """
        self._fit(X)
        return self

    def _fit(self, X):
        validate_params(self)
        seg, hop = self._lengths()
        X = validate_data(self, X, dtype=np.float32, ensure_all_finite=True)
        self._check_length(X.shape[1], seg)
        self.segment_length_, self.hop_length_ = seg, hop
        self.n_segments_ = self.n_segments(X.shape[1])
        return X

    def _check_length(self, n_samples, seg):
        if n_samples < seg:
            raise ValueError(
                f"Clips of {n_samples} samples ({n_samples / self.sr:.3f} s at sr={self.sr}) "
                f"are shorter than one segment of {seg} samples "
                f"(segment_seconds={self.segment_seconds})."
            )

    def segment(self, X):
        """Cut clips into segments and say which clip each segment came from.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms, as many samples per clip as in :meth:`fit`.

        Returns
        -------
        segments : ndarray of shape (n_clips * n_segments_, segment_length_), float32
            Segments of clip 0 in time order, then those of clip 1, and so on.
        clip_index : ndarray of shape (n_clips * n_segments_,), int
            Row of ``X`` each segment was cut from.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, ensure_all_finite=True, reset=False)
        return self._segment(X)

    def _segment(self, X):
        seg, hop = self.segment_length_, self.hop_length_
        windows = np.lib.stride_tricks.sliding_window_view(X, seg, axis=1)[:, ::hop]
        n_clips, n_seg = windows.shape[:2]
        if hop == seg and X.shape[1] == n_seg * seg and X.flags.c_contiguous:
            # segments that tile the clips exactly: a (read-only) view of X, no copy
            segments = windows.reshape(n_clips * n_seg, seg)
        else:
            segments = _memory.empty((n_clips * n_seg, seg), np.float32)
            segments.reshape(n_clips, n_seg, seg)[...] = windows
        clip_index = np.repeat(np.arange(n_clips), n_seg)
        return segments, clip_index

    def transform(self, X):
        """Cut clips into segments.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms.

        Returns
        -------
        segments : ndarray of shape (n_clips * n_segments_, segment_length_), float32
        """
        return self.segment(X)[0]

    def fit_transform(self, X, y=None):
        """Fit, then cut the clips into segments (``X`` is checked once).

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms.
        y : ignored

        Returns
        -------
        segments : ndarray of shape (n_clips * n_segments_, segment_length_), float32
        """
        return self.fit_segment(X, y)[0]

    def fit_segment(self, X, y=None):
        """Fit, then return :meth:`segment`'s ``(segments, clip_index)`` (``X`` is checked once)."""
        return self._segment(self._fit(X))

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: ``sample0 ... sample{L-1}``."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return np.asarray([f"sample{i}" for i in range(self.segment_length_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform changes the number of rows: one clip gives several segments
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
