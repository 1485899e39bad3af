"""Input checks shared by the waveform transformers."""

import numpy as np
from sklearn.utils.validation import check_array


def check_waveforms(X, *, estimator=None, min_samples=1):
    """Validate a batch of mono waveforms.

    Parameters
    ----------
    X : array-like of shape (n_clips, n_samples)
        Mono waveforms, one clip per row. A single 1-D waveform is rejected
        (reshape it with ``X[None, :]``), as is anything with NaN or inf.
    estimator : object, optional
        Estimator whose name appears in error messages.
    min_samples : int, default=1
        Minimum length of a clip.

    Returns
    -------
    X : ndarray of shape (n_clips, n_samples), dtype float32
    """
    X = check_array(X, dtype=np.float32, ensure_2d=True, ensure_all_finite=True,
                    estimator=estimator, input_name="X")
    if X.shape[1] < min_samples:
        name = type(estimator).__name__ if estimator is not None else "This transformer"
        raise ValueError(
            f"{name} needs clips of at least {min_samples} samples; got clips of "
            f"{X.shape[1]} samples (X has shape {X.shape})."
        )
    return X
