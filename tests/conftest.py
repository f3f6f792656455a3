"""Shared fixtures and the ``gpu`` marker: GPU tests skip where CuPy is missing or sees no device,
and fail where it is installed but broken;
``realdata`` gives the folder of real sample files (skip without it, fail under CI=true)."""

import pytest
from realdata import realdata_path


@pytest.fixture(scope="session", autouse=True)
def _matrix_cache(tmp_path_factory):
    """Integration matrices cached in the session's temporary folder, not the user's cache
    (gpuproc.waxs.matrix_cache); worker processes the tests start inherit it."""
    import os

    os.environ.setdefault("GPUPROC_CACHE_DIR", str(tmp_path_factory.mktemp("gpuproc-cache")))


def pytest_runtest_setup(item):
    """Before their fixtures: ``gpu`` tests skipped without CuPy or a device and failed with a
    broken CuPy (gpu_env.require_gpu); ``slurm`` tests skipped without a controller, failed under
    CI=true (run_helpers.require_slurm)."""
    if item.get_closest_marker("gpu") is not None:
        from gpu_env import require_gpu

        require_gpu()
    if item.get_closest_marker("slurm") is not None:
        from run_helpers import require_slurm

        require_slurm()


@pytest.fixture(scope="module")
def job_file(tmp_path_factory):
    """A small synthetic WAXS job (tests of the execution layer), one per test module."""
    from run_helpers import demo_job

    return demo_job(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def reference(job_file):
    """The job run locally with threads: what every other route must reproduce bit for bit."""
    from run_helpers import job_with_output

    from gpuproc.waxs.pipeline import run_waxs

    return run_waxs(job_with_output(job_file, job_file.with_name("reference.zarr")))


@pytest.fixture
def realdata():
    """``realdata("waxs", "bitshuffle.h5")``: a real sample file's path (see tests/realdata.py)."""
    return realdata_path
