"""PCA to at most a given number of (whitened) dimensions, fewer where the training set is small."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import Interval, validate_params

__all__ = ["CappedPCA"]


class CappedPCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """:class:`~sklearn.decomposition.PCA` to ``min(n_components, n_samples - 1, n_features)``.

    Pons & Serra's transfer-learning recipe reduces musicnn embeddings to 128
    whitened PCA dimensions. PCA cannot give more dimensions than the
    training set spans (``n_samples - 1`` after centring, at most
    ``n_features``), so on a small training set this keeps as many as it
    allows instead of failing: the rule is declared here, once, and the number
    kept is ``n_components_``.

    Parameters
    ----------
    n_components : int, default=128
        Most dimensions kept.
    whiten : bool, default=True
        Scale each kept component to unit variance (as the recipe does).
    random_state : int, RandomState instance or None, default=None
        Seed of PCA's randomized solver (used for large inputs).

    Attributes
    ----------
    n_components_ : int
        Dimensions kept: ``min(n_components, n_samples - 1, n_features)``.
    pca_ : PCA
        The fitted PCA.
    n_features_in_ : int
        Features seen in :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre._capped_pca import CappedPCA
    >>> X = np.random.default_rng(0).normal(size=(20, 300))
    >>> CappedPCA(128).fit(X).n_components_
    19
    """

    _constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "whiten": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=128, *, whiten=True, random_state=None):
        self.n_components = n_components
        self.whiten = whiten
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit PCA to ``X`` with the capped number of components.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            At least 2 samples.
        y : ignored

        Returns
        -------
        self : CappedPCA
        """
        validate_params(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=True)
        if len(X) < 2:
            raise ValueError(
                f"CappedPCA needs at least 2 samples to fit; got X of shape {X.shape}.")
        self.n_components_ = int(min(self.n_components, len(X) - 1, X.shape[1]))
        self.pca_ = PCA(self.n_components_, whiten=self.whiten,
                        random_state=self.random_state).fit(X)
        self._n_features_out = self.n_components_
        return self

    def transform(self, X):
        """Project ``X`` on the kept components (whitened when ``whiten``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components_)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.pca_.transform(X)
