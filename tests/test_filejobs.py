"""Jobs over files block by block: same values as in memory, resumable, on a Dask cluster."""

import csv
import os
import warnings

import numpy as np
import pytest
from conftest import write_wav
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from specgenre import ClipSegmenter, FeatureExtractor, TrackAggregator, load_audio
from specgenre.cli import EXIT_FAILED, EXIT_USAGE, main
from specgenre.errors import SkippedFileWarning
from specgenre.feature_table import write_feature_table, write_feature_table_files
from specgenre.filejobs import KEY_COLUMNS, CsvTable, FileJobError, file_key, map_file_blocks
from specgenre.judging import judge_files, write_judgement_table
from specgenre.modelfile import save_model
from specgenre.training import TrainedModel

SR = 22050


def _tone(freq, seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.normal(size=t.size)).astype(
        np.float32)


@pytest.fixture
def music(tmp_path):
    """Five 28 s tracks of two genres and, third, a file that is not audio."""
    files, labels = [], []
    for k, (genre, freq) in enumerate([("jazz", 220), ("rock", 880), (None, 0), ("jazz", 330),
                                       ("rock", 660), ("jazz", 440)]):
        path = tmp_path / "music" / f"track{k}.wav"
        if genre is None:
            path.write_bytes(b"RIFF this is no audio")
        else:
            write_wav(path, _tone(freq, 28, k))
        files.append(str(path))
        labels.append(genre or "rock")
    ids = [f"{g}.{k:05d}" for k, g in enumerate(labels)]
    return files, labels, ids


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def _by_file(rows):
    """``{file: [row without its key columns, ...]}`` of a table's data rows."""
    out = {}
    for row in rows[1:]:
        out.setdefault(row[-3], []).append(row[:-3])
    return out


def test_feature_files_equal_the_in_memory_table(music, tmp_path):
    files, labels, ids = music
    streamed = tmp_path / "streamed.csv"
    with pytest.warns(SkippedFileWarning, match="track2.wav"):
        report = write_feature_table_files(streamed, files, labels, ids, segment_seconds=10,
                                           block_size=2)
    batch = load_audio(files, on_error="skip")
    whole = tmp_path / "whole.csv"
    write_feature_table(whole, batch.X, np.asarray(labels)[batch.kept],
                        np.asarray(ids)[batch.kept], segment_seconds=10)
    new, old = _rows(streamed), _rows(whole)
    assert new[0] == old[0] + list(KEY_COLUMNS)
    assert [r[:-3] for r in new] == old  # the same values, to the last digit
    assert len(new) == 1 + 5 * 3  # three 10 s segments of each readable track
    assert report.n_rows == 15 and report.n_resumed == 0
    assert [p for p, _ in report.skipped] == [files[2]]
    # each row is keyed by its file as it is
    assert tuple(new[1][-3:]) == tuple(map(str, file_key(files[0])))


def test_interrupted_job_resumes_each_file_once(music, tmp_path):
    files, labels, ids = music
    full = tmp_path / "full.csv"
    with pytest.warns(SkippedFileWarning):
        write_feature_table_files(full, files, labels, ids, block_size=2)
    out = tmp_path / "table.csv"
    # the unreadable third file stops the job in its second block (warnings as errors):
    # the first block's rows are in the table, the second's are not
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedFileWarning)
        with pytest.raises(SkippedFileWarning):
            write_feature_table_files(out, files, labels, ids, block_size=2)
    assert list(_by_file(_rows(out))) == files[:2]
    with pytest.warns(SkippedFileWarning):
        report = write_feature_table_files(out, files, labels, ids, block_size=2, resume=True)
    assert report.n_resumed == 2 and report.n_rows == 5
    assert _rows(out) == _rows(full)  # every file once, the same values, the same order


def test_resume_drops_a_row_cut_short_and_redoes_a_changed_file(music, tmp_path):
    files, labels, ids = music
    files, labels, ids = files[:2] + files[3:], labels[:2] + labels[3:], ids[:2] + ids[3:]
    out = tmp_path / "table.csv"
    write_feature_table_files(out, files, labels, ids, block_size=2)
    before = _by_file(_rows(out))
    # a crash in the middle of writing the last row; then the second file changes
    data = out.read_bytes()
    out.write_bytes(data[:data.rstrip(b"\r\n").rfind(b"\n") + 40])
    st = os.stat(files[1])
    write_wav(files[1], _tone(990, 28, 7))
    os.utime(files[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    report = write_feature_table_files(out, files, labels, ids, block_size=2, resume=True)
    assert report.n_resumed == 3  # files 0, 2, 3 were kept; 1 changed, 4 was cut short
    after = _by_file(_rows(out))
    assert sorted(after) == sorted(files) and all(len(r) == 1 for r in after.values())
    for f in (files[0], files[2], files[3]):
        assert after[f] == before[f]
    assert after[files[1]] != before[files[1]]
    fresh = tmp_path / "fresh.csv"
    write_feature_table_files(fresh, files, labels, ids)
    assert after == _by_file(_rows(fresh))


def test_resume_refuses_a_table_of_other_columns(tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(FileJobError, match="other columns"):
        CsvTable.open(out, ["x", *KEY_COLUMNS], resume=True)
    assert out.read_text() == "a,b\n1,2\n"  # left as it was
    with pytest.raises(FileJobError, match="block size"):
        next(map_file_blocks(len, ["a"], block_size=0))


def _voting_model(tmp_path):
    X = np.stack([_tone(220 if k % 2 else 880, 4, k) for k in range(8)])
    y = np.array(["low", "high"] * 4)
    inner = make_pipeline(FeatureExtractor(), LogisticRegression(max_iter=500))
    est = TrackAggregator(inner, segmenter=ClipSegmenter(2.0), voting="soft").fit(X, y)
    path = tmp_path / "model.specgenre"
    save_model(TrainedModel(est, None, 4.0), path)
    return path


def test_predict_resumes_and_redoes_failed_files(tmp_path, capsys):
    model = _voting_model(tmp_path)
    songs = [str(write_wav(tmp_path / f"s{k}.wav", _tone(220 + 660 * (k % 2), 4 + k, k)))
             for k in range(4)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    files = [songs[0], str(bad), *songs[1:]]
    out = tmp_path / "pred.csv"
    assert main(["predict", str(model), *files, "-o", str(out)]) == EXIT_FAILED
    full = _rows(out)
    assert full[0][-2:] == ["file_size", "file_mtime_ns"]
    assert [r[0] for r in full[1:]] == files and full[2][full[0].index("error")]
    # interrupted after two files (the rest of the file lost), then resumed
    out.write_bytes(b"".join(out.read_bytes().splitlines(keepends=True)[:3]))
    capsys.readouterr()
    assert main(["predict", str(model), *files, "-o", str(out), "--resume"]) == EXIT_FAILED
    rows = _rows(out)
    assert rows == full  # each file once, in order; bad.wav was tried again
    assert capsys.readouterr().err.count("bad.wav") == 1
    # --resume needs a CSV file
    assert main(["predict", str(model), songs[0], "--resume"]) == EXIT_USAGE


def test_judgement_table_equals_judge_files(tmp_path):
    from specgenre.modelfile import load_model

    model = load_model(_voting_model(tmp_path))
    songs = [str(write_wav(tmp_path / f"s{k}.wav", _tone(300 + 200 * k, 5, k)))
             for k in range(3)]
    seen = []
    report = write_judgement_table(model, songs, tmp_path / "j.csv", block_size=2,
                                   callback=seen.append)
    direct = list(judge_files(model, songs))
    assert [j.scores for j in seen] == [j.scores for j in direct]
    rows = _rows(tmp_path / "j.csv")
    assert report.n_rows == 3 and [float(r[rows[0].index("p_low")]) for r in rows[1:]] == \
        [j.scores["low"] for j in direct]


def test_features_cli_resume(music, tmp_path, capsys):
    files, labels, _ = music
    listing = tmp_path / "music.csv"
    listing.write_text("".join(f"{f},{g}\n" for f, g in zip(files, labels)))
    full, out = tmp_path / "full.csv", tmp_path / "out.csv"
    assert main(["features", str(listing), "-o", str(full), "-q", "--block-size", "2"]) \
        == EXIT_FAILED
    lines = full.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:3]) + lines[3][:25])  # killed while writing a row
    capsys.readouterr()
    assert main(["features", str(listing), "-o", str(out), "-q", "--resume"]) == EXIT_FAILED
    assert "(2 files resumed)" in capsys.readouterr().err
    assert _rows(out) == _rows(full)
    assert main(["features", str(listing), "-o", str(out), "-q", "--block-size", "0"]) \
        == EXIT_USAGE


@pytest.mark.slow  # starts a cluster of two worker processes
def test_dask_cluster_writes_the_local_table(music, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    files, labels, ids = music
    local = tmp_path / "local.csv"
    with pytest.warns(SkippedFileWarning):
        write_feature_table_files(local, files, labels, ids, segment_seconds=14, block_size=2)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            remote = tmp_path / "remote.csv"
            with pytest.warns(SkippedFileWarning, match="track2.wav"), \
                    distributed.get_task_stream(client) as tasks:
                report = write_feature_table_files(remote, files, labels, ids, client=client,
                                                   segment_seconds=14, block_size=2)
            assert report.n_rows == 10
            assert remote.read_bytes() == local.read_bytes()  # bit for bit
            # the blocks ran in the cluster's worker processes: 1 file, then 2 + 2 + 1
            ran = [t for t in tasks.data if t["key"].startswith("_with_warnings")]
            assert len(ran) == 4
            assert {t["worker"] for t in ran} <= set(client.scheduler_info()["workers"])
            # the CLI's --scheduler: the same table
            listing = tmp_path / "music.csv"
            listing.write_text("".join(f"{f},{g}\n" for f, g in zip(files, labels)))
            cli_local, cli_remote = tmp_path / "cli_local.csv", tmp_path / "cli_remote.csv"
            assert main(["features", str(listing), "-o", str(cli_local), "-q"]) == EXIT_FAILED
            assert main(["features", str(listing), "-o", str(cli_remote), "-q", "--scheduler",
                         cluster.scheduler_address]) == EXIT_FAILED
            assert cli_remote.read_bytes() == cli_local.read_bytes()
    finally:
        cluster.close()


@pytest.mark.slow  # the client waits 30 s for the scheduler
def test_unreachable_scheduler_is_one_line(music, tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    files, labels, _ = music
    listing = tmp_path / "music.csv"
    listing.write_text(f"{files[0]},{labels[0]}\n")
    assert main(["features", str(listing), "-o", str(tmp_path / "t.csv"), "-q",
                 "--scheduler", "tcp://127.0.0.1:9"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert "tcp://127.0.0.1:9" in err[-1] and "Traceback" not in err[-1]
