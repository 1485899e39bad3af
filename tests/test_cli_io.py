"""The CLI on a user's mistakes and on ordinary music: exit codes, one-line errors, whole files.

Every error case checks the exit code, that the message is one line naming the culprit,
and that nothing was lost (no half-written or clobbered output).
"""

import csv
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import write_wav
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import specgenre
from specgenre import ClipSegmenter, FeatureExtractor, TrackAggregator, __version__, judge_files
from specgenre.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from specgenre.datasets import load_audio_csv
from specgenre.modelfile import load_model, save_model
from specgenre.training import TrainedModel

SR = 22050


def _tone(freq, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.normal(size=t.size)).astype(
        np.float32)


def _error_line(capsys, *names):
    """The one line on stderr; it must name each of ``names``."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for name in names:
        assert str(name) in err[0], err[0]
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def gtzan(tmp_path):
    """A tiny GTZAN-style tree: 2 genres x 2 tracks of 30 s."""
    root = tmp_path / "gtzan"
    for genre, freq in (("jazz", 220), ("rock", 880)):
        for k in range(2):
            write_wav(root / genre / f"{genre}.0000{k}.wav", _tone(freq, 30, k))
    return root


@pytest.fixture
def voting_model(tmp_path):
    """Soft-voting model over 2 s segments of 4 s clips: 220 Hz -> 'low', 880 Hz -> 'high'."""
    X = np.stack([_tone(220 if k % 2 else 880, 4, k) for k in range(8)])
    y = np.array(["high", "low"] * 4)
    inner = make_pipeline(FeatureExtractor(), LogisticRegression(max_iter=500))
    est = TrackAggregator(inner, segmenter=ClipSegmenter(2.0), voting="soft").fit(X, y)
    path = tmp_path / "voting.model"
    save_model(TrainedModel(est, None, 4.0, specgenre_version=__version__), path)
    return path


# ----------------------------------------------------------------- output paths first
def test_train_output_in_missing_folder_fails_before_any_work(gtzan, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "model.joblib"
    assert main(["train", "--data", str(gtzan), "--row", "cnn_30s_mel", "-o", str(out),
                 "-q"]) == EXIT_USAGE
    line = _error_line(capsys, out.parent)
    assert "does not exist" in line
    assert not out.parent.exists()


def test_train_output_that_is_a_folder(gtzan, tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(["train", "--data", str(gtzan), "--row", "cnn_30s_mel", "-o", str(folder),
                 "-q"]) == EXIT_USAGE
    assert "is a folder" in _error_line(capsys, folder)
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_features_output_in_missing_folder(gtzan, tmp_path, capsys):
    out = tmp_path / "missing" / "table.csv"
    assert main(["features", str(gtzan), "-o", str(out), "-q"]) == EXIT_USAGE
    _error_line(capsys, out.parent)


# ----------------------------------------------------------------- bad data
def test_data_that_is_an_audio_file(gtzan, tmp_path, capsys):
    track = gtzan / "jazz" / "jazz.00000.wav"
    out = tmp_path / "m.joblib"
    assert main(["train", "--data", str(track), "--row", "cnn_30s_mel", "-o", str(out),
                 "-q"]) == EXIT_USAGE
    assert "is a file, not a folder" in _error_line(capsys, track)
    assert main(["features", str(track), "-o", str(tmp_path / "t.csv"), "-q"]) == EXIT_USAGE
    _error_line(capsys, track)
    assert not out.exists()


def test_data_folder_with_one_genre(gtzan, tmp_path, capsys):
    args = ["train", "--row", "cnn_30s_mel", "-o", str(tmp_path / "m.joblib"), "-q"]
    assert main([*args, "--data", str(gtzan), "--genres", "jazz"]) == EXIT_USAGE
    assert "only the genre(s) jazz" in _error_line(capsys, gtzan)
    # pointing at a genre folder itself: no genre folders under it, still one line
    assert main([*args, "--data", str(gtzan / "jazz")]) == EXIT_USAGE
    line = _error_line(capsys, gtzan / "jazz")
    assert "no audio file in genre folders" in line and ":;" not in line


def test_data_folder_missing(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["features", str(missing), "-o", str(tmp_path / "t.csv")]) == EXIT_USAGE
    assert "no such folder" in _error_line(capsys, missing)


def test_bad_csv_row_is_one_line(tmp_path, capsys):
    table = tmp_path / "music.csv"
    table.write_text("path,genre\na.wav,jazz\nb.wav\n")
    assert main(["features", str(table), "-o", str(tmp_path / "t.csv"), "-q"]) == EXIT_USAGE
    assert "line 3" in _error_line(capsys, table)


# ----------------------------------------------------------------- predict: model files
@pytest.mark.parametrize("kind", ["audio", "csv", "dict", "truncated", "list_pickle"])
def test_predict_with_a_file_that_is_not_a_model(kind, voting_model, tmp_path, capsys):
    song = write_wav(tmp_path / "song.wav", _tone(220, 4))
    if kind == "audio":
        bad = song
    elif kind == "csv":
        bad = tmp_path / "table.csv"
        bad.write_text("a,b\n1,2\n")
    elif kind == "dict":
        bad = tmp_path / "dict.pkl"
        bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    elif kind == "truncated":
        bad = tmp_path / "cut.joblib"
        bad.write_bytes(voting_model.read_bytes()[:2000])
    else:
        bad = tmp_path / "list.joblib"
        bad.write_bytes(pickle.dumps(["not", "a", "model"]))
    assert main(["predict", str(bad), str(song)]) == EXIT_USAGE
    line = _error_line(capsys, bad)
    for internal in ("Error", "Exception", "KeyError", "Unpickling", "shape", "n_features"):
        assert internal not in line, line


def test_warnings_reach_the_user_as_one_line(voting_model, tmp_path):
    short = write_wav(tmp_path / "short.wav", _tone(220, 1))
    proc = subprocess.run([sys.executable, "-m", "specgenre.cli", "predict", str(voting_model),
                           str(short)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_OK, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("specgenre: warning: "), err
    assert "short.wav lasts 1.0 s" in err[0] and "padded" in err[0]


@pytest.mark.parametrize("name", ["crafted.joblib", "crafted.pkl", "crafted.specgenre",
                                  "crafted.model"])
def test_predict_refuses_a_crafted_pickle_without_running_it(name, code_running_object,
                                                             tmp_path, capsys):
    import joblib

    payload, marker = code_running_object
    crafted = tmp_path / name
    joblib.dump({"format": "specgenre-model-1", "estimator": payload}, crafted)
    song = write_wav(tmp_path / "song.wav", _tone(220, 4))
    assert main(["predict", str(crafted), str(song)]) == EXIT_USAGE
    line = _error_line(capsys, crafted)
    assert "is a pickle" in line and "--trust" in line
    assert not marker.exists()  # nothing in the file ran


_RELOAD = """
import sys, numpy as np
from specgenre import judge_files, load_model
model = load_model(sys.argv[1])
(verdict,) = judge_files(model, [sys.argv[2]])
print(repr([verdict.scores[c] for c in model.classes]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("row", ["xgboost_30s", "cnn_30s_mel"])
def test_a_trained_model_reloads_in_a_fresh_process(row, gtzan, tmp_path, capsys):
    out = tmp_path / "trained.model"
    extra = ["--max-epochs", "1", "--batch-size", "2"] if row.startswith("cnn") else []
    assert main(["train", "--data", str(gtzan), "--row", row, "-q", "-o", str(out),
                 *extra]) == EXIT_OK
    data = out.read_bytes()
    assert b"\x80\x04\x95" not in data and b"\x80\x05\x95" not in data  # no pickle stream
    song = write_wav(tmp_path / "song.wav", _tone(440, 35))
    (here,) = judge_files(load_model(out), [song])
    proc = subprocess.run([sys.executable, "-c", _RELOAD, str(out), str(song)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert eval(proc.stdout) == [here.scores[c] for c in ("jazz", "rock")]  # bit for bit


# ----------------------------------------------------------------- predict: whole files
def test_predict_judges_the_whole_file_in_windows(voting_model, tmp_path, capsys):
    # 2 s of 880 Hz then 6 s of 220 Hz: the first window alone says 'high', the song 'low'
    song = write_wav(tmp_path / "song.wav", np.concatenate([_tone(880, 2), _tone(220, 6)]))
    assert main(["predict", str(voting_model), str(song), "--format", "json"]) == EXIT_OK
    (res,) = json.loads(capsys.readouterr().out)
    assert res["genre"] == "low" and res["windows"] == 4 and res["seconds"] == 8.0
    assert abs(res["p_low"] + res["p_high"] - 1) < 1e-9 and res["score_kind"] == "probability"
    assert main(["predict", str(voting_model), str(song), "--max-seconds", "2",
                 "--format", "json"]) == EXIT_OK
    (res,) = json.loads(capsys.readouterr().out)
    assert res["genre"] == "high" and res["windows"] == 1


def test_predict_short_files(voting_model, tmp_path, capsys):
    short = write_wav(tmp_path / "short.wav", _tone(220, 1))
    assert main(["predict", str(voting_model), str(short), "--format", "json"]) == EXIT_OK
    captured = capsys.readouterr()
    (res,) = json.loads(captured.out)
    assert res["windows"] == 1 and res["genre"] == "low"  # padded to one 2 s window
    assert res["short"] == "pad"  # flagged in the output ...
    assert "short.wav lasts 1.0 s" in captured.err and "padded" in captured.err  # ... and warned
    assert main(["predict", str(voting_model), str(short)]) == EXIT_OK
    assert "padded" in capsys.readouterr().out
    assert main(["predict", str(voting_model), str(short), "--short", "skip"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "short.wav" in err and "shorter than the model's 2 s window" in err


def test_predict_writes_csv_and_keeps_failed_files(voting_model, tmp_path, capsys):
    good = write_wav(tmp_path / "good.wav", _tone(880, 4))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(voting_model), str(good), str(bad), "-o", str(out)]) \
        == EXIT_FAILED
    rows = list(csv.DictReader(open(out)))
    assert [r["file"] for r in rows] == [str(good), str(bad)]
    assert rows[0]["genre"] == "high" and rows[0]["windows"] == "2" and rows[0]["short"] == ""
    assert float(rows[0]["p_high"]) > 0.5 and rows[0]["error"] == ""
    assert rows[1]["genre"] == "" and rows[1]["error"]
    err = capsys.readouterr().err.splitlines()
    assert sum("bad.wav" in line for line in err) == 1


def test_predict_reads_mp3(voting_model, tmp_path, capsys):
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile without MP3")
    song = tmp_path / "song.mp3"
    sf.write(song, _tone(220, 6), SR, format="MP3")
    assert main(["predict", str(voting_model), str(song), "--format", "json"]) == EXIT_OK
    (res,) = json.loads(capsys.readouterr().out)
    assert res["genre"] == "low" and res["windows"] == 3


# ----------------------------------------------------------------- train on a CSV, features
def test_train_on_the_filtered_split_decodes_only_its_tracks(tmp_path, capsys):
    # jazz.00000 and rock.00000 are in the fault-filtered train list, jazz.00002 and
    # rock.00038 in valid; jazz.00073 and rock.00010 are test tracks, written here as
    # corrupt files: decoding one would report it as skipped (exit 1)
    root = tmp_path / "gtzan"
    for genre, freq, nums in (("jazz", 220, ("00000", "00002")),
                              ("rock", 880, ("00000", "00038"))):
        for k, num in enumerate(nums):
            write_wav(root / genre / f"{genre}.{num}.wav", _tone(freq, 30, k))
    for name in ("jazz/jazz.00073.wav", "rock/rock.00010.wav"):
        (root / name).write_bytes(b"not audio")
    out = tmp_path / "model.joblib"
    assert main(["train", "--data", str(root), "--split", "filtered", "--row", "xgboost_30s",
                 "-q", "-o", str(out)]) == EXIT_OK
    err = capsys.readouterr().err
    assert "on 4 tracks of 2 genres" in err and "skipped" not in err
    assert "fewer than 10 tracks per genre" in err  # and said once, in one line
    assert sum("fewer than 10" in line for line in err.splitlines()) == 1
    empty = tmp_path / "other"
    write_wav(empty / "jazz" / "jazz.00073.wav", _tone(220, 30))
    write_wav(empty / "rock" / "rock.00010.wav", _tone(880, 30))
    assert main(["train", "--data", str(empty), "--split", "filtered", "--row",
                 "xgboost_30s", "-o", str(out)]) == EXIT_USAGE
    _error_line(capsys, "holds none of the", str(empty))


def test_reproduce_on_the_filtered_split_decodes_only_its_tracks(tmp_path, capsys):
    # train+valid: jazz.00000/00002, rock.00000/00038; test: jazz.00073, rock.00010;
    # jazz.00033 is in none of the lists, written corrupt: decoding it would report it
    root = tmp_path / "gtzan"
    for genre, freq, nums in (("jazz", 220, ("00000", "00002", "00073")),
                              ("rock", 880, ("00000", "00038", "00010"))):
        for k, num in enumerate(nums):
            write_wav(root / genre / f"{genre}.{num}.wav", _tone(freq, 30, k))
    (root / "jazz" / "jazz.00033.wav").write_bytes(b"not audio")
    out = tmp_path / "res"
    assert main(["reproduce", "--data", str(root), "--split", "filtered", "--rows",
                 "xgboost_30s", "--param", "n_estimators=5", "-q", "-o", str(out)]) == EXIT_OK
    assert "skipped" not in capsys.readouterr().err
    row = next(csv.DictReader(open(out / "results.csv")))
    assert (row["n_tracks"], row["n_folds"]) == ("6", "1")
    tested = [r["track"] for r in csv.DictReader(open(out / "xgboost_30s" / "predictions.csv"))]
    assert sorted(tested) == ["jazz.00073", "rock.00010"]
    table = tmp_path / "tracks.csv"
    table.write_text("path,genre\n" + "".join(
        f"{p},{p.parent.name}\n" for p in sorted(root.rglob("*.wav"))))
    assert main(["reproduce", "--data", str(table), "--split", "filtered", "--rows",
                 "xgboost_30s", "-o", str(tmp_path / "res2")]) == EXIT_USAGE
    _error_line(capsys, "not a CSV file", str(table))


def test_train_on_a_csv_then_predict(tmp_path, capsys):
    music = tmp_path / "anywhere"
    rows = []
    for genre, freq in (("jazz", 220), ("rock", 880), ("pop", 440)):
        for k in range(2):
            path = write_wav(music / f"{genre} song {k}.flac", _tone(freq, 30, k))
            rows.append(f"anywhere/{path.name},{genre}")
    table = tmp_path / "music.csv"
    table.write_text("path,genre\n" + "\n".join(rows) + "\n")
    out = tmp_path / "model.joblib"
    assert main(["train", "--data", str(table), "--genres", "jazz", "rock", "--row",
                 "cnn_30s_mel", "--max-epochs", "2", "--batch-size", "2", "-o",
                 str(out)]) == EXIT_OK
    captured = capsys.readouterr()
    # per-epoch progress (skorch's table) and a loading bar counting tracks
    assert "train_loss" in captured.out and len(
        [line for line in captured.out.splitlines() if line.strip()[:1] in "12"]) >= 2
    # the bar's total is the 4 tracks (tqdm clears a finished bar, so "4/4" may never
    # be drawn on a fast machine; its first frame "0/4 ... track/s" always is)
    assert "0/4" in captured.err and "track/s" in captured.err
    model = load_model(out)
    assert model.specgenre_version == __version__ and model.train_counts == {"jazz": 2, "rock": 2}
    assert model.row == "cnn_30s_mel" and model.classes == ["jazz", "rock"]
    song = write_wav(tmp_path / "long.wav", _tone(220, 65))
    capsys.readouterr()
    assert main(["predict", str(out), str(song), "--format", "json"]) == EXIT_OK
    (res,) = json.loads(capsys.readouterr().out)
    assert res["windows"] == 2 and {"p_jazz", "p_rock"} <= set(res)


@pytest.fixture
def own_music(tmp_path):
    """A user's folder: <genre>/<any name>, FLAC and MP3, one unreadable file."""
    root = tmp_path / "My Music"
    for genre, freq in (("jazz", 220), ("rock", 880)):
        for k in range(3):
            path = root / genre / f"{genre.title()} Track {k} (remaster).flac"
            if k == 1 and "MP3" in sf.available_formats():
                path = path.with_suffix(".mp3")
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _tone(freq * (1 + 0.02 * k), 30, k), SR,
                     format="MP3" if path.suffix == ".mp3" else None)
    (root / "rock" / "broken download.flac").write_bytes(b"fLaC and nothing")
    return root


def test_train_on_a_folder_of_ordinary_files(own_music, tmp_path, capsys):
    out = tmp_path / "any name at all"
    assert main(["train", "--data", str(own_music), "--row", "xgboost_30s", "-q",
                 "-o", str(out)]) == EXIT_FAILED  # a file was skipped: exit 1, model saved
    err = capsys.readouterr().err.splitlines()
    assert sum("broken download.flac" in line for line in err) == 1
    assert any("fewer than 10 tracks per genre" in line for line in err)
    model = load_model(out)
    assert model.train_counts == {"jazz": 3, "rock": 3}
    assert [p for p, _ in model.skipped] == [str(own_music / "rock" / "broken download.flac")]


def test_reproduce_names_a_skipped_file_and_exits_1(own_music, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["reproduce", "--data", str(own_music), "--rows", "xgboost_30s", "--cv", "3",
                 "--param", "n_estimators=5", "-q", "-o", str(out)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("broken download.flac") == 1
    assert "broken download.flac" in (out / "results.md").read_text()
    (row,) = csv.DictReader(open(out / "results.csv"))
    assert row["skipped_files"] == "1" and row["status"] == "ok"
    assert {"balanced_accuracy_mean", "macro_f1_mean"} <= set(row)


def test_features_reports_each_skipped_file_once(gtzan, tmp_path, capsys):
    bad = gtzan / "rock" / "rock.00009.wav"
    bad.write_bytes(b"RIFF garbage")
    out = tmp_path / "table.csv"
    assert main(["features", str(gtzan), "-o", str(out), "-q"]) == EXIT_FAILED
    err = capsys.readouterr().err.splitlines()
    assert sum("rock.00009.wav" in line for line in err) == 1
    rows = list(csv.reader(open(out)))
    assert len(rows) == 1 + 4  # the four good tracks are not lost


def test_load_audio_csv(tmp_path):
    write_wav(tmp_path / "a" / "x.wav", _tone(220, 1))
    write_wav(tmp_path / "y.wav", _tone(220, 1))
    table = tmp_path / "list.csv"
    table.write_text("# my music\na/x.wav,jazz\n\ny.wav,rock\nmissing.wav,rock\n")
    with pytest.warns(UserWarning, match="skipped 1"):
        music = load_audio_csv(table, on_error="skip")
    assert music.target.tolist() == ["jazz", "rock"]
    assert music.filenames[0] == str(tmp_path / "a" / "x.wav")
    assert music.track_ids.tolist() == ["a/x.wav", "y.wav"]
    assert music.skipped[0][1] == "no such file"
    with pytest.raises(ValueError, match="already listed on line 1"):
        table.write_text("y.wav,rock\ny.wav,jazz\n")
        load_audio_csv(table)


# ----------------------------------------------------------------- feedback
def test_version_and_rows(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out
    assert main(["rows"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "cnn_30s_mel" in out and "xgboost_3s_mv" in out
    (marked,) = [line for line in out.splitlines() if "recommended" in line]
    assert marked.startswith(specgenre.RECOMMENDED_ROW + " ")


def test_the_recommended_row_is_trains_default_and_a_row_group(capsys):
    from specgenre.cli import build_parser

    args = build_parser().parse_args(["train", "--data", "x", "-o", "m"])
    assert args.row == specgenre.RECOMMENDED_ROW
    assert specgenre.select_rows(["recommended"]) == [specgenre.RECOMMENDED_ROW]
    assert main(["reproduce", "--rows", "recommended", "nonsense", "-q"]) == EXIT_USAGE
    assert "nonsense" in _error_line(capsys, "--rows")


def test_every_option_has_help():
    from specgenre.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "train" in a.choices)
    for name, subparser in sub.choices.items():
        for action in subparser._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}"


@pytest.mark.parametrize("row, memory_saving", [
    ("cnn_30s_mel", False), ("cnn_30s_mel", True), ("xgboost_3s", True),
    ("resnet18_scratch_3s_prob_db", True), ("xgboost_3s_mv", True),
])
def test_fit_row_on_blocks_equals_a_plain_fit(row, memory_saving):
    # specgenre train decodes tracks in blocks and frees each once turned into
    # spectrograms/features: the model must be the one a plain fit on all clips gives,
    # with the row's settings (and, with memory saving, float16 spectrograms and
    # activation checkpointing: the plain fit here uses them too)
    from specgenre.study import ALL_ROWS, classifier_of, make_row
    from specgenre.training import build_row, fit_blocks
    from specgenre.training import memory_saving as lean_settings

    X = np.stack([_tone(f, 6, k) for k, f in enumerate([220, 880, 440, 220, 880, 440])])
    y = np.array(["a", "b", "c"] * 2)
    kw = dict(max_epochs=1, batch_size=2, random_state=0)
    plain = make_row(row, random_state=0)
    if row.startswith(("cnn", "resnet")):
        classifier_of(plain).set_params(max_epochs=1, batch_size=2)
    if memory_saving:
        lean_settings(plain)
    plain.fit(*ALL_ROWS[row].samples(X, y)[:2])
    blocks = ((X[a:b].copy(), y[a:b]) for a, b in ((0, 2), (2, 5), (5, 6)))
    lean, _ = build_row(row, memory_saving_on=memory_saving, **kw)
    fit_blocks(ALL_ROWS[row], lean, blocks, 8)
    Xp = X.reshape(-1, 3 * SR) if row == "xgboost_3s" else X
    method = "predict_votes" if "_mv" in row else "predict_proba"  # hard voting: counts
    np.testing.assert_array_equal(getattr(lean, method)(Xp), getattr(plain, method)(Xp))
    params = lean.get_params()
    assert [params[k] for k in params if k.endswith("checkpointing")] == (
        [memory_saving] if row.startswith(("cnn", "resnet")) else [])
    assert [params[k] for k in params if k.endswith("spectrogram__dtype")] == (
        [("float16" if memory_saving else "float32")] if row.startswith(("cnn", "resnet"))
        else [])

