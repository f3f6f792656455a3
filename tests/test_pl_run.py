"""The PL pipeline on the execution layer (gpuproc.run): local threads vs a dask LocalCluster vs
job-array tasks give bit-identical results, for maps (with a shift map) and time series; an
interrupted run resumes to the same results; SLURM (marker ``slurm``)."""

from pathlib import Path

import numpy as np
import pytest
import tomli_w
from click.testing import CliRunner
from run_helpers import SLURM_RESOURCES, assert_same_results, done_marks, submitted_ids, wait_for_jobs

from gpuproc.cli import main
from gpuproc.pl.ingest import ingest_spectra
from gpuproc.pl.job import PLJob, load_job
from gpuproc.pl.pipeline import PlBlocks, run_pl
from gpuproc.run.settings import results_config_json
from gpuproc.synth.pl import BIAS_COUNTS, DEFAULT_EVENTS, STRAY_COUNTS, pl_map_pair, pl_timeseries

#: statistics a PL run records as group attributes
MAP_ATTRS = ("energy_q1_ev", "energy_median_ev", "energy_q3_ev", "n_sample", "n_nonfinite", "n_no_peak",
             "registration_shift_px", "registration_error")
SERIES_ATTRS = ("energy_median_ev", "n_sample", "n_events", "response_model")


def _job_file(directory: Path, name: str, source: Path, **sections: dict) -> Path:
    """A PL job file ``name``.toml in ``directory`` writing ``name``.zarr."""
    data = {"job": {"output": f"{name}.zarr", "device": "cpu", "batch_rows": 2},
            "input": {"source": str(source)}, "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS}}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path = directory / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def _with_output(job_file: Path, name: str, **job_keys) -> PLJob:
    """The job of ``job_file`` writing ``name``.zarr next to it, with ``[job]`` keys replaced."""
    job = load_job(job_file)
    job.job.output = job_file.with_name(f"{name}.zarr")
    for k, v in job_keys.items():
        setattr(job.job, k, v)
    return job


@pytest.fixture(scope="module")
def map_file(tmp_path_factory) -> Path:
    """An (8, 8) map with a second map of the same crystal: 4 blocks of 2 rows, and a shift map."""
    tmp = tmp_path_factory.mktemp("plrun")
    pair = pl_map_pair((8, 8), 256, seed=3)
    for name, m in (("first", pair.first), ("second", pair.second)):
        np.savez(tmp / f"{name}.npz", data=m.counts, axis=m.wavelength)
    store = ingest_spectra(tmp / "first.npz", tmp / "first.spectra.zarr")
    return _job_file(tmp, "map", store, input={"second": str(tmp / "second.npz")})


@pytest.fixture(scope="module")
def map_reference(map_file) -> Path:
    return run_pl(_with_output(map_file, "reference"), progress=False)


@pytest.fixture(scope="module")
def series_file(tmp_path_factory) -> Path:
    """A 64 s time series with one stimulus event: 4 blocks of 16 time points."""
    tmp = tmp_path_factory.mktemp("plseries")
    ts = pl_timeseries(duration=64.0, n_channels=256, events=DEFAULT_EVENTS[:1], seed=4)
    np.savez(tmp / "series.npz", data=ts.counts, axis=ts.wavelength)
    events = [{"time": e.time, "label": e.label} for e in ts.events]
    return _job_file(tmp, "series", tmp / "series.npz", job={"batch_rows": 16},
                     input={"mode": "timeseries", "events": events},
                     fit={"max_peaks": 2}, timeseries={"response_model": "single"})


def _array_tasks(job: Path, count: int) -> None:
    """``pl prepare``, every task of a ``count``-task array (last first), ``pl finalize``."""
    cli = CliRunner()
    r = cli.invoke(main, ["pl", "prepare", str(job)])
    assert r.exit_code == 0, r.output
    for i in reversed(range(count)):
        r = cli.invoke(main, ["pl", "run", str(job), "--task-index", str(i), "--task-count", str(count),
                              "--no-progress"])
        assert r.exit_code == 0, r.output
    r = cli.invoke(main, ["pl", "finalize", str(job)])
    assert r.exit_code == 0, r.output


def test_map_local_cluster_equals_threads(map_file, map_reference):
    job = _with_output(map_file, "local_cluster", executor="local-cluster", n_workers=2)
    assert_same_results(run_pl(job, progress=False), map_reference, MAP_ATTRS)


def test_map_array_tasks_equal_threads(map_file, map_reference):
    job = map_file.with_name("array.toml")
    job.write_text(map_file.read_text().replace('"map.zarr"', '"array.zarr"'))
    cli = CliRunner()
    assert cli.invoke(main, ["pl", "prepare", str(job)]).exit_code == 0
    r = cli.invoke(main, ["pl", "run", str(job), "--task-index", "0", "--task-count", "2", "--no-progress"])
    assert r.exit_code == 0 and "blocks [0, 1]" in r.output, r.output
    r = cli.invoke(main, ["pl", "finalize", str(job)])
    assert r.exit_code != 0 and "not written" in r.output  # task 1 missing
    _array_tasks(job, 2)  # prepare again: resumes, task 0 has nothing left
    assert_same_results(job.with_name("array.zarr"), map_reference, MAP_ATTRS)


def test_timeseries_threads_cluster_and_array_tasks_agree(series_file):
    reference = run_pl(_with_output(series_file, "reference"), progress=False)
    r = CliRunner().invoke(main, ["pl", "run", str(series_file), "--executor", "local-cluster", "--n-workers", "2",
                                  "--no-progress"])
    assert r.exit_code == 0, r.output
    assert_same_results(series_file.with_name("series.zarr"), reference, SERIES_ATTRS)
    array = series_file.with_name("array.toml")
    array.write_text(series_file.read_text().replace('"series.zarr"', '"array.zarr"'))
    _array_tasks(array, 3)
    assert_same_results(array.with_name("array.zarr"), reference, SERIES_ATTRS)


def test_interrupted_run_resumes_to_identical_results(map_file, map_reference, monkeypatch):
    """A crash in the third block; the rerun computes only what is missing."""
    job = _with_output(map_file, "resumed")
    real, calls = PlBlocks.run_block, []

    def crashing(self: PlBlocks, block: int) -> None:
        if self.output == job.job.output and block == 2:
            raise RuntimeError("simulated crash")
        real(self, block)

    monkeypatch.setattr(PlBlocks, "run_block", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_pl(job, progress=False)
    assert list(done_marks(job.job.output)) == [True, True, False, False]
    monkeypatch.setattr(PlBlocks, "run_block", lambda self, b: (calls.append((self.output.name, b)), real(self, b)))
    assert_same_results(run_pl(job, progress=False), map_reference, MAP_ATTRS)
    assert calls == [("resumed.zarr", 2), ("resumed.zarr", 3)]  # the finished second map is reused


def test_execution_keys_are_not_results_config(map_file):
    a, b = load_job(map_file), load_job(map_file)
    b.job.executor, b.job.n_workers, b.slurm.partition = "local-cluster", 3, "gpu"
    assert results_config_json(a) == results_config_json(b)


def test_slurm_command_prints_pl_scripts(map_file):
    r = CliRunner().invoke(main, ["pl", "slurm", str(map_file), "--array", "3"])
    assert r.exit_code == 0, r.output
    assert "#SBATCH --array=0-2" in r.output and f"pl finalize {map_file.resolve()}" in r.output
    assert f"pl prepare {map_file.resolve()}" in r.output


def test_bad_executor_is_a_usage_error(map_file):
    r = CliRunner().invoke(main, ["pl", "run", str(map_file), "--executor", "mpi"])
    assert r.exit_code == 2 and "executor" in r.output


@pytest.mark.slurm
def test_slurm_array_and_cluster_equal_local_run(map_file, map_reference):
    """A job array (``pl slurm --submit``) and a dask-jobqueue SLURMCluster through a real SLURM."""
    job = map_file.with_name("slurm_array.toml")
    text = map_file.read_text().replace('"map.zarr"', '"slurm_array.zarr"')
    job.write_text(text + "\n" + tomli_w.dumps({"slurm": {**SLURM_RESOURCES, "array_size": 2}}))
    r = CliRunner().invoke(main, ["pl", "slurm", str(job), "--submit"])
    assert r.exit_code == 0, r.output
    logs = job.with_name("slurm_array.zarr.logs")
    wait_for_jobs(submitted_ids(r.output), logs)
    assert len(sorted(logs.glob("*.out"))) == 3  # two array tasks, one finalize job
    assert_same_results(job.with_name("slurm_array.zarr"), map_reference, MAP_ATTRS)

    cluster = _with_output(map_file, "slurm_cluster", executor="slurm")
    for k, v in {**SLURM_RESOURCES, "n_jobs": 2, "interface": "lo", "start_timeout_s": 120.0}.items():
        setattr(cluster.slurm, k, v)
    assert_same_results(run_pl(cluster, progress=False), map_reference, MAP_ATTRS)
