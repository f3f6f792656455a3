"""The summary at the end of a run: counts equal the store's statuses, the return value is still
the results path, and a run with more failed fits than [job] allow_failed_fraction is an error
after its results are written (CLI: exit status 1)."""

from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from run_helpers import job_with_output, variant

from gpuproc.cli import main
from gpuproc.fit import Status
from gpuproc.io.results import open_results
from gpuproc.io.store import open_scan, write_scan
from gpuproc.run.summary import RunResult, TooManyFailedFits, read_summary, summarize
from gpuproc.waxs.pipeline import run_waxs


def expected_counts(status: np.ndarray) -> dict:
    codes, counts = np.unique(status, return_counts=True)
    return {Status(int(c)).name: int(n) for c, n in zip(codes, counts)}


def test_summary_counts_match_fit_status(reference):
    ds = open_results(reference)
    status = ds.fit_status.values
    s = read_summary(reference)
    assert s.fits == status.size and s.converged == int((status == Status.CONVERGED).sum())
    assert s.by_status == expected_counts(status)
    assert s.failed == int((~np.isin(status, [Status.CONVERGED, Status.NO_PEAK])).sum())
    assert s.positions == status.shape[1] * status.shape[2]
    assert s.positions_flagged == int((status != Status.CONVERGED).any(axis=0).sum())
    assert s.wall_s > 0
    assert isinstance(reference, RunResult) and reference.summary == s
    assert ds.attrs["run_summary"]  # also in the results' attributes


def test_run_returns_path_with_summary(job_file, tmp_path):
    out = tmp_path / "again.zarr"
    result = run_waxs(job_with_output(job_file, out))
    assert isinstance(result, Path) and result == out
    assert result.summary == read_summary(out)
    assert result.summary.fits == open_results(out).fit_status.size


def test_pl_status_and_flag_counted(tmp_path):
    """PL stores: one status per spectrum; a dark pixel (no admissible peak) has not failed, a
    spectrum with non-finite counts has; a non-zero flag flags its position."""
    g = zarr.open_group(str(tmp_path / "pl.zarr"), mode="w")
    status = np.array([[0, 0, 2], [3, 0, 4]], np.uint8)
    n_peaks = np.array([[1, 0, 0], [0, 2, 0]], np.int8)
    flag = np.array([[0, 2, 2], [3, 0, 2]], np.uint8)  # (1, 0): non-finite counts
    for name, values in (("status", status), ("n_peaks", n_peaks), ("flag", flag)):
        a = g.create_array(name, shape=values.shape, dtype=values.dtype, dimension_names=("y", "x"))
        a[...] = values
    s = summarize(tmp_path / "pl.zarr", wall_s=1.5)
    assert (s.fits, s.converged, s.failed, s.positions) == (6, 3, 1, 6)
    assert s.by_status == {"CONVERGED": 3, "SINGULAR": 1, "INVALID_INPUT": 1, "OUT_OF_BOUNDS": 1}
    assert s.positions_flagged == 4  # every position with a non-zero flag or a fit not CONVERGED


@pytest.fixture(scope="module")
def dark_job(job_file):
    """The test job on a scan whose monitor is unusable for all but one frame: nearly every fit
    fails (INVALID_INPUT)."""
    scan = open_scan(job_file.with_name("scan.zarr"))
    frames = np.asarray(scan.frames)
    monitor = np.full(frames.shape[0], np.nan)
    monitor[0] = 1.0
    write_scan([frames], job_file.with_name("dark.scan.zarr"), n_frames=frames.shape[0],
               frame_shape=frames.shape[1:], dtype=frames.dtype, scan_shape=tuple(scan.attrs["scan_shape"]),
               step_um=tuple(scan.attrs["step_um"]), monitor=monitor)
    path = variant(job_file, "dark")
    path.write_text(path.read_text().replace('source = "scan.zarr"', 'source = "dark.scan.zarr"'))
    assert "dark.scan.zarr" in path.read_text()
    return path


def test_too_many_failed_fits_raise_after_writing(dark_job):
    with pytest.warns(UserWarning, match="monitor"), pytest.raises(TooManyFailedFits) as err:
        run_waxs(dark_job)
    result = err.value.result
    assert "allow_failed_fraction = 0.5" in str(err.value)
    assert result.summary.failed_fraction > 0.5
    assert open_results(result).fit_status.size == result.summary.fits  # written and complete


def test_allow_failed_fraction_accepts(dark_job):
    text = dark_job.read_text().replace("[job]\n", "[job]\nallow_failed_fraction = 1.0\n", 1)
    allowed = dark_job.with_name("dark_allowed.toml")
    allowed.write_text(text.replace("dark.zarr", "dark_allowed.zarr"))
    with pytest.warns(UserWarning, match="monitor"):
        result = run_waxs(allowed)
    assert result.summary.failed_fraction > 0.5


def test_cli_prints_summary_and_exits_nonzero(dark_job, job_file):
    r = CliRunner().invoke(main, ["waxs", "run", str(dark_job), "--no-progress"])
    assert r.exit_code == 1
    assert "fits:" in r.output and "INVALID_INPUT" in r.output and "allow_failed_fraction" in r.output
    ok = CliRunner().invoke(main, ["waxs", "run", str(job_file), "--no-progress"])
    assert ok.exit_code == 0, ok.output
    assert f"fits: {read_summary(job_file.with_name('results.zarr')).fits} attempted" in ok.output
