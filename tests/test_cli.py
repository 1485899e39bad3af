"""The specgenre command line, run in-process on tiny synthetic data."""

import csv

import numpy as np
import pytest
from conftest import write_wav
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from specgenre import ClipSegmenter, FeatureExtractor, TrackAggregator
from specgenre.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from specgenre.modelfile import save_model
from specgenre.training import TrainedModel

SR = 22050


def test_reproduce_xgboost_rows_on_synthetic_data(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["reproduce", "--rows", "xgboost_30s", "xgboost_3s_mv", "--n-per-genre", "3",
                 "--duration", "6", "--cv", "2", "--param", "n_estimators=20", "-q",
                 "-o", str(out)])
    assert code == EXIT_OK
    table = capsys.readouterr().out
    assert "xgboost_30s" in table and "74.0%" in table and "not measured" in table
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["row"] for r in rows] == ["xgboost_30s", "xgboost_3s_mv"]
    for r in rows:
        assert r["status"] == "ok" and int(r["n_folds"]) == 2
        assert 0.0 <= float(r["accuracy_mean"]) <= 1.0
    assert (out / "results.md").read_text().count("| xgboost") == 2
    # what a researcher looks at next, per row, linked from results.md
    md = (out / "results.md").read_text()
    for row in ("xgboost_30s", "xgboost_3s_mv"):
        for name in ("predictions.csv", "classification_report.txt", "confusion_matrix.png"):
            assert (out / row / name).is_file()
            assert f"({row}/{name})" in md
    predictions = list(csv.DictReader(open(out / "xgboost_30s" / "predictions.csv")))
    assert len(predictions) == 30 and predictions[0]["track"].startswith("blues.")
    assert {"true_genre", "predicted_genre", "fold", "proba_rock"} <= set(predictions[0])
    # tracks used, chance level and whose figure the published one is
    assert "| xgboost_30s | 30 |" in md and "10.0%" in md
    assert "74.0% (study, 10-genre GTZAN)" in md
    assert "n_estimators=20 (xgboost_30s, xgboost_3s_mv)" in md


def test_reproduce_neural_rows_on_synthetic_data(tmp_path, torch_home, capsys):
    # no ImageNet weights offline: the pretrained row is reported as skipped, the others run
    out = tmp_path / "res"
    code = main(["reproduce", "--rows", "resnet18_scratch_3s_prob_db", "cnn_30s_mel",
                 "resnet18_pretrained_30s_mel", "resnet18_pretrained_3s_mv_mel",
                 "--n-per-genre", "2", "--duration", "6",
                 "--cv", "2", "--max-epochs", "1", "--param", "batch_size=8", "-q",
                 "-o", str(out)])
    assert code == EXIT_OK
    rows = {r["row"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert {k: r["status"] for k, r in rows.items()} == {
        "resnet18_scratch_3s_prob_db": "ok", "cnn_30s_mel": "ok",
        "resnet18_pretrained_30s_mel": "skipped", "resnet18_pretrained_3s_mv_mel": "skipped"}
    # the long explanation is printed once, naming both rows it applies to
    printed = capsys.readouterr()
    message = " ".join(rows["resnet18_pretrained_30s_mel"]["message"].split())
    assert message == " ".join(rows["resnet18_pretrained_3s_mv_mel"]["message"].split())
    assert (printed.out + printed.err).count(message[:80]) == 1
    assert "resnet18_pretrained_30s_mel, resnet18_pretrained_3s_mv_mel: skipped" in printed.out
    # the skip says which file is missing and where it belongs
    assert str(torch_home) in rows["resnet18_pretrained_30s_mel"]["message"]
    assert "resnet18-f37072fd.pth" in rows["resnet18_pretrained_30s_mel"]["message"]
    md = (out / "results.md").read_text()
    # the synthetic budget: 1 epoch (asked), no inner validation, dB rows pooled by 8
    neural = ("resnet18_scratch_3s_prob_db, cnn_30s_mel, resnet18_pretrained_30s_mel, "
              "resnet18_pretrained_3s_mv_mel")
    assert f"max_epochs=1 ({neural})" in md and f"valid_fraction=None ({neural})" in md
    assert "freq_pool=8 (resnet18_scratch_3s_prob_db)" in md
    assert ("freq_pool=2 (cnn_30s_mel, resnet18_pretrained_30s_mel, "
            "resnet18_pretrained_3s_mv_mel)") in md
    assert f"batch_size=8 ({neural})" in md


def test_reproduce_rejects_unknown_row(capsys):
    assert main(["reproduce", "--rows", "nope", "-q"]) == EXIT_USAGE
    assert "unknown row" in capsys.readouterr().err


def test_reproduce_bad_data_dir(tmp_path, capsys):
    assert main(["reproduce", "--data", str(tmp_path / "missing"), "-q"]) == EXIT_USAGE
    assert "no such" in capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    # a key no selected row takes, named with the rows
    (["--rows", "xgboost_30s", "xgboost_3s_mv", "--param", "max_epochs=3"],
     ["--param", "max_epochs", "xgboost_30s, xgboost_3s_mv"]),
    (["--rows", "cnn_30s_mel", "--param", "n_estimators=3"], ["n_estimators", "cnn_30s_mel"]),
    (["--rows", "xgboost_30s", "--cv", "1"], ["--cv 1", "at least 2"]),
    (["--rows", "xgboost_30s", "--cv", "0"], ["--cv 0"]),
])
def test_reproduce_argument_errors_come_before_any_work(tmp_path, capsys, args, words):
    # the data folder does not exist: the argument error must be found first
    code = main(["reproduce", "--data", str(tmp_path / "missing"), "-q", *args,
                 "-o", str(tmp_path / "res")])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no such" not in err
    for word in words:
        assert word in err
    assert not (tmp_path / "res").exists()


@pytest.mark.shared_data
def test_reproduce_filtered_split_counts_the_tracks_it_uses(gtzan_dev, tmp_path, capsys):
    # 51 dev tracks, of which 50 are in the fault-filtered lists (46 train+valid, 4 test)
    out = tmp_path / "res"
    code = main(["reproduce", "--data", str(gtzan_dev), "--split", "filtered", "--rows",
                 "xgboost_30s", "--param", "n_estimators=10", "-q", "-o", str(out)])
    assert code == EXIT_OK
    assert "(50 readable tracks)" in (out / "results.md").read_text()  # the 51st not decoded
    row = next(csv.DictReader(open(out / "results.csv")))
    assert row["n_tracks"] == "50" and row["n_folds"] == "1"
    assert row["protocol"].startswith("fault-filtered split")
    assert len(list(csv.DictReader(open(out / "xgboost_30s" / "predictions.csv")))) == 4
    assert "| xgboost_30s | 50 |" in (out / "results.md").read_text()


def test_reproduce_more_folds_than_tracks_per_genre(tmp_path, capsys):
    code = main(["reproduce", "--rows", "xgboost_30s", "--n-per-genre", "2", "--cv", "3",
                 "-q", "-o", str(tmp_path / "res")])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("specgenre reproduce: error: --cv 3: no genre has 3")
    assert "Traceback" not in err and not (tmp_path / "res").exists()


def test_reproduce_output_path_is_checked_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "results"
    a_file.write_text("not a folder")
    missing = tmp_path / "missing"
    for out, words in ((a_file, "is a file"), (missing / "res", "does not exist")):
        assert main(["reproduce", "--data", str(missing), "--rows", "xgboost_30s", "-q",
                     "-o", str(out)]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert words in err and "-o" in err and "no such" not in err
    assert a_file.read_text() == "not a folder"


def test_bad_param_syntax_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--param", "oops"])
    assert exc.value.code == 2


def _fitted_voting_model(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(4 * SR) / SR
    X = np.stack([np.sin(2 * np.pi * (220 if k % 2 else 880) * t)
                  + 0.05 * rng.normal(size=t.size) for k in range(8)]).astype(np.float32)
    y = np.array(["low", "high"] * 4)
    inner = make_pipeline(FeatureExtractor(), LogisticRegression(max_iter=500))
    est = TrackAggregator(inner, segmenter=ClipSegmenter(2.0), voting="soft").fit(X, y)
    path = tmp_path / "model.specgenre"
    save_model(TrainedModel(est, None, 4.0), path)
    return path


def test_predict_prints_genre_probabilities_and_segments(tmp_path, capsys):
    model = _fitted_voting_model(tmp_path)
    t = np.arange(4 * SR) / SR
    low = write_wav(tmp_path / "low.wav", 0.5 * np.sin(2 * np.pi * 220 * t))
    code = main(["predict", str(model), str(low), "--segments", "--top", "2"])
    assert code == EXIT_OK
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split("\t")[1] == "high"  # label of the 220 Hz clips (k odd)
    assert len(lines) == 3 and lines[1].lstrip().startswith("window 0 (0-2 s)")


def test_predict_reports_unreadable_files(tmp_path, capsys):
    model = _fitted_voting_model(tmp_path)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    assert main(["predict", str(model), str(bad)]) == EXIT_FAILED
    assert "bad.wav" in capsys.readouterr().err


def test_predict_missing_model(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none.joblib"), "x.wav"]) == EXIT_USAGE
    assert "not found" in capsys.readouterr().err


def test_features_writes_a_kaggle_style_table(tmp_path):
    rng = np.random.default_rng(1)
    for genre in ("jazz", "rock"):
        write_wav(tmp_path / "g" / genre / f"{genre}.00000.wav",
                  0.1 * rng.normal(size=30 * SR))
    out = tmp_path / "table.csv"
    assert main(["features", str(tmp_path / "g"), "-o", str(out),
                 "--segment-seconds", "15"]) == EXIT_OK
    rows = list(csv.reader(open(out)))
    assert rows[0][:3] == ["filename", "length", "chroma_stft_mean"]
    # Kaggle's 60 columns, then the key of each row's file (for --resume)
    assert rows[0][-4:] == ["label", "file", "file_size", "file_mtime_ns"]
    assert len(rows[0]) == 63 and len(rows) == 1 + 2 * 2
    assert rows[1][0] == "jazz.00000.0.wav" and rows[2][0] == "jazz.00000.1.wav"
    assert rows[3][-4] == "rock" and rows[3][-3].endswith("rock.00000.wav")


def test_reproduce_can_fit_the_networks_as_train_does(tmp_path):
    # --memory-saving: float16 spectrograms and checkpointing, recorded with each row's params
    out = tmp_path / "res"
    code = main(["reproduce", "--rows", "cnn_30s_mel", "resnet18_scratch_3s_prob_db",
                 "xgboost_30s", "--memory-saving", "--n-per-genre", "2", "--duration", "6",
                 "--cv", "2", "--max-epochs", "1", "--param", "batch_size=8", "-q",
                 "-o", str(out)])
    assert code == EXIT_OK
    rows = {r["row"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert {r["status"] for r in rows.values()} == {"ok"}
    overrides = next(line for line in (out / "results.md").read_text().splitlines()
                     if line.startswith("- overrides:"))
    assert "cnn__checkpointing=True (cnn_30s_mel)" in overrides
    assert "spectrogram__dtype='float16' (cnn_30s_mel)" in overrides
    assert "estimator__resnet18__checkpointing=True (resnet18_scratch_3s_prob_db)" in overrides
    assert ("estimator__spectrogram__dtype='float16' (resnet18_scratch_3s_prob_db)"
            in overrides)
    assert "xgboost_30s" not in overrides
