"""Parallel maps with an optional progress bar, shared by every batch job."""

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from tqdm.auto import tqdm


def parallel_map(func, items, *, n_jobs=None, progress=False, desc=None, prefer=None,
                 first_here=False):
    """Apply ``func`` to every item, in order, optionally in parallel.

    Parameters
    ----------
    func : callable
        Function of one argument.
    items : sequence
        Items to map over.
    n_jobs : int or None, default=None
        Number of joblib workers (``None`` means 1 unless inside a
        :func:`joblib.parallel_config` context; ``-1`` means all cores).
    progress : bool, default=False
        Show a tqdm progress bar.
    desc : str, optional
        Label of the progress bar.
    prefer : {"processes", "threads"} or None
        joblib backend preference.
    first_here : bool, default=False
        Run the first item in this process before starting the workers. For
        functions that JIT-compile with numba and cache the machine code on
        disk (librosa's pitch tracking, zero crossings, peak picking; our
        feature kernels): the first call compiles and writes the cache once,
        and the workers then only read it. Worker processes that compile the
        same function for the first time at once race on numba's cache index
        and can leave it pointing at the wrong code, which crashes every
        later process that loads it (seen with numba 0.68).

    Returns
    -------
    results : list
        ``[func(item) for item in items]``.
    """
    items = list(items)
    bar = tqdm(total=len(items), desc=desc, disable=not progress, leave=False)
    try:
        if effective_n_jobs(n_jobs) == 1 or len(items) <= 1:
            results = []
            for item in items:
                results.append(func(item))
                bar.update()
            return results
        results = []
        if first_here:
            results.append(func(items[0]))
            bar.update()
            items = items[1:]
        runner = Parallel(n_jobs=n_jobs, prefer=prefer, return_as="generator")
        for result in runner(delayed(func)(item) for item in items):
            results.append(result)
            bar.update()
        return results
    finally:
        bar.close()


def chunk_slices(n, n_chunks):
    """Split ``range(n)`` into at most ``n_chunks`` contiguous, nearly equal slices."""
    n_chunks = max(1, min(int(n_chunks), n))
    bounds = np.linspace(0, n, n_chunks + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
