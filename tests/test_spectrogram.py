"""Tests for SpectrogramTransformer: equality with librosa, shapes, silence, determinism."""

import warnings

import librosa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from specgenre.segment import ClipSegmenter
from specgenre.spectrogram import BandStatistics, SpectrogramTransformer

SR = 22050
TOL_DB = 1e-3  # float64 FFT (fft_dtype="float64")
TOL_DB_F32 = 1e-2  # float32 FFT, the default
EXACT = dict(fft_dtype="float64")
FAST = settings(max_examples=40, deadline=None)


def librosa_db(y, n_fft=1024, hop_length=512, top_db=80.0):
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
    return librosa.amplitude_to_db(S, ref=np.max, top_db=top_db)


def librosa_mel(y, sr=SR, n_fft=2048, hop_length=512, n_mels=128, top_db=80.0):
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
                                       n_mels=n_mels)
    return librosa.power_to_db(S, ref=np.max, top_db=top_db)


def reference(X, scale, **kw):
    func = librosa_db if scale == "db" else librosa_mel
    return np.stack([func(x, **kw) for x in X])[:, None]


def synthetic(n_samples, rng, sr=SR):
    """Three test signals: tones + noise, a chirp with silence, a decaying click train."""
    t = np.arange(n_samples) / sr
    tones = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3150 * t)
    tones += 0.01 * rng.standard_normal(n_samples)
    chirp = np.sin(2 * np.pi * (100 + 2000 * t) * t) * (t > 0.5)
    clicks = np.zeros(n_samples)
    clicks[:: sr // 8] = 1.0
    clicks = np.convolve(clicks, np.exp(-np.arange(200) / 30.0))[:n_samples]
    return np.stack([tones, chirp, clicks]).astype(np.float32)


@pytest.mark.parametrize("scale", ["db", "mel"])
def test_equals_librosa_on_synthetic_3s_segments(scale, rng):
    X = synthetic(3 * SR, rng)
    S = SpectrogramTransformer(scale, **EXACT).fit_transform(X)
    ref = reference(X, scale)
    assert S.shape == ref.shape == ((3, 1, 513, 130) if scale == "db" else (3, 1, 128, 130))
    np.testing.assert_allclose(S, ref, rtol=0, atol=TOL_DB)
    S = SpectrogramTransformer(scale).fit_transform(X)  # the default float32 FFT
    np.testing.assert_allclose(S, ref, rtol=0, atol=TOL_DB_F32)


@pytest.mark.parametrize(
    "scale, params",
    [
        ("db", dict(n_fft=512, hop_length=128, top_db=40.0)),
        ("db", dict(n_fft=1023, hop_length=300)),  # odd FFT size
        ("mel", dict(n_fft=1024, hop_length=256, n_mels=64, top_db=60.0)),
        ("mel", dict(sr=16000, n_fft=512, hop_length=160, n_mels=40)),
    ],
)
def test_equals_librosa_with_other_settings(scale, params, rng):
    sr = params.get("sr", SR)
    X = synthetic(sr, rng, sr=sr)
    ref = reference(X, scale, **params)
    S = SpectrogramTransformer(scale, **params, **EXACT).fit_transform(X)
    np.testing.assert_allclose(S, ref, rtol=0, atol=TOL_DB)
    S = SpectrogramTransformer(scale, **params).fit_transform(X)
    np.testing.assert_allclose(S, ref, rtol=0, atol=TOL_DB_F32)


@pytest.mark.parametrize("scale", ["db", "mel"])
def test_float32_fft_is_the_default_and_close(scale, rng):
    X = synthetic(3 * SR, rng)
    ref = reference(X, scale)
    assert SpectrogramTransformer().fft_dtype == "float32"
    fast = SpectrogramTransformer(scale).fit_transform(X)
    exact = SpectrogramTransformer(scale, fft_dtype="float64").fit_transform(X)
    err_fast, err_exact = np.abs(fast - ref).max(), np.abs(exact - ref).max()
    # float32 round-off (~1e-8 of the frame energy) matters in quiet bins only
    assert err_exact < 1e-4 < err_fast < TOL_DB_F32


@pytest.mark.parametrize("scale", ["db", "mel"])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_float16_output_is_the_float32_output_rounded(scale, n_jobs, rng):
    X = synthetic(3 * SR, rng)
    S32 = SpectrogramTransformer(scale, n_jobs=n_jobs).fit_transform(X)
    S16 = SpectrogramTransformer(scale, dtype="float16", n_jobs=n_jobs).fit_transform(X)
    assert S16.dtype == np.float16 and S16.shape == S32.shape
    np.testing.assert_array_equal(S16, S32.astype(np.float16))
    # the documented bound: float16's half-spacing, 1/32 dB in [-64, 0], 1/16 dB below
    err = np.abs(S16.astype(np.float32) - S32)
    assert err[S32 >= -64].max() <= 2 ** -5 and err.max() <= 2 ** -4


def test_db_without_floor_equals_librosa(rng):
    X = synthetic(SR, rng)
    S = SpectrogramTransformer("db", top_db=None, **EXACT).fit_transform(X)
    ref = reference(X, "db", top_db=None)
    assert S.min() < -80.0  # no floor: the quiet bins go far below -80 dB
    np.testing.assert_allclose(S, ref, rtol=0, atol=TOL_DB)


def test_short_clips_and_clips_shorter_than_the_window(rng):
    # centre padding makes any length valid; librosa warns but computes
    X = rng.standard_normal((2, 700)).astype(np.float32)
    with pytest.warns(UserWarning, match="n_fft"):
        ref = reference(X, "mel")
    np.testing.assert_allclose(SpectrogramTransformer("mel", **EXACT).fit_transform(X), ref,
                               rtol=0, atol=TOL_DB)
    np.testing.assert_allclose(SpectrogramTransformer("mel").fit_transform(X), ref,
                               rtol=0, atol=TOL_DB_F32)


@pytest.mark.shared_data
@pytest.mark.parametrize("scale", ["db", "mel"])
@pytest.mark.parametrize("fft_dtype, tol", [("float64", TOL_DB), ("float32", TOL_DB_F32)])
def test_equals_librosa_on_a_real_track(gtzan_dev, scale, fft_dtype, tol):
    import soundfile as sf

    y, sr = sf.read(gtzan_dev / "rock" / "rock.00003.flac", dtype="float32")
    assert sr == SR
    segments = ClipSegmenter().fit_transform(y[None, : 30 * SR])
    S = SpectrogramTransformer(scale, fft_dtype=fft_dtype).fit_transform(segments)
    np.testing.assert_allclose(S, reference(segments, scale), rtol=0, atol=tol)


@pytest.mark.parametrize("scale", ["db", "mel"])
def test_batched_rows_long_rows_and_overflowing_rows(scale, rng):
    # 3 s rows share FFT calls (3 rows of 130 frames per call); a 30 s row (1292
    # frames) is cut into blocks of frames; a row whose float32 power overflows is
    # redone in float64 without touching the rows batched with it
    from specgenre.spectrogram import _FFT_FRAMES

    long = synthetic(30 * SR, rng)[:1]
    assert 1 + long.shape[1] // 512 > 2 * _FFT_FRAMES
    for fft_dtype, tol in (("float32", TOL_DB_F32), ("float64", TOL_DB)):
        S = SpectrogramTransformer(scale, fft_dtype=fft_dtype).fit_transform(long)
        np.testing.assert_allclose(S, reference(long, scale), rtol=0, atol=tol)
    X = np.concatenate([synthetic(3 * SR, rng), synthetic(3 * SR, rng)])
    X[4] *= np.float32(1e20)  # |X|^2 beyond float32's range
    est = SpectrogramTransformer(scale)
    S = est.fit_transform(X)
    assert np.isfinite(S).all()
    for i in (0, 1, 2, 3, 5):
        np.testing.assert_array_equal(S[i], est.transform(X[i : i + 1])[0])
    # dB images do not depend on the level: row 4 is row 1's image
    np.testing.assert_allclose(S[4], S[1], rtol=0, atol=TOL_DB_F32)


@pytest.mark.parametrize("scale", ["db", "mel"])
def test_silence_gives_zeros_and_does_not_touch_other_rows(scale, rng):
    X = synthetic(SR, rng)
    X[1] = 0.0
    S = SpectrogramTransformer(scale).fit_transform(X)
    assert np.isfinite(S).all()
    np.testing.assert_array_equal(S[1], 0.0)
    # librosa's reference is 0 too, but for 7.6e-6 dB under numpy < 2 (its float32
    # intermediate is promoted differently; seen with the lowest versions pyproject allows)
    np.testing.assert_allclose(S[1], reference(X[1:2], scale)[0], rtol=0, atol=1e-5)
    # the reference maximum is per row: row 0 alone gives the same image
    np.testing.assert_array_equal(S[0], SpectrogramTransformer(scale).fit_transform(X[:1])[0])


@pytest.mark.parametrize("scale", ["db", "mel"])
def test_values_lie_between_minus_top_db_and_zero(scale, rng):
    X = synthetic(SR, rng)
    S = SpectrogramTransformer(scale, top_db=50.0).fit_transform(X)
    assert S.max(axis=(1, 2, 3)).tolist() == [0.0, 0.0, 0.0]
    assert S.min() >= -50.0


@st.composite
def settings_and_waves(draw):
    scale = draw(st.sampled_from(["db", "mel"]))
    n_fft = draw(st.integers(2, 64))
    hop = draw(st.integers(1, 40))
    n_samples = draw(st.integers(1, 300))
    n_clips = draw(st.integers(1, 3))
    X = draw(arrays(np.float32, (n_clips, n_samples),
                    elements=st.floats(allow_nan=False, allow_infinity=False, width=32)))
    return SpectrogramTransformer(scale, sr=8000, n_fft=n_fft, hop_length=hop, n_mels=4), X


@FAST
@given(settings_and_waves())
def test_shape_dtype_finite_for_any_finite_input(case):
    # any float32 values, subnormals and +-3.4e38 included (librosa gives NaN there)
    est, X = case
    with warnings.catch_warnings():
        # librosa warns about empty mel filters for tiny n_fft; irrelevant here
        warnings.simplefilter("ignore", UserWarning)
        S = est.fit_transform(X)
    n_fft, hop = est.n_fft, est.hop_length
    n_freqs = n_fft // 2 + 1 if est.scale == "db" else 4
    n_frames = 1 + (X.shape[1] + 2 * (n_fft // 2) - n_fft) // hop
    assert S.shape == (len(X), 1, n_freqs, n_frames)
    assert est.output_shape(X.shape[1]) == S.shape[1:] == (1, est.n_freqs_, est.n_frames_)
    assert S.dtype == np.float32 and S.flags.c_contiguous
    assert np.isfinite(S).all()
    assert (S <= 0).all() and (S >= -80).all()


@FAST
@given(st.integers(1, 5000), st.sampled_from([256, 512, 1024, 2048]), st.integers(64, 1024))
def test_frame_count_matches_librosa(n_samples, n_fft, hop):
    est = SpectrogramTransformer("db", n_fft=n_fft, hop_length=hop)
    expected = librosa.util.frame(np.zeros(n_samples + 2 * (n_fft // 2)), frame_length=n_fft,
                                  hop_length=hop).shape[-1]
    assert est.output_shape(n_samples) == (1, n_fft // 2 + 1, expected)
    assert expected == 1 + n_samples // hop


@pytest.mark.parametrize("scale", ["db", "mel"])
def test_deterministic_across_jobs_and_batches(scale, rng):
    X = rng.standard_normal((7, 4000)).astype(np.float32)
    X[3] *= 1e-3
    est = SpectrogramTransformer(scale, n_fft=512, hop_length=256, n_mels=32)
    one = est.fit(X).transform(X)
    np.testing.assert_array_equal(one, est.transform(X))
    np.testing.assert_array_equal(one, est.set_params(n_jobs=2).transform(X))
    np.testing.assert_array_equal(one, est.set_params(n_jobs=1, progress=True).transform(X))
    parts = [est.transform(X[:2]), est.transform(X[2:3]), est.transform(X[3:])]
    np.testing.assert_array_equal(one, np.concatenate(parts))
    np.testing.assert_array_equal(one[5], est.transform(X[5:6])[0])


def test_float64_input_is_cast_to_float32(rng):
    X = rng.standard_normal((2, 3000))
    est = SpectrogramTransformer("db")
    np.testing.assert_array_equal(est.fit_transform(X), est.transform(X.astype(np.float32)))
    assert est.transform(X).dtype == np.float32


def test_default_n_fft_per_scale():
    X = np.zeros((1, 3 * SR), np.float32)
    db = SpectrogramTransformer("db").fit(X)
    mel = SpectrogramTransformer("mel").fit(X)
    assert (db.n_fft_, db.n_freqs_, db.n_frames_) == (1024, 513, 130)
    assert (mel.n_fft_, mel.n_freqs_, mel.n_frames_) == (2048, 128, 130)
    assert SpectrogramTransformer().scale == "mel"


def test_pipeline_after_segmenter(rng):
    X = synthetic(6 * SR, rng)
    pipe = make_pipeline(ClipSegmenter(3.0), SpectrogramTransformer("mel"))
    S = pipe.fit_transform(X)
    assert S.shape == (6, 1, 128, 130)


def test_errors():
    X = np.zeros((2, 100), np.float32)
    with pytest.raises(NotFittedError):
        SpectrogramTransformer().transform(X)
    with pytest.raises(ValueError, match="scale"):
        SpectrogramTransformer("log").fit(X)
    with pytest.raises(ValueError, match="n_fft"):
        SpectrogramTransformer(n_fft=1).fit(X)
    with pytest.raises(ValueError, match="hop_length"):
        SpectrogramTransformer(hop_length=0).fit(X)
    with pytest.raises(ValueError, match="fft_dtype"):
        SpectrogramTransformer(fft_dtype="float16").fit(X)
    with pytest.raises(ValueError, match="'dtype'"):
        SpectrogramTransformer(dtype="float64").fit(X)
    with pytest.raises(ValueError, match="2D array"):
        SpectrogramTransformer().fit(np.zeros(100))
    with pytest.raises(ValueError, match="NaN"):
        SpectrogramTransformer().fit(np.full((1, 100), np.nan))
    est = SpectrogramTransformer().fit(X)
    with pytest.raises(ValueError, match="features"):
        est.transform(np.zeros((2, 120), np.float32))


def test_no_feature_names_for_4d_output():
    est = SpectrogramTransformer().fit(np.zeros((1, 100), np.float32))
    assert not hasattr(est, "get_feature_names_out")
    assert not hasattr(est, "set_output")


def test_clone():
    est = SpectrogramTransformer("db", n_fft=512, top_db=None, n_jobs=2)
    twin = clone(est.fit(np.zeros((1, 100), np.float32)))
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "n_frames_")


@parametrize_with_checks(
    [
        SpectrogramTransformer("db", n_fft=4, hop_length=2),
        SpectrogramTransformer("mel", sr=16, n_fft=8, hop_length=2, n_mels=2),
        BandStatistics(),
        BandStatistics(stats=("mean", "std", "min", "max")),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_torch_threads_are_restored(rng):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        X = rng.standard_normal((3, 3000)).astype(np.float32)
        SpectrogramTransformer("db", n_jobs=2).fit_transform(X)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------
# BandStatistics
# --------------------------------------------------------------------------

def test_band_statistics_values_shapes_and_names(rng):
    S = rng.normal(size=(5, 2, 3, 7)).astype(np.float32)
    bs = BandStatistics(stats=("mean", "std", "min", "max")).fit(S)
    F = bs.transform(S)
    assert F.shape == (5, 2 * 3 * 4) and F.dtype == np.float32
    expected = np.stack([S.mean(-1), S.std(-1), S.min(-1), S.max(-1)], axis=-1).reshape(5, -1)
    np.testing.assert_allclose(F, expected, rtol=1e-6)
    names = bs.get_feature_names_out()
    assert names[:5].tolist() == ["ch0_band0_mean", "ch0_band0_std", "ch0_band0_min",
                                  "ch0_band0_max", "ch0_band1_mean"]
    assert len(names) == F.shape[1]
    # 3-D input is one channel; the default is the mean of each band
    F3 = BandStatistics().fit_transform(S[:, 0])
    np.testing.assert_array_equal(F3, S[:, 0].mean(-1))
    assert BandStatistics().fit(S[:, 0]).get_feature_names_out().tolist() == [
        "band0_mean", "band1_mean", "band2_mean"]
    with pytest.raises(ValueError, match=r"shape \(2, 3, 6\).*fitted on \(2, 3, 7\)"):
        bs.transform(S[..., :6])
    with pytest.raises(ValueError, match="stats must be"):
        BandStatistics(stats=("median",)).fit(S)


def test_pipeline_with_band_statistics_pickles_and_predicts_the_same(tmp_path, rng):
    import pickle

    from sklearn.linear_model import LogisticRegression

    X = synthetic(SR, rng)
    X = np.concatenate([X, X * 0.5, X * 0.25])
    y = np.tile(["tones", "chirp", "clicks"], 3)
    model = make_pipeline(SpectrogramTransformer("mel", n_mels=32), BandStatistics(),
                          LogisticRegression(max_iter=1000)).fit(X, y)
    clone_ = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone_.predict_proba(X), model.predict_proba(X))
    assert (model.predict(X) == y).mean() > 0.6
