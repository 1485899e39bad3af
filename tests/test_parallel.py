"""The parallel helpers behind every batch job (specgenre._parallel)."""

import os

import numpy as np
import pytest

from specgenre._parallel import chunk_slices, parallel_map


def _pid(_):
    return os.getpid()


@pytest.mark.parametrize("n_jobs", [None, 1, 2])
def test_parallel_map_keeps_order(n_jobs):
    assert parallel_map(abs, [-3, 1, -2, 5], n_jobs=n_jobs) == [3, 1, 2, 5]


def test_first_item_runs_here_before_the_workers():
    # numba-compiled code must be compiled (and cached on disk) once, in this
    # process, before worker processes start: they would race on numba's cache
    pids = parallel_map(_pid, range(6), n_jobs=2, first_here=True)
    assert pids[0] == os.getpid()
    assert all(p != os.getpid() for p in pids[1:])  # the rest ran in worker processes
    assert parallel_map(_pid, range(3), n_jobs=1, first_here=True) == [os.getpid()] * 3


def test_chunk_slices_cover_the_range():
    for n, k in [(10, 3), (3, 10), (1, 1), (7, 7)]:
        slices = chunk_slices(n, k)
        assert len(slices) == min(n, k)
        assert np.concatenate([np.arange(n)[s] for s in slices]).tolist() == list(range(n))
