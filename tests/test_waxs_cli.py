"""``gpuproc waxs ...`` from the command line: one clean ``Error:`` line for user errors (tracebacks
with ``--debug``), ``--overwrite`` in the messages, a synth job that runs on every offered detector
and records the step it used."""

from __future__ import annotations

import numpy as np
import pytest
import tomli_w
import tomllib
from click.testing import CliRunner

from gpuproc.cli import main
from gpuproc.io.results import open_results
from gpuproc.io.store import ingest_frames
from gpuproc.synth import SYNTH_DETECTORS
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import run_waxs


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_error_line(result, *words: str) -> None:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_ingest_bad_path_is_one_error_line(tmp_path):
    missing = tmp_path / "nope.h5"
    result = invoke("waxs", "ingest", missing, "-o", tmp_path / "s.zarr", "--scan-shape", 1, 1)
    assert_one_error_line(result, str(missing))
    result = invoke("waxs", "ingest", f"{missing}::/entry/data/data", "-o", tmp_path / "s.zarr", "--scan-shape", 1, 1)
    assert_one_error_line(result, str(missing))
    debug = invoke("--debug", "waxs", "ingest", missing, "-o", tmp_path / "s.zarr", "--scan-shape", 1, 1)
    assert isinstance(debug.exception, FileNotFoundError)  # re-raised: click's runner keeps it with its traceback


def test_ingest_into_existing_store_says_overwrite_option(tmp_path):
    (tmp_path / "s.zarr").mkdir()
    frames = tmp_path / "f.npy"
    result = invoke("waxs", "ingest", frames, "-o", tmp_path / "s.zarr", "--scan-shape", 1, 1)
    assert_one_error_line(result, "--overwrite", "s.zarr")
    assert "overwrite=True" not in result.output


@pytest.mark.realdata
def test_ingest_eiger_master_without_data_files_names_the_file(realdata, tmp_path):
    master = realdata("waxs", "dectris_eiger_master.h5")
    result = invoke("waxs", "ingest", master, "-o", tmp_path / "s.zarr", "--scan-shape", 1, 1)
    assert_one_error_line(result, "dectris_eiger_data_000001.h5", "does not exist")


def test_run_with_a_bad_job_key_is_one_error_line(tmp_path):
    job, _ = write_demo_job(tmp_path, (1, 2), figures=False)
    data = tomllib.loads(job.read_text())
    data["input"]["scan_shape"] = [2, 1]  # contradicts the store's (1, 2)
    job.write_text(tomli_w.dumps(data))
    assert_one_error_line(invoke("waxs", "run", job, "--no-progress"), "[input] scan_shape", "[1, 2]")


@pytest.mark.parametrize("pipeline", ["waxs", "pl"])
def test_run_with_a_missing_job_file_is_one_error_line(tmp_path, pipeline):
    missing = tmp_path / "job.toml"
    result = invoke(pipeline, "run", missing)
    assert_one_error_line(result, "JOB_FILE", str(missing), "does not exist")
    assert result.exit_code == 2  # click's code for usage errors
    assert "Usage:" not in invoke(pipeline, "run", missing).output
    assert "Usage:" in invoke(pipeline, "run", "--no-such-option").output  # a wrong option keeps its usage help


@pytest.mark.parametrize("detector", SYNTH_DETECTORS)
def test_synth_job_runs_for_every_detector(tmp_path, detector):
    result = invoke("waxs", "synth", tmp_path, "--detector", detector, "--shape", 1, 2)
    assert result.exit_code == 0, result.output
    job = load_job(tmp_path / "job.toml")
    job.job.figures, job.job.device = None, "cpu"
    ds = open_results(run_waxs(job))
    q_lo, q_hi = job.integration.q_range
    assert all(q_lo < r.q_range[0] and r.q_range[1] < q_hi for r in job.reflections)
    assert np.isfinite(ds["q0"].values).mean() > 0.9, detector
    assert ds.attrs["config"]["input"]["step_um"] == [0.3, 0.3]  # the store's, not a default


def test_recorded_configuration_is_the_stores_step_and_shape(tmp_path):
    """A job naming no step on a store ingested with 0.5 um records (and uses) 0.5 um."""
    job_file, scan = write_demo_job(tmp_path, (2, 2), figures=False, npt_q=120, npt_azimuth=90)
    scan.write_hdf5(tmp_path / "scan.h5")
    ingest_frames(f"{tmp_path / 'scan.h5'}::/entry/data/data", tmp_path / "half.zarr", scan_shape=(2, 2),
                  scan_order="snake", step_um=(0.5, 0.5))
    job = load_job(job_file)
    job.input.source, job.job.output, job.job.device = str(tmp_path / "half.zarr"), tmp_path / "r.zarr", "cpu"
    ds = open_results(run_waxs(job))
    assert ds.attrs["config"]["input"] == {"source": str(tmp_path / "half.zarr"), "scan_shape": [2, 2],
                                           "scan_order": "snake", "step_um": [0.5, 0.5]}
    np.testing.assert_allclose(ds["x"].values, [0.0, 0.5])
    job.input.step_um, job.job.output = (0.25, 0.25), tmp_path / "r2.zarr"  # a job's own step wins
    np.testing.assert_allclose(open_results(run_waxs(job))["y"].values, [0.0, 0.25])
