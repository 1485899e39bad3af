"""Checking spectrogram input ``(n, channels, freq, frames)`` for the library's estimators."""

import numpy as np
from sklearn.utils.validation import check_array, validate_data

__all__ = ["check_spectrograms"]


def check_spectrograms(estimator, X, *, reset, dtype, order=None):
    """Validate spectrograms as a 4-D array ``(n, channels, freq, frames)``.

    3-D input ``(n, freq, frames)`` is read as one channel and 2-D input
    ``(n, frames)`` (an array or a DataFrame) as one band,
    ``(n, 1, 1, frames)``. Sets (``reset=True``) or checks ``n_features_in_``
    (values per sample), ``feature_names_in_`` (2-D DataFrames) and
    ``input_shape_`` (``(channels, freq, frames)``) on ``estimator``.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator whose input this is (named in errors; fitted
        attributes set or checked).
    X : array-like
    reset : bool
        True in ``fit`` (record the shape), False afterwards (check it).
    dtype : dtype or list of dtype
        As in :func:`~sklearn.utils.check_array`: a list keeps any of its
        dtypes and converts others to the first.
    order : {"C", "F"} or None, default=None

    Returns
    -------
    X : ndarray of shape (n, channels, freq, frames)
        Not copied when already of an accepted dtype and order.

    Raises
    ------
    ValueError
        Not 2-, 3- or 4-D, an empty axis, non-finite values, or (``reset=False``)
        another spectrogram shape than in ``fit``.
    """
    ndim = None
    if not (hasattr(X, "tocsr") or hasattr(X, "iloc")):
        ndim = np.ndim(X) if hasattr(X, "shape") or isinstance(X, (list, tuple)) else None
    if ndim is None or ndim <= 2:
        X = validate_data(estimator, X, reset=reset, dtype=dtype, order=order)
        X = X.reshape(X.shape[0], 1, 1, X.shape[1])
    else:
        X = check_array(X, allow_nd=True, dtype=dtype, order=order, input_name="X",
                        estimator=estimator)
        if X.ndim == 3:
            X = X.reshape(X.shape[0], 1, *X.shape[1:])
        if X.ndim != 4:
            raise ValueError(
                "X must be spectrograms (n, channels, freq, frames), (n, freq, frames) "
                f"or a 2-D array (n, frames); got {X.ndim} dimensions, shape {X.shape}.")
        if min(X.shape[1:]) < 1:
            raise ValueError(f"X has an empty axis: shape {X.shape}.")
    shape = tuple(int(s) for s in X.shape[1:])
    if not reset and shape != estimator.input_shape_:
        raise ValueError(
            f"X has spectrograms of shape {shape} (channels, freq, frames), but "
            f"{type(estimator).__name__} was fitted on {estimator.input_shape_}.")
    if ndim is not None and ndim > 2:
        # Feature names (an array has none: forget or warn about those of a 2-D
        # DataFrame seen before) and n_features_in_, on a zero-memory stand-in of the
        # samples flattened: validate_data checks nothing else when skip_check_array.
        flat = np.broadcast_to(np.zeros((), X.dtype), (X.shape[0], int(np.prod(shape))))
        validate_data(estimator, flat, reset=reset, skip_check_array=True)
    if reset:
        estimator.input_shape_ = shape
    return X
