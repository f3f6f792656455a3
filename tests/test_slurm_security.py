"""Who can reach a run's Dask scheduler: the SLURM route listens on one interface (never a
wildcard) with TLS, the dashboard only on 127.0.0.1 when asked for; the local cluster on
127.0.0.1; a refused sbatch ends the run at once with its message. Listening addresses are read
from the processes' open sockets (psutil)."""

import gc
import os
import stat
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner
from run_helpers import SLURM_RESOURCES

from gpuproc.cli import main
from gpuproc.run.clusters import default_interface, open_client, slurm_cluster
from gpuproc.run.settings import Execution, SlurmSection

WILDCARDS = {"0.0.0.0", "::"}
SBATCH_ERROR = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"


def listening(process: psutil.Process | None = None) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets a process listens on."""
    conns = (process or psutil.Process()).net_connections(kind="tcp")
    return {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}


def worker_listening(client) -> set[str]:
    """Addresses the workers of ``client`` listen on (a function pickled by value: workers started
    by SLURM cannot import this test module)."""

    def addresses():
        import psutil

        conns = psutil.Process().net_connections(kind="tcp")
        return [c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN]

    return {ip for ips in client.run(addresses).values() for ip in ips}


def interface_addresses(name: str) -> set[str]:
    return {a.address.split("%")[0] for a in psutil.net_if_addrs()[name]}


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    """An ``sbatch`` first on PATH that fails as it does when the controller is down."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sbatch"
    script.write_text(f"#!/bin/sh\necho '{SBATCH_ERROR}' >&2\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_slurm_scheduler_listens_on_one_interface_with_tls(tmp_path):
    before = listening()
    with slurm_cluster(SlurmSection(), tmp_path / "logs") as cluster:
        new = listening() - before
        address = cluster.scheduler.address
    assert address.startswith("tls://")
    assert new, "the scheduler listens somewhere"
    assert not {ip for ip, _ in new} & WILDCARDS
    # everything but the scheduler's own port (HTTP routes without the dashboard) is on loopback
    port = int(address.rsplit(":", 1)[1])
    assert {ip for ip, p in new if p == port} <= interface_addresses(default_interface())
    assert {ip for ip, p in new if p != port} <= {"127.0.0.1"}


def test_dashboard_only_on_localhost_when_asked(tmp_path):
    before = listening()
    with slurm_cluster(SlurmSection(dashboard=True, interface="lo"), tmp_path / "logs") as cluster:
        new = listening() - before
        link = cluster.dashboard_link
    assert link.startswith("http://127.0.0.1:")  # port 8787 unless another cluster on this host has it
    assert {ip for ip, _ in new} <= {"127.0.0.1"}


def test_worker_credentials_private_and_removed(tmp_path):
    logs = tmp_path / "logs"
    with slurm_cluster(SlurmSection(interface="lo"), logs) as cluster:
        files = list(logs.glob(".tls-*/*"))
        assert files, "the workers' TLS files are written where the worker jobs can read them"
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        assert all(stat.S_IMODE(f.parent.stat().st_mode) == 0o700 for f in files)
        assert "--tls-key" in cluster.job_script()
    assert not list(logs.glob(".tls-*"))


def test_local_cluster_on_localhost(tmp_path):
    before = listening()
    with open_client(Execution("local-cluster", n_workers=1), tmp_path) as client:
        new = listening() - before
        workers = worker_listening(client)
    assert new and {ip for ip, _ in new} <= {"127.0.0.1"}
    assert workers and workers <= {"127.0.0.1"}


@pytest.mark.timeout(60)
def test_refused_sbatch_fails_at_once(tmp_path, fake_sbatch, caplog):
    execution = Execution("slurm", slurm=SlurmSection(interface="lo"))  # start_timeout_s: the default 600 s
    with pytest.raises(RuntimeError, match="Unable to contact slurm controller"):
        with open_client(execution, tmp_path / "logs"):
            pass
    gc.collect()  # an unretrieved task exception is logged when the task is collected
    assert "never retrieved" not in caplog.text


@pytest.mark.timeout(120)
def test_cli_run_with_refused_sbatch_exits_nonzero(job_file, tmp_path, fake_sbatch):
    from run_helpers import variant

    job = variant(job_file, "refused", slurm={"interface": "lo"}, executor="slurm")
    r = CliRunner().invoke(main, ["waxs", "run", str(job), "--no-progress"])
    assert r.exit_code == 1
    assert "Unable to contact slurm controller" in r.output


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_slurm_workers_over_tls_with_default_interface(tmp_path):
    """Through the real SLURM: a worker job joins over TLS; neither the client process nor the
    worker listens on a wildcard address."""
    execution = Execution("slurm", slurm=SlurmSection(**SLURM_RESOURCES, start_timeout_s=240.0))
    before = listening()
    with open_client(execution, tmp_path / "logs") as client:
        new = listening() - before
        assert client.submit(sum, [1, 2, 3]).result() == 6
        workers = worker_listening(client)
        worker_addresses = list(client.scheduler_info()["workers"])
    assert worker_addresses and all(a.startswith("tls://") for a in worker_addresses)
    assert new and not {ip for ip, _ in new} & WILDCARDS
    assert workers and not workers & WILDCARDS
    assert not list(Path(tmp_path / "logs").glob(".tls-*"))
