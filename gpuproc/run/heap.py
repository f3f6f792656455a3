"""Fewer C-heap arenas for a run's threads, so that freed frame buffers are reused, not hoarded.

glibc gives every thread that allocates its own heap arena (up to 8 per CPU). A run's reader,
writer and integration threads each allocate and free frame-sized buffers (17 MB per Eiger 4M
frame), and memory freed in one arena is not reused by the others: the process grew ~250 MB over
what it held (``gpuproc waxs run``, Eiger 4M frames, ``batch_frames = 8``: peak RSS 1.32 GB, 1.09
GB with two arenas, no slower; benchmarks/bench_memory.py). :func:`limit_arenas` caps them for
the process, as ``MALLOC_ARENA_MAX`` would; the command line calls it before a command runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

ARENAS = 2  #: malloc arenas of a gpuproc process
_M_ARENA_MAX = -8  #: glibc's mallopt parameter (malloc.h)


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` for the arenas created from now on.

    Returns True when set; False where the C library is not glibc or ``MALLOC_ARENA_MAX`` is
    already set (the user's choice stands).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return False
    return bool(mallopt and mallopt(_M_ARENA_MAX, int(arenas)) == 1)
