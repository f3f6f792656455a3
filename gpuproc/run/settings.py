"""Where a run executes: the ``[job] executor`` key and the ``[slurm]`` section of a job file.

::

    [job]    executor = "threads" | "local-cluster" | "cuda" | "slurm" | "scheduler:tcp://host:8786"
             n_workers (local-cluster / cuda workers; default one per core / per GPU)
             scheduler_address (an existing dask scheduler; same as executor = "scheduler:ADDRESS")
             allow_failed_fraction (more failed fits than this fraction make the run an error)
    [slurm]  partition, account, cores, processes, memory, walltime, gpus, n_jobs, array_size,
             job_extra_directives, prologue, interface, scheduler_interface, dashboard,
             log_directory, python, start_timeout_s

Execution settings never change the results, so they are left out of the configuration a
results store records (:func:`results_config_json`), as are figures (``[job] figures`` and a
``[figures]`` section), device, resume and overwrite: a run killed under one executor resumes
under another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpuproc.config import to_dict
from gpuproc.run.summary import DEFAULT_ALLOWED_FAILED_FRACTION
from gpuproc.run.validate import at_least, positive

EXECUTORS = ("threads", "local-cluster", "cuda", "slurm", "scheduler")
#: keys of ``[job]`` that only say where a run executes
JOB_EXECUTION_KEYS = ("executor", "n_workers", "scheduler_address", "allow_failed_fraction")
#: keys of ``[job]`` the results do not depend on: a run may resume after they changed (the CPU
#: and GPU paths agree to float32 rounding, so ``device`` is one of them)
NOT_RESULT_JOB_KEYS = (*JOB_EXECUTION_KEYS, "figures", "nexus", "device", "resume", "overwrite")


@dataclass
class SlurmSection:
    """``[slurm]``: resources of the SLURM jobs (dask-jobqueue workers or job-array tasks)."""

    partition: str | None = None  #: ``--partition`` (dask-jobqueue ``queue``); the cluster default if omitted
    account: str | None = None  #: ``--account``
    cores: int = 4  #: CPUs per job (``--cpus-per-task``)
    processes: int = 1  #: dask workers per SLURMCluster job
    memory: str = "16GB"  #: memory per job; keep it below the node's RealMemory
    walltime: str = "01:00:00"  #: ``--time`` per job
    gpus: int = 0  #: GPUs per job (``--gres=gpu:N``); 0 for a CPU partition
    n_jobs: int = 1  #: SLURMCluster: number of worker jobs
    array_size: int = 4  #: job array: number of tasks the blocks are split into
    job_extra_directives: list[str] = field(default_factory=list)  #: extra ``#SBATCH`` options
    prologue: list[str] = field(default_factory=list)  #: shell lines run first (module load, venv activation)
    #: network interface of the Dask scheduler and workers (e.g. "ib0"); default: the interface that
    #: carries this host's resolved address ("lo" when the host name resolves to loopback: one node)
    interface: str | None = None
    scheduler_interface: str | None = None  #: the scheduler's interface when it differs from the workers'
    dashboard: bool = False  #: serve the Dask dashboard, on 127.0.0.1:8787 only (ssh -L to view it)
    log_directory: Path | None = None  #: SLURM logs; default ``<output>.logs`` next to the results
    python: str | None = None  #: Python of the workers; default the interpreter that submits
    start_timeout_s: float = 600.0  #: SLURMCluster: how long to wait for the first worker

    def __post_init__(self) -> None:
        for name in ("cores", "processes", "n_jobs", "array_size"):
            at_least(f"[slurm] {name}", getattr(self, name), 1)
        at_least("[slurm] gpus", self.gpus, 0)
        positive("[slurm] start_timeout_s", self.start_timeout_s, "s")


@dataclass(frozen=True)
class Execution:
    """A resolved executor choice.

    Attributes
    ----------
    kind : str
        One of :data:`EXECUTORS`.
    n_workers : int or None
        Workers of a local cluster (None: dask's default, one per core or per GPU).
    address : str or None
        Scheduler address for ``kind == "scheduler"``.
    slurm : SlurmSection
    """

    kind: str
    n_workers: int | None = None
    address: str | None = None
    slurm: SlurmSection = field(default_factory=SlurmSection)

    @property
    def distributed(self) -> bool:
        """Whether blocks run on dask.distributed workers (not in this process)."""
        return self.kind != "threads"


@dataclass(kw_only=True)
class ExecutionKeys:
    """The ``[job]`` keys that choose where a job's blocks run and what failed fraction a finished
    run accepts; both pipelines' ``[job]`` sections inherit them (keyword-only, so they can follow
    the sections' required keys)."""

    #: "threads" | "local-cluster" | "cuda" | "slurm" | "scheduler[:ADDRESS]"
    executor: str = "threads"
    n_workers: int | None = None  #: workers of "local-cluster" / "cuda"; default one per core / GPU
    scheduler_address: str | None = None  #: dask scheduler of executor = "scheduler"
    #: fraction of failed fits (gpuproc.run.summary) above which a finished run is an error
    allow_failed_fraction: float = DEFAULT_ALLOWED_FAILED_FRACTION

    def __post_init__(self) -> None:
        parse_executor(self.executor, n_workers=self.n_workers, scheduler_address=self.scheduler_address)
        if not 0.0 <= self.allow_failed_fraction <= 1.0:
            raise ValueError(f"[job] allow_failed_fraction must lie in [0, 1], got {self.allow_failed_fraction}")


def parse_executor(executor: str, *, n_workers: int | None = None, scheduler_address: str | None = None,
                   slurm: SlurmSection | None = None) -> Execution:
    """An :class:`Execution` from the ``[job]`` keys (or the ``--executor`` CLI option).

    ``executor`` is a kind of :data:`EXECUTORS`; the scheduler's address is given either as
    ``"scheduler:ADDRESS"`` or as ``scheduler_address`` with ``executor = "scheduler"``.

    Raises
    ------
    ValueError
        For an unknown executor, a scheduler without an address (or an address without the
        scheduler), or ``n_workers < 1``.
    """
    kind, _, address = executor.partition(":")
    if kind not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS[:-1])} or 'scheduler:ADDRESS', got {executor!r}")
    if kind != "scheduler" and (address or scheduler_address):
        raise ValueError(f"a scheduler address is only used with executor 'scheduler', got executor {executor!r}")
    address = address or scheduler_address
    if kind == "scheduler" and not address:
        raise ValueError("executor 'scheduler' needs an address: 'scheduler:tcp://host:8786' "
                         "or [job] scheduler_address")
    if n_workers is not None and n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    return Execution(kind, n_workers, address, slurm or SlurmSection())


def execution_of(job: Any) -> Execution:
    """The execution a job asks for: its ``[job] executor, n_workers, scheduler_address`` and
    ``[slurm]`` (any pipeline whose job has those keys)."""
    j = job.job
    return parse_executor(j.executor, n_workers=j.n_workers, scheduler_address=j.scheduler_address,
                          slurm=job.slurm)


def results_config_json(job: Any) -> str:
    """JSON of a job without the keys that cannot change its numbers (:data:`NOT_RESULT_JOB_KEYS`
    and the ``[slurm]`` and ``[figures]`` sections): what a results store records and a resume must match."""
    data = to_dict(job)
    for key in NOT_RESULT_JOB_KEYS:
        data["job"].pop(key, None)
    data.pop("slurm", None)
    data.pop("figures", None)
    return json.dumps(data, sort_keys=True)
