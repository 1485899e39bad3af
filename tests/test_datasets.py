"""Tests of specgenre.datasets: load_gtzan (audio file discovery) and load_gtzan_features."""

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import write_wav
from sklearn.model_selection import StratifiedGroupKFold

from specgenre.audio import AudioLoadError
from specgenre.datasets import GENRES, load_gtzan, load_gtzan_features
from specgenre.datasets._features import KAGGLE_FEATURE_NAMES
from specgenre.datasets._gtzan import read_split

SR = 22050


def tiny(n=256, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, n).astype(np.float32)


def make_tree(base, tracks, ext="wav"):
    """Write tiny audio files ``base/<genre>/<genre>.<num>.<ext>``; return their paths."""
    paths = []
    for genre, num in tracks:
        p = Path(base) / genre / f"{genre}.{num:05d}.{ext}"
        write_wav(p, tiny(seed=num), SR, subtype="VORBIS" if ext == "ogg" else "PCM_16")
        paths.append(p)
    return paths


TRACKS = [("blues", 0), ("blues", 1), ("jazz", 3), ("jazz", 54), ("rock", 10)]


# --------------------------------------------------------------------------- load_gtzan
def test_genres_constant():
    assert GENRES == (
        "blues", "classical", "country", "disco", "hiphop",
        "jazz", "metal", "pop", "reggae", "rock",
    )


@pytest.mark.shared_data
def test_real_dev_tracks_found_with_labels(gtzan_dev):
    with open(gtzan_dev / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    b = load_gtzan(gtzan_dev)
    assert len(b.filenames) == len(manifest) == 51
    expected = {str(gtzan_dev / row["path"]): row["genre"] for row in manifest}
    got = dict(zip(b.filenames.tolist(), b.target.tolist(), strict=True))
    assert got == expected
    ids = {f"{row['genre']}.{row['track_id']}" for row in manifest}
    assert set(b.track_ids.tolist()) == ids
    assert b.target_names == sorted(GENRES)
    assert b.skipped == [] and b.n_missing == 0
    # sorted, deterministic order
    assert b.track_ids.tolist() == sorted(b.track_ids.tolist())
    assert b.filenames.dtype.kind == "U" and b.target.dtype.kind == "U"


@pytest.mark.shared_data
def test_real_dev_split_and_genres(gtzan_dev):
    with open(gtzan_dev / "manifest.csv", newline="") as f:
        have = {f"{r['genre']}.{r['track_id']}" for r in csv.DictReader(f)}
    for split in ("train", "valid", "test"):
        listed = read_split(split)
        with pytest.warns(UserWarning, match=f"'{split}' split are not under"):
            b = load_gtzan(gtzan_dev, split=split)
        assert set(b.track_ids.tolist()) == have & set(listed)
        assert b.n_missing == len(listed) - len(b.track_ids)
    with pytest.warns(UserWarning):
        b = load_gtzan(gtzan_dev, split="valid", genres=["blues"])
    assert b.track_ids.tolist() == ["blues.00000", "blues.00001", "blues.00002"]
    # n_missing only counts the requested genres
    n_blues_valid = sum(t.startswith("blues.") for t in read_split("valid"))
    assert b.n_missing == n_blues_valid - 3


@pytest.mark.shared_data
def test_split_lists_match_shared_copy(gtzan_splits_dir):
    for split in ("train", "valid", "test"):
        lines = (gtzan_splits_dir / f"{split}_filtered.txt").read_text().split()
        assert read_split(split) == [Path(line).stem for line in lines]


def test_split_lists_are_disjoint():
    parts = {s: read_split(s) for s in ("train", "valid", "test")}
    assert {s: len(v) for s, v in parts.items()} == {"train": 443, "valid": 197, "test": 290}
    all_ids = sum(parts.values(), [])
    assert len(set(all_ids)) == 930
    assert {t.split(".")[0] for t in all_ids} == set(GENRES)


@pytest.mark.parametrize(
    "sub, root_sub, ext",
    [
        ("genres_original", "", "wav"),  # Kaggle
        ("Data/genres_original", "", "wav"),  # Kaggle zip
        ("genres", "", "au"),  # original archive
        ("", "", "flac"),  # plain tree, root = genre folders' parent
        ("genres_original", "genres_original", "wav"),  # root pointing at the genre folders
        ("genres", "genres", "ogg"),
    ],
)
def test_layouts(tmp_path, sub, root_sub, ext):
    base = tmp_path / sub if sub else tmp_path
    paths = make_tree(base, TRACKS, ext=ext)
    b = load_gtzan(tmp_path / root_sub if root_sub else tmp_path)
    assert b.filenames.tolist() == [str(p) for p in paths]
    assert b.target.tolist() == [g for g, _ in TRACKS]
    assert b.track_ids.tolist() == [f"{g}.{n:05d}" for g, n in TRACKS]
    assert b.target_names == ["blues", "jazz", "rock"]
    assert "Sturm" in b.DESCR


def test_accepts_str_and_expands_user(tmp_path, monkeypatch):
    make_tree(tmp_path / "music", TRACKS)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert len(load_gtzan("~/music").filenames) == len(TRACKS)
    assert len(load_gtzan(str(tmp_path / "music")).filenames) == len(TRACKS)


def test_non_track_files_are_ignored(tmp_path):
    make_tree(tmp_path, TRACKS)
    (tmp_path / "blues" / "notes.txt").write_text("hello")
    write_wav(tmp_path / "blues" / "blues.1.wav", tiny())  # not 5 digits
    (tmp_path / "blues" / "blues.00007.wav.bak").write_bytes(b"RIFF")
    (tmp_path / "blues" / "blues.00008.m4a").write_bytes(b"ftyp")  # not an audio suffix read
    write_wav(tmp_path / "images" / "intro.00001.wav", tiny())  # not a genre folder
    (tmp_path / "images_original" / "blues").mkdir(parents=True)
    (tmp_path / "images_original" / "blues" / "blues00000.png").write_bytes(b"\x89PNG")
    (tmp_path / "features_30_sec.csv").write_text("filename\n")
    b = load_gtzan(tmp_path)
    assert b.track_ids.tolist() == [f"{g}.{n:05d}" for g, n in TRACKS]


def test_misnamed_file_in_a_genre_folder_warns(tmp_path):
    make_tree(tmp_path, TRACKS)
    odd = write_wav(tmp_path / "jazz" / "foo.00001.wav", tiny())
    with pytest.warns(UserWarning, match="foo.00001.wav: ignored"):
        b = load_gtzan(tmp_path)
    assert str(odd) not in b.filenames.tolist()
    assert b.track_ids.tolist() == [f"{g}.{n:05d}" for g, n in TRACKS]


def test_no_track_left_is_an_error(tmp_path):
    make_tree(tmp_path, [("blues", 0)])
    (tmp_path / "blues" / "blues.00000.wav").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no track .*all 1 unreadable"):
        load_gtzan(tmp_path, on_error="skip")
    not_in_test = next(t for t in read_split("train") if t.startswith("blues."))
    make_tree(tmp_path, [("blues", int(not_in_test.split(".")[1]))])
    with pytest.raises(ValueError, match="no track of the 'test' split"), \
            pytest.warns(UserWarning, match="not under"):
        load_gtzan(tmp_path, split="test", on_error="skip")


def test_truncated_file_is_unreadable(tmp_path):
    make_tree(tmp_path, TRACKS)
    path = tmp_path / "rock" / "rock.00010.wav"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioLoadError, match="truncated"):
        load_gtzan(tmp_path)


def test_track_with_two_extensions_listed_once(tmp_path):
    make_tree(tmp_path, TRACKS)
    make_tree(tmp_path, [("blues", 1)], ext="flac")
    b = load_gtzan(tmp_path)
    assert b.track_ids.tolist() == [f"{g}.{n:05d}" for g, n in TRACKS]
    assert b.filenames[1] == str(tmp_path / "blues" / "blues.00001.flac")


def test_track_in_wrong_genre_folder_is_an_error(tmp_path):
    make_tree(tmp_path, TRACKS)
    bad = write_wav(tmp_path / "blues" / "rock.00011.wav", tiny())
    with pytest.raises(ValueError, match="rock.00011.wav") as exc:
        load_gtzan(tmp_path)
    assert str(bad) in str(exc.value)
    # a GTZAN genre name that has no folder here is still recognised as a genre
    bad.unlink()
    write_wav(tmp_path / "jazz" / "metal.00001.wav", tiny())
    with pytest.raises(ValueError, match="metal.00001.wav.*'jazz' folder"):
        load_gtzan(tmp_path)


def test_corrupt_file_raise_and_skip(tmp_path):
    make_tree(tmp_path / "genres_original", TRACKS)
    corrupt = tmp_path / "genres_original" / "jazz" / "jazz.00054.wav"
    corrupt.write_bytes(b"\x00" * 64 + b"no RIFF header here" * 100)
    with pytest.raises(AudioLoadError, match="on_error='skip'") as exc:
        load_gtzan(tmp_path)
    assert exc.value.path == str(corrupt)
    assert "jazz.00054.wav" in str(exc.value)

    with pytest.warns(UserWarning, match="jazz.00054.wav"):
        b = load_gtzan(tmp_path, on_error="skip")
    assert "jazz.00054" not in b.track_ids
    assert len(b.filenames) == len(TRACKS) - 1
    assert [p for p, _ in b.skipped] == [str(corrupt)]
    assert "header" in b.skipped[0][1]


def test_empty_and_zero_frame_files_are_unreadable(tmp_path):
    make_tree(tmp_path, TRACKS)
    empty = tmp_path / "rock" / "rock.00011.wav"
    empty.write_bytes(b"")
    noframes = write_wav(tmp_path / "rock" / "rock.00012.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioLoadError, match="rock.00011.wav"):
        load_gtzan(tmp_path)
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        b = load_gtzan(tmp_path, on_error="skip")
    reasons = dict(b.skipped)
    assert set(reasons) == {str(empty), str(noframes)}
    assert "no audio frames" in reasons[str(noframes)]
    assert b.track_ids.tolist() == [f"{g}.{n:05d}" for g, n in TRACKS]


def test_corrupt_file_outside_selection_is_not_checked(tmp_path):
    make_tree(tmp_path, TRACKS)
    (tmp_path / "jazz" / "jazz.00054.wav").write_bytes(b"garbage")
    b = load_gtzan(tmp_path, genres=["blues", "rock"])
    assert b.target_names == ["blues", "rock"]
    assert b.skipped == []


def test_split_selection_by_track_id(tmp_path):
    train, test = read_split("train"), read_split("test")
    chosen_train, chosen_test = train[:3] + train[-2:], test[:2]
    for tid in chosen_train + chosen_test:
        genre = tid.split(".")[0]
        # .au: the lists name .wav files, matching is by track id
        write_wav(tmp_path / "genres" / genre / f"{tid}.au", tiny())
    # a track in no split list (one of the 70 faulty ones)
    faulty = sorted({f"{g}.{i:05d}" for g in GENRES for i in range(100)} - set(
        train + test + read_split("valid")))[0]
    write_wav(tmp_path / "genres" / faulty.split(".")[0] / f"{faulty}.au", tiny())

    b_all = load_gtzan(tmp_path)
    assert len(b_all.track_ids) == 8 and faulty in b_all.track_ids
    with pytest.warns(UserWarning, match=r"438 of the 443 tracks of the 'train' split"):
        b = load_gtzan(tmp_path, split="train")
    assert b.track_ids.tolist() == sorted(chosen_train)
    assert b.n_missing == 443 - 5
    assert all(f.endswith(".au") for f in b.filenames)
    with pytest.warns(UserWarning):
        b = load_gtzan(tmp_path, split="test")
    assert b.track_ids.tolist() == sorted(chosen_test)
    assert faulty not in b.track_ids


def test_full_split_present_no_warning(tmp_path):
    valid = read_split("valid")
    for tid in valid:
        write_wav(tmp_path / tid.split(".")[0] / f"{tid}.wav", np.zeros(8, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = load_gtzan(tmp_path, split="valid")
    assert b.n_missing == 0
    assert sorted(b.track_ids.tolist()) == sorted(valid)


def test_bad_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_gtzan(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError):
        load_gtzan(tmp_path / "file.txt")
    (tmp_path / "blues").mkdir()
    write_wav(tmp_path / "blues" / "something.wav", tiny())
    with pytest.raises(FileNotFoundError, match="no GTZAN track found") as exc:
        load_gtzan(tmp_path)
    msg = str(exc.value)
    assert "genres_original" in msg and "genres/<genre>" in msg and "plain" in msg


def test_genres_selection_and_unknown_genre(tmp_path):
    make_tree(tmp_path, TRACKS)
    b = load_gtzan(tmp_path, genres=["rock", "blues"])
    assert b.target.tolist() == ["blues", "blues", "rock"]
    assert load_gtzan(tmp_path, genres="jazz").target_names == ["jazz"]
    with pytest.raises(ValueError, match=r"unknown genre\(s\) \['polka'\].*\['blues', 'jazz', 'rock'\]"):
        load_gtzan(tmp_path, genres=["polka"])
    with pytest.raises(ValueError, match="GTZAN genres but have no track"):
        load_gtzan(tmp_path, genres=["metal"])
    with pytest.raises(ValueError, match="non-empty"):
        load_gtzan(tmp_path, genres=[])


def test_invalid_split_and_on_error(tmp_path):
    make_tree(tmp_path, TRACKS)
    with pytest.raises(ValueError, match="split must be None or one of"):
        load_gtzan(tmp_path, split="validation")
    with pytest.raises(ValueError, match="on_error must be one of"):
        load_gtzan(tmp_path, on_error="ignore")


def test_descr():
    from specgenre.datasets._descr import GTZAN_DESCR

    for word in ("Tzanetakis", "Sturm", "Kereliuk", "mislabel", "artist", "jazz.00054", "Repetitions"):
        assert word in GTZAN_DESCR


# --------------------------------------------------------------------------- features
@pytest.mark.shared_data
def test_real_features_30_sec(gtzan_features_dir):
    path = gtzan_features_dir / "features_30_sec.csv"
    b = load_gtzan_features(path)
    assert b.data.shape == (1000, 57) and b.data.dtype == np.float64
    assert b.feature_names == list(KAGGLE_FEATURE_NAMES)
    assert b.target_names == sorted(GENRES)
    genres, counts = np.unique(b.target, return_counts=True)
    assert genres.tolist() == sorted(GENRES) and set(counts) == {100}
    assert (b.segment_index == -1).all()
    assert b.groups.tolist() == [f[: -len(".wav")] for f in b.filenames]
    assert len(set(b.groups)) == 1000
    assert "jazz.00054.wav" in b.filenames
    assert all(g.split(".")[0] == t for g, t in zip(b.groups, b.target, strict=True))
    # cross-check against an independent parser
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(path, float_precision="round_trip")  # pandas 2.0's default: 1 ulp off
    np.testing.assert_array_equal(b.data, df[list(KAGGLE_FEATURE_NAMES)].to_numpy(np.float64))
    np.testing.assert_array_equal(b.lengths, df["length"].to_numpy())
    assert b.target.tolist() == df["label"].tolist()
    assert b.lengths[b.filenames.tolist().index("jazz.00054.wav")] == 662112


@pytest.mark.shared_data
def test_real_features_3_sec_groups_and_grouped_cv(gtzan_features_dir):
    b = load_gtzan_features(gtzan_features_dir / "features_3_sec_classical_jazz_rock.csv")
    assert b.data.shape == (2996, 57)
    assert b.target_names == ["classical", "jazz", "rock"]
    assert set(b.lengths) == {66149}
    tracks, sizes = np.unique(b.groups, return_counts=True)
    assert len(tracks) == 300
    assert sorted(tracks[sizes == 9]) == ["classical.00049", "classical.00051", "rock.00027", "rock.00038"]
    assert set(sizes) == {9, 10}
    assert b.segment_index.min() == 0 and b.segment_index.max() == 9
    assert b.filenames[0] == f"{b.groups[0]}.{b.segment_index[0]}.wav"

    # grouped CV is one line and never splits a track
    folds = list(StratifiedGroupKFold(n_splits=5).split(b.data, b.target, b.groups))
    assert len(folds) == 5
    for train, test in folds:
        assert not set(b.groups[train]) & set(b.groups[test])
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(b.data)))


def write_table(path, rows, *, newline="\n", bom=False, sep=",", header=None):
    header = header or ["filename", "length", *KAGGLE_FEATURE_NAMES, "label"]
    lines = [sep.join(header)]
    for r in rows:
        lines.append(sep.join(str(v) for v in r))
    text = newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def tiny_rows(segmented=False):
    rng = np.random.default_rng(0)
    rows = []
    for genre in ("blues", "rock"):
        for tid in range(2):
            for seg in (range(3) if segmented else [None]):
                name = f"{genre}.{tid:05d}" + (f".{seg}" if seg is not None else "") + ".wav"
                feats = rng.normal(size=len(KAGGLE_FEATURE_NAMES)).round(6).tolist()
                rows.append([name, 66149 if segmented else 661794, *feats, genre])
    return rows


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_tiny_tables_line_ends_and_bom(tmp_path, newline, bom):
    rows = tiny_rows(segmented=True)
    b = load_gtzan_features(write_table(tmp_path / "f.csv", rows, newline=newline, bom=bom))
    assert b.feature_names[0] == "chroma_stft_mean"  # the BOM is not part of a name
    assert b.data.shape == (12, 57)
    np.testing.assert_array_equal(b.data, np.array([r[2:-1] for r in rows], dtype=float))
    assert b.groups.tolist() == [r[0].rsplit(".", 2)[0] for r in rows]
    assert b.segment_index.tolist() == [0, 1, 2] * 4
    assert b.target.tolist() == [r[-1] for r in rows]
    assert b.lengths.tolist() == [66149] * 12
    assert b.frame is None


def test_tiny_30_sec_table_and_semicolons(tmp_path):
    rows = tiny_rows()
    b = load_gtzan_features(write_table(tmp_path / "f.csv", rows, sep=";", newline="\r\n"))
    assert b.groups.tolist() == ["blues.00000", "blues.00001", "rock.00000", "rock.00001"]
    assert b.segment_index.tolist() == [-1] * 4
    assert b.target_names == ["blues", "rock"]


def test_extra_columns_are_ignored_with_a_warning(tmp_path):
    # e.g. the index column pandas writes by default: it follows the row order, hence
    # the label, and must not become a feature
    header = ["Unnamed: 0", "filename", "length", *KAGGLE_FEATURE_NAMES[:3], "extra",
              *KAGGLE_FEATURE_NAMES[3:], "label"]
    rows = [[i, r[0], r[1], *r[2:5], 7.5, *r[5:]] for i, r in enumerate(tiny_rows())]
    with pytest.warns(UserWarning, match=r"ignoring column\(s\) \['Unnamed: 0', 'extra'\]"):
        b = load_gtzan_features(write_table(tmp_path / "f.csv", rows, header=header))
    assert b.feature_names == list(KAGGLE_FEATURE_NAMES) and b.data.shape == (4, 57)
    np.testing.assert_array_equal(b.data, np.array([r[2:-1] for r in tiny_rows()], dtype=float))


def test_missing_column_is_named(tmp_path):
    header = ["filename", "length", *KAGGLE_FEATURE_NAMES, "label"]
    drop = [header.index("tempo"), header.index("label")]
    rows = [[v for j, v in enumerate(r) if j not in drop] for r in tiny_rows()]
    header = [c for j, c in enumerate(header) if j not in drop]
    path = write_table(tmp_path / "broken.csv", rows, header=header)
    with pytest.raises(ValueError, match=r"broken.csv: missing column\(s\) \['label', 'tempo'\]"):
        load_gtzan_features(path)


def test_non_numeric_value_names_row_and_column(tmp_path):
    rows = tiny_rows()
    rows[2][2 + KAGGLE_FEATURE_NAMES.index("rms_var")] = "n/a"
    path = write_table(tmp_path / "bad.csv", rows)
    with pytest.raises(ValueError, match=r"bad.csv, row 3 \(line 4\), column 'rms_var': 'n/a'"):
        load_gtzan_features(path)
    rows = tiny_rows()
    rows[0][1] = "66149.5"
    with pytest.raises(ValueError, match="row 1 .*'length'"):
        load_gtzan_features(write_table(tmp_path / "bad2.csv", rows))


def test_bad_rows_and_files(tmp_path):
    rows = tiny_rows()
    rows[1][0] = "mysong.wav"
    with pytest.raises(ValueError, match=r"row 2 .*'filename': 'mysong.wav'"):
        load_gtzan_features(write_table(tmp_path / "a.csv", rows))
    rows = tiny_rows()
    rows[3] = rows[3][:-2]
    with pytest.raises(ValueError, match="row 4 .*fields, expected 60"):
        load_gtzan_features(write_table(tmp_path / "b.csv", rows))
    with pytest.raises(ValueError, match="no rows"):
        load_gtzan_features(write_table(tmp_path / "c.csv", []))
    (tmp_path / "d.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_gtzan_features(tmp_path / "d.csv")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_gtzan_features(tmp_path / "nope.csv")
    with pytest.raises(IsADirectoryError):
        load_gtzan_features(tmp_path)


def test_as_frame(tmp_path):
    pd = pytest.importorskip("pandas")
    rows = tiny_rows(segmented=True)
    path = write_table(tmp_path / "f.csv", rows, newline="\r\n", bom=True)
    b = load_gtzan_features(path, as_frame=True)
    ref = pd.read_csv(path, encoding="utf-8-sig")
    pd.testing.assert_frame_equal(b.frame, ref, check_dtype=False)
    assert list(b.frame.columns) == list(ref.columns)
    assert isinstance(b.data, pd.DataFrame) and list(b.data.columns) == b.feature_names
    assert isinstance(b.target, pd.Series) and b.target.name == "label"
    # the numpy attributes stay numpy
    assert isinstance(b.groups, np.ndarray) and isinstance(b.segment_index, np.ndarray)


def test_features_descr():
    from specgenre.datasets._descr import GTZAN_FEATURES_DESCR

    assert "StratifiedGroupKFold" in GTZAN_FEATURES_DESCR and "Sturm" in GTZAN_FEATURES_DESCR


def test_import_does_not_pull_torch():
    import subprocess
    import sys

    code = (
        "import sys, specgenre.datasets as d; d.load_gtzan; d.make_genre_clips;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_top_level_exports():
    import specgenre

    assert specgenre.load_gtzan is load_gtzan
    assert specgenre.load_gtzan_features is load_gtzan_features
    assert specgenre.GENRES is GENRES
