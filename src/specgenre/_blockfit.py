"""Fitting a study row from blocks of waveforms, each dropped once turned into features.

``est.fit(X, y)`` needs every waveform at once: 2.6 GB for the 1000 30 s clips of
GTZAN, on top of their spectrograms and of training, and 13 GB for 5000 songs. A
study row's first step (spectrogram, features, musicnn embedding or patches) works
clip by clip and learns nothing but the input length, so its output can be built
block by block, each block of waveforms decoded, transformed and dropped, and the
rest of the row fitted on that output: the peak is then the first step's output plus
one block. The fitted estimator is the one ``est.fit(X, y)`` gives (tested).

Used by :func:`specgenre.train_row` (``specgenre train``) and
``benchmarks/bench_memory.py``.
"""

import numpy as np
from sklearn.base import clone

__all__ = ["fit_aggregator_blocks", "fit_pipeline_blocks"]


def _transform_blocks(front, blocks, max_items, cut=None):
    """Run ``front`` over ``(items, labels)`` blocks into one preallocated array.

    ``cut(items)`` turns the items of a block (clips) into the samples ``front``
    takes (their segments; default: the items themselves); every item must give
    the same number of samples. ``front`` is fitted on the first block. Returns
    ``(Xt, labels, per_item)``: the outputs of all blocks in order (a view of the
    first rows of an array sized for ``max_items``: the pages of unused rows are
    never touched, so they take no memory), the items' labels, and the samples per
    item.
    """
    Xt, labels, row, per_item = None, [], 0, None
    for items, y_block in blocks:
        n_items = len(items)
        if len(y_block) != n_items:
            raise ValueError(f"a block of {n_items} items has {len(y_block)} labels.")
        samples = items if cut is None else cut(items)
        del items
        if Xt is None:
            front.fit(samples)
        part = front.transform(samples)
        del samples
        if per_item is None:
            per_item = len(part) // max(n_items, 1)
            Xt = np.empty((max_items * per_item, *part.shape[1:]), dtype=part.dtype)
        if len(part) != per_item * n_items:
            raise ValueError(f"a block of {n_items} items gave {len(part)} samples, not "
                             f"{per_item} per item as the first block did.")
        if row + len(part) > len(Xt):
            raise ValueError(f"the blocks hold more than max_items={max_items} items.")
        Xt[row:row + len(part)] = part
        row += len(part)
        labels.append(np.asarray(y_block))
        del part
    if Xt is None:
        raise ValueError("no block of samples to fit on.")
    return Xt[:row], np.concatenate(labels), per_item


def fit_pipeline_blocks(pipe, blocks, max_items, cut=None, *, return_train_pred=False,
                        **fit_params):
    """Fit a Pipeline on samples that arrive in blocks; return it.

    Parameters
    ----------
    pipe : Pipeline
        Its first step must be stateless per sample (it is fitted on the first
        block only, then transforms every block): a study row's
        :class:`~specgenre.SpectrogramTransformer`,
        :class:`~specgenre.FeatureExtractor`, musicnn embedding or patches. The
        other steps are fitted on the first step's output of all blocks.
    blocks : iterable of (ndarray, array-like)
        ``(items, labels)`` block after block (e.g. decoded as they are asked
        for); each block is dropped once transformed.
    max_items : int
        Most items the blocks may hold in all (the output is allocated once).
    cut : callable, default=None
        Turns a block's items into the pipeline's samples, each item giving the
        same number (e.g. clips into their 3 s segments, which then take their
        clip's label). None: the items are the samples.
    return_train_pred : bool, default=False
        Also return the fitted pipeline's predictions for its training samples
        (from the first step's outputs, which are still held: no recomputation).
    **fit_params : dict
        Passed to the fit of the remaining steps (``step__param`` keys).

    Returns
    -------
    pipe : Pipeline
        Fitted; with ``return_train_pred``, ``(pipe, predictions)``.
    """
    Xt, y, per_item = _transform_blocks(pipe.steps[0][1], blocks, max_items, cut)
    pipe[1:].fit(Xt, np.repeat(y, per_item), **fit_params)  # the same objects: in place
    return (pipe, np.asarray(pipe[1:].predict(Xt))) if return_train_pred else pipe


def fit_aggregator_blocks(agg, blocks, max_clips, groups=None, *, return_train_pred=False):
    """Fit a :class:`~specgenre.TrackAggregator` over a Pipeline on blocks of clips.

    Each block is cut into segments by the aggregator's segmenter and turned by the
    pipeline's first step into its output for those segments, then dropped; the
    rest of the pipeline is fitted on all segments' outputs, with the labels and
    groups (the clip of each segment, unless ``groups`` are given) that
    ``agg.fit`` would pass.

    Parameters
    ----------
    agg : TrackAggregator
        With a :class:`~specgenre.ClipSegmenter` (or None) as segmenter and a
        Pipeline as estimator (see :func:`fit_pipeline_blocks`).
    blocks : iterable of (ndarray of shape (n_block_clips, n_samples), array-like)
        Waveforms, all of one length, and the label of each clip, block after
        block; each block is dropped once used.
    max_clips : int
        Most clips the blocks may hold in all.
    groups : array-like of shape (n_clips,), default=None
        As in ``agg.fit``.
    return_train_pred : bool, default=False
        Also return the inner model's predictions for the training segments
        (from the first step's outputs, which are still held).

    Returns
    -------
    agg : TrackAggregator
        Fitted; with ``return_train_pred``, ``(agg, segment predictions)``.
    """
    if isinstance(agg.segmenter, str) or not hasattr(agg.estimator, "steps"):
        raise TypeError("fit_aggregator_blocks needs a TrackAggregator that cuts waveforms "
                        "(not segmenter='precomputed') around a Pipeline.")
    agg._check_fit_args(0)  # (the labels come with the blocks)
    front = clone(agg.estimator.steps[0][1])
    fitted = []

    def cut(clips):
        if not fitted:  # the segmenter learns the clip length from the first block
            agg._segment(clips[:1], fit=True)
            fitted.append(True)
        return agg.segmenter_.segment(clips)[0]

    Xt, y, per_clip = _transform_blocks(front, blocks, max_clips, cut)
    n_clips = len(y)

    def fit_inner(pipe, y_segments, **params):
        pipe.steps[0] = (pipe.steps[0][0], front)  # fitted on the first block
        pipe[1:].fit(Xt, y_segments, **params)
        return pipe

    agg._fit_segments(fit_inner, np.repeat(np.arange(n_clips), per_clip), n_clips, y, groups)
    return (agg, np.asarray(agg.estimator_[1:].predict(Xt))) if return_train_pred else agg
