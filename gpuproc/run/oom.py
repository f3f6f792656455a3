"""GPU out-of-memory on a batch: split the batch in halves and retry, with a warning."""

from __future__ import annotations

import warnings
from functools import cache
from typing import Callable, TypeVar

T = TypeVar("T")


@cache
def oom_errors() -> tuple[type[BaseException], ...]:
    """Exception classes that mean the device ran out of memory (CuPy's, when installed)."""
    try:
        from cupy.cuda.memory import OutOfMemoryError
    except ImportError:
        return ()
    return (OutOfMemoryError,)


def _free_device_memory() -> None:
    try:
        import cupy
    except ImportError:
        return
    cupy.get_default_memory_pool().free_all_blocks()


def split_on_oom(compute: Callable[[int, int], T], start: int, stop: int,
                 merge: Callable[[list[T]], T]) -> T:
    """``compute(start, stop)``; on device out-of-memory, compute the two halves and ``merge`` them.

    Halving recurses down to a single item, whose out-of-memory error is raised.

    Parameters
    ----------
    compute : callable
        ``compute(lo, hi)`` processes items ``lo:hi`` (e.g. frames of a block).
    start, stop : int
        The items of the batch.
    merge : callable
        Joins the results of consecutive sub-ranges, in order.
    """
    try:
        return compute(start, stop)
    except oom_errors() as exc:
        if stop - start <= 1:
            raise
        mid = (start + stop) // 2
        warnings.warn(f"device out of memory on items {start}:{stop} ({exc}); retrying as {start}:{mid} and "
                      f"{mid}:{stop} (lower [job] batch_frames to avoid this)", RuntimeWarning, stacklevel=2)
        _free_device_memory()
        return merge([split_on_oom(compute, start, mid, merge), split_on_oom(compute, mid, stop, merge)])
