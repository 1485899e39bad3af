"""Tests for audio decoding: real GTZAN files, bad files, resampling, padding, sklearn API."""

import csv
import hashlib
import pickle
import struct
import warnings

import librosa
import numpy as np
import pytest
import soundfile as sf
from conftest import write_wav
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from specgenre.audio import AudioBatch, AudioLoader, AudioLoadError, load_audio, read_audio
from specgenre.segment import ClipSegmenter
from specgenre.spectrogram import SpectrogramTransformer

SR = 22050


def tone(seconds, sr=SR, freq=440.0, amp=0.5):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(y, sr):
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.argmax(spectrum) * sr / len(y)


# ---------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_every_dev_track_decodes_to_its_manifest_pcm(gtzan_dev):
    with open(gtzan_dev / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 51
    for row in rows:
        pcm, sr = read_audio(gtzan_dev / row["path"], dtype="int16")
        assert pcm.dtype == np.int16 and pcm.ndim == 1
        assert (sr, len(pcm)) == (int(row["sr"]), int(row["samples"])), row["path"]
        md5 = hashlib.md5(pcm.astype("<i2").tobytes()).hexdigest()
        assert md5 == row["md5_pcm"], row["path"]


@pytest.mark.shared_data
def test_loader_on_dev_tracks_is_the_scaled_pcm(gtzan_dev):
    paths = sorted(gtzan_dev.rglob("*.flac"))[::10]  # 6 tracks of several genres
    X = AudioLoader(n_jobs=2).fit_transform(paths)
    assert X.shape == (len(paths), 30 * SR) and X.dtype == np.float32
    for path, row in zip(paths, X, strict=True):
        pcm, _ = read_audio(path, dtype="int16")
        # soundfile's float decoding of 16-bit PCM is exactly pcm / 32768
        np.testing.assert_array_equal(row, pcm[: 30 * SR] / np.float32(32768))
        np.testing.assert_array_equal(row, librosa.load(path, sr=SR)[0][: 30 * SR])


# ---------------------------------------------------------------- bad files


def _truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _corrupt(tmp_path):
    p = tmp_path / "corrupt.wav"
    p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 8)
    return p


def _empty(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    return p


def _header_only(tmp_path):
    return write_wav(tmp_path / "header_only.wav", np.zeros(0, np.float32))


def _truncated_wav(tmp_path):
    return _truncate(write_wav(tmp_path / "cut.wav", tone(1.0)))


def _truncated_au(tmp_path):
    return _truncate(write_wav(tmp_path / "cut.au", tone(1.0)))


def _truncated_flac(tmp_path):
    return _truncate(write_wav(tmp_path / "cut.flac", tone(1.0)))


def _header_claims_more(tmp_path):
    # intact samples, but the data chunk size says there should be twice as many
    p = write_wav(tmp_path / "liar.wav", tone(0.5))
    data = bytearray(p.read_bytes())
    i = data.find(b"data")
    (size,) = struct.unpack("<I", data[i + 4 : i + 8])
    data[i + 4 : i + 8] = struct.pack("<I", 2 * size)
    p.write_bytes(bytes(data))
    return p


def _nan(tmp_path):
    y = tone(1.0)
    y[100] = np.nan
    return write_wav(tmp_path / "nan.wav", y, subtype="FLOAT")


def _inf(tmp_path):
    y = tone(1.0)
    y[5] = -np.inf
    return write_wav(tmp_path / "inf.wav", y, subtype="FLOAT")


def _missing(tmp_path):
    return tmp_path / "missing.wav"


def _directory(tmp_path):
    (tmp_path / "folder.wav").mkdir()
    return tmp_path / "folder.wav"


BAD_FILES = {
    "corrupt": (_corrupt, "cannot be decoded"),
    "empty": (_empty, r"empty \(0 bytes\)"),
    "header_only": (_header_only, "no audio frames"),
    "truncated_wav": (_truncated_wav, "truncated"),
    "truncated_au": (_truncated_au, "truncated"),
    "truncated_flac": (_truncated_flac, "cannot be decoded|truncated"),
    "header_claims_more": (_header_claims_more, "truncated"),
    "nan": (_nan, "1 non-finite"),
    "inf": (_inf, "1 non-finite"),
    "missing": (_missing, "no such file"),
    "directory": (_directory, "directory"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_raises_error_naming_it(kind, tmp_path):
    make, reason = BAD_FILES[kind]
    path = make(tmp_path)
    good = write_wav(tmp_path / "good.wav", tone(1.0))
    for call in (
        lambda: read_audio(path),
        lambda: load_audio([good, path], duration=1.0),
        lambda: AudioLoader(duration=1.0).fit_transform([good, path]),
    ):
        with pytest.raises(AudioLoadError, match=reason) as info:
            call()
        assert info.value.path == str(path)
        assert str(path) in str(info.value)
        assert isinstance(info.value, ValueError)


def test_skip_keeps_the_good_files_and_lists_the_bad(tmp_path):
    good = [write_wav(tmp_path / f"good{i}.wav", tone(1.0, freq=200.0 * (i + 1))) for i in range(3)]
    bad = [_empty(tmp_path), _nan(tmp_path), _missing(tmp_path)]
    paths = [good[0], bad[0], good[1], bad[1], bad[2], good[2]]
    for n_jobs, progress in [(1, False), (2, False), (1, True)]:
        batch = load_audio(paths, duration=1.0, on_error="skip", n_jobs=n_jobs, progress=progress)
        assert isinstance(batch, AudioBatch)
        assert batch.kept.tolist() == [True, False, True, False, False, True]
        assert [e.path for e in batch.errors] == [str(p) for p in bad]
        assert batch.X.shape == (3, SR)
        for row, path in zip(batch.X, good, strict=True):
            np.testing.assert_array_equal(row, read_audio(path)[0])


def test_skip_everything(tmp_path):
    X, kept, errors = load_audio([_empty(tmp_path)], duration=1.0, on_error="skip")
    assert X.shape == (0, SR) and kept.tolist() == [False] and len(errors) == 1
    assert load_audio([], duration=1.0).X.shape == (0, SR)


def test_error_pickles_with_its_path():
    err = pickle.loads(pickle.dumps(AudioLoadError("a/b.wav", "is broken")))
    assert (err.path, err.reason, str(err)) == ("a/b.wav", "is broken", "a/b.wav: is broken")


# ---------------------------------------------------------------- valid audio


def test_silence_is_valid_audio(tmp_path):
    path = write_wav(tmp_path / "silence.wav", np.zeros(SR, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = load_audio([path], duration=1.0).X
    np.testing.assert_array_equal(X, 0.0)


def test_stereo_is_mixed_to_the_mean_of_channels(tmp_path):
    left, right = tone(1.0, freq=300.0), tone(1.0, freq=500.0, amp=0.25)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    X = AudioLoader(duration=1.0).fit_transform([path])
    np.testing.assert_array_equal(X[0], (left + right) / np.float32(2))
    y, _ = read_audio(path, mono=False)
    assert y.shape == (2, SR)
    np.testing.assert_array_equal(y, np.stack([left, right]))
    with pytest.raises(ValueError, match="2 channels"):
        read_audio(path, dtype="int16")


@pytest.mark.parametrize("file_sr", [8000, 44100])
def test_other_rates_are_resampled(file_sr, tmp_path):
    path = write_wav(tmp_path / f"tone{file_sr}.wav", tone(2.0, sr=file_sr), sr=file_sr)
    X = load_audio([path], sr=SR, duration=1.5).X
    assert X.shape == (1, round(1.5 * SR))
    assert abs(peak_hz(X[0], SR) - 440.0) < 2.0
    # exactly what librosa.load gives (soxr_hq), trimmed
    np.testing.assert_array_equal(X[0], librosa.load(path, sr=SR)[0][: X.shape[1]])
    y, sr = read_audio(path, sr=SR)
    assert sr == SR and len(y) == int(np.ceil(2.0 * SR))


@pytest.mark.parametrize("ext", ["au", "flac", "ogg"])
def test_other_formats(ext, tmp_path):
    pcm = np.round(tone(1.0) * 32767).astype(np.int16)
    wav = write_wav(tmp_path / "ref.wav", pcm)
    other = write_wav(tmp_path / f"same.{ext}", pcm,
                      subtype="VORBIS" if ext == "ogg" else "PCM_16")
    X = load_audio([wav, other], duration=1.0).X
    if ext == "ogg":  # lossy: same length and pitch
        assert abs(peak_hz(X[1], SR) - 440.0) < 2.0
        assert np.abs(X[1] - X[0]).max() < 0.05
    else:  # 16-bit PCM in any container decodes to the same samples
        np.testing.assert_array_equal(X[1], X[0])


def test_trim_tail_and_pad_end(tmp_path):
    y = tone(2.0)
    path = write_wav(tmp_path / "two_seconds.wav", y, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio([path], duration=1.0).X[0], y[:SR])
    X = load_audio([path], duration=2.5, min_duration=0).X[0]
    np.testing.assert_array_equal(X[: 2 * SR], y)
    np.testing.assert_array_equal(X[2 * SR :], 0.0)
    wrapped = load_audio([path], duration=2.5, pad_mode="wrap", min_duration=2.0).X[0]
    np.testing.assert_array_equal(wrapped[2 * SR :], y[: SR // 2])
    edge = load_audio([path], duration=2.5, pad_mode="edge", min_duration=0).X[0]
    np.testing.assert_array_equal(edge[2 * SR :], y[-1])


def test_too_short_file_is_an_error_unless_allowed(tmp_path):
    path = write_wav(tmp_path / "one_second.wav", tone(1.0))
    with pytest.raises(AudioLoadError, match=r"lasts 1\.000 s .* minimum of 27\.000 s") as info:
        AudioLoader().fit_transform([path])  # 30 s wanted, 27 s ("auto") at least
    assert info.value.path == str(path)
    with pytest.raises(AudioLoadError, match="minimum of 1.500 s"):
        load_audio([path], duration=2.0, min_duration=1.5)
    X = load_audio([path], duration=30.0, min_duration=0).X
    assert X.shape == (1, 30 * SR) and not X[0, SR:].any()
    # GTZAN-like jitter passes "auto": 29.93 s padded to 30 s
    ok = write_wav(tmp_path / "jitter.wav", tone(29.93))
    assert AudioLoader().fit_transform([ok]).shape == (1, 30 * SR)


def test_duration_none_needs_equal_lengths(tmp_path):
    a = write_wav(tmp_path / "a.wav", tone(1.0))
    b = write_wav(tmp_path / "b.wav", tone(1.0, freq=300.0))
    c = write_wav(tmp_path / "c.wav", tone(1.2))
    assert load_audio([a, b], duration=None).X.shape == (2, SR)
    with pytest.raises(ValueError, match=r"equal length.*a\.wav.*22050.*c\.wav.*26460"):
        load_audio([a, c], duration=None)
    batch = load_audio([a, _empty(tmp_path), b], duration=None, on_error="skip")
    assert batch.X.shape == (2, SR) and batch.kept.tolist() == [True, False, True]


def test_parallel_equals_sequential(tmp_path):
    paths = [write_wav(tmp_path / f"t{i}.wav", tone(1.0, freq=100.0 + 50 * i)) for i in range(6)]
    one = AudioLoader(duration=1.0).fit_transform(paths)
    np.testing.assert_array_equal(one, AudioLoader(duration=1.0, n_jobs=2).fit_transform(paths))
    np.testing.assert_array_equal(one, AudioLoader(duration=1.0, progress=True).fit_transform(paths))


def test_read_audio_int16_and_float(tmp_path):
    pcm = (np.arange(-1000, 1000, dtype=np.int16) * 16).astype(np.int16)
    path = tmp_path / "pcm.wav"
    sf.write(path, pcm, SR, subtype="PCM_16")
    y16, sr = read_audio(path, dtype="int16")
    np.testing.assert_array_equal(y16, pcm)
    y32, _ = read_audio(path)
    np.testing.assert_array_equal(y32, pcm / np.float32(32768))
    with pytest.raises(ValueError, match="float dtype"):
        read_audio(path, sr=16000, dtype="int16")
    with pytest.raises(ValueError, match="dtype"):
        read_audio(path, dtype="uint8")


# ---------------------------------------------------------------- input and params


def test_accepted_path_containers(tmp_path):
    pd = pytest.importorskip("pandas")
    path = write_wav(tmp_path / "x.wav", tone(1.0))
    est = AudioLoader(duration=1.0)
    ref = est.fit_transform([str(path)])
    for X in ([path], np.array([str(path)]), np.array([[str(path)]]), pd.Series([str(path)]),
              pd.DataFrame({"file": [str(path)]})):
        np.testing.assert_array_equal(est.fit_transform(X), ref)


@pytest.mark.parametrize(
    "X, error, match",
    [
        ("song.wav", TypeError, "single path"),
        ([["a.wav", "b.wav"]], ValueError, r"1-D array-like .* shape \(1, 2\)"),
        ([1.5], TypeError, "element 0 is float"),
    ],
)
def test_bad_path_containers(X, error, match):
    with pytest.raises(error, match=match):
        AudioLoader().fit(X)
    with pytest.raises(error, match=match):
        load_audio(X)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(sr=0), "sr"),
        (dict(duration=-1.0), "duration"),
        (dict(min_duration=-1.0), "min_duration"),
        (dict(duration=10.0, min_duration=11.0), "longer than duration"),
        (dict(pad_mode="mirror"), "pad_mode"),
        (dict(duration=1e-6), "gives 0 samples"),
    ],
)
def test_invalid_params(params, match):
    with pytest.raises(ValueError, match=match):
        AudioLoader(**params).fit(["a.wav"])
    with pytest.raises(ValueError, match=match):
        load_audio(["a.wav"], **params)


def test_stateless_fit_and_clone(tmp_path):
    path = write_wav(tmp_path / "x.wav", tone(1.0))
    est = AudioLoader(duration=1.0, pad_mode="wrap")
    # stateless: transform works without fit; fit reads no file
    np.testing.assert_array_equal(est.transform([path]), read_audio(path)[0][None])
    assert est.fit(["not/read/at/all.wav"]) is est and est.n_samples_ == SR
    assert AudioLoader(duration=None).fit([]).n_samples_ is None
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "n_samples_")
    twin.set_params(duration=0.5)
    assert twin.transform([path]).shape == (1, SR // 2)


def test_pipeline_paths_to_spectrograms(tmp_path):
    paths = [write_wav(tmp_path / f"t{i}.wav", tone(6.0, freq=300.0 * (i + 1))) for i in range(2)]
    pipe = make_pipeline(AudioLoader(duration=6.0), ClipSegmenter(3.0),
                         SpectrogramTransformer("mel"))
    S = pipe.fit_transform(paths)
    assert S.shape == (4, 1, 128, 130) and S.dtype == np.float32


# AudioLoader takes a 1-D list of file paths, so it declares two_d_array=False
# and sklearn's numeric checks do not apply (parametrize_with_checks yields only
# the clone check for it). The data-free API checks are run by hand below.
@parametrize_with_checks([AudioLoader()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "check_name",
    [
        "check_no_attributes_set_in_init",
        "check_estimator_repr",
        "check_do_not_raise_errors_in_init_or_set_params",
        "check_get_params_invariance",
        "check_set_params",
        "check_valid_tag_types",
        "check_mixin_order",
    ],
)
def test_sklearn_api_checks_without_data(check_name):
    check = getattr(estimator_checks, check_name, None)
    if check is None:
        pytest.skip(f"{check_name} not in this scikit-learn version")
    check("AudioLoader", AudioLoader())


def test_sklearn_parameters_default_constructible():
    estimator_checks.check_parameters_default_constructible("AudioLoader", AudioLoader())
