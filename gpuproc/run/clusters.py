"""dask.distributed clients for each executor: LocalCluster, LocalCUDACluster, an existing
scheduler, or dask-jobqueue's SLURMCluster."""

from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

from gpuproc.run.settings import Execution, SlurmSection


@contextmanager
def open_client(execution: Execution, log_directory: Path) -> Iterator[Any]:
    """A ``distributed.Client`` for ``execution`` (not ``threads``); clusters it starts are closed after.

    Parameters
    ----------
    execution : Execution
    log_directory : Path
        Where SLURM worker jobs write their logs.
    """
    from distributed import Client

    with ExitStack() as stack:
        if execution.kind == "scheduler":
            client = stack.enter_context(Client(execution.address))
        else:
            cluster = stack.enter_context(_cluster(execution, log_directory))
            client = stack.enter_context(Client(cluster))
            if execution.kind == "slurm":
                client.wait_for_workers(1, timeout=execution.slurm.start_timeout_s)
        yield client


def _cluster(execution: Execution, log_directory: Path) -> Any:
    kind = execution.kind
    if kind == "local-cluster":
        from distributed import LocalCluster

        # one thread per worker: the pipelines parallelise inside a block themselves
        return LocalCluster(n_workers=execution.n_workers, threads_per_worker=1, processes=True,
                            dashboard_address=None)
    if kind == "cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise RuntimeError("executor 'cuda' needs dask-cuda (pip install dask-cuda), which is not "
                               "installed; use 'local-cluster' or 'threads' instead") from None
        return LocalCUDACluster(n_workers=execution.n_workers, threads_per_worker=1, dashboard_address=None)
    if kind == "slurm":
        return slurm_cluster(execution.slurm, log_directory)
    raise ValueError(f"no cluster for executor {kind!r}")


def slurm_cluster(s: SlurmSection, log_directory: Path) -> Any:
    """A dask-jobqueue SLURMCluster with ``s.n_jobs`` worker jobs asked for."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise RuntimeError("executor 'slurm' needs dask-jobqueue (pip install 'gpuproc[cluster]')") from None
    extra = list(s.job_extra_directives)
    if s.gpus:
        extra.append(f"--gres=gpu:{s.gpus}")
    log_directory.mkdir(parents=True, exist_ok=True)
    cluster = SLURMCluster(
        queue=s.partition, account=s.account, cores=s.cores, processes=s.processes, memory=s.memory,
        walltime=s.walltime, job_extra_directives=extra, job_script_prologue=list(s.prologue), interface=s.interface,
        python=s.python or sys.executable, log_directory=str(log_directory),
    )
    cluster.scale(jobs=s.n_jobs)
    return cluster
