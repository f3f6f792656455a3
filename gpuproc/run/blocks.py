"""The protocol between a pipeline and the executors: a run is a set of independent blocks.

A pipeline exposes an *opener*, a module-level callable ``opener(job, create) -> BlockRunner``.
With ``create=True`` (the client) it creates or reopens the results store; with ``create=False``
(a worker, an array task, the finalize step) it attaches to the store the client created.
Then::

    runner.n_blocks         number of blocks of the whole run
    runner.pending()        -> block ids not yet written (the store's done marks)
    runner.run_block(i)     computes block i, writes it (whole chunks) and marks it done
    runner.overlapped(ids)  context: run_block(i) for i in ids reads ahead and writes behind
    runner.finalize()       statistics once every block is written; then runner.publish(): figures

The pipelines' runners derive from :class:`StoreBlocks`, which splits a block into their
``read_block`` and ``compute_block``, records every block's stage timings
(:mod:`gpuproc.run.timings`) with its done mark, and with ``runner.overlapped(ids)`` reads the
next block and writes the previous one while a block computes (:mod:`gpuproc.run.prefetch`).

Workers receive a :class:`RunSpec` (opener + job, both small and picklable) and build the runner
once per process (:func:`runner_for`), so large set-up (e.g. the WAXS integration matrix) is
built where it is used instead of being shipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from gpuproc.config import to_json
from gpuproc.io.results import DONE, ResultLayout, ResultStore, resume_problems
from gpuproc.run import lock, outputs, prefetch, timings
from gpuproc.run.fingerprint import fingerprints
from gpuproc.run.settings import results_config_json
from gpuproc.run.summary import POSITION_DIMS


class BlockRunner(Protocol):
    """One run of a pipeline, seen as independent blocks of a results store."""

    @property
    def output(self) -> Path:
        """The results store."""

    @property
    def n_blocks(self) -> int:
        """Number of blocks of the whole run."""

    def pending(self) -> list[int]:
        """Blocks not yet written."""

    def run_block(self, block: int) -> None:
        """Compute block ``block``, write it and mark it done."""

    def overlapped(self, blocks: list[int]) -> contextlib.AbstractContextManager:
        """A context in which :meth:`run_block` runs ``blocks`` in this order, I/O overlapped."""

    def finalize(self) -> None:
        """Whole-scan statistics; marks the store complete."""

    def publish(self) -> None:
        """Figures, report and exports drawn from the finished store (after its timings are recorded)."""


Opener = Callable[[Any, bool], BlockRunner]


class StoreBlocks:
    """Base of the pipelines' runners: the blocks are those of the results store ``self.results``.

    A pipeline provides ``read_block(block)`` (the block's input, read and decoded: it may run in
    a background thread, and its errors name what could not be read) and
    ``compute_block(block, data)`` (the block's results, on the calling thread, marking its
    stages with :func:`gpuproc.run.timings.stage`).
    """

    results: ResultStore
    job: Any  #: the pipeline's job (its ``job`` table names figures and NeXus outputs)
    #: seconds this process spent building the runner, recorded with its first block (workers)
    setup_s: float = 0.0
    _pipeline: prefetch.Pipeline | None = None  #: set inside :meth:`overlapped`

    def open_results(self, job: Any, lay: ResultLayout, create: bool) -> None:
        """Create (or reopen to resume) the job's results store, or attach to the one the run's
        client created (workers, array tasks, the finalize step)."""
        out, config, prints = Path(job.job.output), results_config_json(job), fingerprints(job)
        if not create:
            self.results = ResultStore.attach(out, lay, config_json=config, inputs=prints)
            return
        decision = outputs.run_decision(job, prints)
        if decision == "replace":
            outputs.remove_store(out)
        self.results = ResultStore(out, lay, config_json=config, inputs=prints, pipeline=outputs.pipeline_of(job),
                                   resume=decision == "resume")
        written = self.results.group[DONE].shape[0]
        if written != lay.n_blocks:  # e.g. batch_frames below a row, which older versions made one row
            raise ValueError(f"{out}: cannot resume: the store was written in {written} blocks, this version of "
                             f"gpuproc cuts the same job into {lay.n_blocks}; set [job] overwrite = true "
                             "(or --overwrite) to start afresh, or choose another output")
        timings.create_array(self.results.group, lay.n_blocks)

    def publish(self) -> None:
        """From the finished store: the figures and ``report.html`` (``[job] figures``, timed as
        ``figures``) and the NeXus file (``[job] nexus``)."""
        settings = self.job.job
        if settings.figures is not None:  # drawn from the finished store, like `gpuproc report`
            from gpuproc.report.html import write_report

            with timings.stage("figures"):
                write_report(self.results.path, settings.figures)
        if settings.nexus is not None:
            from gpuproc.io.nexus import export_nexus  # h5py only when asked

            export_nexus(self.results.path, settings.nexus)

    def read_block(self, block: int) -> Any:
        raise NotImplementedError

    def compute_block(self, block: int, data: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def run_block(self, block: int) -> None:
        """Compute block ``block``, write it and mark it done, with its timings.

        Inside :meth:`overlapped` its input was read ahead and its results are written in the
        background; otherwise it reads, computes and writes in turn.
        """
        watch = timings.Stopwatch()
        pipe = self._pipeline
        with timings.measuring(watch):
            with timings.stage("read"):
                data = self.read_block(block) if pipe is None else pipe.take(block, watch)
            values = self.compute_block(block, data)
            del data
            if pipe is None:
                with timings.stage("write"):
                    self.results.write_block(block, values)
        if pipe is None:
            self._record(block, watch)
        else:  # the writer thread records the block: this thread is done with its stopwatch
            pipe.write(block, values, watch)

    @contextlib.contextmanager
    def overlapped(self, blocks: list[int], depth: int = prefetch.DEFAULT_DEPTH) -> Iterator[None]:
        """For the ``with`` body, which calls :meth:`run_block` for ``blocks`` in this order: the
        next ``depth`` blocks are read while one computes, and each block is written while the
        next computes (:class:`gpuproc.run.prefetch.Pipeline`; the same results). On leaving,
        the write in flight is finished."""
        self._pipeline = prefetch.Pipeline(blocks, self.read_block, self.results.write_block, self._record, depth)
        failed = True
        try:
            yield
            failed = False
        finally:
            pipe, self._pipeline = self._pipeline, None
            pipe.close(raise_errors=not failed)

    def _record(self, block: int, watch: timings.Stopwatch) -> None:
        if self.setup_s:
            watch.add("setup", self.setup_s)
            self.setup_s = 0.0
        record = timings.block_record(watch, block_items(self.results.layout, block))
        timings.write_block(self.results.group, block, record)

    @property
    def output(self) -> Path:
        return self.results.path

    @property
    def n_blocks(self) -> int:
        return self.results.layout.n_blocks

    def pending(self) -> list[int]:
        return self.results.pending_blocks()


def block_items(lay: ResultLayout, block: int) -> int:
    """Scan positions (frames, spectra) or time points of ``block``."""
    region = lay.block_region(block)
    n = 1
    for d in POSITION_DIMS:
        if d in lay.sizes:
            sl = region.get(d, slice(0, lay.sizes[d]))
            n *= sl.stop - sl.start
    return n


@dataclass(frozen=True)
class RunSpec:
    """What a worker needs to build a runner: the pipeline's opener and the job."""

    opener: Opener
    job: Any

    @property
    def key(self) -> str:
        """Identity of the runner: the opener and the whole job."""
        return f"{self.opener.__module__}.{self.opener.__qualname__}:{to_json(self.job)}"


def job_hash(job: Any) -> str:
    """Short identity of what a job's results depend on (its results configuration)."""
    return hashlib.sha256(results_config_json(job).encode()).hexdigest()[:12]


@contextlib.contextmanager
def claimed(spec: RunSpec, *, route: str = "process") -> Iterator[None]:
    """Own the output of ``spec`` for a run (``route="process"``) or for a job array prepared
    now (``route="array"``: the lock stays until :func:`release_array`).

    Before any work: refuses an output that must not be written
    (:func:`gpuproc.run.outputs.check_run_output`) and one that another live run holds
    (:mod:`gpuproc.run.lock`); a job-array lock of the same job is taken over when resuming.
    Whether the store can be resumed is decided when the runner opens it
    (:meth:`StoreBlocks.open_results`).
    """
    job = spec.job
    outputs.check_run_output(job)
    with lock.holding(job.job.output, job_hash(job), route=route,
                      take_same_job=job.job.resume and not job.job.overwrite):
        outputs.check_run_output(job)  # again, now that it is ours
        yield


def release_array(spec: RunSpec) -> None:
    """End a job array's ownership of its output (after its finalize step)."""
    lock.release(spec.job.job.output, job_hash=job_hash(spec.job))


def finished(job: Any) -> bool:
    """True if the job's output is a complete results store it may resume as it is (same
    results configuration and inputs)."""
    found = outputs.inspect(Path(job.job.output))
    return (found.kind == "results" and found.pipeline == outputs.pipeline_of(job) and bool(found.attrs.get("complete"))
            and not resume_problems(found.attrs, results_config_json(job), fingerprints(job)))


_lock = threading.Lock()
_cached: tuple[str, BlockRunner] | None = None  # one runner per process: it may hold large arrays


def runner_for(spec: RunSpec) -> BlockRunner:
    """The runner of ``spec`` in this process, built (attached to the store) on first use."""
    global _cached
    with _lock:
        if _cached is None or _cached[0] != spec.key:
            _cached = None  # release the previous runner before building the next
            start = time.perf_counter()
            runner = spec.opener(spec.job, False)
            runner.setup_s = time.perf_counter() - start
            _cached = (spec.key, runner)
        return _cached[1]


def run_block_task(spec: RunSpec, block: int) -> int:
    """Worker task: compute and write one block; returns its id."""
    runner_for(spec).run_block(block)
    return block


def task_blocks(n_blocks: int, index: int, count: int) -> list[int]:
    """Blocks of array task ``index`` of ``count``: a contiguous slice of the scan.

    The split is over all blocks (not only pending ones), so a task's share does not depend on
    what other tasks have written already.
    """
    if not 0 <= index < count:
        raise ValueError(f"task index must be in [0, {count}), got {index}")
    return [int(b) for b in np.array_split(np.arange(n_blocks), count)[index]]
