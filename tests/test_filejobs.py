"""Jobs over files block by block: same values as in memory, resumable, on a Dask cluster."""

import csv
import importlib.util
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
def test_unreachable_scheduler_is_one_line(music, tmp_path, capsys, monkeypatch):
    pytest.importorskip("dask.distributed")
    files, labels, _ = music
    listing = tmp_path / "music.csv"
    listing.write_text(f"{files[0]},{labels[0]}\n")
    assert main(["features", str(listing), "-o", str(tmp_path / "t.csv"), "-q",
                 "--scheduler", "tcp://127.0.0.1:9"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert "tcp://127.0.0.1:9" in err[-1] and "Traceback" not in err[-1]
    # reproduce says so before reading any audio (here waiting 2 s, not 30)
    import functools

    import specgenre.filejobs

    monkeypatch.setattr(specgenre.filejobs, "connect",
                        functools.partial(specgenre.filejobs.connect, timeout=2))
    assert main(["reproduce", "--data", str(listing), "-q", "--out", str(tmp_path / "r"),
                 "--scheduler", "tcp://127.0.0.1:9"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("specgenre reproduce: error: cannot reach the "
                                               "Dask scheduler at tcp://127.0.0.1:9")


# ------------------------------------------------------------------ Parquet tables

def _parquet_rows(path):
    """The table's rows as lists of values, its part files read in order."""
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(path)
    return table.column_names, [list(r.values()) for r in table.to_pylist()]


def test_parquet_table_holds_the_csv_values_typed_and_resumes(music, tmp_path, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    from specgenre.filejobs import ParquetTable

    files, labels, ids = music
    csv_out, out = tmp_path / "t.csv", tmp_path / "t.parquet"
    with pytest.warns(SkippedFileWarning):
        write_feature_table_files(csv_out, files, labels, ids, segment_seconds=14, block_size=2)
    # interrupted in its second block (warnings as errors), as in the CSV test
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedFileWarning)
        with pytest.raises(SkippedFileWarning):
            write_feature_table_files(out, files, labels, ids, segment_seconds=14, block_size=2)
    names, rows = _parquet_rows(out)
    assert {r[-3] for r in rows} == set(files[:2])
    (out / ".part-000009.parquet.abc.partial").write_bytes(b"a part being written")
    with pytest.warns(SkippedFileWarning):
        report = write_feature_table_files(out, files, labels, ids, segment_seconds=14,
                                           block_size=2, resume=True)
    assert report.n_resumed == 2 and report.n_rows == 10
    assert sorted(p.name for p in out.iterdir()) == ["part-000000.parquet",
                                                     "part-000001.parquet"]
    names, rows = _parquet_rows(out)
    text = _rows(csv_out)
    assert names == text[0] and len(rows) == len(text) - 1
    for row, line in zip(rows, text[1:]):  # the same values, as numbers: float(text) exactly
        assert row == [type(v)(s) for v, s in zip(row, line)]
    schema = pa.parquet.read_schema(out / "part-000000.parquet")
    assert schema.field("zero_crossing_rate_mean").type == pa.float64()
    assert schema.field("length").type == pa.int64() and schema.field("file").type == pa.string()
    # small blocks share a part until it holds rows_per_part rows
    monkeypatch.setattr(ParquetTable, "rows_per_part", 4)
    small = tmp_path / "small.parquet"
    with pytest.warns(SkippedFileWarning):
        write_feature_table_files(small, files, labels, ids, segment_seconds=14, block_size=1)
    assert sorted(p.name for p in small.iterdir()) == [
        "part-000000.parquet", "part-000001.parquet", "part-000002.parquet"]
    assert _parquet_rows(small) == _parquet_rows(out)
    # ... or bytes_per_part bytes: here each block of two files gets its own part
    monkeypatch.setattr(ParquetTable, "rows_per_part", 1000)
    monkeypatch.setattr(ParquetTable, "bytes_per_part", 1)
    with pytest.warns(SkippedFileWarning):
        write_feature_table_files(small, files, labels, ids, segment_seconds=14, block_size=2)
    assert len(list(small.iterdir())) == 3 and _parquet_rows(small) == _parquet_rows(out)


def test_parquet_resume_redoes_a_changed_file_in_place(music, tmp_path):
    pytest.importorskip("pyarrow")
    files, labels, ids = music
    files, labels, ids = files[:2] + files[3:], labels[:2] + labels[3:], ids[:2] + ids[3:]
    out = tmp_path / "t.parquet"
    write_feature_table_files(out, files, labels, ids, block_size=3)
    _, before = _parquet_rows(out)
    st = os.stat(files[1])
    write_wav(files[1], _tone(990, 28, 7))
    os.utime(files[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    report = write_feature_table_files(out, files, labels, ids, block_size=3, resume=True)
    assert report.n_resumed == 4 and report.n_rows == 5
    _, after = _parquet_rows(out)
    # the one part (both blocks) lost the changed file's row, rewritten; its new row is in
    # a new part
    assert [r[-3] for r in after] == [files[0], files[2], files[3], files[4], files[1]]
    assert after[:4] == [before[0], *before[2:]] and after[4][:-3] != before[1][:-3]
    assert sorted(p.name for p in out.iterdir()) == ["part-000000.parquet",
                                                     "part-000001.parquet"]
    # started afresh without resume: the old parts go
    write_feature_table_files(out, files[:1], labels[:1], ids[:1])
    assert [p.name for p in out.iterdir()] == ["part-000000.parquet"]


def test_parquet_table_refuses_what_is_not_its_own(tmp_path):
    pytest.importorskip("pyarrow")
    from specgenre.filejobs import open_table

    header = ["x", *KEY_COLUMNS]
    (tmp_path / "file.parquet").write_bytes(b"PAR1")
    with pytest.raises(FileJobError, match="is a file"):
        open_table(tmp_path / "file.parquet", header)
    folder = tmp_path / "notes.parquet"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileJobError, match=r"other files .*notes\.txt"):
        open_table(folder, header)
    assert (folder / "notes.txt").read_text() == "mine"  # left as it was
    table = open_table(tmp_path / "t.parquet", header, types={"x": "float64"})
    table.append([["1.5", "a.wav", 3, 4], [None, "b.wav", 3, 4]])
    with pytest.raises(FileJobError, match="other columns"):
        open_table(tmp_path / "t.parquet", ["y", *KEY_COLUMNS], resume=True)
    with pytest.raises(FileJobError, match="other columns"):  # same names, other types
        open_table(tmp_path / "t.parquet", header, resume=True)
    assert _parquet_rows(tmp_path / "t.parquet")[1] == [[1.5, "a.wav", 3, 4],
                                                        [None, "b.wav", 3, 4]]
    with pytest.raises(ValueError, match="unknown column types"):
        open_table(tmp_path / "u.parquet", header, types={"x": "float16"})


def test_predict_to_parquet_resumes(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    model = _voting_model(tmp_path)
    songs = [str(write_wav(tmp_path / f"s{k}.wav", _tone(220 + 660 * (k % 2), 4 + k, k)))
             for k in range(3)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    files = [songs[0], str(bad), *songs[1:]]
    csv_out, out = tmp_path / "pred.csv", tmp_path / "pred.parquet"
    assert main(["predict", str(model), *files, "-o", str(csv_out)]) == EXIT_FAILED
    assert main(["predict", str(model), *files, "-o", str(out)]) == EXIT_FAILED
    names, rows = _parquet_rows(out)
    text = _rows(csv_out)
    assert names == text[0]
    for row, line in zip(rows, text[1:]):
        assert [("" if v is None else str(v)) for v in row] == line
    assert main(["predict", str(model), *files, "-o", str(out), "--resume"]) == EXIT_FAILED
    # the verdicts kept; bad.wav's row judged again (in vain): it comes last now
    assert _parquet_rows(out) == (names, [rows[0], *rows[2:], rows[1]])
    capsys.readouterr()
    assert main(["predict", str(model), songs[0], "-o", str(tmp_path / "p.csv"),
                 "--format", "parquet"]) == EXIT_USAGE
    assert ".parquet" in capsys.readouterr().err


# ------------------------------------------------------------------ musicnn on files

needs_musicnn = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason="official musicnn weights not installed (`pip install --no-deps musicnn`)")


@pytest.fixture
def clips(tmp_path, one_torch_thread):
    """Two 3.5 s tones and a 4 s noise burst (one or two musicnn patches), then a bad file."""
    rng = np.random.default_rng(0)
    waves = [_tone(330, 3.5, 0), _tone(1200, 3.5, 1),
             (0.2 * rng.normal(size=4 * SR)).astype(np.float32)]
    files = [str(write_wav(tmp_path / "clips" / f"c{k}.wav", y)) for k, y in enumerate(waves)]
    bad = tmp_path / "clips" / "bad.wav"
    bad.write_bytes(b"not audio")
    return files + [str(bad)]


@needs_musicnn
def test_tags_cli_writes_and_resumes_the_tag_table(clips, tmp_path, capsys):
    from specgenre.audio import read_audio
    from specgenre.musicnn import top_tags

    out = tmp_path / "tags.csv"
    assert main(["tags", *clips, "--top", "3", "-o", str(out)]) == EXIT_FAILED
    printed = capsys.readouterr()
    rows = _rows(out)
    assert rows[0] == ["file", "tag_1", "p_1", "tag_2", "p_2", "tag_3", "p_3", "error",
                       "file_size", "file_mtime_ns"]
    assert [r[0] for r in rows[1:]] == clips
    for path, row in zip(clips[:3], rows[1:]):  # the official tagger's tags of each file
        y, sr = read_audio(path)
        tags = top_tags(y, sr=sr, n=3)
        assert row[1:7] == [v for t, p in tags for v in (t, repr(p))] and row[7] == ""
        assert f"{path}\t{tags[0][0]} {tags[0][1]:.2f}" in printed.out
    assert rows[4][1:7] == [""] * 6 and "cannot be decoded" in rows[4][7]
    assert f"error: {clips[3]}: " in printed.err
    assert tuple(rows[1][-2:]) == tuple(map(str, file_key(clips[0])[1:]))
    # killed after two files; resumed: the third and the bad file are done (again)
    out.write_bytes(b"".join(out.read_bytes().splitlines(keepends=True)[:3]))
    assert main(["tags", *clips, "--top", "3", "-o", str(out), "--resume"]) == EXIT_FAILED
    printed = capsys.readouterr()
    assert _rows(out) == rows
    assert printed.out.count("\n") == 1 and printed.err.count("error: ") == 1
    assert main(["tags", *clips, "--resume"]) == EXIT_USAGE  # nothing to go on with
    assert capsys.readouterr().err.strip() == (
        "specgenre tags: error: --resume goes on with the file of -o; give -o")
    # the Python function: the same tags, in Parquet
    pytest.importorskip("pyarrow")
    from specgenre.tagging import write_tag_table

    report = write_tag_table(clips, tmp_path / "tags.parquet", n=3, block_size=2)
    assert report.n_rows == 4 and [f for f, _ in report.skipped] == [clips[3]]
    _, values = _parquet_rows(tmp_path / "tags.parquet")
    assert [[("" if v is None else str(v)) for v in r] for r in values] == rows[1:]


@needs_musicnn
def test_embedding_table_holds_each_files_embedding_and_resumes(clips, tmp_path):
    from specgenre.audio import read_audio
    from specgenre.embedding_table import embed_files, embedding_columns, write_embedding_table
    from specgenre.musicnn import MusicnnEmbedding

    out = tmp_path / "emb.csv"
    seen = []
    report = write_embedding_table(clips, out, layer="penultimate", pooling="mean_std",
                                   block_size=2, callback=lambda *a: seen.append(a))
    names = embedding_columns(layer="penultimate", pooling="mean_std")
    assert len(names) == 400 and names[200] == "penultimate_std_0"
    rows = _rows(out)
    assert rows[0] == ["file", *names, "error", "file_size", "file_mtime_ns"]
    assert report.n_rows == 4 and [f for f, _ in report.skipped] == [clips[3]]
    for path, row, (file, vector, error) in zip(clips[:3], rows[1:], seen):
        y, sr = read_audio(path)
        X = y[None, :]
        direct = MusicnnEmbedding(layer="penultimate", pooling="mean_std", sr=sr).fit(X)
        E = direct.transform(X)[0]
        assert file == path and error == "" and np.array_equal(vector, E)
        # the CSV's text reads back to the same float32 values
        assert np.array_equal(np.asarray(row[1:401], dtype=np.float32), E)
    assert rows[4][1:401] == [""] * 400 and seen[3][1] is None and seen[3][2]
    # a file changed since: redone on resume, the others kept
    st = os.stat(clips[1])
    write_wav(clips[1], _tone(500, 3.5, 9))
    os.utime(clips[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    report = write_embedding_table(clips, out, layer="penultimate", pooling="mean_std",
                                   resume=True)
    assert report.n_resumed == 2 and report.n_rows == 4
    again = _rows(out)
    assert [r[0] for r in again[1:]] == [clips[0], clips[2], clips[1], clips[3]]
    assert again[1] == rows[1] and again[2] == rows[3] and again[3][1:401] != rows[2][1:401]
    with pytest.raises(FileJobError, match="other columns"):  # another layer: other columns
        write_embedding_table(clips, out, layer="taggram", resume=True)
    with pytest.raises(ValueError, match="layer 'pool9'"):
        next(embed_files(clips, layer="pool9"))
    # Parquet: float32 columns with the same values
    pa = pytest.importorskip("pyarrow")
    pq_out = tmp_path / "emb.parquet"
    write_embedding_table(clips, pq_out, layer="penultimate", pooling="mean_std")
    table = pa.parquet.read_table(pq_out)
    assert table.schema.field(names[0]).type == pa.float32()
    assert np.array_equal(np.column_stack([table.column(n).to_numpy(zero_copy_only=False)
                                           for n in names])[:3],
                          np.asarray([r[1:401] for r in again[1:4]], dtype=np.float32)[[0, 2, 1]])
