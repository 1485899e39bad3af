"""Fine-tuning musicnn: its log-mel patches as a transformer, the network as a classifier."""

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from .._layers import BATCH_NORM_TYPES
from .._parallel import parallel_map
from .._torchbase import COMMON_DOC, SpectrogramClassifierBase, common_params
from .._validation import Interval, StrOptions, validate_params
from ._estimators import min_clip_samples
from ._frontend import HOP_LENGTH, MUSICNN_SR, N_FRAMES, N_MELS, musicnn_patches
from ._weights import MUSICNN_MODELS, load_musicnn

__all__ = ["MusicnnPatches", "MusicnnClassifier"]


def _max_one_patch_samples(sr):
    """Most samples at ``sr`` that still give one patch (two need 374 frames)."""
    n16 = (2 * N_FRAMES - 1) * HOP_LENGTH - 1  # 1 + n16 // 256 < 374
    # ceil(n * 16000 / sr) <= n16  <=>  n * 16000 <= n16 * sr
    return int(n16 * int(sr) // MUSICNN_SR)


class MusicnnPatches(TransformerMixin, BaseEstimator):
    """musicnn's log-mel input of 3 s waveforms, shaped as spectrogram images.

    Each row, a waveform of about 3 s (one musicnn patch: from ~2.98 s to
    ~5.96 s), becomes the official extractor's log-mel patch
    (:func:`~specgenre.musicnn.musicnn_patches`: 16 kHz, 96 mel bands, 187
    frames, ``log10(10000 x + 1)``), transposed to the library's image
    layout ``(1, 96 mel bands, 187 frames)`` so that
    :class:`MusicnnClassifier`'s SpecAugment masks act on frequency and
    time like everywhere else. Longer rows are refused rather than cut:
    segment clips with ``ClipSegmenter(3.0)`` first.

    Parameters
    ----------
    sr : int, default=22050
        Sample rate of the waveforms.
    n_jobs : int or None, default=None
        Threads computing the patches.

    Attributes
    ----------
    n_features_in_ : int
        Samples per waveform seen in :meth:`fit`.

    See Also
    --------
    MusicnnClassifier : fine-tunes musicnn on these patches.
    """

    _per_sample_output = True  # one output per sample, nothing learned: see _cache

    _constraints = {
        "sr": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, sr=22050, *, n_jobs=None):
        self.sr = sr
        self.n_jobs = n_jobs

    def _check_X(self, X, *, reset):
        X = validate_data(self, X, dtype=np.float32, ensure_all_finite=True, reset=reset)
        lo, hi = min_clip_samples(int(self.sr)), _max_one_patch_samples(int(self.sr))
        if not lo <= X.shape[1] <= hi:
            raise ValueError(
                f"MusicnnPatches takes waveforms of one 3 s musicnn patch: {lo} to {hi} samples "
                f"at sr={self.sr}; got {X.shape[1]} samples. Cut longer clips with "
                "ClipSegmenter(3.0) first (e.g. inside a TrackAggregator).")
        return X

    def fit(self, X, y=None):
        """Check the parameters and the waveform length.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            Waveforms of about 3 s at ``sr``.
        y : ignored

        Returns
        -------
        self : MusicnnPatches
        """
        validate_params(self)
        self._check_X(X, reset=True)
        return self

    def transform(self, X):
        """The log-mel patch of each waveform.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples)
            As in :meth:`fit`.

        Returns
        -------
        patches : ndarray of shape (n_clips, 1, 96, 187), float32
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        sr = int(self.sr)
        parts = parallel_map(lambda y: musicnn_patches(y, sr)[0].T, list(X),
                             n_jobs=self.n_jobs, prefer="threads")
        return np.ascontiguousarray(np.stack(parts)[:, None])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class _FrozenBatchNorm(nn.Module):
    """A batch-norm layer fixed in eval mode: its statistics and affine as buffers.

    Not a batch-norm layer, so the library's batch-norm recalibration leaves it
    alone; it keeps the attributes (``running_mean``, ``weight``, ...) that
    musicnn's inference front end reads.
    """

    def __init__(self, bn):
        super().__init__()
        ones, zeros = torch.ones_like(bn.running_var), torch.zeros_like(bn.running_mean)
        self.register_buffer("running_mean", bn.running_mean.detach().clone())
        self.register_buffer("running_var", bn.running_var.detach().clone())
        self.register_buffer("weight", ones if bn.weight is None else bn.weight.detach().clone())
        self.register_buffer("bias", zeros if bn.bias is None else bn.bias.detach().clone())
        self.eps = bn.eps
        self.train(False)

    def train(self, mode=True):
        return super().train(False)

    def forward(self, x):
        return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                        self.bias, False, 0.0, self.eps)


def _freeze_batchnorm(module):
    for name, child in module.named_children():
        if isinstance(child, BATCH_NORM_TYPES):
            setattr(module, name, _FrozenBatchNorm(child))
        else:
            _freeze_batchnorm(child)


class MusicnnModule(nn.Module):
    """A pretrained musicnn/vgg tagger with a new classification head.

    Input: patches ``(batch, 1, 96, 187)`` (:class:`MusicnnPatches`);
    output: ``(batch, n_classes)`` logits. ``embed`` gives the input of the
    head (``penultimate`` for musicnn, the flattened ``pool5`` for vgg).

    Parameters
    ----------
    net : MusicnnNet or VggNet
        The pretrained tagger (:func:`~specgenre.musicnn.load_musicnn`); its
        tag layer is replaced.
    n_classes : int
    freeze : {"body", None}
        "body": the pretrained layers are fixed (no gradients, batch norm
        as fixed affine maps, dropout off); only the new head learns.
    dropout : float
        Dropout before the head.
    checkpointing : bool, default=False
        musicnn's front end (its largest activations, at full resolution)
        trains keeping only its input and batch statistics, and recomputes
        each filter bank a few patches at a time in the backward pass
        (:func:`~specgenre._layers.chunked_conv_bn`). No effect on
        vgg or with ``freeze="body"``.
    """

    def __init__(self, net, n_classes, *, freeze=None, dropout=0.5, checkpointing=False):
        super().__init__()
        self.net = net
        self.freeze = freeze
        self.checkpointing = bool(checkpointing)
        body = net.body
        for block in [*getattr(body, "timbral", ()), *getattr(body, "temporal", ())]:
            block.checkpointing = self.checkpointing
        net.head_dropout = nn.Dropout(dropout)
        net.head = nn.Linear(net.head_in_features, n_classes)
        if freeze == "body":
            _freeze_batchnorm(net.body)
            for p in net.body.parameters():
                p.requires_grad_(False)
            net.body.eval()

    def train(self, mode=True):
        super().train(mode)
        if self.freeze == "body":
            self.net.body.eval()
        return self

    def embed(self, x):
        patches = x[:, 0].transpose(1, 2)  # (B, 96, 187) -> musicnn's (B, 187, 96)
        return self.net.head_input(self.net.forward_features(patches))

    def forward(self, x):
        return self.net.head(self.net.head_dropout(self.embed(x)))


class MusicnnClassifier(SpectrogramClassifierBase):
    __doc__ = """musicnn pretrained on music, fine-tuned as a genre classifier (skorch).

    The official pretrained network (:func:`~specgenre.musicnn.load_musicnn`)
    gets a new head, ``Linear(200, n_classes)`` after dropout for musicnn
    models, and is trained on musicnn's log-mel patches
    ``(n, 1, 96, 187)`` from :class:`MusicnnPatches`. With ``freeze="body"``
    only the head learns; with ``freeze=None`` the whole network is
    fine-tuned. Training is the library's (as :class:`ResNet18Classifier`):
    AdamW, a stratified, group-aware inner validation split, early stopping
    and learning-rate halving on plateaus, SpecAugment and mixup, seeded by
    ``random_state``; batch-norm statistics are recomputed on the training
    data after training (not those of a frozen body).

    For clips, put it behind :class:`MusicnnPatches` and segment them::

        TrackAggregator(make_pipeline(MusicnnPatches(), MusicnnClassifier()),
                        segmenter=ClipSegmenter(3.0), voting="soft")

    (the row ``musicnn_finetune_3s_prob``): the segments' clip numbers
    reach :meth:`fit` as ``groups``, so the inner validation split keeps the
    segments of a clip together.

    Parameters
    ----------
    model : {{"MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"}}, default="MSD_musicnn"
        Pretrained network to start from.
    freeze : {{"body", None}}, default=None
        "body": train the new head only (the pretrained layers stay as they
        are, batch norm included); None: fine-tune everything.
    checkpointing : bool, default=False
        Fine-tuning musicnn, keep less for the backward pass: the front end
        keeps only its input and batch statistics, and recomputes each filter
        bank a few patches at a time there. The same outputs, gradients and
        batch-norm statistics up to float32 round-off (tested). No effect on
        vgg or with ``freeze="body"``. ``specgenre train`` turns it on.
    weights_dir : str, path-like or None, default=None
        Folder with the official checkpoints instead of the installed
        ``musicnn`` package.
{common}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    net_ : skorch.NeuralNetClassifier
        The trained network (``net_.module_`` is a ``MusicnnModule``).
    n_features_in_ : int
        ``96 * 187``.
    input_shape_ : tuple
        ``(1, 96, 187)``.
    n_valid_, n_epochs_, best_epoch_ : int
        Validation samples, epochs run, epoch whose weights were kept.
    class_weight_ : ndarray of shape (n_classes,)
        Weight of each class in the training loss (ones unless
        ``class_weight="balanced"``).

    Notes
    -----
    ``db_range`` and ``freq_pool`` belong to the signature shared by the
    library's networks and do not apply here: musicnn's input has its own
    fixed scale and 96 mel bands (``freq_pool`` must stay 1, ``db_range``
    is ignored). Loading raises
    :class:`~specgenre.musicnn.MusicnnWeightsNotFoundError` (a
    :class:`FileNotFoundError`) naming ``pip install --no-deps musicnn``
    when the weights are missing. Every epoch runs the network over every
    training patch (forward only with ``freeze="body"``, forward and backward
    otherwise), several times the cost of embedding them once with
    :class:`MusicnnEmbedding`: on a CPU, fine-tuning on more than a few
    hundred segments wants a GPU (``device="cuda"``).
    """.format(common=COMMON_DOC.format(
        max_epochs=20, lr_type=" or None", lr="None",
        lr_extra=" None: 1e-3 with ``freeze=\"body\"``, 1e-4 when fine-tuning everything.",
        dropout=0.5))

    _constraints = {
        **SpectrogramClassifierBase._constraints,
        "model": [StrOptions(set(MUSICNN_MODELS))],
        "freeze": [StrOptions({"body"}), None],
        "checkpointing": ["boolean"],
        "weights_dir": "no_validation",
        "lr": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    def __init__(self, model="MSD_musicnn", *, freeze=None, checkpointing=False,
                 weights_dir=None, max_epochs=20,
                 lr=None, batch_size=32, weight_decay=1e-2, patience=5, valid_fraction=0.1,
                 freq_mask=0, time_mask=0, n_freq_masks=1, n_time_masks=1, mixup_alpha=0.0,
                 db_range=(-80.0, 0.0), freq_pool=1, dropout=0.5, class_weight=None,
                 device="cpu", precision="auto",
                 n_jobs=None, callbacks=None, random_state=None, verbose=0):
        self.model = model
        self.freeze = freeze
        self.checkpointing = checkpointing
        self.weights_dir = weights_dir
        super().__init__(**common_params(locals()))

    def _effective_lr(self):
        if self.lr is not None:
            return self.lr
        return 1e-3 if self.freeze == "body" else 1e-4

    def _check_params(self):
        if self.input_shape_ != (1, N_MELS, N_FRAMES):
            raise ValueError(
                f"MusicnnClassifier takes musicnn patches (n, 1, {N_MELS}, {N_FRAMES}) from "
                f"MusicnnPatches; got samples of shape {self.input_shape_}.")
        if self.freq_pool != 1:
            raise ValueError("freq_pool does not apply to MusicnnClassifier (musicnn's input "
                             f"is fixed at {N_MELS} mel bands); leave it at 1, got "
                             f"{self.freq_pool}.")

    def _build_module(self, n_classes, input_shape):
        import os

        weights_dir = None if self.weights_dir is None else os.fspath(self.weights_dir)
        net = load_musicnn(self.model, weights_dir=weights_dir)
        return MusicnnModule(net, n_classes, freeze=self.freeze, dropout=self.dropout,
                             checkpointing=self.checkpointing)
