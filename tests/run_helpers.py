"""Helpers of the tests/test_run_*.py files: a small synthetic WAXS job and result comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from gpuproc.io.results import open_results
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.job import WaxsJob, load_job

SHAPE = (6, 8)  #: scan positions of the test job
BATCH = 8  #: frames per block: one scan row, so 6 blocks


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
        return np.asarray(zarr.open_group(path, mode="r")["done"][...])
    except (FileNotFoundError, KeyError, ValueError):
        return np.zeros(0, bool)


def assert_same_results(path: Path, reference: Path) -> None:
    """Every data variable of two finished stores is equal bit for bit (NaNs in the same places)."""
    ds, ref = open_results(path), open_results(reference)
    assert set(ds.data_vars) == set(ref.data_vars)
    for name in ref.data_vars:
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
    assert ds.attrs["statistics"] == ref.attrs["statistics"]


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
