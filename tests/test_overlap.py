"""Overlapped I/O (gpuproc.run.prefetch): reading the next block and writing the previous one while
a block computes changes no result, keeps memory to two blocks' inputs, and a reader's error ends
the run as one line naming the source and the frames."""

import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner
from run_helpers import assert_same_results, done_marks, job_with_output, variant

from gpuproc.cli import main
from gpuproc.io.store import open_scan, write_scan
from gpuproc.run.prefetch import Pipeline
from gpuproc.run.timings import Stopwatch
from gpuproc.waxs.pipeline import WaxsBlocks


def test_overlapped_run_equals_sequential(job_file, reference):
    """``reference`` (run_waxs) overlaps its I/O; here each block reads, computes, writes in turn."""
    runner = WaxsBlocks(job_with_output(job_file, job_file.with_name("sequential.zarr")), create=True)
    for b in runner.pending():
        runner.run_block(b)
    runner.finalize()
    assert_same_results(runner.output, reference)


def test_pipeline_reads_ahead_by_depth_and_writes_in_order():
    events, lock = [], threading.Lock()

    def note(*e):
        with lock:
            events.append(e)

    def read(b):
        note("read", b)
        return b * 10

    def write(b, values):
        time.sleep(0.01)
        note("write", b, values)

    pipe = Pipeline(range(5), read, write, lambda b, w: note("record", b))
    for b in range(5):
        data = pipe.take(b, Stopwatch())
        with lock:  # never more than one block read ahead of the one taken
            assert sum(1 for e in events if e[0] == "read") <= b + 2
        pipe.write(b, data + 1, Stopwatch())
    pipe.close()
    assert [e[1:] for e in events if e[0] == "write"] == [(b, b * 10 + 1) for b in range(5)]
    assert [e[1] for e in events if e[0] == "record"] == list(range(5))


def test_reader_error_is_raised_where_the_block_is_taken_and_writes_finish():
    written = []

    def read(b):
        if b == 2:
            raise OSError("cannot read frames 16 to 23")
        return b

    pipe = Pipeline([0, 1, 2, 3], read, lambda b, v: (time.sleep(0.05), written.append(b)), lambda b, w: None)
    pipe.write(0, pipe.take(0, Stopwatch()), Stopwatch())
    pipe.write(1, pipe.take(1, Stopwatch()), Stopwatch())
    with pytest.raises(OSError, match="frames 16 to 23"):
        pipe.take(2, Stopwatch())
    pipe.close(raise_errors=False)
    assert written == [0, 1]  # the write in flight was finished


def test_corrupt_chunk_is_one_error_line_naming_the_frames(job_file, tmp_path):
    source = open_scan(job_file.with_name("scan.zarr"))
    frames = np.asarray(source.frames)
    store = write_scan([frames], tmp_path / "scan4.zarr", n_frames=len(frames), frame_shape=frames.shape[1:],
                       dtype=frames.dtype, scan_shape=tuple(source.attrs["scan_shape"]), chunk_frames=4,
                       step_um=tuple(source.attrs["step_um"]))
    chunk = store / "frames" / "c" / "3" / "0" / "0"  # zarr v3's default chunk key
    chunk.write_bytes(b"\x00garbage" * 64)  # frames 12-15: block 1, read while block 0 computes
    path = variant(job_file, "corrupt")
    text = path.read_text().replace('source = "scan.zarr"', f'source = "{store}"')
    path.write_text(text)
    result = CliRunner().invoke(main, ["waxs", "run", str(path), "--no-progress"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot read frames 8 to 15" in errors[0] and str(store) in errors[0], result.output
    assert list(done_marks(path.with_name("corrupt.zarr"))[:2]) == [True, False]
