"""Training-time augmentation of spectrogram batches: SpecAugment masking and mixup."""

import torch

__all__ = ["BatchAugmenter"]


class BatchAugmenter:
    """Augment a training batch: SpecAugment time/frequency masks, then mixup.

    SpecAugment (Park et al., 2019, without time warping): each spectrogram
    of the batch gets ``n_freq_masks`` bands of ``f ~ U{0, ..., freq_mask}``
    consecutive frequency rows and ``n_time_masks`` bands of
    ``t ~ U{0, ..., time_mask}`` consecutive frames, at uniformly drawn
    positions, set to that spectrogram's mean value (the paper sets them to
    the mean, which is zero in its normalised features). Widths are capped
    at the input's size.

    Mixup (Zhang et al., 2018): one ``lam ~ Beta(alpha, alpha)`` per batch;
    the batch becomes ``lam * x + (1 - lam) * x[perm]`` for a random
    permutation ``perm``, and the loss ``lam * loss(y) + (1 - lam) *
    loss(y[perm])``.

    Random numbers come from torch's global generator, which the
    classifiers seed in ``fit`` (inside ``torch.random.fork_rng``), so
    augmented training is reproducible. Holds only numbers (picklable).

    Parameters
    ----------
    freq_mask, time_mask : int
        Largest mask widths (0: no masks on that axis).
    n_freq_masks, n_time_masks : int
        Masks per spectrogram on each axis.
    mixup_alpha : float
        Beta parameter of mixup (0: no mixup).
    """

    def __init__(self, *, freq_mask=0, time_mask=0, n_freq_masks=1, n_time_masks=1,
                 mixup_alpha=0.0):
        self.freq_mask = int(freq_mask)
        self.time_mask = int(time_mask)
        self.n_freq_masks = int(n_freq_masks)
        self.n_time_masks = int(n_time_masks)
        self.mixup_alpha = float(mixup_alpha)

    @property
    def active(self):
        return (self.mixup_alpha > 0 or (self.freq_mask > 0 and self.n_freq_masks > 0)
                or (self.time_mask > 0 and self.n_time_masks > 0))

    @staticmethod
    def _mask_axis(x, fill, axis, max_width, n_masks):
        size = x.shape[axis]
        max_width = min(max_width, size)
        if max_width <= 0 or n_masks <= 0:
            return x
        batch = x.shape[0]
        positions = torch.arange(size, device=x.device)
        shape = [batch, 1, 1, 1]
        shape[axis] = size
        for _ in range(n_masks):
            width = torch.randint(0, max_width + 1, (batch,), device=x.device)
            start = (torch.rand(batch, device=x.device) * (size - width + 1)).long()
            inside = (positions >= start[:, None]) & (positions < (start + width)[:, None])
            x = torch.where(inside.view(shape), fill, x)
        return x

    def __call__(self, X, y):
        """Return ``(X_aug, y_other, lam)``; ``y_other`` is None without mixup.

        ``X`` is a float tensor ``(batch, channels, freq, frames)``; it is not
        modified in place.
        """
        if self.freq_mask > 0 or self.time_mask > 0:
            fill = X.mean(dim=(1, 2, 3), keepdim=True)
            X = self._mask_axis(X, fill, 2, self.freq_mask, self.n_freq_masks)
            X = self._mask_axis(X, fill, 3, self.time_mask, self.n_time_masks)
        if self.mixup_alpha > 0 and len(X) > 1:
            alpha = torch.tensor(self.mixup_alpha)
            lam = float(torch.distributions.Beta(alpha, alpha).sample())
            perm = torch.randperm(len(X), device=X.device)
            X = lam * X + (1.0 - lam) * X[perm]
            return X, y[perm], lam
        return X, None, 1.0
