"""Helpers of the tests/test_run_*.py and test_pl_run.py files: a small synthetic WAXS job,
result comparison, a SLURM cluster's presence and its jobs' end."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

import numpy as np
import zarr

from gpuproc.io.results import DONE, open_results
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.job import WaxsJob, load_job

SHAPE = (6, 8)  #: scan positions of the test job
BATCH = 8  #: frames per block: one scan row, so 6 blocks
#: [slurm] of the small test jobs: memory below the node's, one CPU each so two run side by side
SLURM_RESOURCES = {"cores": 1, "memory": "2GB", "walltime": "00:10:00"}


def demo_job(directory: Path, **job_overrides) -> Path:
    """A (6, 8) Pilatus100k job with 6 blocks of one row, no figures."""
    path, _ = write_demo_job(directory, SHAPE, "Pilatus100k", seed=5, figures=False,
                             job_overrides={"batch_frames": BATCH, **job_overrides})
    return path


def job_with_output(job_file: Path, output: Path, **job_keys) -> WaxsJob:
    """The job of ``job_file`` writing to ``output``, with ``[job]`` keys replaced."""
    job = load_job(job_file)
    job.job.output = output
    for k, v in job_keys.items():
        setattr(job.job, k, v)
    return job


def done_marks(path: Path) -> np.ndarray:
    """The done marks of a results store (all False while it is being created)."""
    try:
        return np.asarray(zarr.open_group(path, mode="r")[DONE][...])
    except (FileNotFoundError, KeyError, ValueError):
        return np.zeros(0, bool)


def assert_same_results(path: Path, reference: Path, attrs: Iterable[str] = ("statistics",)) -> None:
    """Every data variable of two finished stores is equal bit for bit (NaNs in the same places),
    and so are the group attributes ``attrs``."""
    ds, ref = open_results(path), open_results(reference)
    assert set(ds.data_vars) == set(ref.data_vars)
    for name in ref.data_vars:
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
    for name in attrs:
        assert ds.attrs[name] == ref.attrs[name], name


def variant(job_file: Path, name: str, slurm: dict | None = None, **job_keys) -> Path:
    """A copy of ``job_file`` next to it, writing ``name``.zarr, with ``[job]`` keys replaced
    and a ``[slurm]`` section."""
    import tomllib

    import tomli_w

    data = tomllib.loads(job_file.read_text())
    data["job"].update(output=f"{name}.zarr", **job_keys)
    if slurm:
        data["slurm"] = slurm
    path = job_file.with_name(f"{name}.toml")
    path.write_text(tomli_w.dumps(data))
    return path


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``), where a missing service is a failure, not a skip."""
    return os.environ.get("CI", "").lower() == "true"


@functools.lru_cache(maxsize=1)
def slurm_up() -> bool:
    """Whether a SLURM controller answers ``sinfo``: within 5 s, or (under CI, where
    .ci/slurm-up.sh has started one) within 60 s of retries."""
    if shutil.which("sinfo") is None:
        return False
    deadline = time.monotonic() + (60.0 if in_ci() else 0.0)
    while True:
        try:
            if subprocess.run(["sinfo", "-h"], capture_output=True, timeout=5).returncode == 0:
                return True
        except subprocess.TimeoutExpired:  # a configured but unreachable controller
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(2.0)


def require_slurm() -> None:
    """Skip a ``slurm`` test without a controller; under CI=true fail instead (CI starts one)."""
    if not slurm_up():
        message = "no SLURM controller answers sinfo (.ci/slurm-up.sh starts one)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def wait_for_jobs(ids: list[str], logs: Path, timeout: float = 240.0) -> None:
    """Poll squeue (no accounting database, so no sacct) until the jobs have left the queue."""
    t0 = time.monotonic()
    while subprocess.run(["squeue", "-h", "-j", ",".join(ids)], capture_output=True, text=True).stdout.strip():
        if time.monotonic() - t0 > timeout:
            subprocess.run(["scancel", *ids])
            pytest.fail(f"SLURM jobs {ids} still queued after {timeout} s; logs in {logs}")
        time.sleep(0.5)


def submitted_ids(output: str) -> list[str]:
    """The array and finalize job ids that ``<pipeline> slurm --submit`` printed."""
    words = output.split()
    return [words[words.index("job") + 1], words[words.index("finalize") + 2]]
