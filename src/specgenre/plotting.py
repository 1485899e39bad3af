"""Plots a researcher would rather see than read (needs matplotlib: ``pip install specgenre[plot]``)."""

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "specgenre's plots need matplotlib: pip install 'specgenre[plot]'"
        ) from exc
    return plt


def _axes(ax, **subplots):
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(**subplots)
    return ax


def plot_confusion_matrix(y_true, y_pred, *, labels=None, normalize="true", ax=None,
                          title=None, counts=False):
    """Confusion matrix of genre predictions, rows normalised to recall by default.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted genres.
    labels : list of str, optional
        Order of the genres (default: sorted union of both).
    normalize : {"true", "pred", "all"} or None, default="true"
        As in :func:`sklearn.metrics.confusion_matrix`.
    ax : matplotlib Axes, optional
    title : str, optional
    counts : bool, default=False
        With ``normalize``, also write the number of samples under each
        cell's share in brackets, e.g. 0.85 over (17): a recall of 0.50 reads
        differently over 2 clips than over 100. Ignored without
        ``normalize`` (the cells are counts already).

    Returns
    -------
    display : sklearn.metrics.ConfusionMatrixDisplay
        ``display.confusion_matrix`` holds the normalised shares (or counts);
        ``display.text_`` the cells' texts.
    """
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix
    from sklearn.utils.multiclass import unique_labels

    ax = _axes(ax, figsize=(7, 6))
    disp = ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, normalize=normalize, ax=ax, colorbar=False,
        values_format=".2f" if normalize else "d", xticks_rotation=45, cmap="Blues",
    )
    if counts and normalize:
        order = unique_labels(y_true, y_pred) if labels is None else labels
        n = confusion_matrix(y_true, y_pred, labels=order)
        for (i, j), text in np.ndenumerate(disp.text_):
            text.set_text(f"{disp.confusion_matrix[i, j]:.2f}\n({n[i, j]})")
            text.set_fontsize("small")
    acc = float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
    ax.set_title(title or f"accuracy {acc:.1%}")
    ax.figure.tight_layout()
    return disp


def plot_spectrogram_examples(spectrograms, y, *, n_per_genre=1, sr=22050, hop_length=512,
                              y_axis="mel", random_state=0, axes=None):
    """Show a few spectrograms of each genre side by side.

    Parameters
    ----------
    spectrograms : ndarray of shape (n, 1, freq, frames) or (n, freq, frames)
        Output of :class:`SpectrogramTransformer`.
    y : array-like of shape (n,)
        Genre of each spectrogram.
    n_per_genre : int, default=1
        Examples per genre (one row of the grid per example).
    sr, hop_length : int
        Used to label the time axis.
    y_axis : {"mel", "linear"}, default="mel"
        Frequency axis, as in :func:`librosa.display.specshow`.
    random_state : int, default=0
        Which examples are drawn.
    axes : array of matplotlib Axes, optional

    Returns
    -------
    axes : ndarray of matplotlib Axes, shape (n_per_genre, n_genres)
    """
    import librosa.display

    plt = _pyplot()
    S = np.asarray(spectrograms)
    if S.ndim == 4:
        S = S[:, 0]
    y = np.asarray(y)
    genres = np.unique(y)
    rng = np.random.default_rng(random_state)
    if axes is None:
        _, axes = plt.subplots(n_per_genre, len(genres), squeeze=False,
                               figsize=(2.2 * len(genres), 2.2 * n_per_genre),
                               sharex=True, sharey=True)
    axes = np.asarray(axes).reshape(n_per_genre, len(genres))
    for j, genre in enumerate(genres):
        idx = np.flatnonzero(y == genre)
        chosen = rng.choice(idx, size=min(n_per_genre, len(idx)), replace=False)
        for i in range(n_per_genre):
            ax = axes[i, j]
            if i < len(chosen):
                librosa.display.specshow(S[chosen[i]], sr=sr, hop_length=hop_length,
                                         x_axis="time", y_axis=y_axis, ax=ax, cmap="magma")
            ax.set_title(genre if i == 0 else "")
            ax.label_outer()
    axes[0, 0].figure.tight_layout()
    return axes


def plot_embedding_map(embeddings, y, *, method="tsne", random_state=0, ax=None, title=None):
    """2-D map of embeddings coloured by genre (t-SNE or PCA).

    Parameters
    ----------
    embeddings : array-like of shape (n, d)
        E.g. ``ResNet18Classifier.transform`` output.
    y : array-like of shape (n,)
        Genre of each row.
    method : {"tsne", "pca"}, default="tsne"
    random_state : int, default=0
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    coords : ndarray of shape (n, 2)
        The 2-D coordinates that were drawn.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(np.asarray(embeddings, dtype=np.float64))
    y = np.asarray(y)
    if method == "tsne":
        perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3)))
        coords = TSNE(n_components=2, perplexity=perplexity, init="pca",
                      random_state=random_state).fit_transform(X)
    elif method == "pca":
        coords = PCA(n_components=2, random_state=random_state).fit_transform(X)
    else:
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")
    ax = _axes(ax, figsize=(7, 6))
    cmap = _pyplot().get_cmap("tab10")
    for k, genre in enumerate(np.unique(y)):
        sel = y == genre
        ax.scatter(coords[sel, 0], coords[sel, 1], s=18, color=cmap(k % 10), label=str(genre))
    ax.legend(fontsize="small", markerscale=1.2, loc="best", ncols=2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{method.upper()} map of embeddings")
    ax.figure.tight_layout()
    return coords
