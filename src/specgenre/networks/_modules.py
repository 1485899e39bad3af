"""PyTorch modules of the spectrogram classifiers.

Both modules take float32 spectrograms ``(batch, channels, freq, frames)`` in
dB (about ``[-80, 0]``, what :class:`~specgenre.SpectrogramTransformer`
returns), expose ``embed(x) -> (batch, d)`` (the penultimate layer) and
``forward(x) -> (batch, n_classes)`` logits.
"""

from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._layers import bn_relu_max_pool2x2, chunked_conv_bn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "GrayscaleConv2d",
    "ResNet18Module",
    "SpectrogramCNN",
    "imagenet_input_affine",
]

#: Per-channel (RGB) mean and standard deviation of the ImageNet weights'
#: preprocessing (``ResNet18_Weights.IMAGENET1K_V1.transforms()``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_input_affine(db_range, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Per-channel ``(scale, shift)`` taking dB values to ImageNet-normalised pixels.

    The input ``x`` (dB) is first mapped to ``u = (x - lo) / (hi - lo)``
    (``lo, hi = db_range``: ``lo`` -> 0, ``hi`` -> 1, like a grey image in
    ``[0, 1]``), then normalised per channel as torchvision does,
    ``z_c = (u - mean_c) / std_c``. Together ``z_c = scale_c * x + shift_c``
    with::

        scale_c = 1 / ((hi - lo) * std_c)
        shift_c = (-lo / (hi - lo) - mean_c) / std_c

    Returns
    -------
    scale, shift : tuple of float
        One value per channel.
    """
    lo, hi = float(db_range[0]), float(db_range[1])
    width = hi - lo
    scale = tuple(1.0 / (width * s) for s in std)
    shift = tuple((-lo / width - m) / s for m, s in zip(mean, std, strict=True))
    return scale, shift


class GrayscaleConv2d(nn.Module):
    """A 3-channel convolution applied to one channel, with the input normalisation folded in.

    Equal to ``conv(z)`` where ``z`` is the 3-channel image
    ``z_c = scale_c * x + shift_c`` (``c`` = R, G, B) of a one-channel input
    ``x``, zero-padded as ``conv`` pads, but without building ``z``:

    * inside the image the convolution is linear in each channel, so
      ``sum_c W_c * (scale_c x + shift_c) = (sum_c scale_c W_c) * x +
      (sum_c shift_c W_c) * 1``: the RGB filters are summed (weighted by the
      normalisation's scales) into one filter for ``x``, and the constant
      part becomes a second filter applied to an image of ones;
    * ``conv`` pads ``z`` (not ``x``) with zeros, so at the borders only the
      taps that fall inside the image see the constant part. Convolving the
      zero-padded image of ones, ``1_inside``, with ``sum_c shift_c W_c``
      gives exactly that: a bias map that depends on the position near the
      border (and on the image size) but not on ``x``. It is computed on a
      single ``(1, 1, freq, frames)`` image and broadcast over the batch.

    The parameter is the original ``(out, 3, k, k)`` weight, so a torchvision
    state dict loads into it unchanged and training updates it exactly as it
    would update the 3-channel layer fed ``[x, x, x]`` plus normalisation.

    Parameters
    ----------
    conv : torch.nn.Conv2d
        The 3-input-channel convolution (its weight and bias are reused).
    scale, shift : sequence of 3 floats
        The per-channel affine map of the input (see
        :func:`imagenet_input_affine`).
    """

    def __init__(self, conv, scale, shift):
        super().__init__()
        if conv.in_channels != len(scale) or len(scale) != len(shift) or conv.groups != 1:
            raise ValueError(
                f"GrayscaleConv2d needs a convolution with groups=1 and one input channel "
                f"per scale/shift value; got in_channels={conv.in_channels}, "
                f"groups={conv.groups}, {len(scale)} scales, {len(shift)} shifts."
            )
        if conv.padding_mode != "zeros":
            raise ValueError(f"only zero padding is supported; got {conv.padding_mode!r}.")
        self.weight = conv.weight
        self.bias = conv.bias
        self.stride = conv.stride
        self.padding = conv.padding
        self.dilation = conv.dilation
        # constants of the input map, not learned and not part of the state dict
        # (so torchvision's keys load unchanged); kept when pickled
        self.register_buffer(
            "scale", torch.tensor(scale, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer(
            "shift", torch.tensor(shift, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        w_x = (self.weight * self.scale).sum(dim=1, keepdim=True)
        w_1 = (self.weight * self.shift).sum(dim=1, keepdim=True)
        out = F.conv2d(x, w_x, self.bias, self.stride, self.padding, self.dilation)
        ones = _channels_last(x.new_ones((1, 1) + tuple(x.shape[2:])))
        # in place: the convolution's backward does not need its output, and a second
        # full-size tensor would double the layer's memory
        return _AddOverBatch.apply(
            out, F.conv2d(ones, w_1, None, self.stride, self.padding, self.dilation))

    def extra_repr(self):
        out, inp, kh, kw = self.weight.shape
        return (f"1 -> {out} (folded from {inp} channels), kernel_size=({kh}, {kw}), "
                f"stride={self.stride}, padding={self.padding}")


class _AddOverBatch(torch.autograd.Function):
    """``x.add_(term)`` for a ``term`` of batch size 1, in place; its gradient summed over the batch.

    The same values and gradients as autograd's broadcast ``add_``, whose
    backward (``sum_to_size``) reduces over the batch axis 10-30x slower on
    channels-last tensors than on the NHWC view of the same memory that is
    summed here.
    """

    @staticmethod
    def forward(ctx, x, term):
        ctx.mark_dirty(x)
        return x.add_(term)

    @staticmethod
    def backward(ctx, grad):
        if grad.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous():
            summed = grad.permute(0, 2, 3, 1).sum(0, keepdim=True).permute(0, 3, 1, 2)
        else:
            summed = grad.sum(0, keepdim=True)
        return grad, summed


@contextmanager
def _buffers_kept(module):
    """Context: ``module``'s buffers (batch-norm running statistics) restored on exit."""
    saved = [(b, b.detach().clone()) for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


def _run_segment(module, x, active):
    """``module(x)``, checkpointed when ``active``.

    Activation checkpointing (:func:`torch.utils.checkpoint.checkpoint`, non-reentrant):
    only ``x`` is kept for the backward pass, and the segment runs forward a second
    time there to rebuild what its backward needs. Training then holds the
    activations of one segment at a time instead of those of the whole network, for
    about one more forward pass of compute. The result and the gradients are the
    same; the recomputation runs with the segment's buffers restored afterwards, so
    batch-norm running statistics are updated once per step, as without it. Only in
    training mode with gradients on; otherwise a plain call.
    """
    if not (active and module.training and torch.is_grad_enabled()):
        return module(x)
    return checkpoint(module, x, use_reentrant=False, preserve_rng_state=True,
                      context_fn=lambda: (nullcontext(), _buffers_kept(module)))


class _ReluMaxPool2d(torch.autograd.Function):
    """``max_pool2d(relu(x))`` that keeps less for the backward pass.

    ReLU then max-pooling keeps the full-size ReLU output (for both backward
    passes) and the pooling's indices. Since ReLU and max commute, the same output is
    ``relu(max_pool2d(x))``, and its gradient is the output gradient, zeroed where the
    output is 0, added at the pooling's indices: only the indices and the (pooled,
    4x smaller) output are kept, and the full-size ReLU output is freed as soon as it
    is used. Outputs and gradients equal PyTorch's (where the window's maximum is
    not positive, both give 0; ties go to the first index in both). The gradient
    has the memory format of ``x``. Slower than torch's own kernels (the scatter
    of the gradient): used when memory is short (``lean``).
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        y, indices = F.max_pool2d(x, kernel_size, stride, padding, return_indices=True)
        y = y.clamp_min_(0.0)
        ctx.save_for_backward(y, indices)
        ctx.input_shape = x.shape
        ctx.memory_format = (torch.channels_last
                             if x.is_contiguous(memory_format=torch.channels_last)
                             else torch.contiguous_format)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        y, indices = ctx.saved_tensors
        g = grad_y.masked_fill(y <= 0, 0.0).flatten(2)
        grad_x = torch.empty(ctx.input_shape, dtype=g.dtype, device=g.device,
                             memory_format=ctx.memory_format).zero_()
        # windows may overlap (ResNet's 3x3 stride-2 pooling): add, not overwrite;
        # flatten(2) is a view in both memory formats (H and W stay adjacent)
        grad_x.flatten(2).scatter_add_(2, indices.flatten(2), g)
        return grad_x, None, None, None


def _relu_max_pool2d(x, kernel_size, stride=None, padding=0, *, lean=False):
    """``F.max_pool2d(F.relu(x), ...)``; ``lean``: with less memory kept for backward.

    The same values and gradients either way: ``relu(max_pool2d(x))`` with
    torch's own kernels (fastest: ReLU and its gradient on the 4x smaller
    output), or :class:`_ReluMaxPool2d` when ``lean`` (in training).
    """
    stride = kernel_size if stride is None else stride
    if lean and torch.is_grad_enabled() and x.requires_grad:
        return _ReluMaxPool2d.apply(x, kernel_size, stride, padding)
    # ReLU after the maximum: the same values and gradients (ReLU and max commute;
    # a tie goes to the first maximum either way), ReLU on the 4x smaller output
    return F.relu(F.max_pool2d(x, kernel_size, stride, padding))


def _channels_last(x):
    """``x`` in channels-last memory, with strides that say so also for one channel.

    A one-channel NCHW tensor already counts as channels-last contiguous (the
    same memory), so ``x.contiguous(memory_format=torch.channels_last)`` keeps
    its NCHW strides, and oneDNN then gives the first convolution an NCHW
    output: its batch norm and max-pooling ran 4-6x slower than on
    channels-last tensors. Re-striding the channel axis to 1 views the same
    memory and makes the first layer's output channels-last.
    """
    x = x.contiguous(memory_format=torch.channels_last)
    if x.dim() == 4 and x.shape[1] == 1 and x.stride(1) != 1:
        x = x.as_strided(x.shape, (x.stride(0), 1, x.stride(2), x.stride(3)))
    return x


def _pool_freq(x, factor):
    """Average ``factor`` neighbouring frequency rows (the last window may be shorter)."""
    if factor == 1:
        return x
    return F.avg_pool2d(x, kernel_size=(factor, 1), stride=(factor, 1), ceil_mode=True)


class _ConvBlock(nn.Sequential):
    """3x3 convolution (no bias), batch normalisation, ReLU, 2x2 max-pooling.

    The pooling is 1 along an axis already of size 1, so any input size works.
    """

    def __init__(self, c_in, c_out):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x, lean=False):
        conv, bn, relu = self
        y = conv(x)
        kh, kw = min(2, y.shape[-2]), min(2, y.shape[-1])
        if (kh, kw) == (2, 2) and not (torch.is_grad_enabled() and y.requires_grad):
            # nothing kept for a backward pass (recalibration, validation, prediction):
            # the maximum before batch norm, normalised at a quarter of the size
            return bn_relu_max_pool2x2(y, bn)
        x = bn(y)
        if kh > 1 or kw > 1:
            return _relu_max_pool2d(x, (kh, kw), lean=lean)
        return relu(x)


class SpectrogramCNN(nn.Module):
    """Small spectrogram CNN: conv-BN-ReLU-maxpool blocks, global average pooling, dropout, linear.

    Each block is a 3x3 convolution (padding 1, no bias), batch
    normalisation, ReLU and a 2x2 max-pooling (1 along an axis that is
    already of size 1, so any input size works). The input is first mapped
    from dB to ``[0, 1]`` by the fixed affine map ``(x - lo) / (hi - lo)``.

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    channels : sequence of int, default=(16, 32, 64, 128)
        Output channels of the blocks; the embedding has ``channels[-1]`` values.
    dropout : float, default=0.3
        Dropout before the linear layer.
    db_range : (float, float), default=(-80.0, 0.0)
    freq_pool : int, default=1
        Average this many neighbouring frequency rows first.

    checkpointing : bool, default=False
        In training, run the first block as :func:`~specgenre._layers.chunked_conv_bn`: it keeps
        only its input and the batch statistics, and its backward pass
        recomputes the convolution a few samples at a time.

    Notes
    -----
    The training memory is that of the first block, whose activations are the
    largest (full resolution): ``checkpointing`` cuts it, and then also fuses
    ReLU and pooling in the other blocks (:func:`_relu_max_pool2d`) so that
    their full-size ReLU outputs are not kept. The module is channels-last
    (``torch.channels_last``, input included): oneDNN's convolutions,
    batch norm and pooling run 1.5-2.5x faster so on CPUs. Without gradients
    (validation, prediction, batch-norm recalibration) a block takes the 2x2
    maxima of the convolution's output first and normalises a quarter of the
    values (:func:`~specgenre._layers.bn_relu_max_pool2x2`).
    """

    def __init__(self, n_classes, *, in_channels=1, channels=(16, 32, 64, 128), dropout=0.3,
                 db_range=(-80.0, 0.0), freq_pool=1, checkpointing=False):
        super().__init__()
        self.checkpointing = bool(checkpointing)
        lo, hi = float(db_range[0]), float(db_range[1])
        self.register_buffer("in_scale", torch.tensor(1.0 / (hi - lo)))
        self.register_buffer("in_shift", torch.tensor(-lo / (hi - lo)))
        self.freq_pool = int(freq_pool)
        blocks = []
        c_in = in_channels
        for c in channels:
            blocks.append(_ConvBlock(c_in, c))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.embedding_dim = c_in
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, n_classes)
        self.to(memory_format=torch.channels_last)

    def __setstate__(self, state):
        # modules pickled by earlier specgenre: plain Sequential blocks (the pooling
        # was in embed); the same layers, so the same outputs
        super().__setstate__(state)
        self.__dict__.setdefault("checkpointing", False)  # pickled before checkpointing
        for block in self.blocks:
            if type(block) is nn.Sequential:
                block.__class__ = _ConvBlock

    def embed(self, x):
        x = _channels_last(_pool_freq(x, self.freq_pool) * self.in_scale + self.in_shift)
        for k, block in enumerate(self.blocks):
            pool = (min(2, x.shape[-2]), min(2, x.shape[-1]))
            if k == 0 and self.checkpointing and pool != (1, 1):
                x = chunked_conv_bn(x, block[0], block[1], (pool, pool, 0))
            else:
                x = block(x, lean=self.checkpointing)
        return x.mean(dim=(-2, -1))

    def forward(self, x):
        return self.fc(self.dropout(self.embed(x)))


class ResNet18Module(nn.Module):
    """torchvision's ResNet18 for one-channel dB spectrograms.

    ``conv1`` is replaced by a :class:`GrayscaleConv2d` holding the original
    3-channel weight, with the map dB -> ``[0, 1]`` -> ImageNet
    normalisation folded in, so ``module(x)`` equals torchvision's ResNet18
    (same weights) applied to ``Normalize(mean, std)([u, u, u])`` with
    ``u = (x - lo) / (hi - lo)``. ``fc`` is a new ``Linear(512, n_classes)``.

    Parameters
    ----------
    n_classes : int
    state_dict : dict or None, default=None
        A torchvision ResNet18 state dict (1000-class ``fc``) to start from,
        loaded strictly into the stock model before ``conv1`` and ``fc`` are
        replaced. None: torchvision's random initialisation.
    db_range : (float, float), default=(-80.0, 0.0)
    freq_pool : int, default=1
    dropout : float, default=0.0
        Dropout before ``fc`` (torchvision's ResNet has none).
    checkpointing : bool, default=False
        Activation checkpointing: in training the stem (``conv1`` to
        ``maxpool``) runs as :func:`~specgenre._layers.chunked_conv_bn`, and each residual block
        keeps only its input and is run again in its backward pass
        (:func:`_run_segment`).

    Notes
    -----
    The module is channels-last (``torch.channels_last``, input included),
    which oneDNN's convolutions run faster on CPUs.
    """

    def __init__(self, n_classes, *, state_dict=None, db_range=(-80.0, 0.0), freq_pool=1,
                 dropout=0.0, checkpointing=False):
        super().__init__()
        self.checkpointing = bool(checkpointing)
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if state_dict is not None:
            net.load_state_dict(state_dict)
        scale, shift = imagenet_input_affine(db_range)
        net.conv1 = GrayscaleConv2d(net.conv1, scale, shift)
        net.fc = nn.Linear(net.fc.in_features, n_classes)
        self.net = net
        self.freq_pool = int(freq_pool)
        self.embedding_dim = net.fc.in_features
        self.dropout = nn.Dropout(dropout)
        self.to(memory_format=torch.channels_last)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("checkpointing", False)  # pickled before checkpointing

    def _stem(self, x):
        n = self.net
        pool = n.maxpool  # torchvision's: 3x3, stride 2, padding 1
        if self.checkpointing:  # its backward in chunks of the batch
            return chunked_conv_bn(x, n.conv1, n.bn1,
                                    (pool.kernel_size, pool.stride, pool.padding))
        return _relu_max_pool2d(n.bn1(n.conv1(x)), pool.kernel_size, pool.stride, pool.padding,
                                lean=self.checkpointing)

    def embed(self, x):
        n, ckpt = self.net, self.checkpointing
        x = self._stem(_channels_last(_pool_freq(x, self.freq_pool)))
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
            for block in layer:
                x = _run_segment(block, x, ckpt)
        return torch.flatten(n.avgpool(x), 1)

    def forward(self, x):
        return self.net.fc(self.dropout(self.embed(x)))
