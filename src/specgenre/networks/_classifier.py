"""The CNN and ResNet18 spectrogram classifiers (PyTorch through skorch).

Their training machinery is :class:`~specgenre._torchbase.SpectrogramClassifierBase`;
here are only the networks' own parameters and modules.
"""

import numbers

from .._torchbase import COMMON_DOC, SpectrogramClassifierBase, check_db_range, common_params
from .._validation import Interval

__all__ = ["CNNClassifier", "ResNet18Classifier"]


class CNNClassifier(SpectrogramClassifierBase):
    __doc__ = """Small convolutional network on spectrograms (skorch), as a scikit-learn classifier.

    The network (:class:`~specgenre.networks._modules.SpectrogramCNN`) is
    the study's kind of small CNN: ``len(channels)`` blocks of 3x3
    convolution, batch normalisation, ReLU and 2x2 max-pooling (16, 32, 64,
    128 channels), global average pooling, dropout and a linear layer. It
    accepts any spectrogram size (mel 128 x 130 for 3 s, 513 x 1292 dB
    STFT for 30 s, ...). Trained with AdamW on the cross-entropy, with
    early stopping on an inner validation split (by group when
    :meth:`fit` gets ``groups``) that restores the best weights.

    Defaults: AdamW at ``lr=1e-3`` and batch size 32 are the usual Adam
    settings for small spectrogram CNNs trained from scratch (e.g. Choi et
    al. 2017, and the study's notebooks); ``max_epochs=30`` with
    ``patience=5`` lets early stopping, not the epoch budget, end training
    on GTZAN-sized data (~10 segments per clip, 800 training clips). They
    were not tuned on full GTZAN here (no GPU, 2 shared CPU cores); the
    tests check that the defaults learn an easy synthetic problem.

    Parameters
    ----------
    channels : tuple of int, default=(16, 32, 64, 128)
        Output channels of the convolution blocks.
    checkpointing : bool, default=False
        Recompute instead of keep: in training the first block (the largest
        activations, at full resolution) keeps only its input and the batch
        statistics, and its backward pass recomputes the convolution a few
        samples at a time. The same outputs, gradients and batch-norm
        statistics up to float32 round-off (tested). ``specgenre train`` turns
        it on; see :doc:`/user_guide/results` for the memory it saves.
""" + COMMON_DOC.format(max_epochs=30, lr="1e-3", lr_type="", lr_extra="",
                         dropout="0.3") + """

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    le_ : LabelEncoder
        Encoder of the labels into the network's output indices.
    n_features_in_ : int
        Values per sample (``channels * freq * frames``; ``n_frames`` for
        2-D input).
    feature_names_in_ : ndarray of str
        Column names, when fitted on a 2-D DataFrame.
    input_shape_ : tuple of int
        ``(channels, freq, frames)`` of the training spectrograms; the input
        of prediction must have the same shape.
    net_ : skorch.NeuralNetClassifier
        The trained skorch net (``net_.module_`` is the PyTorch module,
        ``net_.history`` the per-epoch losses).
    n_valid_ : int
        Samples in the inner validation split (0: none was made).
    class_weight_ : ndarray of shape (n_classes,)
        Weight of each class (order of ``classes_``) in the training loss:
        ones unless ``class_weight="balanced"``.
    n_epochs_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (1-based).

    See Also
    --------
    ResNet18Classifier : Torchvision's ResNet18, optionally ImageNet-pretrained.
    SpectrogramTransformer : Waveforms to the spectrograms these take.
    TrackAggregator : Clip predictions by voting over segments.

    Notes
    -----
    Inputs are streamed: training batches are gathered from ``X`` (one
    copy per batch, no copy of the data set per epoch), and the validation
    split is a pair of index lists over ``X``.

    After training (and after early stopping restored the best epoch), the
    batch-normalisation statistics used for prediction are recomputed with
    the final weights over (at most 2048 of) the training samples, one
    forward pass without gradients. The running averages kept during
    training lag behind the weights and, after few steps (small data),
    still hold much of their initial values, which can make a well-trained
    network predict a single class in eval mode.

    A model fitted on CUDA predicts on CUDA; unpickled where CUDA is not
    available it falls back to the CPU (skorch does this).

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre.networks import CNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(-40, 10, size=(40, 1, 16, 20)).astype(np.float32)
    >>> y = np.repeat(["jazz", "rock"], 20)
    >>> X[y == "rock", :, :8] += 20   # louder low bands for rock
    >>> clf = CNNClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape, clf.transform(X).shape
    ((40, 2), (40, 128))
    """

    _constraints = {
        **SpectrogramClassifierBase._constraints,
        "channels": ["array-like"],
        "checkpointing": ["boolean"],
    }

    def __init__(self, *, channels=(16, 32, 64, 128), checkpointing=False, max_epochs=30,
                 lr=1e-3, batch_size=32, weight_decay=1e-2, patience=5, valid_fraction=0.1,
                 freq_mask=0, time_mask=0, n_freq_masks=1, n_time_masks=1, mixup_alpha=0.0,
                 db_range=(-80.0, 0.0), freq_pool=1, dropout=0.3, class_weight=None,
                 device="cpu", precision="auto",
                 n_jobs=None, callbacks=None, random_state=None, verbose=0):
        self.channels = channels
        self.checkpointing = checkpointing
        super().__init__(**common_params(locals()))

    def _check_params(self):
        channels = list(self.channels)
        if not channels or not all(
                isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 1
                for c in channels):
            raise ValueError(
                f"channels must be a non-empty sequence of positive ints; got {self.channels!r}.")

    def _build_module(self, n_classes, input_shape):
        from ._modules import SpectrogramCNN

        return SpectrogramCNN(
            n_classes, in_channels=input_shape[0], channels=tuple(int(c) for c in self.channels),
            dropout=self.dropout, db_range=check_db_range(self.db_range),
            freq_pool=self.freq_pool, checkpointing=self.checkpointing)


class ResNet18Classifier(SpectrogramClassifierBase):
    __doc__ = """ResNet18 (torchvision) on one-channel spectrograms (skorch), as a scikit-learn classifier.

    The network is ``torchvision.models.resnet18`` with ``fc`` replaced by a
    ``Linear(512, n_classes)``, from scratch or started from torchvision's
    ImageNet weights (``ResNet18_Weights.IMAGENET1K_V1``).

    **One channel, no copies.** Spectrograms have one channel; ImageNet
    filters expect three. Repeating the spectrogram as ``[x, x, x]`` would
    triple the input; instead the first convolution keeps its 3-channel
    weight ``W`` and applies ``sum_c W_c`` to the one channel, which gives
    exactly the output of the 3-channel convolution of ``[x, x, x]``
    (:class:`~specgenre.networks._modules.GrayscaleConv2d`).

    **Input scaling.** dB spectrograms (about -80..0 dB) are not images, and
    the pretrained filters expect ImageNet-normalised pixels. A fixed affine
    map (``db_range``) takes dB to ``[0, 1]`` (-80 dB -> 0: black, 0 dB -> 1:
    white), like a grey image, then torchvision's per-channel normalisation
    ``(u - mean_c) / std_c`` is applied, as for the images the weights were
    trained on; a fixed map, rather than per-image or per-batch
    standardisation, keeps absolute levels comparable across spectrograms
    and needs no fitted statistics. With the summed filters this
    normalisation is folded into the convolution exactly: per channel the
    input is ``scale_c x + shift_c`` with ``scale_c = 1 / ((hi - lo)
    std_c)`` and ``shift_c = (-lo / (hi - lo) - mean_c) / std_c``, so the
    convolution is ``(sum_c scale_c W_c) * x`` plus the constant part
    ``(sum_c shift_c W_c) * 1_inside``, the zero-padded image of ones (the
    3-channel network pads the *normalised* image with zeros, so the
    constant must vanish in the padding). The module's output equals
    torchvision's ResNet18 on ``Normalize(mean, std)([u, u, u])`` to float
    round-off (tested). The same map is used from scratch.

    **Weights.** ``pretrained=True`` reads the weights from the torch hub
    cache, ``torch.hub.get_dir()/checkpoints/resnet18-f37072fd.pth``
    (``$TORCH_HOME/hub/checkpoints``), where torchvision caches them; if
    missing, they are downloaded (10 s socket timeout) unless the
    environment variable ``SPECGENRE_OFFLINE`` is set. If they can be had
    neither way, :meth:`fit` raises
    :class:`~specgenre.networks.PretrainedWeightsNotFoundError`, a
    :class:`FileNotFoundError` naming the file, its expected path and the URL.

    Defaults: AdamW, batch size 32; ``lr=None`` means 1e-4 when fine-tuning
    pretrained weights (the usual rate for fine-tuning ImageNet CNNs on
    spectrograms, e.g. Palanisamy et al. 2020, which reached ~90% on GTZAN
    with pretrained ImageNet models; a larger rate erases the pretrained
    filters in the first epochs) and 1e-3 from scratch. ``max_epochs=20``
    with ``patience=5``: fine-tuning converges in a few epochs, and early
    stopping ends training from scratch. Not tuned on full GTZAN here (no
    GPU, 2 shared CPU cores).

    Parameters
    ----------
    pretrained : bool, default=False
        Start from torchvision's ImageNet weights (all layers are trained).
    checkpointing : bool, default=False
        Activation checkpointing: during training keep only the input of the
        stem (``conv1`` to ``maxpool``) and of each residual block, and run each
        again in its backward pass, instead of keeping every intermediate result
        of the batch; the stem's backward pass recomputes its convolution a few
        samples at a time. The same outputs, gradients and batch-norm statistics
        up to float32 round-off (tested), for about a quarter more compute.
        ``specgenre train`` turns it on; see :doc:`/user_guide/results` for the
        memory it saves.
""" + COMMON_DOC.format(
        max_epochs=20, lr="None", lr_type=" or None",
        lr_extra=" None: 1e-4 when ``pretrained``, else 1e-3.", dropout="0.0") + """

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    le_ : LabelEncoder
        Encoder of the labels into the network's output indices.
    n_features_in_ : int
        Values per sample (``freq * frames``).
    input_shape_ : tuple of int
        ``(1, freq, frames)`` of the training spectrograms.
    net_ : skorch.NeuralNetClassifier
        The trained skorch net (``net_.module_.net`` is the torchvision model).
    n_valid_ : int
        Samples in the inner validation split (0: none was made).
    class_weight_ : ndarray of shape (n_classes,)
        Weight of each class (order of ``classes_``) in the training loss:
        ones unless ``class_weight="balanced"``.
    n_epochs_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (1-based).

    See Also
    --------
    CNNClassifier : A small CNN, several times faster.

    Notes
    -----
    As for :class:`CNNClassifier`, training batches are gathered from ``X``
    without copying the data set, and batch-normalisation statistics are
    recomputed on (at most 2048) training samples after training.

    Frequency resolution of dB input: by default (``freq_pool=1``) the
    network sees the study's 513 STFT bins (``n_fft=1024``, 21.5 Hz per bin
    at 22050 Hz), since the study's best rows (pretrained, 3 s, dB: 89-90%)
    used them. That costs ~4x the compute of 128 mel bands;
    ``freq_pool=4`` averages groups of 4 bins (129 rows of 86 Hz) inside
    the model for about the speed of mel input, at the price of the fine
    low-frequency resolution that distinguishes dB from mel input.

    Cost on 2 CPU cores (a rough guide): ~30 training segments/s for 3 s
    mel input (128 x 130), ~7/s for 3 s dB STFT input (513 x 130; ~4x more
    with ``freq_pool=4``), so full GTZAN training needs a GPU.

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre.networks import ResNet18Classifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(-40, 10, size=(20, 1, 32, 32)).astype(np.float32)
    >>> y = np.repeat(["jazz", "rock"], 10)
    >>> clf = ResNet18Classifier(max_epochs=1, random_state=0).fit(X, y)
    >>> clf.transform(X).shape
    (20, 512)
    """

    _constraints = {
        **SpectrogramClassifierBase._constraints,
        "pretrained": ["boolean"],
        "checkpointing": ["boolean"],
        "lr": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    def __init__(self, pretrained=False, *, checkpointing=False, max_epochs=20, lr=None,
                 batch_size=32, weight_decay=1e-2, patience=5, valid_fraction=0.1,
                 freq_mask=0, time_mask=0, n_freq_masks=1, n_time_masks=1, mixup_alpha=0.0,
                 db_range=(-80.0, 0.0), freq_pool=1, dropout=0.0, class_weight=None,
                 device="cpu", precision="auto",
                 n_jobs=None, callbacks=None, random_state=None, verbose=0):
        self.pretrained = pretrained
        self.checkpointing = checkpointing
        super().__init__(**common_params(locals()))

    def _effective_lr(self):
        if self.lr is not None:
            return self.lr
        return 1e-4 if self.pretrained else 1e-3

    def _check_params(self):
        if self.input_shape_[0] != 1:
            raise ValueError(
                f"ResNet18Classifier takes one-channel spectrograms (n, 1, freq, frames); "
                f"got {self.input_shape_[0]} channels.")

    def _build_module(self, n_classes, input_shape):
        from ._modules import ResNet18Module

        state = None
        if self.pretrained:
            from ._weights import load_resnet18_imagenet

            state = load_resnet18_imagenet()
        return ResNet18Module(n_classes, state_dict=state,
                              db_range=check_db_range(self.db_range),
                              freq_pool=self.freq_pool, dropout=self.dropout,
                              checkpointing=self.checkpointing)
