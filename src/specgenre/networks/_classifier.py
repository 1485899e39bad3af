"""scikit-learn classifiers of spectrograms that train a PyTorch network with skorch."""

import copy
import inspect
import numbers
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_feature_names,
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.dataset import ValidSplit, unpack_data
from skorch.utils import to_tensor
from torch import nn
from torch.optim.swa_utils import update_bn

from ._augment import BatchAugmenter
from ._split import validation_split

__all__ = ["CNNClassifier", "ResNet18Classifier"]


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


def _resolve_device(device):
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu' or 'cuda' (or 'cuda:N')."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        built = torch.version.cuda
        raise RuntimeError(
            f"device={device!r} was asked for, but CUDA is not available here "
            f"(torch {torch.__version__}, "
            + (f"built with CUDA {built}, but torch.cuda.is_available() is False: no GPU or "
               "driver found" if built else "built without CUDA support")
            + "); use device='cpu'."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(
            f"device={device!r} was asked for, but only {torch.cuda.device_count()} CUDA "
            "device(s) are available."
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device={device!r} was asked for, but MPS is not available here.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r}: only 'cpu', 'cuda' and 'mps' are supported.")
    return dev


@contextmanager
def _torch_threads(n_jobs):
    """Run with ``n_jobs`` torch intra-op threads (None: leave torch's setting)."""
    if n_jobs is None:
        yield
        return
    from joblib import effective_n_jobs

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, effective_n_jobs(n_jobs)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _seeded(device, seed):
    """Context: torch's global RNGs forked (restored on exit) and seeded with ``seed``."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]

    @contextmanager
    def ctx():
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    return ctx()


class _SpectrogramNet(NeuralNetClassifier):
    """NeuralNetClassifier whose training step augments the batch (see BatchAugmenter)."""

    def __init__(self, module, *args, augmenter=None, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.augmenter = augmenter

    def train_step_single(self, batch, **fit_params):
        aug = self.augmenter
        if aug is None or not aug.active:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
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

    #: ``(X, train_indices, rng)`` while fitting: batch-norm statistics are recomputed
    #: from these training samples before every validation pass (see run_single_epoch).
    bn_source_ = None

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # Validate with batch-norm statistics of the current weights, not the lagging
        # running averages: on small data those still hold much of their initial values
        # after an epoch, the validation loss then measures the wrong network, and early
        # stopping picks the wrong epoch.
        if not training and self.bn_source_ is not None:
            X, indices, rng = self.bn_source_
            _recalibrate_batchnorm(self.module_, X, indices, self.batch_size, self.device,
                                   rng, max_samples=_BN_VALID_SAMPLES)
        return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)


#: Most training samples used to recompute batch-norm statistics after training.
_BN_SAMPLES = 2048
#: ... and before each validation pass during training (one forward pass each epoch:
#: ~2% of an epoch's cost on 10,000 segments).
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
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
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


def _check_db_range(db_range):
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

_COMMON_DOC = """
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
        this is None or 0 or when some class has fewer than ``k`` samples
        (or groups); ``n_valid_`` is then 0.
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
    device : str, default="cpu"
        Torch device, ``"cpu"`` or ``"cuda"`` (``"cuda:N"``). Asking for CUDA
        where it is not available raises a RuntimeError at :meth:`fit`.
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
_COMMON_PARAMS = (
    "max_epochs", "lr", "batch_size", "weight_decay", "patience", "valid_fraction",
    "freq_mask", "time_mask", "n_freq_masks", "n_time_masks", "mixup_alpha", "db_range",
    "freq_pool", "dropout", "device", "n_jobs", "callbacks", "random_state", "verbose",
)


def _common_params(values):
    """The shared parameters out of a subclass ``__init__``'s ``locals()``."""
    return {name: values[name] for name in _COMMON_PARAMS}


class _SpectrogramClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Training machinery shared by the skorch spectrogram classifiers.

    Everything but the network lives here: input checks, the inner
    (group-aware) validation split, early stopping and learning-rate decay,
    augmentation, seeding, batch-norm recalibration, prediction and
    embeddings. A classifier is a subclass that declares:

    * ``__init__``, keyword-only: the network's own parameters, then every
      name of ``_COMMON_PARAMS`` with the defaults that suit the network
      (scikit-learn reads an estimator's parameters from its ``__init__``
      signature, so they are spelled out there, as ``BaseForest``'s
      subclasses do). The body stores the network's parameters and passes
      the common ones on, unchanged::

          def __init__(self, *, channels=(16, 32), max_epochs=30, lr=1e-3, ...,
                       verbose=0):
              self.channels = channels
              super().__init__(**_common_params(locals()))

      A signature missing a common parameter, or a parameter without an
      entry in ``_parameter_constraints``, raises TypeError when the class
      is defined.
    * ``_parameter_constraints``: the base's dict plus the network's
      parameters.
    * ``_build_module(n_classes, input_shape)``: the ``torch.nn.Module``
      mapping ``(n, *input_shape)`` float32 dB input to ``(n, n_classes)``
      logits, with an ``embed(x)`` method giving the penultimate layer
      (:meth:`transform`). Called inside :meth:`fit` with torch's RNG seeded.
    * optionally ``_check_params()`` (checks beyond the constraints, run in
      :meth:`fit` once ``input_shape_`` is set) and ``_effective_lr()`` (the
      learning rate when ``lr`` allows None).
    * its docstring: the network's parameters, then
      ``_COMMON_DOC.format(...)`` with its defaults.
    """

    _parameter_constraints = {
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
        "device": [str],
        "n_jobs": [numbers.Integral, None],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, max_epochs, lr, batch_size, weight_decay, patience, valid_fraction,
                 freq_mask, time_mask, n_freq_masks, n_time_masks, mixup_alpha, db_range,
                 freq_pool, dropout, device, n_jobs, callbacks, random_state, verbose):
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
        self.device = device
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
        missing = [name for name in _COMMON_PARAMS if name not in params]
        if missing:
            raise TypeError(
                f"{cls.__name__}.__init__ must take every shared parameter of "
                f"_SpectrogramClassifier (scikit-learn reads them from the signature); "
                f"missing: {', '.join(missing)}.")
        unconstrained = [name for name in params
                         if name != "self" and name not in cls._parameter_constraints]
        if unconstrained:
            raise TypeError(
                f"{cls.__name__}: no entry in _parameter_constraints for "
                f"{', '.join(unconstrained)}.")

    # ----------------------------------------------------------------- hooks
    def _build_module(self, n_classes, input_shape):  # pragma: no cover - abstract
        """The network: ``(n, *input_shape)`` dB input to ``(n, n_classes)`` logits."""
        raise NotImplementedError

    def _effective_lr(self):
        return self.lr

    # ------------------------------------------------------------ validation
    def _validate_X(self, X, *, reset):
        """float32 (or float16) C-contiguous ``(n, channels, freq, frames)``, not copied if possible.

        float16 is kept as it is (half the memory of stored spectrograms) and
        cast to float32 batch by batch; other dtypes become float32.

        2-D ``(n, F)`` is read as ``(n, 1, 1, F)`` (one row of ``F`` frames)
        and 3-D ``(n, freq, frames)`` as ``(n, 1, freq, frames)``.
        """
        ndim = None
        if not (hasattr(X, "tocsr") or hasattr(X, "iloc")):
            ndim = np.ndim(X) if hasattr(X, "shape") or isinstance(X, (list, tuple)) else None
        if ndim is None or ndim <= 2:
            X = validate_data(self, X, reset=reset, dtype=_DTYPES, order="C")
            X = X.reshape(X.shape[0], 1, 1, X.shape[1])
        else:
            _check_feature_names(self, X, reset=reset)
            X = check_array(X, allow_nd=True, dtype=_DTYPES, order="C", input_name="X",
                            estimator=self)
            if X.ndim == 3:
                X = X.reshape(X.shape[0], 1, *X.shape[1:])
            if X.ndim != 4:
                raise ValueError(
                    "X must be spectrograms (n, channels, freq, frames), (n, freq, frames) "
                    f"or a 2-D array (n, frames); got {X.ndim} dimensions, shape {X.shape}."
                )
            if min(X.shape[1:]) < 1:
                raise ValueError(f"X has an empty axis: shape {X.shape}.")
            if reset:
                self.n_features_in_ = int(np.prod(X.shape[1:]))
        X = _canonical_strides(X)
        shape = tuple(int(s) for s in X.shape[1:])
        if reset:
            self.input_shape_ = shape
        elif shape != self.input_shape_:
            raise ValueError(
                f"X has spectrograms of shape {shape} (channels, freq, frames), but "
                f"{type(self).__name__} was fitted on {self.input_shape_}."
            )
        return X

    # ----------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
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
        _check_db_range(self.db_range)
        self._check_params()
        device = _resolve_device(self.device)

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        split = validation_split(y_enc, groups, self.valid_fraction, seed)
        n_train = len(y) if split is None else len(split[0])
        if split is None and self.valid_fraction:
            warnings.warn(
                f"{type(self).__name__}: no inner validation split (valid_fraction="
                f"{self.valid_fraction}): some class has too few "
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
        for i, cb in enumerate(self.callbacks or []):
            cb = copy.deepcopy(cb)
            callbacks.append(cb if isinstance(cb, tuple) else (f"user_{i}", cb))

        with _torch_threads(self.n_jobs), _seeded(device, seed):
            module = self._build_module(n_classes, self.input_shape_)
            net = _SpectrogramNet(
                module,
                criterion=nn.CrossEntropyLoss,
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
                verbose=int(self.verbose),
                augmenter=BatchAugmenter(
                    freq_mask=self.freq_mask, time_mask=self.time_mask,
                    n_freq_masks=self.n_freq_masks, n_time_masks=self.n_time_masks,
                    mixup_alpha=self.mixup_alpha),
            )
            train_idx = np.arange(len(y)) if split is None else split[0]
            net.bn_source_ = (X, train_idx, np.random.RandomState(seed + 1))
            try:
                net.fit(X, y_enc)
            finally:
                net.bn_source_ = None  # no reference to the training data in the model
            _recalibrate_batchnorm(net.module_, X, train_idx, self.batch_size, device,
                                   np.random.RandomState(seed))
        self.net_ = net
        self.n_valid_ = 0 if split is None else len(split[1])
        self.n_epochs_ = len(net.history)
        stopper = dict(net.callbacks_).get("early_stopping")
        self.best_epoch_ = int(stopper.best_epoch_) if stopper is not None else self.n_epochs_
        return self

    def _check_params(self):
        """Checks of subclass parameters beyond ``_parameter_constraints``."""

    # ------------------------------------------------------------ predict
    def _forward(self, X, method):
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        net = self.net_
        module = net.module_
        module.eval()
        fn = module.embed if method == "embed" else module
        out = []
        with _torch_threads(self.n_jobs), torch.inference_mode():
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


# --------------------------------------------------------------------------
# the two classifiers
# --------------------------------------------------------------------------


class CNNClassifier(_SpectrogramClassifier):
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
""" + _COMMON_DOC.format(max_epochs=30, lr="1e-3", lr_type="", lr_extra="",
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

    _parameter_constraints = {
        **_SpectrogramClassifier._parameter_constraints,
        "channels": ["array-like"],
        "checkpointing": ["boolean"],
    }

    def __init__(self, *, channels=(16, 32, 64, 128), checkpointing=False, max_epochs=30,
                 lr=1e-3, batch_size=32, weight_decay=1e-2, patience=5, valid_fraction=0.1, freq_mask=0, time_mask=0,
                 n_freq_masks=1, n_time_masks=1, mixup_alpha=0.0, db_range=(-80.0, 0.0),
                 freq_pool=1, dropout=0.3, device="cpu", n_jobs=None, callbacks=None,
                 random_state=None, verbose=0):
        self.channels = channels
        self.checkpointing = checkpointing
        super().__init__(**_common_params(locals()))

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
            dropout=self.dropout, db_range=_check_db_range(self.db_range),
            freq_pool=self.freq_pool, checkpointing=self.checkpointing)


class ResNet18Classifier(_SpectrogramClassifier):
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
""" + _COMMON_DOC.format(
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

    _parameter_constraints = {
        **_SpectrogramClassifier._parameter_constraints,
        "pretrained": ["boolean"],
        "checkpointing": ["boolean"],
        "lr": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    def __init__(self, pretrained=False, *, checkpointing=False, max_epochs=20, lr=None,
                 batch_size=32, weight_decay=1e-2, patience=5, valid_fraction=0.1,
                 freq_mask=0, time_mask=0, n_freq_masks=1, n_time_masks=1, mixup_alpha=0.0, db_range=(-80.0, 0.0),
                 freq_pool=1, dropout=0.0, device="cpu", n_jobs=None, callbacks=None,
                 random_state=None, verbose=0):
        self.pretrained = pretrained
        self.checkpointing = checkpointing
        super().__init__(**_common_params(locals()))

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
                              db_range=_check_db_range(self.db_range),
                              freq_pool=self.freq_pool, dropout=self.dropout,
                              checkpointing=self.checkpointing)
