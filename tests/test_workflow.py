"""The workflow layer from Python: collections, training a row, judging whole songs."""

import warnings

import numpy as np
import pytest
import soundfile as sf
from conftest import write_wav

from specgenre import (
    ClipSegmenter,
    FeatureExtractor,
    TrackAggregator,
    judge,
    judge_files,
    load_collection,
    train_row,
)
from specgenre.errors import (
    CollectionError,
    DegenerateModelWarning,
    ShortAudioWarning,
    SkippedFileWarning,
    SmallDataWarning,
)
from specgenre.training import TrainedModel

SR = 22050
HAS_MP3 = "MP3" in sf.available_formats()


def _tone(freq, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.normal(size=t.size)).astype(
        np.float32)


def _write(path, y):
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "MP3" if path.suffix == ".mp3" else None
    sf.write(path, y, SR, format=fmt)
    return path


@pytest.fixture
def music(tmp_path):
    """A user's folder: genre folders, ordinary names, FLAC and MP3, one file deeper."""
    root = tmp_path / "My Music"
    for genre, freq in (("jazz", 220), ("rock", 880)):
        for k in range(3):
            ext = "mp3" if HAS_MP3 and k == 1 else "flac"
            _write(root / genre / f"{genre.title()} Song {k} (live).{ext}",
                   _tone(freq * (1 + 0.03 * k), 30, k))
    _write(root / "rock" / "Album" / "Deep Track.flac", _tone(900, 30, 9))
    (root / "rock" / ".hidden.flac").write_bytes(b"ignored")
    (root / "jazz" / "cover.jpg").write_bytes(b"not audio, not listed")
    return root


# ----------------------------------------------------------------- collections
def test_a_folder_of_genre_folders_with_any_names(music):
    coll = load_collection(music)
    assert coll.counts() == {"jazz": 3, "rock": 4}
    assert "rock/Album/Deep Track.flac" in coll.track_ids.tolist()
    assert not coll.gtzan_names and coll.skipped == []
    X, y, ids = coll.load()
    assert X.shape == (7, 30 * SR) and y.tolist() == coll.genres.tolist()


def test_gtzan_named_mp3_in_kaggles_layout_get_gtzan_ids(tmp_path):
    if not HAS_MP3:
        pytest.skip("libsndfile without MP3")
    root = tmp_path / "gtzan"
    for genre in ("blues", "jazz"):
        _write(root / "genres_original" / genre / f"{genre}.00000.mp3", _tone(300, 30))
    coll = load_collection(root)
    assert coll.track_ids.tolist() == ["blues.00000", "jazz.00000"] and coll.gtzan_names


def test_an_unreadable_file_is_skipped_named_once_and_recorded(music):
    bad = music / "jazz" / "broken.flac"
    bad.write_bytes(b"fLaC but nothing else")
    with pytest.warns(SkippedFileWarning) as record:
        coll = load_collection(music)
    assert [str(bad) in str(w.message) for w in record].count(True) == 1
    assert [p for p, _ in coll.skipped] == [str(bad)] and len(coll) == 7


def test_a_file_too_short_to_decode_is_skipped_when_decoded(music):
    _write(music / "jazz" / "intro.flac", _tone(220, 2))
    coll = load_collection(music)
    with pytest.warns(SkippedFileWarning, match="intro.flac"):
        X, y, ids = coll.load()
    assert len(X) == 7 and coll.skipped[0][0].endswith("intro.flac")


def test_lazy_waveforms_decode_what_they_are_indexed_by_as_load_does(music):
    from specgenre.collection import Waveforms

    _write(music / "jazz" / "intro.flac", _tone(220, 2))  # unreadable when decoded
    with pytest.warns(SkippedFileWarning, match="intro.flac"):
        X, y, ids = load_collection(music).load()
    with pytest.warns(SkippedFileWarning, match="intro.flac"):
        W, y_lazy, ids_lazy = load_collection(music).load(lazy=True)
    assert isinstance(W, Waveforms) and "decoded when indexed" in repr(W)
    assert W.shape == X.shape and len(W) == len(X) and W.dtype == X.dtype and W.ndim == 2
    assert y_lazy.tolist() == y.tolist() and ids_lazy.tolist() == ids.tolist()
    for key in (2, -1, slice(1, 5), slice(None, None, 3), np.array([4, 0, 4]),
                [1, 2], np.arange(len(X)) % 2 == 0, (slice(0, 2), slice(10, 20)), (3, 7)):
        np.testing.assert_array_equal(W[key], X[key])
    np.testing.assert_array_equal(np.asarray(W), X)
    with pytest.raises(TypeError, match="indexed by an integer"):
        W["jazz"]
    # a track changed after it was found readable: named, not a traceback of the decoder
    victim = W.files[1]
    with open(victim, "wb") as f:
        f.write(b"fLaC but nothing else")
    with pytest.raises(CollectionError, match="no longer readable") as exc:
        W[:3]
    assert str(victim) in str(exc.value)


def test_evaluation_gives_the_same_results_from_lazy_waveforms(music):
    from specgenre import evaluate_rows

    for k in range(3, 6):  # 3 folds of 2 genres
        _write(music / "jazz" / f"more {k}.flac", _tone(230 + 5 * k, 30, k))
    X, y, ids = load_collection(music).load()
    W = load_collection(music).load(lazy=True)[0]
    rows = ["xgboost_30s", "xgboost_3s_mv"]
    params = {"n_estimators": 5}
    eager = evaluate_rows(rows, X, y, cv=3, track_ids=ids, params=params)
    lazy = evaluate_rows(rows, W, y, cv=3, track_ids=ids, params=params)
    for a, b in zip(eager, lazy, strict=True):
        assert a.status == b.status == "ok"
        assert a.scores == b.scores
        assert a.predictions.keys() == b.predictions.keys()
        for k in a.predictions:
            np.testing.assert_array_equal(a.predictions[k], b.predictions[k])


@pytest.mark.parametrize("what, words", [
    ("missing", "no such folder"), ("audio", "is a file, not a folder"),
    ("one genre", "found only the genre"), ("no genre folders", "no audio file in genre"),
])
def test_collection_errors_name_the_path(music, tmp_path, what, words):
    path = {"missing": tmp_path / "nowhere", "audio": next(music.rglob("*.flac")),
            "one genre": music, "no genre folders": music / "jazz" / "nothing"}[what]
    if what == "no genre folders":
        path.mkdir()
    with pytest.raises(CollectionError, match=words) as exc:
        load_collection(path, genres=["jazz"] if what == "one genre" else None)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_the_filtered_split_needs_gtzan_names(music):
    with pytest.raises(CollectionError, match="named like GTZAN's"):
        load_collection(music, split=("train", "valid"))


# ----------------------------------------------------------------- training
def test_train_row_from_a_folder_warns_about_small_genres(music):
    coll = load_collection(music)
    with pytest.warns(SmallDataWarning, match=r"jazz \(3\), rock \(4\)"):
        model = train_row("xgboost_30s", coll, class_params={"n_estimators": 30})
    assert isinstance(model, TrainedModel) and model.classes == ["jazz", "rock"]
    assert model.train_counts == {"jazz": 3, "rock": 4} and model.window_seconds == 30.0
    assert model.metadata()["params"] == {"n_estimators": 30}


def test_a_model_that_predicts_one_genre_for_everything_is_warned_about(tmp_path):
    # the same sound under two names: nothing to learn
    root = tmp_path / "same"
    for genre in ("jazz", "rock"):
        for k in range(2):
            _write(root / genre / f"{k}.flac", _tone(440, 30, seed=7))
    coll = load_collection(root)
    with pytest.warns(DegenerateModelWarning, match="predicts (jazz|rock) for every one"):
        train_row("xgboost_30s", coll, class_params={"n_estimators": 5})


def test_unreadable_files_are_recorded_in_the_model(music):
    _write(music / "jazz" / "intro.flac", _tone(220, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallDataWarning)
        with pytest.warns(SkippedFileWarning, match="intro.flac"):
            model = train_row("xgboost_30s", load_collection(music),
                              class_params={"n_estimators": 5})
    assert [p for p, _ in model.skipped] == [str(music / "jazz" / "intro.flac")]
    assert model.train_counts == {"jazz": 3, "rock": 4}


# ----------------------------------------------------------------- judging
@pytest.fixture(scope="module")
def clips():
    X = np.stack([_tone(f, 6, k) for k, f in enumerate([220, 880] * 4)])
    return X, np.array(["low", "high"] * 4)


@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_judging_a_song_equals_the_aggregators_predict_on_one_clip(clips, voting):
    from sklearn.pipeline import make_pipeline
    from xgboost import XGBClassifier  # noqa: F401  (the row's booster)

    from specgenre import XGBoostClassifier

    X, y = clips
    est = TrackAggregator(make_pipeline(FeatureExtractor(), XGBoostClassifier(n_estimators=5)),
                          segmenter=ClipSegmenter(2.0), voting=voting).fit(X, y)
    model = TrainedModel(est, None, 6.0)
    song = np.concatenate([_tone(880, 2, 3), _tone(220, 4, 4)])  # one clip's length
    verdict = judge(model, song)
    assert verdict.genre == est.predict(song[None])[0] and verdict.windows == 3
    if voting == "soft":
        np.testing.assert_allclose(list(verdict.scores.values()), est.predict_proba(song[None])[0])
        assert verdict.score_kind == "probability"
    else:  # vote shares, consistent with the label
        votes = est.predict_votes(song[None])[0]
        np.testing.assert_allclose(list(verdict.scores.values()), votes / votes.sum())
        assert verdict.scores[verdict.genre] == max(verdict.scores.values())
        assert verdict.score_kind == "vote share"


def test_judging_a_whole_clip_model_averages_its_windows(clips):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = clips
    est = make_pipeline(FeatureExtractor(), LogisticRegression(max_iter=500)).fit(X, y)
    model = TrainedModel(est, None, 6.0)
    verdict = judge(model, X[0])
    np.testing.assert_allclose(list(verdict.scores.values()), est.predict_proba(X[:1])[0])
    long = judge(model, np.concatenate([X[0], X[1], X[0][:SR]]))  # the last second dropped
    assert long.windows == 2 and long.window_genres == [y[0], y[1]]


def test_a_short_song_is_warned_about_and_flagged(clips, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = clips
    model = TrainedModel(make_pipeline(FeatureExtractor(), LogisticRegression()).fit(X, y),
                         None, 6.0)
    short = write_wav(tmp_path / "two seconds.wav", _tone(220, 2))
    with pytest.warns(ShortAudioWarning, match=r"two seconds.wav lasts 2.0 s.*6 s window.*pad"):
        (verdict,) = judge_files(model, [short])
    assert verdict.short == "pad" and verdict.windows == 1 and verdict.genre
    with pytest.warns(ShortAudioWarning, match="looped"):
        assert next(judge_files(model, [short], short="loop")).short == "loop"
    (skipped,) = judge_files(model, [short], short="skip")
    assert skipped.genre is None and "shorter than the model's 6 s window" in skipped.error
