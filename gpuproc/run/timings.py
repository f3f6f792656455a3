"""Where a run's time went: seconds per stage, measured in every run and stored with the results.

Stages (:data:`STAGES`): ``setup`` (opening the input, building the runner: the integration
matrix, windows, noise model), ``read`` (reading and decoding frames or spectra), ``integrate``
(WAXS cakes), ``preprocess`` (PL: dark, spikes, energy axis, weights), ``fit``, ``derive``
(WAXS maps from the fits), ``write`` (results into the store), ``finalize`` (statistics,
mean cake, NeXus) and ``figures`` (figures and report.html).

Pipelines mark their work with :func:`stage` (a no-op outside a measured block), the runner
measures each block with a :class:`Stopwatch` and records it with the block's done mark in the
store's ``run/timings`` array (one chunk per block, so concurrent workers never share one), and
the executor sums the blocks it ran at finalize into the root attribute ``timings`` (a mapping)::

    {"stages_s": {stage: seconds}, "wall_s": float, "blocks": int, "items": int, "unit": "s",
     "background_s": {"read": seconds, "write": seconds}, "workers": int}

``stages_s`` is what the block's own thread spent in each stage: reading that a background
reader had already done costs only the wait for it, so in a local run ``sum(stages_s) <=
wall_s``; ``background_s`` is the work done behind the computation (prefetching reads,
asynchronous writes), not part of the sum. Blocks computed on several dask workers at once add
up their own times (the sum may then exceed ``wall_s``). Time stamps are ``time.perf_counter``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import zarr

#: every stage a run may report, in the order they happen
STAGES = ("setup", "read", "integrate", "preprocess", "fit", "derive", "write", "finalize", "figures")
#: work done in background threads, reported apart (``background_s``)
BACKGROUND = ("read", "write")
#: columns of a block's record in ``run/timings``
BLOCK_FIELDS = (*STAGES, *(f"{s}_background" for s in BACKGROUND), "items")
ARRAY = "run/timings"  #: (n_blocks, len(BLOCK_FIELDS)) float64, NaN until the block is recorded
ATTRIBUTE = "timings"  #: root attribute of a finished store holding the run's :class:`Timings` (JSON)


class Stopwatch:
    """Exclusive seconds per stage on one thread: time in a nested stage counts for it alone."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[str] = []
        self._since = 0.0

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Count the time of the ``with`` body (less its nested stages) for ``name``."""
        self._switch(name)
        try:
            yield
        finally:
            self._switch(None)

    def _switch(self, entering: str | None) -> None:
        now = time.perf_counter()
        if self._stack:
            current = self._stack[-1]
            self.seconds[current] = self.seconds.get(current, 0.0) + now - self._since
        if entering is None:
            self._stack.pop()
        else:
            self._stack.append(entering)
        self._since = now

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` measured elsewhere (e.g. a background thread) to ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)


_local = threading.local()


@contextlib.contextmanager
def measuring(watch: Stopwatch) -> Iterator[Stopwatch]:
    """Make ``watch`` the one :func:`stage` records into on this thread, for the ``with`` body."""
    previous = getattr(_local, "watch", None)
    _local.watch = watch
    try:
        yield watch
    finally:
        _local.watch = previous


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the ``with`` body for stage ``name`` on this thread's :func:`measuring` stopwatch
    (nothing when no stopwatch is active)."""
    watch = getattr(_local, "watch", None)
    if watch is None:
        yield
        return
    with watch.stage(name):
        yield


def block_record(watch: Stopwatch, items: int) -> np.ndarray:
    """One block's row of ``run/timings`` (:data:`BLOCK_FIELDS`) from its stopwatch."""
    row = [watch.seconds.get(name, 0.0) for name in BLOCK_FIELDS[:-1]]
    return np.array([*row, float(items)], np.float64)


def create_array(group: zarr.Group, n_blocks: int) -> None:
    """Add ``run/timings`` to a results store that lacks it (one chunk per block)."""
    if ARRAY in group:
        return
    a = group.create_array(ARRAY, shape=(n_blocks, len(BLOCK_FIELDS)), chunks=(1, len(BLOCK_FIELDS)),
                           dtype=np.float64, dimension_names=("block", "timing_field"), fill_value=np.nan)
    a.attrs.update({"long_name": "seconds per stage of each block (gpuproc.run.timings)", "units": "s",
                    "fields": list(BLOCK_FIELDS)})


def write_block(group: zarr.Group, block: int, record: np.ndarray) -> None:
    """Store one block's record (a store written before timings were recorded has no array: skipped)."""
    if ARRAY in group:
        group[ARRAY][block] = record


@dataclass(frozen=True)
class Timings:
    """Where one invocation's time went (see the module docstring)."""

    stages_s: dict[str, float]
    wall_s: float
    blocks: int
    items: int
    unit: str = "s"
    background_s: dict[str, float] = field(default_factory=dict)
    workers: int = 1

    def text(self) -> str:
        """One line: ``time: 12.3 s wall, 192 frames in 3 blocks: setup 1.1 s, read 2.0 s, ...``."""
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in self.stages_s.items() if v > 0)
        hidden = ", ".join(f"{k} {v:.2f} s" for k, v in self.background_s.items() if v > 0)
        return (f"time: {self.wall_s:.1f} s wall, {self.items} items in {self.blocks} blocks: {parts}"
                + (f" (in the background: {hidden})" if hidden else ""))


def summed(group: zarr.Group, blocks: list[int], wall_s: float, outside: dict[str, float],
           workers: int = 1) -> Timings:
    """The :class:`Timings` of an invocation: the records of ``blocks`` summed (blocks without a
    record count 0), plus the stages it measured ``outside`` the blocks (setup, finalize, figures)."""
    totals = dict.fromkeys(BLOCK_FIELDS, 0.0)
    if ARRAY in group and blocks:
        rows = np.asarray(group[ARRAY][...])[np.asarray(blocks, int)]
        stored = list(group[ARRAY].attrs.get("fields", BLOCK_FIELDS))
        for name in BLOCK_FIELDS:
            if name in stored:
                totals[name] = float(np.nansum(rows[:, stored.index(name)]))
    stages = {s: totals[s] + outside.get(s, 0.0) for s in STAGES}
    return Timings(stages_s=stages, wall_s=float(wall_s), blocks=len(blocks), items=int(totals["items"]),
                   background_s={s: totals[f"{s}_background"] for s in BACKGROUND}, workers=workers)


def store(path: Any, timings: Timings) -> None:
    """Record ``timings`` as the ``timings`` attribute of the store ``path`` (not consolidated:
    :func:`gpuproc.run.summary.record` consolidates right after)."""
    zarr.open_group(str(path), mode="r+", use_consolidated=False).attrs[ATTRIBUTE] = asdict(timings)


def read(path: Any) -> Timings | None:
    """The :class:`Timings` recorded in a finished store, None if it has none."""
    value = zarr.open_group(str(path), mode="r").attrs.get(ATTRIBUTE)
    return None if value is None else Timings(**value)
