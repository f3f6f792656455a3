"""dask.distributed clients for each executor: LocalCluster, LocalCUDACluster, an existing
scheduler, or dask-jobqueue's SLURMCluster.

Dask runs pickled tasks, so whoever reaches a scheduler runs code as the user. The local clusters
listen on 127.0.0.1 only. The SLURM route listens on one named interface (``[slurm] interface``,
by default the one that carries this host's resolved address; never all interfaces), speaks TLS
with temporary credentials made for the run (``distributed.security.Security.temporary``; the
workers' copy goes to the log directory, readable by the user only, removed at the end), and
serves the dashboard only with ``[slurm] dashboard = true``, on 127.0.0.1. A refused ``sbatch``
ends the run at once with sbatch's message.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import shutil
import socket
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

from gpuproc.run.settings import Execution, SlurmSection

LOCALHOST = "127.0.0.1"  #: where the local clusters and every HTTP endpoint listen


class ClusterStartError(RuntimeError):
    """The SLURM route could not start: no usable interface, a refused sbatch, no worker in time."""


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
                submit_worker_jobs(cluster, execution.slurm.n_jobs)
                _wait_for_a_worker(client, execution.slurm.start_timeout_s, log_directory)
        yield client


def _cluster(execution: Execution, log_directory: Path) -> Any:
    kind = execution.kind
    if kind == "local-cluster":
        from distributed import LocalCluster

        # one thread per worker: the pipelines parallelise inside a block themselves
        return LocalCluster(n_workers=execution.n_workers, threads_per_worker=1, processes=True, host=LOCALHOST,
                            dashboard_address=None)
    if kind == "cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise RuntimeError("executor 'cuda' needs dask-cuda (pip install dask-cuda), which is not "
                               "installed; use 'local-cluster' or 'threads' instead") from None
        return LocalCUDACluster(n_workers=execution.n_workers, threads_per_worker=1, host=LOCALHOST,
                                dashboard_address=None)
    if kind == "slurm":
        return slurm_cluster(execution.slurm, log_directory)
    raise ValueError(f"no cluster for executor {kind!r}")


@contextmanager
def slurm_cluster(s: SlurmSection, log_directory: Path) -> Iterator[Any]:
    """A dask-jobqueue SLURMCluster (no jobs submitted yet: :func:`submit_worker_jobs`) whose
    scheduler listens with TLS on one interface (:func:`default_interface` unless ``[slurm]
    interface`` / ``scheduler_interface``), dashboard on 127.0.0.1 only if ``[slurm] dashboard``.

    The workers' TLS files go to a private folder (mode 0700) in ``log_directory`` (which worker
    jobs can read: shared filesystem), removed when the cluster closes.
    """
    try:
        from dask_jobqueue import SLURMCluster
        from distributed.security import Security
    except ImportError:
        raise ClusterStartError("executor 'slurm' needs dask-jobqueue (pip install 'gpuproc[cluster]')") from None
    try:
        security = Security.temporary()
    except ImportError:
        raise ClusterStartError("executor 'slurm' needs the cryptography package for TLS "
                                "(pip install 'gpuproc[cluster]')") from None
    extra = list(s.job_extra_directives)
    if s.gpus:
        extra.append(f"--gres=gpu:{s.gpus}")
    log_directory.mkdir(parents=True, exist_ok=True)
    interface = s.interface or _configured_interface() or default_interface()
    http = {"dashboard": s.dashboard, "dashboard_address": f"{LOCALHOST}:{8787 if s.dashboard else 0}"}
    options = dict(
        queue=s.partition, account=s.account, cores=s.cores, processes=s.processes, memory=s.memory,
        walltime=s.walltime, job_extra_directives=extra, job_script_prologue=list(s.prologue), interface=interface,
        python=s.python or sys.executable, log_directory=str(log_directory), protocol="tls://",
        scheduler_options={"interface": s.scheduler_interface or interface, **http},
        # the workers' HTTP endpoints (metrics, their dashboard) on their loopback only
        worker_extra_args=["--no-dashboard", "--dashboard-address", f"{LOCALHOST}:0"],
    )
    credentials = Path(tempfile.mkdtemp(prefix=".tls-", dir=log_directory))
    try:
        with SLURMCluster(**options, security=_worker_files(security, credentials)) as cluster:
            yield cluster
    finally:
        shutil.rmtree(credentials, ignore_errors=True)


def _worker_files(security: Any, directory: Path) -> Any:
    """``security`` with the workers' CA, certificate and key written to files (mode 0600) in
    ``directory``, where worker jobs read them (``--tls-ca-file`` ...)."""
    out = copy.copy(security)
    for name in ("tls_ca_file", "tls_worker_cert", "tls_worker_key"):
        path = directory / name
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(getattr(security, name))
        setattr(out, name, str(path))
    return out


def default_interface() -> str:
    """The network interface that carries this host's resolved address (``socket.gethostname()``
    looked up); ``lo`` when that address is a loopback one (a single-node set-up).

    Raises
    ------
    ClusterStartError
        If the name does not resolve or no interface carries its address; the message asks for
        ``[slurm] interface``.
    """
    import psutil

    host = socket.gethostname()
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except OSError as exc:
        raise ClusterStartError(f"executor 'slurm': this host's name {host!r} does not resolve ({exc}); "
                           "set [slurm] interface (e.g. 'ib0')") from None
    interfaces = psutil.net_if_addrs()
    for name, addrs in interfaces.items():
        for a in addrs:
            if a.family != socket.AF_INET:
                continue
            ip = ipaddress.ip_address(a.address)
            if ip == address or (address.is_loopback and ip.is_loopback):
                return name
    raise ClusterStartError(f"executor 'slurm': no network interface carries {address}, the address of {host!r} "
                       f"(interfaces: {sorted(interfaces)}); set [slurm] interface")


def _configured_interface() -> str | None:
    """A facility default from the dask-jobqueue configuration (jobqueue.yaml), if any."""
    import dask

    return dask.config.get("jobqueue.slurm.interface", None)


def submit_worker_jobs(cluster: Any, n_jobs: int) -> None:
    """Submit ``n_jobs`` worker jobs and wait for sbatch's answers.

    ``cluster.scale()`` would submit them in a background task whose failure is only logged
    ("Task exception was never retrieved") while the run waits for workers that never come; here
    the cluster is brought to its new size in the foreground, as SpecCluster does for the workers
    it is created with.

    Raises
    ------
    ClusterStartError
        If sbatch refuses a job (controller down, bad partition or account), with its message.
    """
    from distributed.core import Status

    for _ in range(n_jobs):
        cluster.worker_spec.update(cluster.new_worker_spec())
    try:
        cluster.sync(cluster._correct_state)
    except RuntimeError as exc:
        for job in cluster.workers.values():
            if job.job_id is None:  # never submitted: nothing to cancel when the cluster closes
                job.status = Status.failed
        message = str(exc).split("stderr:", 1)[-1].strip() or str(exc)
        raise ClusterStartError(f"executor 'slurm': submitting a worker job failed: {message}") from None


def _wait_for_a_worker(client: Any, timeout_s: float, log_directory: Path) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError:
        raise ClusterStartError(f"executor 'slurm': no worker connected within [slurm] start_timeout_s = {timeout_s} s "
                           f"(jobs still queued, or failed: see squeue and the logs in {log_directory})") from None
