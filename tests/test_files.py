"""specgenre._files.atomic_write: the destination is replaced whole or not at all."""

import os

import pytest

from specgenre._files import atomic_write


def test_writes_and_replaces(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with atomic_write(path) as fh:
        fh.write(b"new contents")
        assert path.read_bytes() == b"old"  # not visible before the block ends
    assert path.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_text_mode(tmp_path):
    path = tmp_path / "out.txt"
    with atomic_write(str(path), "w", encoding="utf-8") as fh:
        fh.write("é\n")
    assert path.read_text(encoding="utf-8") == "é\n"


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_keeps_old_file_and_removes_temporary(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(type(error)):
        with atomic_write(path) as fh:
            fh.write(b"half")
            raise error
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_failure_without_old_file_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "new.bin") as fh:
            fh.write(b"x")
            raise RuntimeError
    assert os.listdir(tmp_path) == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "a", "ab"):
            pass
    with pytest.raises(TypeError):
        with atomic_write(tmp_path / "a", "w", no_such_argument=1):
            pass
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "missing" / "a"):
            pass
