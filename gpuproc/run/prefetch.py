"""Blocks overlapped with their I/O: block k+1 is read and block k-1 written while block k computes.

A :class:`Pipeline` knows the order in which a runner will compute its blocks. It reads ahead in
a background thread (at most ``depth`` blocks read and not yet taken, so memory stays bounded by
``depth + 1`` blocks of input) and writes in a second background thread (at most one block
waiting to be written while the next one computes). Each block is still computed on the calling
thread, in order, from the same input as without the pipeline, so the results are the same bit
for bit (:meth:`gpuproc.run.blocks.StoreBlocks.overlapped`).

Errors of the background threads are raised on the calling thread as they are (a reader's error
names the frames or file it could not read): a read's when its block is taken, a write's when the
next write or :meth:`Pipeline.close` waits for it. :meth:`Pipeline.close` finishes the write in
flight, so after an error or an interruption every block marked done is completely written;
reads ahead are dropped.

Time: the calling thread counts ``read`` as its wait for a block's input and ``write`` as its wait
for the previous write (:mod:`gpuproc.run.timings`); the work the background threads did is added
to the block's stopwatch as ``read_background`` and ``write_background`` before ``record`` stores it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from gpuproc.run.timings import Stopwatch

#: blocks read ahead of the one computing (1: the inputs of two blocks in memory)
DEFAULT_DEPTH = 1


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


class Pipeline:
    """Background reads ahead of, and writes behind, blocks computed in the order ``blocks``.

    Parameters
    ----------
    blocks : sequence of int
        The order in which :meth:`take` will ask for the blocks.
    read : callable
        ``read(block)``: the block's input (decoded frames or spectra), run in the reader thread.
    write : callable
        ``write(block, values)``: stores a block's results, run in the writer thread.
    record : callable
        ``record(block, watch)``: stores the block's timings, after its write, in the writer thread.
    depth : int
        Blocks read ahead (>= 1).
    """

    def __init__(self, blocks: Sequence[int], read: Callable[[int], Any], write: Callable[[int, Any], None],
                 record: Callable[[int, Stopwatch], None], depth: int = DEFAULT_DEPTH) -> None:
        self._read, self._write, self._record = read, write, record
        self._depth = max(1, int(depth))
        self._todo = deque(blocks)
        self._ahead: deque[tuple[int, Future]] = deque()
        self._writing: Future | None = None
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="gpuproc-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="gpuproc-write")
        self._refill()

    def _refill(self) -> None:
        while self._todo and len(self._ahead) < self._depth:
            b = self._todo.popleft()
            self._ahead.append((b, self._reader.submit(_timed, self._read, b)))

    def take(self, block: int, watch: Stopwatch) -> Any:
        """The input of ``block``, read ahead (waiting for it if need be); the next read starts.
        A block out of the planned order is read here and now."""
        if not self._ahead or self._ahead[0][0] != block:
            return self._read(block)
        _, future = self._ahead.popleft()
        data, busy = future.result()
        watch.add("read_background", busy)
        self._refill()
        return data

    def write(self, block: int, values: Any, watch: Stopwatch) -> None:
        """Write ``values`` of ``block`` in the background, after the previous write has finished
        (waiting for it here, counted as ``write``); from now on only the writer thread touches
        ``watch``."""
        start = time.perf_counter()
        if self._writing is not None:
            self._writing.result()
        watch.add("write", time.perf_counter() - start)
        self._writing = self._writer.submit(self._background_write, block, values, watch)

    def _background_write(self, block: int, values: Any, watch: Stopwatch) -> None:
        start = time.perf_counter()
        self._write(block, values)
        watch.add("write_background", time.perf_counter() - start)
        self._record(block, watch)

    def close(self, *, raise_errors: bool = True) -> None:
        """Drop the reads ahead, finish the write in flight (raising its error if ``raise_errors``)."""
        for _, future in self._ahead:
            future.cancel()
        self._ahead.clear()
        self._todo.clear()
        try:
            if self._writing is not None:
                error = self._writing.exception()
                if error is not None and raise_errors:
                    raise error
        finally:
            self._writing = None
            self._reader.shutdown(wait=True)
            self._writer.shutdown(wait=True)
