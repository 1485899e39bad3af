"""PyTorch versions of the musicnn networks (Pons & Serra, 2019) and the vgg baseline.

Layer for layer the graphs of the official ``musicnn/models.py`` (v0.1.0):

* ``musicnn`` (``build_musicnn``): batch-normalised input; a *musically
  motivated* front end of five branches, two timbral ones (convolutions of
  7 frames x 38 and 7 x 67 mel bands, i.e. ``int(0.4*96)``/``int(0.7*96)``,
  204 filters each, time padded by 3 on both sides, valid in frequency) and
  three temporal ones (128, 64 and 32 frames x 1 band, 51 filters each,
  "same" padding), each ReLU -> batch norm -> max over frequency; a dense
  mid end of three 7-frame convolutions with 64 filters (ReLU -> batch norm,
  the second and third with residual connections) whose outputs are
  concatenated with the front end's (753 channels); a back end of global max
  and mean pooling over time (interleaved per channel, as TF's ``concat`` +
  ``flatten`` leaves them), batch norm, dropout, a 200-unit dense layer
  (ReLU -> batch norm = ``penultimate``), dropout and a 50-unit dense layer
  whose sigmoid is the ``taggram``.
* ``vgg`` (``vgg``): batch-normalised input, five 3x3 "same" convolutions
  with 128 filters (ReLU -> batch norm -> max pooling 4x1/2x2, 2x2/2x2,
  2x2/2x2, 2x2/2x2, 4x4/4x4, all "valid"), dropout 0.25 between blocks, and
  a 50-unit dense layer on the flattened ``pool5`` (after dropout 0.5).

TensorFlow's conventions are kept where they change numbers: batch norm
epsilon 1e-3 (``tf.compat.v1.layers.batch_normalization``), "same" padding of
an even kernel puts the extra frame after (``k - 1`` split as ``(k-1)//2``
before, the rest after), and flattening is in TF's channels-last order.
Outputs are returned in TF's layout too: ``(batch, time, channels)`` for the
musicnn feature maps, ``(batch, height, width, channels)`` for vgg's pools.
"""

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .._layers import _update_running_stats, chunked_conv_bn, merged_mean_var, without_part

__all__ = ["MusicnnNet", "VggNet", "BN_EPS", "MUSICNN_LAYERS", "VGG_LAYERS"]

#: Batch norm epsilon of ``tf.compat.v1.layers.batch_normalization``.
BN_EPS = 1e-3

#: Output names of the musicnn models, in the official extractor's order.
MUSICNN_LAYERS = ("taggram", "timbral", "temporal", "cnn1", "cnn2", "cnn3",
                  "mean_pool", "max_pool", "penultimate")
#: Output names of the vgg models, in the official extractor's order.
VGG_LAYERS = ("taggram", "pool1", "pool2", "pool3", "pool4", "pool5")


def _bn2d(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def _bn1d(channels):
    return nn.BatchNorm1d(channels, eps=BN_EPS)


def _check_input(x, n_mels, n_frames=None):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 3 or x.shape[2] != n_mels or (n_frames is not None and x.shape[1] != n_frames):
        frames = n_frames if n_frames is not None else "n_frames"
        raise ValueError(
            f"x must have shape (batch, {frames}, {n_mels}) (log-mel patches, frames x mels), "
            f"got {tuple(x.shape)}")


# Patches per convolution call in the inference paths (vgg; musicnn's temporal kernels in
# float32): the big feature maps of a few patches stay in cache.
_CHUNK = 2


class _AffineInput(NamedTuple):
    """The input batch norm's output ``scale * xhat + shift``, kept as its parts.

    In fine-tuning, the front end's input is the data normalised by ``input_bn``,
    whose only parameters are ``scale`` and ``shift`` (one channel): the data need no
    gradient, so the convolutions of ``_conv_one_channel`` take ``xhat`` (no
    gradient) with the weights scaled by ``scale``, and ``shift`` times the
    convolution of ``ones`` (the image's extent, zero where padded) as a bias map.
    The backward pass then needs no gradient with respect to the input (no
    ``fold`` of the windows, no product by the transposed weights): about a fifth
    of a fine-tuning step's time went to computing it for two scalars.
    """

    xhat: torch.Tensor  # (B, 1, T, F), no gradient
    scale: torch.Tensor  # (1,)
    shift: torch.Tensor  # (1,)
    ones: torch.Tensor  # (1, 1, T, F): 1 inside the image, 0 in padding

    def tensor(self):
        """``scale * xhat + shift`` inside the image, 0 in its padding."""
        return self.xhat * self.scale.view(1, -1, 1, 1) + self.ones * self.shift.view(1, -1, 1, 1)

    def pad(self, pad):
        return _AffineInput(F.pad(self.xhat, pad), self.scale, self.shift, F.pad(self.ones, pad))


def _bn_relu_conv_max(block, x):
    """``block.bn(relu(block.conv(x))).amax(dim=3)`` in inference, without the big feature map.

    With running statistics, batch norm is ``a * r + b`` per channel, monotone in ``r``
    (increasing where ``a >= 0``, i.e. ``gamma >= 0``), and ReLU is monotone, so the max over
    frequency of ``bn(relu(z))`` is ``bn(relu(max z))`` where ``gamma >= 0`` and
    ``bn(relu(min z))`` elsewhere; floating-point rounding is monotone too, so the result is
    the same number. ``min z`` is ``-max(-z)``: the convolution runs once with the weights
    of those channels negated (exact), as one matrix product per patch
    (:func:`_conv_max_gemm`).
    """
    conv, bn = block.conv, block.bn
    if isinstance(x, _AffineInput) and not (
            bn.training and block.conv_as_matmul and not block.checkpointing):
        x = x.tensor()
    if block.checkpointing and bn.training:
        # fine-tuning: keep less
        return chunked_conv_bn(x, conv, bn, "last", relu_first=True)
    if (bn.training and bn.affine and bn.track_running_stats and block.conv_as_matmul
            and not torch.is_grad_enabled() and not isinstance(x, _AffineInput)):
        return _batch_stats_max(block, x)
    if bn.training or bn.running_mean is None:
        if not block.conv_as_matmul:
            return bn(F.relu(conv(x))).amax(dim=3)
        # batch statistics need the whole map; the maximum's gradient goes to one position
        # (amax splits it between ties, which after ReLU are zeros whose gradient ReLU
        # stops anyway). As a pooling over all bands: its backward is pooling's own
        # kernel, 3.5x faster than max(dim=3)'s zeros-and-scatter on bfloat16 (which
        # copies the map twice), itself 2.3x faster than amax's full-size mask
        u = bn(F.relu(_conv_one_channel(x, conv)))
        return F.max_pool2d(u, (1, u.shape[3])).squeeze(3)
    sign = torch.where(bn.weight >= 0, 1.0, -1.0).to(x.dtype)
    weight = conv.weight * sign[:, None, None, None]
    bias = conv.bias * sign
    kind = x.device.type
    if conv.kernel_size[1] == 1 and not torch.is_autocast_enabled(kind):
        # temporal kernels in float32: oneDNN's convolution is as fast as the products
        z = torch.cat([F.conv2d(x[i:i + _CHUNK], weight, bias, padding=conv.padding).amax(dim=3)
                       for i in range(0, x.shape[0], _CHUNK)])
    else:
        z = _conv_max_gemm(x, weight, bias, conv.padding)
    z = z.to(x.dtype) * sign[:, None]
    return F.batch_norm(F.relu(z), bn.running_mean, bn.running_var, bn.weight, bn.bias,
                        False, 0.0, bn.eps)


def _batch_mean_var(values, eps):
    """``(n, mean, biased variance)`` per column of ``values`` (n, C), float64 results.

    Batch norm's own kernel computes them: with ``momentum=1`` its buffers become the
    batch mean and the unbiased variance.
    """
    mean = torch.zeros(values.shape[1], dtype=torch.promote_types(values.dtype, torch.float32),
                       device=values.device)
    var = torch.ones_like(mean)
    F.batch_norm(values, mean, var, None, None, True, 1.0, eps)
    n = values.shape[0]
    return n, mean.double(), var.double() * ((n - 1) / n)


def _batch_stats_max(block, x):
    """``block.bn(relu(block.conv(x))).max(dim=3).values`` from batch statistics, no gradients.

    Batch-norm recalibration runs the front end in training mode without gradients:
    the statistics need every value of ``relu(conv(x))``, the output only its
    extremes over frequency. Here each patch's map is computed as the inference
    path computes it (:func:`_gemm_conv`: channels contiguous) and, while it is in
    cache, batch norm's own kernel gives its mean and variance (:func:`_batch_mean_var`;
    the outputs the last block of bands repeats are taken out again,
    :func:`~specgenre._layers.without_part`), which are merged exactly
    (:func:`~specgenre._layers.merged_mean_var`), and
    the map is reduced to its maximum over frequency (its minimum
    in the channels whose batch-norm weight is negative, in the same pass). Batch
    norm, a monotone map of each channel, is then applied to those extremes with the
    batch statistics, and ``block.bn``'s running statistics are updated as it
    updates them. No full-size map is held, normalised or pooled; the values are the
    unfused layers' up to the round-off of the products and the statistics.
    """
    conv, bn = block.conv, block.bn
    gemm = _gemm_conv(x, conv.weight, conv.bias, conv.padding)
    negative = bn.weight < 0
    any_negative = bool(negative.any())
    band_axis = 1 if gemm.over_bands else 0
    repeated = slice(gemm.n_out - gemm.block, gemm.full)  # outputs the last block repeats
    counts, means, variances, extremes = [], [], [], []
    for i in range(x.shape[0]):
        z = gemm.patch(i).relu_()  # (rows, outputs, C)
        n, mean, var = _batch_mean_var(z.view(-1, z.shape[2]), bn.eps)
        if gemm.full < gemm.n_out:  # take the repeated outputs' values out again
            n, mean, var = without_part(
                (n, mean, var), _batch_mean_var(z[:, repeated].reshape(-1, z.shape[2]), bn.eps))
        counts.append(n)
        means.append(mean)
        variances.append(var)
        if any_negative:  # one pass for both extremes
            low, high = torch.aminmax(z, dim=band_axis)
            extreme = torch.where(negative, low, high)
        else:
            extreme = z.amax(dim=band_axis)
        extremes.append(extreme if gemm.over_bands else gemm.distinct(extreme[None])[0])
        del z
    mean, var = merged_mean_var(counts, means, variances)
    mean, var = mean.to(bn.running_mean.dtype), var.to(bn.running_mean.dtype)
    _update_running_stats(bn, mean, var, sum(counts))
    extreme = torch.stack(extremes).transpose(1, 2)  # (B, C, T)
    return F.batch_norm(extreme, mean, var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _conv_one_channel(x, conv):
    """``conv(x)`` of a one-channel ``x`` ``(B, 1, T, F)`` as im2col and one product per patch.

    oneDNN's convolution of one input channel with musicnn's tall kernels (7 x 38,
    7 x 67, 128 x 1, ...) is slow, its backward pass most of all. Here the windows
    of ``x`` (:func:`torch.nn.functional.unfold`, ``(B, kt * kf, T' * F')``) are
    multiplied by the ``(C, kt * kf)`` weights, so the forward and backward passes
    are matrix products and ``unfold``/``fold`` (``benchmarks/bench_train_step.py
    --net musicnn_finetune`` compares a fine-tuning epoch with torch's layers).
    Under ``torch.autocast`` the windows are cut from the input already cast (half
    the bytes) and the products run in the autocast dtype. The windows are kept
    for the backward pass, where torch's convolution keeps only its input: more
    memory (``checkpointing=True``, which ``specgenre train`` turns on, takes the
    memory-saving path instead).
    """
    affine = isinstance(x, _AffineInput)
    data = x.xhat if affine else x
    kind = data.device.type
    dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else data.dtype
    (kt, kf), (pt, pf) = conv.kernel_size, conv.padding
    n_frames, n_bands = data.shape[2] + 2 * pt - kt + 1, data.shape[3] + 2 * pf - kf + 1
    with torch.autocast(kind, enabled=False):
        windows = F.unfold(data.to(dtype), (kt, kf), padding=(pt, pf))
        weight = conv.weight.to(dtype).reshape(conv.out_channels, -1)
        bias = conv.bias.to(dtype)[None, :, None]
        if affine:  # conv(scale * xhat + shift * ones) = (scale * W) xhat + shift * W ones
            border = weight @ F.unfold(x.ones.to(dtype), (kt, kf), padding=(pt, pf))[0]
            bias = bias + x.shift.to(dtype) * border
            weight = x.scale.to(dtype) * weight
        z = torch.baddbmm(bias, weight.expand(data.shape[0], -1, -1), windows)
    return z.view(data.shape[0], conv.out_channels, n_frames, n_bands)


# outputs per block of _conv_max_gemm's matrix product
_FREQ_BLOCK = 4


def _toeplitz(weight, n_bands):
    """Weights of ``n_bands`` neighbouring output bands of a one-channel convolution, as a matrix.

    ``weight`` is ``(C, 1, kt, kf)``; the result is ``(kt * (n_bands + kf - 1), n_bands * C)``:
    row ``dt * width + j + df``, column ``j * C + c`` holds ``weight[c, 0, dt, df]`` (zero
    elsewhere), so a window of ``kt`` frames x ``width`` bands times it gives the
    convolution at ``n_bands`` consecutive bands.
    """
    channels, _, kt, kf = weight.shape
    width = n_bands + kf - 1
    out = weight.new_zeros(kt, width, n_bands, channels)
    taps = weight[:, 0].permute(1, 2, 0)  # (kt, kf, C)
    for j in range(n_bands):
        out[:, j:j + kf, j] = taps
    return out.reshape(kt * width, n_bands * channels)


def _band_windows(plane, kt, width, block, n_out):
    """Windows ``(rows, n_blocks, kt, width)`` of a 2-D ``plane``, ``block`` apart on axis 1.

    ``n_blocks`` blocks of ``block`` outputs cover the ``n_out`` outputs of axis 1; when
    they do not split into whole blocks, the last one ends at the last output (it overlaps
    the block before it).
    """
    windows = plane.unfold(0, kt, 1).unfold(1, width, block)
    if (n_out - block) // block * block + block < n_out:
        tail = plane[:, n_out - block:n_out - block + width].unfold(0, kt, 1).transpose(1, 2)
        windows = torch.cat([windows, tail[:, None]], dim=1)
    return windows


class _GemmConv(NamedTuple):
    """A one-channel convolution of a batch as one matrix product per patch (see
    :func:`_gemm_conv`); :meth:`patch` gives patch ``i``'s output."""

    xp: torch.Tensor  # the padded input (B, rows, axis-1 length), transposed if temporal
    matrix: torch.Tensor  # _toeplitz's weights
    bias: torch.Tensor
    kt: int
    width: int
    block: int
    n_out: int  # outputs along the blocked axis
    full: int  # ... of them in whole blocks (the last block overlaps the one before)
    over_bands: bool  # timbral: blocks of bands, rows are frames; temporal: the reverse

    def patch(self, i):
        """``(rows, n_blocks * block, C)``: the convolution of patch ``i`` (blocks as in
        :func:`_band_windows`: when ``full < n_out`` the last block repeats outputs)."""
        windows = _band_windows(self.xp[i], self.kt, self.width, self.block, self.n_out)
        z = torch.addmm(self.bias, windows.reshape(-1, self.kt * self.width), self.matrix)
        return z.view(windows.shape[0], -1, self.bias.shape[0] // self.block)

    def distinct(self, z):
        """``z`` of :meth:`patch` without the repeated outputs, ``(rows, n_out, C)``."""
        if self.full == self.n_out:
            return z
        return torch.cat([z[:, :self.full], z[:, z.shape[1] - (self.n_out - self.full):]], dim=1)


def _gemm_conv(x, weight, bias, padding):
    """``conv2d(x, weight, bias, padding=padding)`` of ``x`` ``(B, 1, T, F)`` as products.

    ``weight`` is ``(C, 1, kt, kf)``. Per patch, windows of ``kt`` x ``block + kf - 1``
    values (one row each) times :func:`_toeplitz` give ``block`` outputs at once: one
    large matrix product instead of a convolution of one input channel, with the
    channels contiguous, so that a maximum over frequency reduces an outer axis.
    Timbral kernels (``kf > 1``) take blocks of bands; temporal ones (``kf == 1``) are
    run on the transposed patch, blocks of frames, one band per row. Under
    ``torch.autocast`` the product runs in the autocast dtype (windows cut from the
    input already cast: half the bytes).
    """
    channels, _, kt, kf = weight.shape
    kind = x.device.type
    dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype
    xp = F.pad(x[:, 0], (padding[1], padding[1], padding[0], padding[0]))
    over_bands = kf > 1
    if not over_bands:  # temporal: frames along axis 1, one band per row
        xp, weight = xp.transpose(1, 2), weight.transpose(2, 3)
        kt, kf = 1, kt
    n_out = xp.shape[2] - kf + 1
    block = min(_FREQ_BLOCK, n_out)
    full = (n_out - block) // block * block + block  # outputs of the whole blocks
    return _GemmConv(xp.to(dtype), _toeplitz(weight, block).to(dtype),
                     bias.repeat(block).to(dtype), kt, block + kf - 1, block, n_out, full,
                     over_bands)


def _conv_max_gemm(x, weight, bias, padding):
    """``conv2d(x, weight, bias, padding=padding).amax(dim=3)`` as matrix products, ``(B, C, T)``.

    The products of :func:`_gemm_conv`; the max reduces the bands, an outer axis
    (the rows of a temporal kernel's transposed patch, the blocks of a timbral one).
    """
    conv = _gemm_conv(x, weight, bias, padding)
    out = []
    for i in range(x.shape[0]):
        z = conv.patch(i)
        out.append(z.amax(dim=1) if conv.over_bands else conv.distinct(z.amax(dim=0)[None])[0])
    return torch.stack(out).transpose(1, 2)


class _TimbralBlock(nn.Module):
    """Conv (k_time x k_freq, time padded by 3, valid in frequency) -> ReLU -> BN -> max over freq."""

    #: in training, keep less for the backward pass (``chunked_conv_bn``)
    checkpointing = False
    #: in training, the convolution as matrix products (``_conv_one_channel``); False:
    #: torch's ``Conv2d``, ReLU, ``BatchNorm2d`` and ``amax`` as they are
    conv_as_matmul = True

    def __init__(self, filters, k_freq):
        super().__init__()
        self.conv = nn.Conv2d(1, filters, (7, k_freq), padding=(3, 0))
        self.bn = _bn2d(filters)

    def forward(self, x):  # (B, 1, T, F) -> (B, C, T)
        return _bn_relu_conv_max(self, x)


class _TemporalBlock(nn.Module):
    """Conv (k_time x 1, TF "same") -> ReLU -> BN -> max over freq."""

    #: in training, keep less for the backward pass (``chunked_conv_bn``)
    checkpointing = False
    #: as :attr:`_TimbralBlock.conv_as_matmul`
    conv_as_matmul = True

    def __init__(self, filters, k_time):
        super().__init__()
        self.pad = ((k_time - 1) // 2, k_time - 1 - (k_time - 1) // 2)
        self.conv = nn.Conv2d(1, filters, (k_time, 1))
        self.bn = _bn2d(filters)

    def forward(self, x):  # (B, 1, T, F) -> (B, C, T)
        pad = (0, 0) + self.pad
        return _bn_relu_conv_max(self, x.pad(pad) if isinstance(x, _AffineInput)
                                 else F.pad(x, pad))


class _MidendConv(nn.Module):
    """A mid-end layer: conv over 7 frames spanning all channels -> ReLU -> BN."""

    def __init__(self, in_channels, filters):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, 7, padding=3)
        self.bn = _bn1d(filters)

    def forward(self, x):  # (B, C_in, T) -> (B, C, T)
        return self.bn(F.relu(self.conv(x)))


class _MusicnnBody(nn.Module):
    """musicnn up to the penultimate layer; returns the named feature maps (TF layout)."""

    def __init__(self, n_mels=96, num_filt_frontend=1.6, num_filt_midend=64,
                 num_units_backend=200):
        super().__init__()
        timbral_filters = int(num_filt_frontend * 128)
        temporal_filters = int(num_filt_frontend * 32)
        self.input_bn = _bn2d(1)
        self.timbral = nn.ModuleList(
            [_TimbralBlock(timbral_filters, int(0.4 * n_mels)),
             _TimbralBlock(timbral_filters, int(0.7 * n_mels))])
        self.temporal = nn.ModuleList(
            [_TemporalBlock(temporal_filters, k) for k in (128, 64, 32)])
        frontend_channels = 2 * timbral_filters + 3 * temporal_filters
        self.midend = nn.ModuleList(
            [_MidendConv(frontend_channels, num_filt_midend),
             _MidendConv(num_filt_midend, num_filt_midend),
             _MidendConv(num_filt_midend, num_filt_midend)])
        self.pool_channels = frontend_channels + 3 * num_filt_midend
        self.pool_bn = _bn1d(2 * self.pool_channels)
        self.pool_dropout = nn.Dropout(0.5)
        self.dense = nn.Linear(2 * self.pool_channels, num_units_backend)
        self.dense_bn = _bn1d(num_units_backend)
        self.widths = {
            "timbral": 2 * timbral_filters, "temporal": 3 * temporal_filters,
            "cnn1": num_filt_midend, "cnn2": num_filt_midend, "cnn3": num_filt_midend,
            "mean_pool": self.pool_channels, "max_pool": self.pool_channels,
            "penultimate": num_units_backend,
        }

    def _normalised_input(self, x):
        """``input_bn(x)``, as an :class:`_AffineInput` where the front end can use one.

        That is in training with gradients, when ``x`` needs none and every front-end
        block computes its convolution as matrix products from batch statistics. The
        running statistics are updated as ``input_bn(x)`` does.
        """
        bn = self.input_bn
        blocks = [*self.timbral, *self.temporal]
        if not (bn.training and bn.affine and torch.is_grad_enabled() and not x.requires_grad
                and all(b.bn.training and b.conv_as_matmul and not b.checkpointing
                        for b in blocks)):
            return bn(x)
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        _update_running_stats(bn, mean, var, x.numel() // x.shape[1])
        xhat = (x - mean.view(1, -1, 1, 1)) * torch.rsqrt(var.view(1, -1, 1, 1) + bn.eps)
        return _AffineInput(xhat, bn.weight, bn.bias, x.new_ones((1, 1) + x.shape[2:]))

    def forward(self, x):
        x = self._normalised_input(x.unsqueeze(1))  # (B, 1, T, F)
        timbral = torch.cat([block(x) for block in self.timbral], dim=1)  # (B, C, T)
        temporal = torch.cat([block(x) for block in self.temporal], dim=1)
        frontend = torch.cat([timbral, temporal], dim=1)
        cnn1 = self.midend[0](frontend)
        cnn2 = self.midend[1](cnn1) + cnn1
        cnn3 = self.midend[2](cnn2) + cnn2
        midend = torch.cat([frontend, cnn1, cnn2, cnn3], dim=1)  # (B, 753, T)
        max_pool = midend.amax(dim=2)
        mean_pool = midend.mean(dim=2)
        # TF: concat([max, mean], axis=2) of (B, C, 1) tensors, then flatten -> interleaved
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        pooled = self.pool_dropout(self.pool_bn(pooled))
        penultimate = self.dense_bn(F.relu(self.dense(pooled)))
        return {
            "timbral": timbral.transpose(1, 2),
            "temporal": temporal.transpose(1, 2),
            "cnn1": cnn1.transpose(1, 2),
            "cnn2": cnn2.transpose(1, 2),
            "cnn3": cnn3.transpose(1, 2),
            "mean_pool": mean_pool,
            "max_pool": max_pool,
            "penultimate": penultimate,
        }


class _TaggerMixin:
    """Shared forward: body features -> dropout -> head (logits) -> sigmoid (taggram)."""

    def forward_features(self, x):
        """The named outputs of the body (every layer but the tag layer), as a dict."""
        self._check(x)
        return self.body(x)

    def head_input(self, features):
        """The (batch, head_in_features) tensor the tag layer reads, from ``forward_features``."""
        return features[self.head_layer].flatten(1)

    def forward(self, x):
        """Every named output (TF layout) plus ``logits`` and ``taggram`` (sigmoid of logits)."""
        features = self.forward_features(x)
        logits = self.head(self.head_dropout(self.head_input(features)))
        out = {"taggram": torch.sigmoid(logits)}
        out.update(features)
        out["logits"] = logits
        # float32 outputs whatever the arithmetic (bfloat16 under torch.autocast)
        return {name: value.float() for name, value in out.items()}

    @property
    def layer_names(self):
        """Names of the outputs the official extractor gives, ``taggram`` first."""
        return self.LAYERS

    def embedding_dim(self, layer):
        """Width of ``layer``'s embedding: the size of its last (channel) axis."""
        if layer == "taggram":
            return self.n_tags
        if layer not in self.body.widths:
            raise ValueError(f"unknown layer {layer!r}; choose from {self.LAYERS}")
        return self.body.widths[layer]


class MusicnnNet(_TaggerMixin, nn.Module):
    """The musicnn tagger (``MTT_musicnn``, ``MSD_musicnn``) in PyTorch.

    Parameters
    ----------
    n_tags : int, default=50
        Units of the tag layer (``head``).
    n_mels : int, default=96
        Mel bands of the input.
    num_filt_midend, num_units_backend : int, default=64, 200
        Mid-end filters and penultimate units (64/200 for the released models).

    Notes
    -----
    Input: float32 log-mel patches ``(batch, n_frames, n_mels)`` (187 frames
    for the released models; any length works). ``forward`` returns a dict
    with ``taggram`` (sigmoid), ``timbral`` (B, T, 408), ``temporal``
    (B, T, 153), ``cnn1``/``cnn2``/``cnn3`` (B, T, 64), ``mean_pool`` and
    ``max_pool`` (B, 753), ``penultimate`` (B, 200) and ``logits``.
    ``body`` holds every layer but the tag layer ``head`` (a ``Linear`` on
    ``penultimate`` after dropout 0.5), so a new head can replace it.
    """

    LAYERS = MUSICNN_LAYERS
    head_layer = "penultimate"

    def __init__(self, n_tags=50, n_mels=96, num_filt_midend=64, num_units_backend=200):
        super().__init__()
        self.n_tags = n_tags
        self.n_mels = n_mels
        self.body = _MusicnnBody(n_mels, 1.6, num_filt_midend, num_units_backend)
        self.head_dropout = nn.Dropout(0.5)
        self.head = nn.Linear(num_units_backend, n_tags)
        self.head_in_features = num_units_backend

    def _check(self, x):
        _check_input(x, self.n_mels)


class _VggBody(nn.Module):
    """vgg up to ``pool5``; returns the pools in TF's (B, H, W, C) layout."""

    POOLS = ((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), \
        ((4, 4), (4, 4))

    def __init__(self, num_filters=128, n_frames=187, n_mels=96):
        super().__init__()
        self.input_bn = _bn2d(1)
        self.convs = nn.ModuleList(
            [nn.Conv2d(1 if i == 0 else num_filters, num_filters, 3, padding=1)
             for i in range(5)])
        self.bns = nn.ModuleList([_bn2d(num_filters) for _ in range(5)])
        self.pools = nn.ModuleList([nn.MaxPool2d(k, s) for k, s in self.POOLS])
        self.dropouts = nn.ModuleList([nn.Dropout(0.25) for _ in range(4)])
        h, w = n_frames, n_mels
        self.shapes = {}
        for i, (k, s) in enumerate(self.POOLS):
            h, w = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
            self.shapes[f"pool{i + 1}"] = (h, w, num_filters)
        self.widths = {name: num_filters for name in self.shapes}
        self.flat_features = h * w * num_filters

    def _block(self, i, x):
        conv, bn, pool = self.convs[i], self.bns[i], self.pools[i]
        if bn.training or bn.running_mean is None:
            return pool(bn(F.relu(conv(x))))
        # inference: pool first, then ReLU and batch norm on the 4-16x smaller map; exact
        # for the reasons given in _bn_relu_conv_max (max pooling is a max too)
        # channels-last memory: oneDNN's convolutions and max pooling are several times faster
        sign = torch.where(bn.weight >= 0, 1.0, -1.0).to(x.dtype)
        weight = conv.weight * sign[:, None, None, None]
        bias = conv.bias * sign
        if conv.in_channels == 1:  # 3x3 conv of one channel as a matmul, straight to NHWC
            b, _, h, w = x.shape
            windows = F.pad(x[:, 0], (1, 1, 1, 1)).unfold(1, 3, 1).unfold(2, 3, 1)
            z = torch.addmm(bias, windows.reshape(-1, 9), weight.reshape(-1, 9).T)
            z = z.view(b, h, w, -1).permute(0, 3, 1, 2)
        else:
            z = F.conv2d(x.contiguous(memory_format=torch.channels_last),
                         weight.contiguous(memory_format=torch.channels_last), bias,
                         padding=conv.padding)
        z = pool(z) * sign[:, None, None]
        return F.batch_norm(F.relu(z), bn.running_mean, bn.running_var, bn.weight, bn.bias,
                            False, 0.0, bn.eps)

    def _forward(self, x):
        x = self.input_bn(x.unsqueeze(1))
        out = {}
        for i in range(5):
            if i:
                x = self.dropouts[i - 1](x)
            x = self._block(i, x)
            out[f"pool{i + 1}"] = x.permute(0, 2, 3, 1)  # NCHW -> TF's NHWC
        return out

    def forward(self, x):
        if self.training or x.shape[0] <= _CHUNK:
            return self._forward(x)
        # inference, a few patches at a time: the big early maps stay in cache
        parts = [self._forward(x[i:i + _CHUNK]) for i in range(0, x.shape[0], _CHUNK)]
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}


class VggNet(_TaggerMixin, nn.Module):
    """The vgg baseline tagger (``MTT_vgg``, ``MSD_vgg``) in PyTorch.

    Parameters
    ----------
    n_tags : int, default=50
        Units of the tag layer (``head``).
    num_filters : int, default=128
        Filters of every convolution.
    n_frames, n_mels : int, default=187, 96
        Input patch size (fixed: the tag layer reads the flattened ``pool5``).

    Notes
    -----
    ``forward`` returns ``taggram``, ``pool1`` (B, 92, 48, 128), ``pool2``
    (B, 46, 24, 128), ``pool3`` (B, 23, 12, 128), ``pool4`` (B, 11, 6, 128),
    ``pool5`` (B, 2, 1, 128) in TF's channels-last layout, and ``logits``.
    ``head`` is a ``Linear`` on the flattened ``pool5`` (after dropout 0.5).
    """

    LAYERS = VGG_LAYERS
    head_layer = "pool5"

    def __init__(self, n_tags=50, num_filters=128, n_frames=187, n_mels=96):
        super().__init__()
        self.n_tags = n_tags
        self.n_frames = n_frames
        self.n_mels = n_mels
        self.body = _VggBody(num_filters, n_frames, n_mels)
        self.head_dropout = nn.Dropout(0.5)
        self.head = nn.Linear(self.body.flat_features, n_tags)
        self.head_in_features = self.body.flat_features

    def _check(self, x):
        _check_input(x, self.n_mels, self.n_frames)
