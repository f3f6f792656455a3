"""Blocks smaller than a scan row (``[job] batch_frames`` below a row): results equal those of
whole-row blocks bit for bit, in row and snake scans, and an interrupted run resumes correctly."""

import numpy as np
import pytest
import zarr
from run_helpers import SHAPE, assert_same_results, done_marks, job_with_output

from gpuproc.io.results import open_results
from gpuproc.io.store import open_scan, scan_index, write_scan
from gpuproc.waxs import pipeline
from gpuproc.waxs.pipeline import WaxsBlocks, block_shape, run_waxs


@pytest.mark.parametrize(("batch", "nx", "expected"), [
    (8, 8, {"block_size": 1}), (20, 8, {"block_size": 2}), (3, 8, {"block_size": 1, "sub_dim": "x", "sub_size": 3}),
    (7, 8, {"block_size": 1, "sub_dim": "x", "sub_size": 4}), (1, 8, {"block_size": 1, "sub_dim": "x", "sub_size": 1}),
])
def test_block_shape(batch, nx, expected):
    assert block_shape(batch, nx) == expected
    assert expected.get("sub_size", nx * expected["block_size"]) <= max(batch, nx)


def test_sub_row_blocks_equal_row_blocks(job_file, reference):
    job = job_with_output(job_file, job_file.with_name("subrow.zarr"), batch_frames=3)
    runner = WaxsBlocks(job, create=True)
    assert runner.n_blocks == SHAPE[0] * 3
    for b in range(runner.n_blocks):  # never more frames than batch_frames in a block
        grid, _, frames = runner.read_block(b)
        assert len(frames) == grid.size <= 3
    assert_same_results(run_waxs(job), reference)


def test_snake_scan_with_sub_row_blocks(job_file, reference, tmp_path):
    """The same frames recorded in snake order: every position gets the same results."""
    source = open_scan(job_file.with_name("scan.zarr"))
    row_frames = np.asarray(source.frames)
    snake = scan_index(SHAPE, "snake")  # the frame recorded at each position
    frames = np.empty_like(row_frames)
    frames[snake.ravel()] = row_frames  # position (y, x) holds the row scan's frame y * nx + x
    write_scan([frames], tmp_path / "snake.zarr", n_frames=len(frames), frame_shape=frames.shape[1:],
               dtype=frames.dtype, scan_shape=SHAPE, scan_order="snake", step_um=tuple(source.attrs["step_um"]))
    job = job_with_output(job_file, tmp_path / "snake_results.zarr", batch_frames=3)
    job.input.source = str(tmp_path / "snake.zarr")
    ds, ref = open_results(run_waxs(job)), open_results(reference)
    for name in ref.data_vars:
        if "cake" in ref[name].dims[0] or name.startswith("mean_"):
            continue  # the overview averages pick frames by their index in the scan
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)


def test_interrupted_sub_row_run_resumes(job_file, reference, monkeypatch):
    job = job_with_output(job_file, job_file.with_name("subrow_resumed.zarr"), batch_frames=3)
    real, calls = pipeline.WaxsBlocks.compute_block, []

    def crashing(self, block, data):
        if block == 7:  # the middle part of the third row
            raise RuntimeError("simulated crash")
        return real(self, block, data)

    monkeypatch.setattr(pipeline.WaxsBlocks, "compute_block", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_waxs(job)
    assert list(np.flatnonzero(~done_marks(job.job.output))) == list(range(7, 18))
    monkeypatch.setattr(pipeline.WaxsBlocks, "compute_block",
                        lambda self, b, d: (calls.append(b), real(self, b, d))[1])
    assert_same_results(run_waxs(job), reference)
    assert calls == list(range(7, 18))
    assert zarr.open_group(job.job.output, mode="r").attrs["timings"]["blocks"] == 11


def test_resume_refused_when_blocks_differ(job_file):
    """A store cut into other blocks (written by an older gpuproc with the same job) is not resumed."""
    job = job_with_output(job_file, job_file.with_name("recut.zarr"), batch_frames=3)
    runner = WaxsBlocks(job, create=True)
    group = runner.results.group
    del group["run/done"]
    group.create_array("run/done", shape=(SHAPE[0],), chunks=(1,), dtype=bool, fill_value=False)
    with pytest.raises(ValueError, match="written in 6 blocks"):
        WaxsBlocks(job, create=True)
