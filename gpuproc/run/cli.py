"""Command-line pieces every pipeline shares: execution options for ``run`` and the
``prepare | finalize | slurm`` commands of the SLURM job-array route.

A pipeline's CLI group gets them with :func:`add_array_commands` and decorates its ``run``
command with :func:`execution_options` (then calls :func:`run_command`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

if TYPE_CHECKING:  # the run machinery (zarr, numpy, dask) is imported when a command runs, not for --help
    from gpuproc.run.blocks import RunSpec
    from gpuproc.run.summary import RunResult

JOB_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def execution_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--executor``, ``--n-workers``, ``--task-index``, ``--task-count`` and ``--overwrite`` for a
    ``run`` command."""
    options = [
        click.option("--executor", default=None, metavar="KIND",
                     help="Override [job] executor: threads | local-cluster | cuda | slurm | scheduler:ADDRESS."),
        click.option("--n-workers", type=click.IntRange(1), default=None,
                     help="Override [job] n_workers (local-cluster / cuda)."),
        click.option("--task-index", type=click.IntRange(0), default=None,
                     help="Job-array task: compute only this task's slice of blocks (no finalize)."),
        click.option("--task-count", type=click.IntRange(1), default=None, help="Job-array size."),
        click.option("--overwrite", is_flag=True, default=False,
                     help="Replace an existing results store this job does not resume ([job] overwrite = true)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_command(spec: RunSpec, *, executor: str | None, n_workers: int | None, task_index: int | None,
                task_count: int | None, progress: bool, overwrite: bool = False) -> None:
    """What ``<pipeline> run`` does with the :func:`execution_options`."""
    from gpuproc.run.clusters import ClusterStartError
    from gpuproc.run.executor import execute, run_task
    from gpuproc.run.settings import execution_of

    job = spec.job
    job.job.overwrite = job.job.overwrite or overwrite
    if (task_index is None) != (task_count is None):
        raise click.UsageError("--task-index and --task-count go together")
    if task_index is not None:
        done = run_task(spec, task_index, task_count, progress=progress)
        click.echo(f"task {task_index}/{task_count}: wrote blocks {done} of {job.job.output}")
        return
    if executor is not None:
        job.job.executor, job.job.scheduler_address = executor, None
    if n_workers is not None:
        job.job.n_workers = n_workers
    try:
        execution = execution_of(job)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--executor") from None
    try:
        path = _summarized(lambda: execute(spec, execution, progress=progress))
    except ClusterStartError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"results: {path}  (open with xarray.open_zarr)")


def _summarized(run: Callable[[], RunResult]) -> RunResult:
    """``run()``, then its summary printed; a run with too many failed fits prints it too and ends
    with exit status 1 (its results are written)."""
    from gpuproc.run.summary import TooManyFailedFits

    try:
        result = run()
    except TooManyFailedFits as exc:
        _echo_summary(exc.result)
        raise click.ClickException(str(exc)) from None
    _echo_summary(result)
    return result


def _echo_summary(result: RunResult) -> None:
    """The run's fit summary and the line of its stage timings."""
    click.echo(result.summary.text())
    if getattr(result, "timings", None) is not None:
        click.echo(result.timings.text())


def add_array_commands(group: click.Group, pipeline: str, spec_of: Callable[[Path], RunSpec]) -> None:
    """Add ``prepare``, ``finalize`` and ``slurm`` to a pipeline's CLI group.

    Parameters
    ----------
    group : click.Group
    pipeline : str
        The group's name ("waxs", "pl"), used in the generated scripts.
    spec_of : callable
        Job file -> :class:`RunSpec`.
    """

    @group.command("prepare")
    @click.argument("job_file", type=JOB_FILE)
    def prepare_command(job_file: Path) -> None:
        """Create (or reopen, to resume) the results store of JOB_FILE before array tasks run."""
        from gpuproc.run.executor import prepare

        spec = spec_of(job_file)
        pending = prepare(spec)
        click.echo(f"{spec.job.job.output}: {len(pending)} block(s) to compute")

    @group.command("finalize")
    @click.argument("job_file", type=JOB_FILE)
    def finalize_command(job_file: Path) -> None:
        """Statistics and figures of JOB_FILE once all its blocks are written (after the array)."""
        from gpuproc.run.executor import finalize_run

        try:
            path = _summarized(lambda: finalize_run(spec_of(job_file)))
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"results: {path}")

    @group.command("slurm")
    @click.argument("job_file", type=JOB_FILE)
    @click.option("--array", "array_size", type=click.IntRange(1), default=None,
                  help="Array tasks the blocks are split into (default [slurm] array_size).")
    @click.option("--partition", default=None, help="SLURM partition (default [slurm] partition).")
    @click.option("--gpus", type=click.IntRange(0), default=None, help="GPUs per task, --gres=gpu:N.")
    @click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Where the scripts go (default <output>.slurm next to the results).")
    @click.option("--submit", is_flag=True, help="Prepare the store and sbatch the array and finalize jobs.")
    def slurm_command(job_file: Path, array_size: int | None, partition: str | None, gpus: int | None,
                      out_dir: Path | None, submit: bool) -> None:
        """Write (and print, or --submit) a SLURM job array for JOB_FILE plus its finalize job."""
        from gpuproc.run import sbatch
        from gpuproc.run.executor import log_directory, prepare

        spec = spec_of(job_file)
        s = spec.job.slurm
        s.array_size = array_size or s.array_size
        s.partition = partition or s.partition
        s.gpus = s.gpus if gpus is None else gpus
        out = Path(spec.job.job.output)
        scripts = sbatch.write_array_scripts(job_file, pipeline, s, out_dir or out.with_name(out.name + ".slurm"),
                                             log_directory(spec))
        if not submit:
            for path in (scripts.array, scripts.finalize, scripts.submit):
                click.echo(f"# ---- {path}\n{path.read_text()}")
            click.echo(f"# submit with: {scripts.submit}")
            return
        pending = prepare(spec)
        array, final = sbatch.submit(scripts)
        click.echo(f"{len(pending)} block(s) pending; array job {array} ({s.array_size} tasks), "
                   f"finalize job {final} (afterok:{array}); logs in {log_directory(spec)}")


