"""musicnn as scikit-learn estimators: embeddings of waveforms and their top tags.

The network (:func:`~specgenre.musicnn.load_musicnn`) sees non-overlapping
3 s log-mel patches at 16 kHz (:func:`~specgenre.musicnn.musicnn_patches`);
a clip's output here is pooled over its patches, the way the official
``musicnn.tagger.top_tags`` averages the taggram of a file.
"""

import numbers
from fractions import Fraction
from functools import lru_cache

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import _memory
from .._parallel import parallel_map
from .._precision import PRECISIONS, autocast
from .._validation import Interval, StrOptions, validate_params
from ._frontend import MIN_SAMPLES, MUSICNN_SR, musicnn_patches
from ._models import MUSICNN_LAYERS, VGG_LAYERS
from ._weights import MUSICNN_MODELS, MUSICNN_TAGS, check_model, load_musicnn

__all__ = ["MusicnnEmbedding", "top_tags", "musicnn_layers", "min_clip_samples"]

_POOLINGS = ("mean", "max", "mean_std")


def musicnn_layers(model="MSD_musicnn"):
    """Names of the layers :class:`MusicnnEmbedding` can read for ``model``.

    Parameters
    ----------
    model : {"MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"}

    Returns
    -------
    layers : tuple of str
        ``taggram`` first, then the named layers of the official extractor.
    """
    check_model(model)
    return VGG_LAYERS if model.endswith("_vgg") else MUSICNN_LAYERS


def _check_layer(model, layer):
    layers = musicnn_layers(model)
    if layer not in layers:
        raise ValueError(f"layer {layer!r} is not an output of {model}; choose one of "
                         f"{list(layers)}.")


def min_clip_samples(sr):
    """Fewest samples at rate ``sr`` that give musicnn one 3 s patch.

    A waveform of ``n`` samples is resampled to ``ceil(n * 16000 / sr)``
    samples (librosa's length rule), and one patch needs
    :data:`~specgenre.musicnn.MIN_SAMPLES` of those (about 2.98 s).

    Parameters
    ----------
    sr : int
        Sample rate of the waveforms, Hz.

    Returns
    -------
    n_samples : int
    """
    if sr == MUSICNN_SR:
        return MIN_SAMPLES
    ratio = Fraction(MUSICNN_SR, int(sr))
    # ceil(n * ratio) >= MIN_SAMPLES  <=>  n * ratio > MIN_SAMPLES - 1
    return int((MIN_SAMPLES - 1) / ratio) + 1


@lru_cache(maxsize=4)
def _network(model, weights_dir, device):
    """The pretrained network, loaded once per process (kept out of pickles)."""
    return load_musicnn(model, weights_dir=weights_dir, device=device)


def _clip_patches(X, sr, n_jobs):
    """Patches of every row of ``X`` (threads over clips), with the row of each patch."""
    def one(y):
        return musicnn_patches(y, sr)

    parts = parallel_map(one, list(X), n_jobs=n_jobs, prefer="threads")
    clip_index = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
    return _memory.concatenate(parts), clip_index


def _patch_stats(net, patches, layer, batch_size, device, precision="fp32"):
    """Per patch: the layer's mean, max and variance over its time (and frequency) axes."""
    import torch

    means, maxes, variances = [], [], []
    with torch.inference_mode(), autocast(precision, device):
        for start in range(0, len(patches), batch_size):
            x = torch.from_numpy(patches[start:start + batch_size]).to(device)
            out = net(x)[layer].float()
            axes = tuple(range(1, out.ndim - 1))  # frames (and mel rows for vgg)
            if axes:
                means.append(out.mean(dim=axes).cpu().numpy())
                maxes.append(out.amax(dim=axes).cpu().numpy())
                variances.append(out.double().var(dim=axes, correction=0).cpu().numpy())
            else:
                vec = out.cpu().numpy()
                means.append(vec)
                maxes.append(vec)
                variances.append(np.zeros_like(vec))
    return np.concatenate(means), np.concatenate(maxes), np.concatenate(variances)


def _pool(stats, clip_index, n_clips, pooling):
    means, maxes, variances = stats
    counts = np.bincount(clip_index, minlength=n_clips).astype(np.float64)[:, None]
    if pooling == "max":
        out = np.full((n_clips, maxes.shape[1]), -np.inf)
        np.maximum.at(out, clip_index, maxes)
        return out.astype(np.float32)
    mean = np.zeros((n_clips, means.shape[1]))
    np.add.at(mean, clip_index, means)
    mean /= counts
    if pooling == "mean":
        return mean.astype(np.float32)
    # every patch has the same number of frames: the clip's variance is the mean
    # within-patch variance plus the variance of the patch means (no cancellation)
    spread = np.zeros_like(mean)
    np.add.at(spread, clip_index, variances + (means - mean[clip_index]) ** 2)
    std = np.sqrt(spread / counts)
    return np.hstack([mean, std]).astype(np.float32)


def _embed(X, *, sr, model, layer, pooling, batch_size, device, n_jobs, weights_dir,
           precision="fp32"):
    net = _network(model, weights_dir, device)
    patches, clip_index = _clip_patches(X, sr, n_jobs)
    stats = _patch_stats(net, patches, layer, batch_size, device, precision)
    return _pool(stats, clip_index, len(X), pooling)


def _layer_width(model, layer, weights_dir, device):
    net = _network(model, weights_dir, device)
    return net.embedding_dim(layer)


class MusicnnEmbedding(TransformerMixin, BaseEstimator):
    """Embeddings of waveforms by a musicnn network pretrained on music (Pons & Serra, 2019).

    Each clip is resampled to 16 kHz and cut into non-overlapping 3 s
    log-mel patches exactly as the official ``musicnn`` extractor does
    (:func:`~specgenre.musicnn.musicnn_patches`; a final partial patch is
    dropped); the patches go through the pretrained network in batches and
    the chosen layer is pooled over all of a clip's patches (and over time
    within them for frame-level layers) into one vector per clip. A 30 s
    GTZAN clip has ten patches; a 3 s segment (:class:`ClipSegmenter`) has
    exactly one, so ``ClipSegmenter(3.0)`` + :class:`TrackAggregator` give
    per-segment rows.

    The official weights come from the ``musicnn`` distribution
    (``pip install --no-deps musicnn``) and are converted once to a torch
    state dict (:func:`~specgenre.musicnn.load_musicnn`); TensorFlow is not
    needed.

    Parameters
    ----------
    model : {"MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"}, default="MSD_musicnn"
        Released network: trained on the Million Song Dataset (MSD, 50 tags
        including 15 genres) or MagnaTagATune (MTT); musicnn or its vgg
        baseline.
    layer : str, default="max_pool"
        Output to embed with (:func:`~specgenre.musicnn.musicnn_layers`).
        musicnn: ``"taggram"`` (50 tag probabilities), ``"timbral"`` (408),
        ``"temporal"`` (153), ``"cnn1"``, ``"cnn2"``, ``"cnn3"`` (64 each),
        ``"mean_pool"``, ``"max_pool"`` (753 each), ``"penultimate"`` (200);
        vgg: ``"taggram"``, ``"pool1"`` ... ``"pool5"`` (128 each).
        ``max_pool`` is what Pons & Serra's transfer-learning recipe uses.
    pooling : {"mean", "max", "mean_std"}, default="mean"
        How a clip's patches (and the frames of frame-level layers such as
        ``cnn1`` or ``pool3``) are combined: mean, maximum, or mean and
        standard deviation concatenated (twice the width). There is no
        per-patch option, since a transformer keeps one row per input row:
        cut clips with ``ClipSegmenter(3.0)`` first for one row per patch.
    sr : int, default=22050
        Sample rate of the waveforms (resampled to 16 kHz inside with
        soxr_hq, as ``librosa.load(..., sr=16000)`` does).
    batch_size : int, default=64
        Patches per forward pass.
    device : str, default="cpu"
        Torch device of the network (``"cuda"`` for a GPU).
    n_jobs : int or None, default=None
        Threads computing the clips' log-mel patches (resampling and mel
        spectrograms). The network's threads are torch's own setting.
    weights_dir : str, path-like or None, default=None
        Folder with the official checkpoints (``weights_dir/<model>/.index``)
        instead of the installed ``musicnn`` package.
    precision : {"fp32", "bf16", "auto"}, default="fp32"
        Arithmetic of the network's convolutions and matrix products.
        ``"fp32"`` gives the official outputs (to ~1e-4 relative);
        ``"bf16"`` runs them in bfloat16 under ``torch.autocast`` (float32
        accumulation): 2-3x faster on CPUs with native bfloat16
        (AVX512_BF16/AMX), at 1-3 % of each layer's range from float32
        (``benchmarks/bench_musicnn.py`` prints the differences); ``"auto"``
        is ``"bf16"`` where the device has native bfloat16, else ``"fp32"``.

    Attributes
    ----------
    n_features_in_ : int
        Samples per waveform seen in :meth:`fit`.
    n_features_out_ : int
        Width of the embedding.
    tags_ : tuple of str
        Tag names of the model's taggram (the feature names when
        ``layer="taggram"``).

    See Also
    --------
    top_tags : a clip's most likely tags.
    MusicnnClassifier : fine-tunes the network itself.

    Notes
    -----
    The network is loaded in :meth:`fit` and kept in a per-process cache,
    not in the estimator, so a fitted embedding pickles without torch state
    and reloads the (converted, cached) weights on first use elsewhere.
    Loading raises :class:`~specgenre.musicnn.MusicnnWeightsNotFoundError`
    (a :class:`FileNotFoundError`) naming the install command when the
    weights are missing.

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre import MusicnnEmbedding
    >>> X = np.random.default_rng(0).normal(0, 0.1, (2, 3 * 22050)).astype(np.float32)
    >>> emb = MusicnnEmbedding(layer="penultimate").fit(X)  # doctest: +SKIP
    >>> emb.transform(X).shape  # doctest: +SKIP
    (2, 200)
    """

    _per_sample_output = True  # one output per sample, nothing learned: see _cache

    _constraints = {
        "model": [StrOptions(set(MUSICNN_MODELS))],
        "layer": [str],
        "pooling": [StrOptions(set(_POOLINGS))],
        "sr": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str],
        "n_jobs": [numbers.Integral, None],
        "weights_dir": "no_validation",  # str or path-like, checked when loading
        "precision": [StrOptions(set(PRECISIONS))],
    }

    def __init__(self, model="MSD_musicnn", *, layer="max_pool", pooling="mean", sr=22050,
                 batch_size=64, device="cpu", n_jobs=None, weights_dir=None,
                 precision="fp32"):
        self.model = model
        self.layer = layer
        self.pooling = pooling
        self.sr = sr
        self.batch_size = batch_size
        self.device = device
        self.n_jobs = n_jobs
        self.weights_dir = weights_dir
        self.precision = precision

    def _weights_dir(self):
        import os

        return None if self.weights_dir is None else os.fspath(self.weights_dir)

    def _check_X(self, X, *, reset):
        X = validate_data(self, X, dtype=np.float32, ensure_all_finite=True, reset=reset)
        need = min_clip_samples(int(self.sr))
        if X.shape[1] < need:
            raise ValueError(
                f"MusicnnEmbedding needs clips of at least {need} samples at sr={self.sr} "
                f"(one 3 s musicnn patch, {need / self.sr:.3f} s); got clips of "
                f"{X.shape[1]} samples (n_features={X.shape[1]}; X has shape {X.shape}).")
        return X

    def fit(self, X, y=None):
        """Check the parameters and input and load the pretrained network.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms at ``sr``, each at least one patch (about 3 s) long.
        y : ignored

        Returns
        -------
        self : MusicnnEmbedding

        Raises
        ------
        MusicnnWeightsNotFoundError
            The official weights are not installed
            (``pip install --no-deps musicnn``) nor in ``weights_dir``.
        """
        validate_params(self)
        _check_layer(self.model, self.layer)
        self._check_X(X, reset=True)
        width = _layer_width(self.model, self.layer, self._weights_dir(), self.device)
        self.n_features_out_ = 2 * width if self.pooling == "mean_std" else width
        self.tags_ = tuple(MUSICNN_TAGS[self.model])
        return self

    def transform(self, X):
        """Embed each clip.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms with as many samples as in :meth:`fit`.

        Returns
        -------
        E : ndarray of shape (n_clips, n_features_out_), float32
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return _embed(X, sr=int(self.sr), model=self.model, layer=self.layer,
                      pooling=self.pooling, batch_size=int(self.batch_size),
                      device=self.device, n_jobs=self.n_jobs,
                      weights_dir=self._weights_dir(), precision=self.precision)

    def get_feature_names_out(self, input_features=None):
        """Names of the embedding's columns.

        ``"<layer>_<i>"`` (``"<layer>_std_<i>"`` for the second half with
        ``pooling="mean_std"``); the tag names for ``layer="taggram"``.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self)
        width = self.n_features_out_ // (2 if self.pooling == "mean_std" else 1)
        if self.layer == "taggram":
            base = list(self.tags_)
        else:
            base = [f"{self.layer}_{i}" for i in range(width)]
        if self.pooling == "mean_std":
            std = ([f"{t}_std" for t in base] if self.layer == "taggram"
                   else [f"{self.layer}_std_{i}" for i in range(width)])
            base = base + std
        return np.asarray(base, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = self.device != "cpu"
        return tags


def top_tags(X, *, sr=22050, model="MSD_musicnn", n=5, batch_size=64, device="cpu",
             n_jobs=None, weights_dir=None, precision="fp32"):
    """The ``n`` most likely tags of each clip, as the official ``musicnn`` tagger gives them.

    As ``musicnn.tagger.top_tags``: the taggram (sigmoid tag probabilities)
    of each non-overlapping 3 s patch, averaged over the clip's patches, and
    the ``n`` largest averages in decreasing order. MSD models know 50 tags
    of the Million Song Dataset (genres such as ``"rock"``, ``"jazz"``,
    moods, eras, instruments, ``"female vocalists"``); MTT models 50 tags of
    MagnaTagATune (:data:`~specgenre.musicnn.MUSICNN_TAGS`).

    Parameters
    ----------
    X : array-like of shape (n_clips, n_samples) or (n_samples,)
        Waveforms at ``sr`` (at least about 3 s each), or one waveform.
    sr : int, default=22050
        Their sample rate (resampled to 16 kHz inside). Pass a file's own
        rate to get exactly the official tagger's input.
    model : {"MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"}, default="MSD_musicnn"
    n : int, default=5
        Tags per clip (at most the model's 50).
    batch_size, device, n_jobs, weights_dir, precision
        As in :class:`MusicnnEmbedding`.

    Returns
    -------
    tags : list of list of (str, float)
        For each clip, ``n`` pairs ``(tag, mean probability)``, most likely
        first; a single list of pairs when ``X`` is one waveform.

    Raises
    ------
    MusicnnWeightsNotFoundError
        The official weights are not installed (``pip install --no-deps musicnn``).

    Examples
    --------
    >>> from specgenre.musicnn import top_tags
    >>> top_tags(y, sr=22050, n=3)  # doctest: +SKIP
    [('rock', 0.61), ('alternative', 0.33), ('indie', 0.27)]
    """
    check_model(model)
    n_tags = len(MUSICNN_TAGS[model])
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= n_tags:
        raise ValueError(f"n must be an integer in [1, {n_tags}]; got {n!r}.")
    X = np.asarray(X)
    single = X.ndim == 1
    emb = MusicnnEmbedding(model, layer="taggram", pooling="mean", sr=sr,
                           batch_size=batch_size, device=device, n_jobs=n_jobs,
                           weights_dir=weights_dir, precision=precision)
    P = emb.fit_transform(X[None, :] if single else X)
    order = np.argsort(-P, axis=1, kind="stable")[:, :n]
    out = [[(emb.tags_[j], float(p[j])) for j in row] for p, row in zip(P, order)]
    return out[0] if single else out
