"""Tests for ClipSegmenter: segment count, content, clip index, errors, sklearn checks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from specgenre._validation import InvalidParameterError
from specgenre.segment import ClipSegmenter

# sr=1 makes seconds equal samples, so small segment/hop lengths can be drawn freely
FAST = settings(max_examples=60, deadline=None)


@st.composite
def clips_and_lengths(draw, overlap=None):
    seg = draw(st.integers(1, 12))
    if overlap is None:
        hop = draw(st.integers(1, 15))
    elif overlap:
        hop = draw(st.integers(1, seg))
    else:
        hop = seg
    n_samples = draw(st.integers(seg, 60))
    n_clips = draw(st.integers(1, 4))
    X = draw(arrays(np.float32, (n_clips, n_samples),
                    elements=st.floats(-1, 1, width=32)))
    return X, seg, hop


@FAST
@given(clips_and_lengths())
def test_count_shape_and_clip_index(case):
    X, seg, hop = case
    n_clips, n = X.shape
    est = ClipSegmenter(float(seg), sr=1, hop_seconds=float(hop)).fit(X)
    expected = 1 + (n - seg) // hop
    assert est.n_segments_ == expected == est.n_segments(n)
    segments, clip_index = est.segment(X)
    assert segments.shape == (n_clips * expected, seg)
    assert segments.dtype == np.float32 and segments.flags.c_contiguous
    np.testing.assert_array_equal(clip_index, np.repeat(np.arange(n_clips), expected))
    np.testing.assert_array_equal(est.transform(X), segments)


@FAST
@given(clips_and_lengths(overlap=None))
def test_each_segment_is_the_slice_it_claims(case):
    X, seg, hop = case
    segments, clip_index = ClipSegmenter(float(seg), sr=1, hop_seconds=float(hop)).fit_segment(X)
    n_seg = len(segments) // len(X)
    k_index = np.tile(np.arange(n_seg), len(X))
    for row, (i, k) in enumerate(zip(clip_index, k_index, strict=True)):
        np.testing.assert_array_equal(segments[row], X[i, k * hop : k * hop + seg])


@FAST
@given(clips_and_lengths(overlap=False))
def test_without_overlap_segments_concatenate_to_the_clip_prefix(case):
    X, seg, _ = case
    segments, clip_index = ClipSegmenter(float(seg), sr=1).fit_segment(X)
    n_seg = len(segments) // len(X)
    for i in range(len(X)):
        joined = segments[clip_index == i].ravel()
        np.testing.assert_array_equal(joined, X[i, : n_seg * seg])
    # the dropped tail is shorter than one segment
    assert 0 <= X.shape[1] - n_seg * seg < seg


def test_segments_that_tile_the_clips_are_a_read_only_view_others_a_copy():
    X = np.arange(2 * 12, dtype=np.float32).reshape(2, 12)
    expected = X.reshape(6, 4)
    tiles = ClipSegmenter(4.0, sr=1).fit_transform(X)
    np.testing.assert_array_equal(tiles, expected)
    assert np.shares_memory(tiles, X) and not tiles.flags.writeable
    for segments, clips in [
        (ClipSegmenter(4.0, sr=1, hop_seconds=2.0).fit_transform(X), X),  # overlapping
        (ClipSegmenter(5.0, sr=1).fit_transform(X), X),  # a tail left over
        (ClipSegmenter(4.0, sr=1).fit_transform(np.asfortranarray(X)), None),  # F-ordered
    ]:
        assert segments.flags.c_contiguous and segments.flags.writeable
        assert clips is None or not np.shares_memory(segments, clips)
    np.testing.assert_array_equal(ClipSegmenter(4.0, sr=1).fit_transform(np.asfortranarray(X)),
                                  expected)


def test_gtzan_sizes():
    # 30 s at 22050 Hz and GTZAN's common 661794-sample length both give ten 3 s segments
    for n in (661500, 661794):
        est = ClipSegmenter().fit(np.zeros((1, n), np.float32))
        assert (est.segment_length_, est.hop_length_, est.n_segments_) == (66150, 66150, 10)
    assert ClipSegmenter().n_segments(66149) == 0
    assert ClipSegmenter(hop_seconds=1.5).n_segments(661500) == 19


def test_too_short_clip_is_a_clear_error():
    X = np.zeros((2, 1000), np.float32)
    with pytest.raises(ValueError, match=r"1000 samples .* shorter than one segment of 66150"):
        ClipSegmenter().fit(X)


def test_transform_needs_the_fitted_length():
    est = ClipSegmenter(2.0, sr=1).fit(np.zeros((1, 10), np.float32))
    with pytest.raises(ValueError, match="features"):
        est.transform(np.zeros((1, 12), np.float32))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(segment_seconds=0.0), "segment_seconds"),
        (dict(sr=0), "sr"),
        (dict(hop_seconds=-1.0), "hop_seconds"),
        (dict(segment_seconds=0.01, sr=10), "at least 1 sample"),
    ],
)
def test_invalid_params(params, match):
    with pytest.raises(ValueError, match=match):
        ClipSegmenter(**params).fit(np.zeros((1, 100), np.float32))


def test_invalid_param_message_names_parameter_range_and_value():
    with pytest.raises(InvalidParameterError) as info:
        ClipSegmenter(sr=True).fit(np.zeros((1, 100), np.float32))
    assert str(info.value) == (
        "The 'sr' parameter of ClipSegmenter must be an int in the range [1, inf). "
        "Got True instead."
    )


def test_clone_keeps_params_and_drops_fit():
    est = ClipSegmenter(1.5, sr=8000, hop_seconds=0.5).fit(np.zeros((1, 20000), np.float32))
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "segment_length_")


# transform returns n_segments_ rows per input row, which the generic checks
# below assume never happens (they compare transform's row count to the input's)
_ROWS_CHANGE = "transform returns n_clips * n_segments_ rows: one per segment, not one per clip"
_EXPECTED_FAILURES = {
    "check_transformer_general": _ROWS_CHANGE,
    "check_transformer_data_not_an_array": _ROWS_CHANGE,
    "check_methods_sample_order_invariance": _ROWS_CHANGE,
}


@parametrize_with_checks(
    [ClipSegmenter(1.0, sr=1), ClipSegmenter(1.0, sr=1, hop_seconds=2.0)],
    expected_failed_checks=lambda est: _EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
