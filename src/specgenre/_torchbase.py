"""The training base of the library's PyTorch classifiers (skorch), as scikit-learn estimators.

:class:`SpectrogramClassifierBase` holds everything but the network: input
checks, the inner (group-aware) validation split, early stopping and
learning-rate decay, augmentation, seeding, batch-norm recalibration,
prediction and embeddings. :class:`~specgenre.CNNClassifier`,
:class:`~specgenre.ResNet18Classifier` (``specgenre.networks``) and
:class:`~specgenre.musicnn.MusicnnClassifier` are its subclasses. Imports torch
and skorch.
"""

import copy
import inspect
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.dataset import ValidSplit, unpack_data
from skorch.utils import to_tensor
from torch import nn
from torch.optim.swa_utils import update_bn

from ._augment import BatchAugmenter
from ._layers import BATCH_NORM_TYPES
from ._precision import PRECISIONS, autocast, resolve_precision
from ._spectrogram_input import check_spectrograms
from ._torchutil import resolve_device, seeded, torch_threads
from ._validation import Interval, StrOptions, validate_params
from ._validsplit import validation_split

__all__ = ["COMMON_DOC", "COMMON_PARAMS", "SpectrogramClassifierBase", "check_db_range",
           "common_params"]


# --------------------------------------------------------------------------
# helpers (module level: everything kept on a fitted estimator must pickle)
# --------------------------------------------------------------------------

#: Input dtypes kept as they are (the first is what others are converted to).
_DTYPES = (np.float32, np.float16)


def _collate(batch):
    """Stack a list of ``(x, y)`` samples into tensors (one copy: the batch)."""
    X = torch.from_numpy(np.stack([item[0] for item in batch])).float()  # float16 stored
    y = torch.from_numpy(np.asarray([item[1] for item in batch], dtype=np.int64))
    return X, y


def _canonical_strides(X):
    """The C-contiguous array ``X`` with the usual C strides also on its size-1 axes.

    NumPy and torch ignore the stride of a size-1 axis when deciding
    contiguity, but torch's convolutions use it to guess the memory format
    ((n, 1, freq, frames) can look channels-last), which changes the
    algorithm and so the float round-off. Same memory, no copy.
    """
    strides = np.cumprod((1,) + X.shape[:0:-1])[::-1] * X.itemsize
    strides = tuple(int(s) for s in strides)
    if X.strides == strides:
        return X
    return np.lib.stride_tricks.as_strided(X, shape=X.shape, strides=strides,
                                           writeable=X.flags.writeable)


class _SpectrogramNet(NeuralNetClassifier):
    """NeuralNetClassifier whose training step augments the batch (see BatchAugmenter).

    ``train_step_single`` is one of the methods skorch's documentation
    ("Customization: Training and validation") names for overriding to
    change how a batch is trained on; the optimizer step stays skorch's.
    """

    def __init__(self, module, *args, augmenter=None, precision="fp32", **kwargs):
        super().__init__(module, *args, **kwargs)
        self.augmenter = augmenter
        self.precision = precision

    def infer(self, x, **fit_params):
        """The module's float32 logits, its products computed in ``precision`` (autocast)."""
        with autocast(self.precision, self.device):
            return super().infer(x, **fit_params).float()

    def train_step_single(self, batch, **fit_params):
        aug = self.augmenter
        if aug is None or not aug.active:
            return super().train_step_single(batch, **fit_params)
        self.module_.train(True)
        self.criterion_.train(True)
        Xi, yi = unpack_data(batch)
        Xi = to_tensor(Xi, device=self.device)
        yi = to_tensor(yi, device=self.device)
        Xi, y_other, lam = aug(Xi, yi)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        if y_other is not None:
            loss = lam * loss + (1.0 - lam) * self.get_loss(y_pred, y_other, X=Xi, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}


class _BatchNormBeforeValidation(Callback):
    """Recompute batch-norm statistics from training samples before each validation pass.

    Validation then uses batch-norm statistics of the current weights, not the
    lagging running averages: on small data those still hold much of their
    initial values after an epoch, the validation loss then measures the wrong
    network, and early stopping picks the wrong epoch. Runs at the first
    validation batch of every epoch (skorch's ``on_batch_begin`` hook with
    ``training=False``).

    ``source_`` is ``(X, train_indices, rng)`` while fitting and None
    otherwise, so that a fitted model keeps no reference to the training data.
    """

    def __init__(self, batch_size, max_samples):
        self.batch_size = batch_size
        self.max_samples = max_samples

    def initialize(self):
        self.source_ = getattr(self, "source_", None)
        self.pending_ = False
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.pending_ = True

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training or not self.pending_ or self.source_ is None:
            return
        self.pending_ = False
        X, indices, rng = self.source_
        with autocast(net.precision, net.device):
            _recalibrate_batchnorm(net.module_, X, indices, self.batch_size, net.device, rng,
                                   max_samples=self.max_samples)


#: Most training samples used to recompute batch-norm statistics after training.
_BN_SAMPLES = 2048
#: ... and before each validation pass during training (one forward pass each epoch:
#: ~2% of an epoch's cost on 10,000 segments). When the training part has at most this
#: many samples, the statistics of the last validation pass are already exact for the
#: weights kept, and the pass after training is skipped.
_BN_VALID_SAMPLES = 512


def _recalibrate_batchnorm(module, X, indices, batch_size, device, rng, max_samples=_BN_SAMPLES):
    """Recompute the running statistics of every batch-norm layer on ``X[indices]``.

    The statistics tracked during training (exponential average, momentum
    0.1) lag behind the weights and, on small data (few steps), still hold
    much of their initial values (mean 0, variance 1), which can make the
    network in eval mode predict one class. Here
    :func:`torch.optim.swa_utils.update_bn` resets them and accumulates an
    exact average over training data with the current weights (no
    gradients), fed batches of similar sizes (never 1) drawn from at most
    ``max_samples`` training samples chosen at random (``rng``): this
    estimates the statistics far better than the ~10 last batches the
    running averages reflect, at a bounded cost. The module is left in
    eval mode.
    """
    if not any(isinstance(m, BATCH_NORM_TYPES) for m in module.modules()):
        return
    indices = np.asarray(indices)
    if len(indices) > max_samples:
        indices = rng.choice(indices, size=max_samples, replace=False)
    n_batches = max(1, -(-len(indices) // batch_size))
    batches = (torch.from_numpy(X[np.sort(chunk)]).float()
               for chunk in np.array_split(indices, n_batches))
    try:
        update_bn(batches, module, device=device)
    finally:
        module.eval()


def check_db_range(db_range):
    try:
        lo, hi = (float(v) for v in db_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"db_range must be a pair of numbers (low, high) in dB; got {db_range!r}."
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"db_range must be finite with low < high; got {db_range!r}.")
    return lo, hi


# --------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------

COMMON_DOC = """
    max_epochs : int, default={max_epochs}
        Most passes over the training data. Training stops earlier when the
        validation loss has not improved for ``patience`` epochs.
    lr : float{lr_type}, default={lr}
        Learning rate of AdamW.{lr_extra}
    batch_size : int, default=32
        Spectrograms per training step (and per prediction batch); at least
        2, because of batch normalisation.
    weight_decay : float, default=1e-2
        Decoupled weight decay of AdamW (PyTorch's default).
    patience : int or None, default=5
        Epochs without improvement of the validation loss (relative 1e-4)
        before training stops; the weights of the best epoch are then
        restored. The learning rate is halved after 2 epochs without
        improvement (``ReduceLROnPlateau``). None: no early stopping (all
        ``max_epochs`` are run and the last weights are kept), the learning
        rate is still reduced on plateaus. Both need a validation split.
    valid_fraction : float or None, default=0.1
        Share of the training data held out to monitor the validation loss:
        one of ``k = round(1 / valid_fraction)`` stratified folds, split by
        ``groups`` when :meth:`fit` gets them (so segments of one track are
        never on both sides). No validation split is made, and the
        validation-based schedule is off (all ``max_epochs`` are run), when
        this is None or 0 or when no class has ``k`` samples (or groups);
        ``n_valid_`` is then 0. A class with fewer than ``k`` stays whole on
        the training side, the others are stratified (unbalanced data).
    freq_mask : int, default=0
        SpecAugment: largest width, in frequency rows, of a frequency mask
        (0: none). Masked values are set to the spectrogram's mean. Applied
        to training batches only, like all augmentation.
    time_mask : int, default=0
        SpecAugment: largest width, in frames, of a time mask (0: none).
    n_freq_masks : int, default=1
        Frequency masks per spectrogram.
    n_time_masks : int, default=1
        Time masks per spectrogram.
    mixup_alpha : float, default=0.0
        Mixup of training batches with ``lam ~ Beta(alpha, alpha)`` (0: off).
    db_range : (float, float), default=(-80.0, 0.0)
        Values of the input, in dB, mapped to 0 and 1 by a fixed affine map
        before the network: :class:`SpectrogramTransformer` images lie in
        ``[-top_db, 0]`` (``top_db=80``). Values outside the range are not
        clipped.
    freq_pool : int, default=1
        Average this many neighbouring frequency rows before the network
        (inside the model, no copy of the data): e.g. 4 turns 513 STFT bins
        into 129 rows, ~4x less compute. 1 keeps the input's resolution.
    dropout : float, default={dropout}
        Dropout before the last (linear) layer.
    class_weight : {{"balanced"}}, dict or None, default=None
        Weights of the classes in the cross-entropy loss: a dict ``{{label:
        weight}}`` (1 for a label it leaves out), or ``"balanced"``:
        scikit-learn's inverse class frequency, ``n / (n_classes * n_c)``
        with ``n_c`` the samples of class ``c`` among the ``n`` samples
        trained on (the training part of the inner validation split), so
        that each genre weighs the same in the loss however few tracks it
        has; the validation loss is weighted alike. None: every sample
        weighs 1. On segments labelled by their clip, equal segment counts
        per clip give the clip-level weights. ``class_weight_`` holds the
        weights used.
    device : str, default="cpu"
        Torch device, ``"cpu"`` or ``"cuda"`` (``"cuda:N"``). Asking for CUDA
        where it is not available raises a RuntimeError at :meth:`fit`.
    precision : {{"auto", "bf16", "fp32"}}, default="auto"
        Arithmetic of the network's convolutions and matrix products, in
        training and prediction: ``"bf16"`` runs them in bfloat16 under
        :func:`torch.autocast` (products accumulated in float32; losses,
        optimiser state and outputs stay float32), ``"fp32"`` in float32
        throughout. ``"auto"``: ``"bf16"`` where the device computes bfloat16
        natively (a CPU with AVX512_BF16 or AMX, a CUDA GPU that supports
        it), ``"fp32"`` elsewhere; ``precision_`` holds the choice made. On
        such CPUs bfloat16 trains ~1.5-2x faster (see the results page);
        results then differ from float32 ones by bfloat16 round-off, so ask
        for ``"fp32"`` to compare with reference figures or across machines.
    n_jobs : int or None, default=None
        Torch threads used during :meth:`fit` and prediction (restored
        afterwards); -1 means all CPUs, None leaves torch's setting.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks (``Callback`` or ``(name, Callback)``) added to the
        net's defaults, e.g. ``skorch.callbacks.ProgressBar()``. Copied at
        :meth:`fit`.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the weight initialisation, the batch
        order, dropout and augmentation (torch's global RNG is forked and
        restored around :meth:`fit`). The same int gives the same model on
        the CPU; CUDA kernels may add nondeterminism.
    verbose : int, default=0
        When > 0, print one line per epoch as training goes (skorch's
        ``PrintLog``): epoch, ``train_loss``, ``valid_acc`` and ``valid_loss``
        when there is a validation split (new best values coloured), the
        learning rate ``lr`` when it is scheduled, and ``dur``, the epoch's
        time in seconds. 0 prints nothing; the same figures are kept in
        ``net_.history`` either way."""


#: Parameters of the training machinery, taken by every spectrogram classifier.
COMMON_PARAMS = (
    "max_epochs", "lr", "batch_size", "weight_decay", "patience", "valid_fraction",
    "freq_mask", "time_mask", "n_freq_masks", "n_time_masks", "mixup_alpha", "db_range",
    "freq_pool", "dropout", "class_weight", "device", "precision", "n_jobs", "callbacks",
    "random_state", "verbose",
)


def common_params(values):
    """The shared parameters out of a subclass ``__init__``'s ``locals()``."""
    return {name: values[name] for name in COMMON_PARAMS}


class SpectrogramClassifierBase(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Training machinery shared by the skorch spectrogram classifiers.

    Everything but the network lives here: input checks, the inner
    (group-aware) validation split, early stopping and learning-rate decay,
    augmentation, seeding, batch-norm recalibration, prediction and
    embeddings. A classifier is a subclass that declares:

    * ``__init__``, keyword-only: the network's own parameters, then every
      name of ``COMMON_PARAMS`` with the defaults that suit the network
      (scikit-learn reads an estimator's parameters from its ``__init__``
      signature, so they are spelled out there, as ``BaseForest``'s
      subclasses do). The body stores the network's parameters and passes
      the common ones on, unchanged::

          def __init__(self, *, channels=(16, 32), max_epochs=30, lr=1e-3, ...,
                       verbose=0):
              self.channels = channels
              super().__init__(**common_params(locals()))

      A signature missing a common parameter, or a parameter without an
      entry in ``_constraints``, raises TypeError when the class
      is defined.
    * ``_constraints``: the base's dict plus the network's
      parameters.
    * ``_build_module(n_classes, input_shape)``: the ``torch.nn.Module``
      mapping ``(n, *input_shape)`` float32 dB input to ``(n, n_classes)``
      logits, with an ``embed(x)`` method giving the penultimate layer
      (:meth:`transform`). Called inside :meth:`fit` with torch's RNG seeded.
    * optionally ``_check_params()`` (checks beyond the constraints, run in
      :meth:`fit` once ``input_shape_`` is set) and ``_effective_lr()`` (the
      learning rate when ``lr`` allows None).
    * its docstring: the network's parameters, then
      ``COMMON_DOC.format(...)`` with its defaults.
    """

    _constraints = {
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "valid_fraction": [Interval(numbers.Real, 0, 1, closed="left"), None],
        "freq_mask": [Interval(numbers.Integral, 0, None, closed="left")],
        "time_mask": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_freq_masks": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_time_masks": [Interval(numbers.Integral, 0, None, closed="left")],
        "mixup_alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "db_range": ["array-like"],
        "freq_pool": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "device": [str],
        "precision": [StrOptions(set(PRECISIONS))],
        "n_jobs": [numbers.Integral, None],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, max_epochs, lr, batch_size, weight_decay, patience, valid_fraction,
                 freq_mask, time_mask, n_freq_masks, n_time_masks, mixup_alpha, db_range,
                 freq_pool, dropout, class_weight, device, precision, n_jobs, callbacks,
                 random_state, verbose):
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.patience = patience
        self.valid_fraction = valid_fraction
        self.freq_mask = freq_mask
        self.time_mask = time_mask
        self.n_freq_masks = n_freq_masks
        self.n_time_masks = n_time_masks
        self.mixup_alpha = mixup_alpha
        self.db_range = db_range
        self.freq_pool = freq_pool
        self.dropout = dropout
        self.class_weight = class_weight
        self.device = device
        self.precision = precision
        self.n_jobs = n_jobs
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        params = inspect.signature(cls.__init__).parameters
        varargs = [str(p) for p in params.values()
                   if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if varargs:
            raise TypeError(
                f"{cls.__name__}.__init__ must name every parameter (scikit-learn reads them "
                f"from the signature); found {', '.join(varargs)}.")
        missing = [name for name in COMMON_PARAMS if name not in params]
        if missing:
            raise TypeError(
                f"{cls.__name__}.__init__ must take every shared parameter of "
                f"SpectrogramClassifierBase (scikit-learn reads them from the signature); "
                f"missing: {', '.join(missing)}.")
        unconstrained = [name for name in params
                         if name != "self" and name not in cls._constraints]
        if unconstrained:
            raise TypeError(
                f"{cls.__name__}: no entry in _constraints for "
                f"{', '.join(unconstrained)}.")

    # ----------------------------------------------------------------- hooks
    def _build_module(self, n_classes, input_shape):  # pragma: no cover - abstract
        """The network: ``(n, *input_shape)`` dB input to ``(n, n_classes)`` logits."""
        raise NotImplementedError

    def _effective_lr(self):
        return self.lr

    # ------------------------------------------------------------ validation
    def _validate_X(self, X, *, reset):
        """float32 (or float16) C-contiguous ``(n, channels, freq, frames)``, copied only if needed.

        float16 is kept as it is (half the memory of stored spectrograms) and
        cast to float32 batch by batch; other dtypes become float32.

        2-D ``(n, F)`` is read as ``(n, 1, 1, F)`` (one row of ``F`` frames)
        and 3-D ``(n, freq, frames)`` as ``(n, 1, freq, frames)``.
        """
        X = check_spectrograms(self, X, reset=reset, dtype=list(_DTYPES), order="C")
        return _canonical_strides(X)

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, groups=None):
        """Train the network on spectrograms.

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, freq, frames)
            dB spectrograms, e.g. from :class:`SpectrogramTransformer`
            (``(n_samples, 1, freq, frames)``). 3-D input is read as one
            channel; 2-D input ``(n_samples, n_frames)`` as a single row of
            frames ``(n_samples, 1, 1, n_frames)``. Not copied when already
            float32 or float16 and C-contiguous; training batches are
            gathered from it (float16, half the memory, is cast to float32
            batch by batch).
        y : array-like of shape (n_samples,)
            Labels (e.g. genre strings); at least 2 classes.
        groups : array-like of shape (n_samples,), default=None
            Group of each sample (e.g. the track a 3 s segment comes from).
            Used only for the inner validation split, which then keeps each
            group on one side. :class:`TrackAggregator` passes the segments'
            clip numbers here.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        validate_params(self)
        if y is None:
            raise ValueError(
                f"requires y to be passed, but the target y is None: "
                f"{type(self).__name__} is a classifier.")
        X = self._validate_X(X, reset=True)
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        y = column_or_1d(y, warn=True)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels.")
        check_classification_targets(y)
        self.le_ = LabelEncoder().fit(y)
        self.classes_ = self.le_.classes_
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y; got 1 class: "
                f"{self.classes_[0]!r}.")
        y_enc = self.le_.transform(y).astype(np.int64)
        if groups is not None:
            groups = column_or_1d(np.asarray(groups), warn=False)
            if len(groups) != len(y):
                raise ValueError(f"groups has {len(groups)} entries for {len(y)} samples.")
        check_db_range(self.db_range)
        self._check_params()
        device = resolve_device(self.device)
        precision = resolve_precision(self.precision, device)

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        split = validation_split(y_enc, groups, self.valid_fraction, seed)
        n_train = len(y) if split is None else len(split[0])
        if split is None and self.valid_fraction:
            warnings.warn(
                f"{type(self).__name__}: no inner validation split (valid_fraction="
                f"{self.valid_fraction}): no class has enough "
                f"{'groups' if groups is not None else 'samples'} for a stratified split. "
                f"Training runs all max_epochs={self.max_epochs} epochs without early "
                "stopping or learning-rate decay; pass valid_fraction=None to silence this.",
                UserWarning,
                stacklevel=2,
            )

        callbacks = []
        if split is not None:
            callbacks.append(("lr_plateau", LRScheduler(
                policy="ReduceLROnPlateau", monitor="valid_loss", mode="min", factor=0.5,
                patience=2)))
            if self.patience is not None:
                callbacks.append(("early_stopping", EarlyStopping(
                    monitor="valid_loss", patience=self.patience, load_best=True)))
        recalibration = _BatchNormBeforeValidation(self.batch_size, _BN_VALID_SAMPLES)
        if split is not None:
            callbacks.append(("batchnorm_before_validation", recalibration))
        for i, cb in enumerate(self.callbacks or []):
            cb = copy.deepcopy(cb)
            callbacks.append(cb if isinstance(cb, tuple) else (f"user_{i}", cb))

        train_idx = np.arange(len(y)) if split is None else split[0]
        self.class_weight_ = np.ones(n_classes)
        if self.class_weight is not None:
            from sklearn.utils.class_weight import compute_class_weight

            self.class_weight_ = compute_class_weight(
                self.class_weight, classes=self.classes_, y=y[train_idx])

        with torch_threads(self.n_jobs), seeded(device, seed):
            module = self._build_module(n_classes, self.input_shape_)
            net = _SpectrogramNet(
                module,
                criterion=nn.CrossEntropyLoss,
                criterion__weight=(None if self.class_weight is None else
                                   torch.as_tensor(self.class_weight_, dtype=torch.float32)),
                optimizer=torch.optim.AdamW,
                lr=self._effective_lr(),
                optimizer__weight_decay=self.weight_decay,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                # the split is drawn above by scikit-learn's (group-aware) splitter;
                # skorch's ValidSplit takes it as a one-fold CV and yields the Subsets
                train_split=None if split is None else ValidSplit(cv=[split], stratified=False),
                iterator_train__shuffle=True,
                # a last batch of 1 would break batch normalisation: drop it (a
                # different sample each epoch, the order being shuffled)
                iterator_train__drop_last=(n_train % self.batch_size == 1),
                iterator_train__collate_fn=_collate,
                iterator_valid__collate_fn=_collate,
                callbacks=callbacks,
                classes=list(range(n_classes)),
                device=str(device),
                precision=precision,
                verbose=int(self.verbose),
                augmenter=BatchAugmenter(
                    freq_mask=self.freq_mask, time_mask=self.time_mask,
                    n_freq_masks=self.n_freq_masks, n_time_masks=self.n_time_masks,
                    mixup_alpha=self.mixup_alpha),
            )
            recalibration.source_ = (X, train_idx, np.random.RandomState(seed + 1))
            try:
                net.fit(X, y_enc)
            finally:
                recalibration.source_ = None  # no reference to the training data in the model
            # The statistics are those of the last validation pass, which has seen the
            # kept weights (early stopping restores an epoch's buffers with its weights):
            # exact when that pass used every training sample. Else recompute them.
            if split is None or n_train > _BN_VALID_SAMPLES:
                with autocast(precision, device):
                    _recalibrate_batchnorm(net.module_, X, train_idx, self.batch_size,
                                           device, np.random.RandomState(seed))
        self.net_ = net
        self.precision_ = precision
        self.n_valid_ = 0 if split is None else len(split[1])
        self.n_epochs_ = len(net.history)
        stopper = dict(net.callbacks_).get("early_stopping")
        self.best_epoch_ = int(stopper.best_epoch_) if stopper is not None else self.n_epochs_
        return self

    def _check_params(self):
        """Checks of subclass parameters beyond ``_constraints``."""

    # ------------------------------------------------------------ predict
    def _forward(self, X, method):
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        net = self.net_
        module = net.module_
        module.eval()
        fn = module.embed if method == "embed" else module
        out = []
        with torch_threads(self.n_jobs), torch.inference_mode(), \
                autocast(getattr(self, "precision_", "fp32"), net.device):
            for start in range(0, len(X), self.batch_size):
                xb = X[start:start + self.batch_size]
                if not xb.flags.writeable:  # e.g. a read-only memmap: torch wants writable
                    xb = xb.copy()
                xb = torch.from_numpy(xb).to(net.device, torch.float32)
                out.append(fn(xb).float().cpu().numpy())
        return np.concatenate(out, axis=0)

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits, in float64).

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, freq, frames)
            Spectrograms shaped like those seen in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        z = self._forward(X, "logits").astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, X):
        """Most probable class of each spectrogram.

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, freq, frames)
            Spectrograms shaped like those seen in :meth:`fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def transform(self, X):
        """Embeddings: the penultimate layer (after global average pooling).

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, freq, frames)
            Spectrograms shaped like those seen in :meth:`fit`.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, embedding_dim), float32
            ``embedding_dim`` is 512 for ResNet18 and ``channels[-1]`` for
            the CNN.
        """
        return self._forward(X, "embed")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # embeddings are float32
        return tags
