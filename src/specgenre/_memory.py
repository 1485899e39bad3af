"""Large result arrays on ordinary memory pages (no huge-page advice).

On Linux numpy asks the kernel to back every array of 4 MiB or more with
2 MiB transparent huge pages (``madvise(MADV_HUGEPAGE)``, unless numpy was
imported with ``NUMPY_MADVISE_HUGEPAGE=0``). Where the system is set to
``defrag=madvise`` (the kernel's default), the first write to each huge page
may make the kernel compact or reclaim memory to find 2 MiB. On the 2-core
virtual machine of the benchmarks, first writes cost 8.6 ms of CPU per MiB
with that advice against 0.8 ms per MiB without it (the last lines of
``benchmarks/bench_spectrogram.py``; which part of the kernel or the
hypervisor takes the time was not traced), and loading 51 tracks with their
mel spectrograms spent 64 % of its CPU time in the kernel.

The library's large results (decoded waveforms, spectrograms, stacked
cached outputs) are written once from start to end and then read.
:func:`empty` gives them ordinary pages: an anonymous private memory map,
which the array owns and unmaps when it is freed. Where huge pages come
cheap, this costs a page fault per 4 kB instead of per 2 MiB on first write;
where they are costly, as above, first writes take a tenth of the time.
Everything else about the array is numpy's: it pickles, copies and converts
as any other.
"""

import math
import mmap
import sys

import numpy as np

#: numpy's huge-page advice starts at this size (``numpy/_core/src/multiarray/alloc.c``)
HUGE_PAGE_ADVICE_BYTES = 1 << 22

_MAPS_ANONYMOUS = sys.platform.startswith("linux") and hasattr(mmap, "MAP_PRIVATE")


def empty(shape, dtype):
    """An uninitialised C-ordered array, like :func:`numpy.empty`, without huge pages.

    Parameters
    ----------
    shape : int or tuple of int
    dtype : data-type

    Returns
    -------
    ndarray
        Writeable and C-contiguous. On Linux an array of at least
        :data:`HUGE_PAGE_ADVICE_BYTES` lives in an anonymous private memory
        map of its own (ordinary pages, filled in as they are first written);
        any other array is ``np.empty(shape, dtype)``.
    """
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if not _MAPS_ANONYMOUS or nbytes < HUGE_PAGE_ADVICE_BYTES:
        return np.empty(shape, dtype)
    buffer = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)
    return np.frombuffer(buffer, dtype=dtype, count=math.prod(shape)).reshape(shape)


def stack(arrays):
    """:func:`numpy.stack` of equally shaped arrays along a new first axis, into :func:`empty`."""
    arrays = list(arrays)
    if not arrays:
        return np.stack(arrays)  # numpy's error for nothing to stack
    dtype = np.result_type(*{np.asarray(a).dtype for a in arrays})
    out = empty((len(arrays),) + np.shape(arrays[0]), dtype)
    return np.stack(arrays, out=out)


def concatenate(arrays):
    """:func:`numpy.concatenate` of arrays along their first axis, into :func:`empty`."""
    arrays = [np.asarray(a) for a in arrays]
    if not arrays or any(a.ndim == 0 for a in arrays):
        return np.concatenate(arrays)  # numpy's error
    dtype = np.result_type(*{a.dtype for a in arrays})
    out = empty((sum(len(a) for a in arrays),) + arrays[0].shape[1:], dtype)
    return np.concatenate(arrays, out=out)
