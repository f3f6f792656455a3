"""Run a pipeline's blocks where the job says, then finalize; or one share of them (array task).

Entry points, for any pipeline that provides an opener (:mod:`gpuproc.run.blocks`):

- :func:`execute`: the whole run: create/reopen the store, compute the pending blocks in this
  process (reading the next block while one computes) or on dask.distributed workers, finalize,
  record where the time went (:mod:`gpuproc.run.timings`).
- :func:`prepare`, :func:`run_task`, :func:`finalize_run`: the three steps of a SLURM job array
  (create the store once; each array task computes its slice; a last job finalizes).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from gpuproc.run import timings
from gpuproc.run.blocks import BlockRunner, RunSpec, claimed, release_array, run_block_task, task_blocks
from gpuproc.run.settings import Execution
from gpuproc.run.summary import RunResult, check_failed_fraction, record, summarize
from gpuproc.run.timings import Stopwatch, measuring, stage


def execute(spec: RunSpec, execution: Execution, *, progress: bool = False) -> RunResult:
    """Compute every pending block of ``spec`` under ``execution``, then finalize.

    Returns
    -------
    RunResult
        The results store (a Path) with the run's ``summary`` (:mod:`gpuproc.run.summary`).

    Raises
    ------
    TooManyFailedFits
        After the results are written, if more fits failed than ``[job] allow_failed_fraction``.
    """
    started = time.perf_counter()
    watch = Stopwatch()
    with claimed(spec):  # refuses unsafe outputs and other live runs before any work
        with measuring(watch), stage("setup"):
            runner = spec.opener(spec.job, True)
        blocks = runner.pending()
        workers = 1
        if execution.distributed:
            workers = _on_workers(spec, blocks, execution, progress)
        else:
            with runner.overlapped(blocks):
                for b in _progress(blocks, progress):
                    runner.run_block(b)
        result = _finalize(runner, watch, blocks, started, workers)
    return check_failed_fraction(result, spec.job.job.allow_failed_fraction)


def _finalize(runner: BlockRunner, watch: Stopwatch, blocks: list[int], started: float, workers: int) -> RunResult:
    """``runner.finalize()`` timed as ``finalize``, the timings and summary recorded, then
    ``runner.publish()`` (its ``figures``: a run's own report shows every stage but its drawing),
    and the timings and summary recorded again with it."""
    with measuring(watch), stage("finalize"):
        runner.finalize()
    _summarized(runner, blocks, started, watch, workers, publishing=True)
    with measuring(watch):
        runner.publish()
    return _summarized(runner, blocks, started, watch, workers)


def _summarized(runner: BlockRunner, blocks: list[int], started: float, watch: Stopwatch,
                workers: int, publishing: bool = False) -> RunResult:
    """Record the run's timings (``blocks`` summed, wall time since ``started``; no ``figures``
    stage while ``publishing`` draws them) and the finished store's fit status counts in it."""
    wall = time.perf_counter() - started
    t = timings.summed(runner.results.group, blocks, wall, watch.seconds, workers)
    if publishing:
        del t.stages_s["figures"]
    timings.store(runner.output, t)
    result = record(runner.output, summarize(runner.output, wall))
    result.timings = t
    return result


def log_directory(spec: RunSpec) -> Path:
    """Where SLURM jobs of this run write logs: ``[slurm] log_directory`` or ``<output>.logs``."""
    out = Path(spec.job.job.output)
    return spec.job.slurm.log_directory or out.with_name(out.name + ".logs")


def _on_workers(spec: RunSpec, blocks: list[int], execution: Execution, progress: bool) -> int:
    """Compute ``blocks`` on dask workers; returns the number of workers."""
    from distributed import as_completed

    from gpuproc.run.clusters import open_client

    with open_client(execution, log_directory(spec)) as client:
        futures = client.map(run_block_task, [spec] * len(blocks), blocks, pure=False)
        try:
            for fut in _progress(as_completed(futures), progress, total=len(blocks)):
                fut.result()
        finally:
            client.cancel(futures)
        return max(1, len(client.scheduler_info().get("workers", {})))


def _progress(items: Iterable, progress: bool, total: int | None = None) -> Iterable:
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc="blocks", unit="block")


def prepare(spec: RunSpec) -> list[int]:
    """Create (or reopen, to resume) the results store; returns the pending blocks. The job
    array owns the output from now until :func:`finalize_run`."""
    with claimed(spec, route="array"):
        return spec.opener(spec.job, True).pending()


def run_task(spec: RunSpec, index: int, count: int, *, progress: bool = False) -> list[int]:
    """Array task ``index`` of ``count``: compute its pending blocks into the prepared store.

    Returns the blocks computed. Does not finalize.
    """
    start = time.perf_counter()
    runner = spec.opener(spec.job, False)
    runner.setup_s = time.perf_counter() - start  # recorded with its first block
    pending = set(runner.pending())
    mine = [b for b in task_blocks(runner.n_blocks, index, count) if b in pending]
    with runner.overlapped(mine):
        for b in _progress(mine, progress):
            runner.run_block(b)
    return mine


def finalize_run(spec: RunSpec) -> RunResult:
    """Finalize a run whose blocks were all written (e.g. by array tasks).

    Returns
    -------
    RunResult
        The results store with the run's ``summary`` (wall time: this step's) and ``timings``
        (the stages of every block, summed over the array's tasks, plus this step's).

    Raises
    ------
    RuntimeError
        If some blocks are still missing.
    TooManyFailedFits
        After finalizing, if more fits failed than ``[job] allow_failed_fraction``.
    """
    started = time.perf_counter()
    watch = Stopwatch()
    with measuring(watch), stage("setup"):
        runner: BlockRunner = spec.opener(spec.job, False)
    missing = runner.pending()
    if missing:
        raise RuntimeError(f"{runner.output}: {len(missing)} block(s) not written yet ({missing[:10]}...); "
                           "re-run the job (it resumes) or the failed array tasks before finalizing")
    result = _finalize(runner, watch, list(range(runner.n_blocks)), started, spec.job.slurm.array_size)
    release_array(spec)
    return check_failed_fraction(result, spec.job.job.allow_failed_fraction)
