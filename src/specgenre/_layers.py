"""Layers shared by the library's networks (spectrogram CNNs, ResNet18, musicnn).

:func:`chunked_conv_bn` runs a network's first layer, ``conv -> batch norm ->
ReLU -> max-pooling`` (or ReLU before batch norm, as musicnn's front end), in
training with far less memory kept for the backward pass. Imports torch.
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BATCH_NORM_TYPES", "bn_relu_max_pool2x2", "chunked_conv_bn"]

#: The batch-norm layers with running statistics (torch's public classes).
BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def _max_with_indices(z, pool):
    """``(maximum, flat index)`` of ``z`` (N, C, H, W) per pooling window.

    ``pool`` is ``(kernel_size, stride, padding)`` of :func:`F.max_pool2d`, or ``"last"``:
    the maximum over the last axis. The index is into each ``(n, c)`` map's ``H * W``
    values, as :func:`F.max_pool2d` gives it.
    """
    if pool == "last":
        values, idx = z.max(dim=3)
        return values, idx.add_(torch.arange(z.shape[2], device=z.device) * z.shape[3])
    return F.max_pool2d(z, *pool, return_indices=True)


class _ChunkedConvBN(torch.autograd.Function):
    """``pool(relu(bn(conv(x))))`` or ``pool(bn(relu(conv(x))))`` in training, with less kept.

    The first layers of a spectrogram network hold the largest activations: at full
    resolution, a batch of 32 mel spectrograms of 30 s gives 340 MB per tensor in
    ResNet18's stem. Their backward pass is then the training peak, with the
    convolution's output, the gradient of the batch-norm output and that of its input
    alive at once. Here the forward pass computes the convolution a chunk of the batch
    at a time into one output, normalises it in place (updating ``bn``'s running
    statistics as ``bn`` would) and keeps only ``x``, the batch statistics and the
    (pooled, small) output. The backward pass reads the two batch sums that batch
    norm's gradient needs off the output (the gradient reaches the batch-norm output
    only at each window's maximum, where it equals the output), then recomputes the
    layer ``chunk`` samples at a time to apply them and take the convolution's
    gradients. Its memory is that of one chunk. Outputs, running statistics and
    gradients equal autograd's up to float32 round-off (tested); the compute is one
    more forward pass of the layer.

    ``pool`` is as in :func:`_max_with_indices`; ``relu_first``: ReLU before batch
    norm (musicnn's front end), else after it. A tie's gradient goes to its first
    maximum, as in :func:`F.max_pool2d` (``amax`` shares it among the tied values:
    the same unless whole windows tie, as where a batch-norm weight is 0).
    """

    @staticmethod
    def forward(ctx, x, conv, bn, pool, relu_first, chunk, *params):
        y = None  # conv(x), a chunk at a time: the convolution's own buffers stay small
        for start in range(0, len(x), chunk):
            part = conv(x[start:start + chunk])
            if y is None:
                y = part.new_empty((len(x), *part.shape[1:]))
            y[start:start + len(part)] = part
            del part
        if relu_first:
            y.clamp_min_(0.0)
        var, mean = torch.var_mean(y, dim=(0, 2, 3), unbiased=False)
        invstd = torch.rsqrt(var + bn.eps)
        count = y.numel() // y.shape[1]  # values per channel
        _update_running_stats(bn, mean, var, count)
        scale = (bn.weight * invstd).view(1, -1, 1, 1)
        shift = bn.bias.view(1, -1, 1, 1) - mean.view(1, -1, 1, 1) * scale
        y.mul_(scale).add_(shift)
        out = _max_with_indices(y, pool)[0]
        del y
        if not relu_first:
            out.clamp_min_(0.0)  # relu(max z) = max(relu z)
        ctx.save_for_backward(x, mean, invstd, scale, shift, out)
        ctx.conv, ctx.bn, ctx.pool, ctx.relu_first = conv, bn, pool, relu_first
        ctx.chunk, ctx.count = chunk, count
        return out

    @staticmethod
    def backward(ctx, grad_out):
        grad_out = grad_out.to(ctx.bn.weight.dtype)  # from layers in bfloat16 (autocast)
        x, mean, invstd, scale, shift, out = ctx.saved_tensors
        conv, bn, pool, chunk = ctx.conv, ctx.bn, ctx.pool, ctx.chunk
        names = [name for name, _ in conv.named_parameters()]
        weights = [p.detach().requires_grad_() for _, p in conv.named_parameters()]
        need_x = ctx.needs_input_grad[0]
        c = (1, -1, 1, 1)
        gamma, beta = bn.weight.detach().view(c), bn.bias.detach().view(c)
        mean, invstd = mean.view(c), invstd.view(c)
        if out.dim() == 3:  # max over the last axis: (N, C, H) -> (N, C, H, 1)
            out, grad_out = out.unsqueeze(3), grad_out.unsqueeze(3)
        dims = (0, 2, 3)

        def pooled_grad(start):
            """The gradient at the pooled output of the chunk at ``start``."""
            g = grad_out[start:start + chunk]
            if ctx.relu_first:
                return g
            # the ReLU after batch norm passes no gradient where the output is 0
            return g.masked_fill(out[start:start + chunk] <= 0, 0.0)

        def normalise(y, start):
            """``(xhat, gz)``: normalised ``y`` (the chunk at ``start``) and the gradient
            at the batch-norm output."""
            if ctx.relu_first:
                y = y.clamp_min(0.0)
            # the batch-norm output as the forward pass computed it (the same maxima)
            idx = _max_with_indices(y * scale + shift, pool)[1]
            xhat = (y - mean).mul_(invstd)
            g = pooled_grad(start).flatten(2)
            gz = torch.zeros_like(xhat).flatten(2).scatter_add_(2, idx.flatten(2), g)
            return xhat, gz.view_as(xhat)

        # Batch norm's gradient needs sum(gz) and sum(gz * xhat) over the batch: sums over
        # the windows' maxima, where the batch-norm output is ``out``, so that
        # xhat = (out - beta) / gamma there. Recomputed instead where a gamma is 0.
        # Chunk by chunk, so that no temporary is the size of the whole output.
        sum_g = sum_gx = 0.0
        read_off = bool((gamma != 0).all())
        for start in range(0, len(x), chunk):
            if read_off:
                g = pooled_grad(start)
                sum_g = sum_g + g.sum(dim=dims, keepdim=True)
                sum_gx = sum_gx + (g * (out[start:start + chunk] - beta)).sum(dim=dims,
                                                                            keepdim=True)
                continue
            with torch.no_grad():
                xhat, gz = normalise(conv(x[start:start + chunk]), start)
            sum_g = sum_g + gz.sum(dim=dims, keepdim=True)
            sum_gx = sum_gx + (gz * xhat).sum(dim=dims, keepdim=True)
            del xhat, gz
        if read_off:
            sum_gx = sum_gx / gamma
        mean_g, mean_gx = sum_g / ctx.count, sum_gx / ctx.count
        grads_x, grads_w = [], [torch.zeros_like(w) for w in weights]
        for start in range(0, len(x), chunk):
            with torch.enable_grad():
                xc = x[start:start + chunk].detach().requires_grad_(need_x)
                y = torch.func.functional_call(conv, dict(zip(names, weights)), (xc,))
            with torch.no_grad():
                xhat, gz = normalise(y.detach(), start)
                # batch norm's input gradient (training mode), in place on gz
                gy = gz.sub_(mean_g).sub_(xhat.mul_(mean_gx)).mul_(gamma * invstd)
                del xhat
                if ctx.relu_first:
                    gy.masked_fill_(y <= 0, 0.0)
            got = torch.autograd.grad(y, ([xc] if need_x else []) + weights, gy)
            if need_x:
                grads_x.append(got[0])
                got = got[1:]
            for acc, g in zip(grads_w, got):
                acc += g
            del y, gy, got
        grad_x = torch.cat(grads_x) if need_x else None
        return (grad_x, None, None, None, None, None, *grads_w,
                sum_gx.view(-1).clone(), sum_g.view(-1).clone())


def _update_running_stats(bn, mean, var, n):
    """Update ``bn``'s running statistics with one training batch, as ``bn(x)`` does."""
    if not bn.track_running_stats:
        return
    bn.num_batches_tracked.add_(1)
    factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    bn.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
    bn.running_var.mul_(1.0 - factor).add_(var * (n / max(n - 1, 1)), alpha=factor)


def merged_mean_var(counts, means, variances):
    """``(mean, biased variance)`` of the union of parts, from each part's, in float64.

    ``counts`` are the parts' sizes; ``means`` and ``variances`` (biased) their
    per-channel statistics, stacked ``(parts, C)`` or a list of ``(C,)`` tensors.
    Chan, Golub and LeVeque's pairwise formula, for all parts at once.
    """
    means = torch.stack(list(means)).double()
    variances = torch.stack(list(variances)).double()
    sizes = torch.as_tensor(counts, dtype=torch.float64, device=means.device)[:, None]
    total = float(sum(counts))
    mean = (sizes * means).sum(0) / total
    return mean, (sizes * (variances + (means - mean).square())).sum(0) / total


def without_part(whole, part):
    """``(n, mean, biased variance)`` of a set of values without a part of them, from
    the same of both: :func:`merged_mean_var` of two parts, solved for the other."""
    n, mean, var = whole
    n_p, mean_p, var_p = part
    n_d = n - n_p
    mean_d = (n * mean - n_p * mean_p) / n_d
    m2_d = n * var - n_p * var_p - (n_d * n_p / n) * (mean_d - mean_p).square()
    return n_d, mean_d, (m2_d / n_d).clamp_min(0.0)


def _channel_mean_var(y, max_elements=1 << 18):
    """Per-channel mean and biased variance of ``y`` (N, C, H, W), in float32.

    A float32 copy of ``max_elements`` values at a time (a buffer that stays in
    the core's cache), each part's exact two-pass mean and variance merged by
    :func:`merged_mean_var`: float32 accuracy from bfloat16 input, without the
    full-size normalised output that batch norm writes when it is asked for its
    statistics. ``y`` is read through its ``(N * H * W, C)`` view when channels-last.
    """
    c = y.shape[1]
    rows = y.permute(0, 2, 3, 1).reshape(-1, c)  # a view of channels-last memory
    step = max(1, max_elements // c)
    buf = torch.empty((min(step, len(rows)), c), dtype=torch.float32, device=y.device)
    counts, means, variances = [], [], []
    for start in range(0, len(rows), step):
        part = buf[:min(step, len(rows) - start)]
        part.copy_(rows[start:start + step])
        counts.append(len(part))
        means.append(part.mean(dim=0))
        variances.append(part.sub_(means[-1]).square_().mean(dim=0))
    mean, var = merged_mean_var(counts, means, variances)
    return mean.float(), var.float()


def bn_relu_max_pool2x2(y, bn):
    """``relu(max_pool2d(bn(y), 2))`` without gradients, the maximum taken before batch norm.

    Where a channel's batch-norm weight is >= 0, its map is increasing and
    commutes with the maximum: the 2x2 maxima of ``y`` are
    taken first (four strided views, no indices) and normalised at a quarter of
    the size. In training mode the batch statistics come from
    :func:`_channel_mean_var` and ``bn``'s running statistics are updated as
    ``bn(y)`` updates them. The values are those of the unfused layers (the same
    float32 map of the same maxima, rounded once to ``y``'s dtype); a channel with
    a negative weight sends the whole layer through them. For the forward passes that
    keep nothing for a backward pass: batch-norm recalibration, validation,
    prediction. ``y`` is (N, C, H, W) with ``H, W >= 2``; an odd last row or
    column is dropped, as :func:`F.max_pool2d` drops it.
    """
    if bn.training or bn.running_mean is None:  # batch statistics
        mean, var = _channel_mean_var(y)
        if bn.training and bn.track_running_stats:
            _update_running_stats(bn, mean, var, y.numel() // y.shape[1])
    else:
        mean, var = bn.running_mean, bn.running_var
    # batch norm's map of a channel, weight * (y - mean) / sqrt(var + eps) + bias, is
    # decreasing where the weight is negative: its maxima would be minima there
    if bn.weight is not None and bool((bn.weight < 0).any()):
        z = F.batch_norm(y, mean, var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return F.relu(F.max_pool2d(z, 2))
    n, c, h, w = y.shape
    h, w = h - h % 2, w - w % 2
    fmt = (torch.channels_last if y.is_contiguous(memory_format=torch.channels_last)
           else torch.contiguous_format)
    out = torch.empty((n, c, h // 2, w // 2), dtype=y.dtype, device=y.device,
                      memory_format=fmt)
    torch.maximum(y[:, :, 0:h:2, 0:w:2], y[:, :, 0:h:2, 1:w:2], out=out)
    torch.maximum(out, y[:, :, 1:h:2, 0:w:2], out=out)
    torch.maximum(out, y[:, :, 1:h:2, 1:w:2], out=out)
    # batch norm's own kernel with these statistics, on the maxima
    return F.relu_(F.batch_norm(out, mean, var, bn.weight, bn.bias, False, 0.0, bn.eps))


def chunked_conv_bn(x, conv, bn, pool, *, relu_first=False, chunk=8):
    """The first layer of a network, ``conv -> BN -> ReLU -> max`` (``relu_first``: ReLU, BN).

    ``pool`` is ``(kernel_size, stride, padding)`` of a 2-D max-pooling or ``"last"``
    (the maximum over the last axis). With ``bn`` in training mode (batch statistics)
    it is :class:`_ChunkedConvBN`, which normalises in place and keeps far less for
    the backward pass; with running statistics, the plain computation.
    """
    pool = pool if pool == "last" else tuple(pool)
    if not (bn.training and bn.affine):  # running statistics: no batch sums to keep
        y = conv(x)
        if relu_first:
            z = bn(F.relu(y))
            return z.amax(dim=3) if pool == "last" else F.max_pool2d(z, *pool)
        # ReLU after the maximum: the same values, without a full-size ReLU output
        z = bn(y)
        return (z.amax(dim=3) if pool == "last" else F.max_pool2d(z, *pool)).clamp_min(0.0)
    # batch statistics, also without gradients (batch-norm recalibration): in place,
    # in the weights' precision (under autocast too: the sums and in-place updates want
    # it; a memory path, not a speed one)
    params = [p for _, p in conv.named_parameters()] + [bn.weight, bn.bias]
    with torch.autocast(x.device.type, enabled=False):
        return _ChunkedConvBN.apply(x.to(conv.weight.dtype), conv, bn, pool, bool(relu_first), int(chunk),
                                    *params)
