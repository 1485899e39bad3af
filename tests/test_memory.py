"""Large result arrays on ordinary pages (specgenre._memory)."""

import gc
import mmap
import pickle
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

from specgenre import _memory
from specgenre.audio import load_audio
from specgenre.spectrogram import SpectrogramTransformer

SMAPS = Path("/proc/self/smaps")
on_linux = pytest.mark.skipif(not (sys.platform.startswith("linux") and SMAPS.exists()),
                              reason="needs Linux's /proc/self/smaps")
LARGE = _memory.HUGE_PAGE_ADVICE_BYTES


def _mappings_of(array):
    """``{(start, end): VmFlags}`` of the memory mappings holding ``array``'s bytes.

    numpy advises huge pages from the array's second page on, which splits its
    mapping in two: every mapping overlapping the array is looked at.
    """
    first = array.__array_interface__["data"][0]
    last = first + array.nbytes
    found, span = {}, None
    for line in SMAPS.read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            start, end = (int(x, 16) for x in head.split("-"))
            span = (start, end) if start < last and first < end else None
        elif span and line.startswith("VmFlags:"):
            found[span] = line.split()[1:]
    return found


def _huge_page_advised(array):
    return any("hg" in flags for flags in _mappings_of(array).values())


@pytest.mark.parametrize("shape", [0, 5, (3, 4), (2, 3, 4), (LARGE // 4 + 1,), (64, LARGE // 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_empty_is_a_writeable_c_array_of_the_shape_and_dtype(shape, dtype):
    a = _memory.empty(shape, dtype)
    assert a.shape == ((shape,) if np.ndim(shape) == 0 else tuple(shape))
    assert a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    a[...] = 7
    assert np.all(a == 7)
    b = pickle.loads(pickle.dumps(a))
    assert b.dtype == a.dtype and np.array_equal(a, b)


def _memory_map_under(array):
    """The :class:`mmap.mmap` at the bottom of ``array``'s chain of bases, or None."""
    base = array
    while isinstance(base, (np.ndarray, memoryview)):
        base = base.base if isinstance(base, np.ndarray) else base.obj
    return base if isinstance(base, mmap.mmap) else None


@on_linux
def test_large_arrays_are_not_advised_huge_pages_and_are_unmapped_when_freed():
    ours = _memory.empty((LARGE // 4,), np.float32)
    assert not _huge_page_advised(ours)
    assert _memory_map_under(_memory.empty((LARGE // 4 - 1,), np.float32)) is None  # small
    mapped = weakref.ref(_memory_map_under(ours))
    view = ours[10:]
    del ours
    gc.collect()
    assert mapped() is not None  # a view keeps the mapping alive
    del view
    gc.collect()
    assert mapped() is None  # closed (unmapped) with the last array using it


def test_stack_is_numpys_stack():
    rng = np.random.default_rng(2)
    rows = [rng.standard_normal((3, LARGE // 24)).astype(np.float32) for _ in range(40)]
    for arrays in (rows, rows[:1], [r[:, :5] for r in rows], [np.float64(1.5), np.int16(2)]):
        ours, numpys = _memory.stack(arrays), np.stack(arrays)
        assert ours.dtype == numpys.dtype and ours.flags.c_contiguous
        np.testing.assert_array_equal(ours, numpys)
    with pytest.raises(ValueError):
        _memory.stack([])
    with pytest.raises(ValueError):
        _memory.stack([rows[0], rows[1][:, :5]])


def test_concatenate_is_numpys_concatenate():
    rng = np.random.default_rng(3)
    parts = [rng.standard_normal((n, 187, 96)).astype(np.float32) for n in (40, 1, 0, 25)]
    for arrays in (parts, parts[1:2], [np.arange(3), np.arange(2.0)]):
        ours, numpys = _memory.concatenate(arrays), np.concatenate(arrays)
        assert ours.dtype == numpys.dtype and ours.flags.c_contiguous
        np.testing.assert_array_equal(ours, numpys)
    for bad in ([], [np.float32(1)], [parts[0], parts[0][:, :5]]):
        with pytest.raises(ValueError):
            _memory.concatenate(bad)


@on_linux
def test_numpys_own_large_arrays_are_the_ones_advised(monkeypatch):
    # the reason for _memory: without it, numpy's large arrays carry the advice
    # (unless numpy's huge-page advice is off in this process)
    if not _huge_page_advised(np.empty(LARGE // 4, np.float32)):
        pytest.skip("numpy gives no huge-page advice here (NUMPY_MADVISE_HUGEPAGE=0 or old kernel)")
    monkeypatch.setattr(_memory, "_MAPS_ANONYMOUS", False)
    assert _huge_page_advised(_memory.empty(LARGE // 4, np.float32))


@on_linux
def test_loaded_waveforms_and_spectrograms_are_on_ordinary_pages(tmp_path):
    import soundfile as sf

    sr, n = 22050, 22050 * 3
    rng = np.random.default_rng(0)
    paths = []
    for i in range(16):  # 16 x 3 s float32 = 4.2 MB of waveforms
        path = tmp_path / f"clip {i}.wav"
        sf.write(path, 0.1 * rng.standard_normal(n).astype(np.float32), sr)
        paths.append(str(path))
    X = load_audio(paths, sr=sr, duration=3.0).X
    assert X.nbytes >= LARGE and not _huge_page_advised(X)
    S = SpectrogramTransformer("db", sr=sr).fit_transform(X)
    assert S.nbytes >= LARGE and not _huge_page_advised(S)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_spectrograms_in_parts_equal_one_part(dtype):
    X = np.random.default_rng(1).standard_normal((24, 22050 * 3)).astype(np.float32)
    one = SpectrogramTransformer("db", dtype=dtype).fit_transform(X)
    parts = SpectrogramTransformer("db", dtype=dtype, n_jobs=2).fit_transform(X)
    assert one.dtype == parts.dtype == np.dtype(dtype) and one.nbytes >= LARGE // 2
    np.testing.assert_array_equal(one, parts)
