"""Inner validation split of the neural classifiers: stratified, by group, without leakage."""

import warnings

import numpy as np

__all__ = ["validation_split"]


def validation_split(y, groups, valid_fraction, random_state):
    """Indices of a stratified (group-aware) train/validation split, or None.

    The data are cut into ``k = max(2, round(1 / valid_fraction))``
    stratified folds and the first fold is the validation set:
    :class:`~sklearn.model_selection.StratifiedKFold` over samples, or
    :class:`~sklearn.model_selection.StratifiedGroupKFold` over groups when
    ``groups`` is given, so that all samples of a group (e.g. the 3 s
    segments of one track) fall on the same side.

    No split is made (None is returned) when ``valid_fraction`` is None or
    0, or when some class has fewer than ``k`` units (samples, or distinct
    groups holding that class): the validation fold could then miss a
    class or leave it nearly absent from training.

    Parameters
    ----------
    y : ndarray of int, shape (n_samples,)
        Encoded labels.
    groups : ndarray of shape (n_samples,) or None
    valid_fraction : float or None
        In ``(0, 1)``.
    random_state : int
        Seed of the shuffling.

    Returns
    -------
    (train, valid) : tuple of ndarray of int, or None
        The classifiers hand this pair to skorch as
        ``ValidSplit(cv=[(train, valid)])``: skorch's ``ValidSplit`` passes
        ``y`` only to ``StratifiedKFold``-like splitters and cannot stratify
        by group itself.
    """
    if not valid_fraction:
        return None
    k = max(2, int(round(1.0 / valid_fraction)))
    if groups is None:
        units_per_class = np.bincount(y)
    else:
        _, group_ids = np.unique(groups, return_inverse=True)
        pairs = np.unique(np.stack([y, group_ids.ravel()], axis=1), axis=0)
        units_per_class = np.bincount(pairs[:, 0], minlength=y.max() + 1)
    units_per_class = units_per_class[units_per_class > 0]
    if units_per_class.min() < k:
        return None
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    X_dummy = np.zeros((len(y), 1))
    with warnings.catch_warnings():
        # a group holding several classes can trigger "least populated class" warnings
        warnings.simplefilter("ignore", UserWarning)
        if groups is None:
            cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state)
            train, valid = next(cv.split(X_dummy, y))
        else:
            cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=random_state)
            train, valid = next(cv.split(X_dummy, y, groups))
    if len(valid) == 0 or len(np.unique(y[train])) < len(np.unique(y)):
        return None
    return train, valid

