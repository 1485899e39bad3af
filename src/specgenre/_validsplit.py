"""Inner validation split of the neural classifiers: stratified, by group, without leakage."""

import warnings

import numpy as np

__all__ = ["validation_split"]


def _units_per_class(y, groups, keep):
    """Distinct samples (or groups) holding each class, among the samples in ``keep``."""
    n_classes = int(y.max()) + 1
    if groups is None:
        return np.bincount(y[keep], minlength=n_classes)
    pairs = np.unique(np.stack([y[keep], groups[keep]], axis=1), axis=0)
    return np.bincount(pairs[:, 0], minlength=n_classes)


def validation_split(y, groups, valid_fraction, random_state):
    """Indices of a stratified (group-aware) train/validation split, or None.

    The data are cut into ``k = max(2, round(1 / valid_fraction))``
    stratified folds and the first fold is the validation set:
    :class:`~sklearn.model_selection.StratifiedKFold` over samples, or
    :class:`~sklearn.model_selection.StratifiedGroupKFold` over groups when
    ``groups`` is given, so that all samples of a group (e.g. the 3 s
    segments of one track) fall on the same side.

    Unbalanced data: a class with fewer than ``k`` units (samples, or
    distinct groups holding that class) cannot be stratified, since the
    validation fold could take all of it away from training. Such a class
    stays whole on the training side, with every group that holds one of its
    samples (groups are never cut), and the other classes are stratified as
    above. The validation loss is then measured on the classes that could
    be stratified; every class is trained on.

    No split is made (None is returned) when ``valid_fraction`` is None or
    0, or when no class has ``k`` units.

    Parameters
    ----------
    y : ndarray of int, shape (n_samples,)
        Encoded labels (``0 .. n_classes - 1``).
    groups : ndarray of shape (n_samples,) or None
    valid_fraction : float or None
        In ``(0, 1)``.
    random_state : int
        Seed of the shuffling.

    Returns
    -------
    (train, valid) : tuple of ndarray of int, or None
        Sorted positions. The classifiers hand this pair to skorch as
        ``ValidSplit(cv=[(train, valid)])``: skorch's ``ValidSplit`` passes
        ``y`` only to ``StratifiedKFold``-like splitters and cannot stratify
        by group itself.
    """
    if not valid_fraction:
        return None
    y = np.asarray(y)
    k = max(2, int(round(1.0 / valid_fraction)))
    if groups is not None:
        groups = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    # drop the classes with too few units, with the groups holding them, until the
    # rest all have k units (dropping a mixed group can leave another class short)
    keep = np.ones(len(y), dtype=bool)
    while True:
        units = _units_per_class(y, groups, keep)
        short = np.flatnonzero((units > 0) & (units < k))
        if len(short) == 0:
            break
        held = np.isin(y, short) & keep
        if groups is not None:
            held = np.isin(groups, np.unique(groups[held]))
        keep &= ~held
    candidates = np.flatnonzero(keep)
    if len(candidates) == 0:
        return None
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y_c = y[candidates]
    X_dummy = np.zeros((len(candidates), 1))
    with warnings.catch_warnings():
        # a group holding several classes can trigger "least populated class" warnings
        warnings.simplefilter("ignore", UserWarning)
        if groups is None:
            cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state)
            _, valid = next(cv.split(X_dummy, y_c))
        else:
            cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=random_state)
            _, valid = next(cv.split(X_dummy, y_c, groups[candidates]))
    valid = np.sort(candidates[valid])
    train = np.setdiff1d(np.arange(len(y)), valid)
    if len(valid) == 0 or len(np.unique(y[train])) < len(np.unique(y)):
        return None
    return train, valid
