"""Through a real SLURM (``.ci/slurm-up.sh`` starts one on localhost): a job array and a
dask-jobqueue SLURMCluster give the same results as a local run. Skipped without SLURM."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from run_helpers import assert_same_results, demo_job, job_with_output, variant

from gpuproc.cli import main
from gpuproc.waxs.pipeline import run_waxs


def _slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=5).returncode == 0
    except subprocess.TimeoutExpired:  # a configured but unreachable controller
        return False


pytestmark = [pytest.mark.slurm, pytest.mark.skipif(not _slurm_up(), reason="no SLURM cluster (sinfo)")]
#: small jobs: memory below the node's, one CPU each so two run side by side
RESOURCES = {"cores": 1, "memory": "2GB", "walltime": "00:10:00"}


@pytest.fixture(scope="module")
def job_file(tmp_path_factory) -> Path:
    return demo_job(tmp_path_factory.mktemp("slurm"))


@pytest.fixture(scope="module")
def reference(job_file) -> Path:
    return run_waxs(job_with_output(job_file, job_file.with_name("reference.zarr")))


def _wait_for_jobs(ids: list[str], logs: Path, timeout: float = 240.0) -> None:
    """Poll squeue (no accounting database, so no sacct) until the jobs have left the queue."""
    t0 = time.monotonic()
    while subprocess.run(["squeue", "-h", "-j", ",".join(ids)], capture_output=True, text=True).stdout.strip():
        if time.monotonic() - t0 > timeout:
            subprocess.run(["scancel", *ids])
            pytest.fail(f"SLURM jobs {ids} still queued after {timeout} s; logs in {logs}")
        time.sleep(0.5)


def test_job_array_equals_local_run(job_file, reference):
    job = variant(job_file, "array", slurm={**RESOURCES, "array_size": 2})
    r = CliRunner().invoke(main, ["waxs", "slurm", str(job), "--submit"])
    assert r.exit_code == 0, r.output
    words = r.output.split()
    ids = [words[words.index("job") + 1], words[words.index("finalize") + 2]]
    logs = job.with_name("array.zarr.logs")
    _wait_for_jobs(ids, logs)
    out = sorted(logs.glob("*.out"))
    assert len(out) == 3, out  # two array tasks, one finalize job
    assert_same_results(job.with_name("array.zarr"), reference)


def test_slurm_cluster_equals_local_run(job_file, reference):
    job = job_with_output(job_file, job_file.with_name("slurm_cluster.zarr"), executor="slurm")
    for k, v in {**RESOURCES, "n_jobs": 2, "interface": "lo", "start_timeout_s": 120.0}.items():
        setattr(job.slurm, k, v)
    assert_same_results(run_waxs(job), reference)
