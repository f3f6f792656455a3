"""Run and ingest ownership (issue 9): a second run or ingest on the same output, started from
another process, is refused naming the holder; stale locks are taken over with a warning; the
tasks of a SLURM job array share the lock that ``prepare`` took until ``finalize``."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from run_helpers import job_with_output, variant

from gpuproc.io.results import open_results
from gpuproc.io.store import open_scan, write_scan
from gpuproc.run import lock
from gpuproc.run.executor import finalize_run, prepare, run_task
from gpuproc.waxs.pipeline import run_spec, run_waxs

#: runs a WAXS job whose blocks wait until the file argv[2] exists
SLOW_RUN = """
import sys, time
from pathlib import Path
from gpuproc.waxs import pipeline
go, real = Path(sys.argv[2]), pipeline.WaxsBlocks.run_block
def run_block(self, b):
    while not go.exists():
        time.sleep(0.05)
    real(self, b)
pipeline.WaxsBlocks.run_block = run_block
pipeline.run_waxs(sys.argv[1])
"""

#: ingests a 2 x 2 scan into argv[1] whose frames arrive once the file argv[2] exists
SLOW_INGEST = """
import sys, time
from pathlib import Path
import numpy as np
from gpuproc.io.store import write_scan
go = Path(sys.argv[2])
def blocks():
    while not go.exists():
        time.sleep(0.05)
    yield np.ones((4, 6, 5), np.uint16)
write_scan(blocks(), sys.argv[1], n_frames=4, frame_shape=(6, 5), dtype=np.uint16, scan_shape=(2, 2))
"""


def _start(script: str, *args: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, pattern: str | None = None, timeout: float = 120.0) -> None:
    """Wait until ``path`` exists (with ``pattern``: until something in the folder ``path`` matches it)."""
    t0 = time.monotonic()
    while not (any(path.glob(pattern)) if pattern else path.exists()):
        if proc.poll() is not None:
            pytest.fail(f"the first process ended early: {proc.communicate()[1][-2000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"{path} {pattern or ''} did not appear within {timeout} s")
        time.sleep(0.05)


def _finish(proc: subprocess.Popen, go: Path) -> None:
    go.touch()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]


def test_a_second_run_on_the_same_output_is_refused(job_file, tmp_path):
    job = variant(job_file, "concurrent")
    out, go = job.with_name("concurrent.zarr"), tmp_path / "go"
    first = _start(SLOW_RUN, job, go)
    try:
        _wait_for(out / "run" / "done" / "zarr.json", first)  # the first run holds the lock and has created its store
        holder = json.loads(lock.lock_path(out).read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        for keys in ({}, {"resume": False, "overwrite": True}):  # the same job, and one that would wipe it
            with pytest.raises(lock.OutputLocked, match=rf"in use by gpuproc pid {first.pid} on "):
                run_waxs(job_with_output(job, out, **keys))
        assert (out / "zarr.json").is_file()
    finally:
        _finish(first, go)
    assert open_results(out).attrs["complete"]
    assert not lock.lock_path(out).exists()


def test_two_concurrent_ingests_never_share_a_staging_folder(tmp_path):
    store, go = tmp_path / "scan.zarr", tmp_path / "go"
    first = _start(SLOW_INGEST, store, go)
    try:
        _wait_for(lock.lock_path(store), first)
        _wait_for(tmp_path, first, "scan.zarr.*.partial")  # the lock comes first, then the folder
        staging, = tmp_path.glob("scan.zarr.*.partial")
        assert f"-{first.pid}-" in staging.name
        with pytest.raises(lock.OutputLocked, match=rf"scan.zarr: in use by gpuproc pid {first.pid}"):
            write_scan([np.zeros((4, 6, 5), np.uint16)], store, n_frames=4, frame_shape=(6, 5), dtype=np.uint16,
                       scan_shape=(2, 2), overwrite=True)
        assert staging.is_dir()
    finally:
        _finish(first, go)
    assert int(np.asarray(open_scan(store).frames).sum()) == 4 * 6 * 5
    assert not list(tmp_path.glob("*.partial")) and not lock.lock_path(store).exists()


def test_a_failed_ingest_leaves_nothing_that_blocks_the_next(tmp_path):
    store = tmp_path / "scan.zarr"

    def broken():
        yield np.ones((2, 6, 5), np.uint16)
        raise OSError("disk full")

    def ingest(blocks):
        return write_scan(blocks, store, n_frames=4, frame_shape=(6, 5), dtype=np.uint16, scan_shape=(2, 2))

    with pytest.raises(OSError, match="disk full"):
        ingest(broken())
    assert not list(tmp_path.glob("scan.zarr*"))  # the failed attempt removed its staging folder and lock
    ingest([np.ones((4, 6, 5), np.uint16)])
    assert open_scan(store).frames.shape == (4, 6, 5)
    assert not list(tmp_path.glob("*.partial"))


def _fake_lock(output: Path, *, pid: int, host: str, age_s: float = 0.0, route: str = "process") -> None:
    path = lock.lock_path(output)
    path.write_text(json.dumps({"pid": pid, "host": host, "started": "2026-01-01T00:00:00Z", "job_hash": "abc",
                                "route": route, "token": "t0"}))
    then = time.time() - age_s
    os.utime(path, (then, then))


def test_stale_locks_are_taken_over_with_a_warning(tmp_path):
    out = tmp_path / "results.zarr"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    cases = [  # (holder, taken over?, message)
        ({"pid": gone.pid, "host": socket.gethostname()}, True, "its process is gone"),
        ({"pid": 1, "host": "elsewhere"}, False, "pid 1 on elsewhere"),
        ({"pid": 1, "host": "elsewhere", "age_s": lock.STALE_AFTER_S + 60}, True, "not refreshed for"),
        ({"pid": gone.pid, "host": socket.gethostname(), "route": "array"}, False, "a SLURM job-array run"),
        ({"pid": 1, "host": "elsewhere", "route": "array", "age_s": lock.ARRAY_STALE_AFTER_S + 60}, True,
         "not refreshed for"),
    ]
    for holder, taken, message in cases:
        _fake_lock(out, **holder)
        if taken:
            with pytest.warns(UserWarning, match=message):
                mine = lock.acquire(out, "def")
            assert json.loads(lock.lock_path(out).read_text())["token"] == mine.token
            lock.release(out, mine)
            assert not lock.lock_path(out).exists()
        else:
            with pytest.raises(lock.OutputLocked, match=message):
                lock.acquire(out, "def")
            assert json.loads(lock.lock_path(out).read_text())["token"] == "t0"


def test_job_array_tasks_share_the_lock_prepare_took(job_file):
    job = job_with_output(job_file, job_file.with_name("array_lock.zarr"))
    spec = run_spec(job)
    assert len(prepare(spec)) == 6
    held = json.loads(lock.lock_path(job.job.output).read_text())
    assert held["route"] == "array"
    other = job_with_output(job_file, job.job.output, resume=False, overwrite=True)
    with pytest.raises(lock.OutputLocked, match="a SLURM job-array run prepared by"):
        run_waxs(other)  # would wipe the store under the array's tasks
    assert run_task(spec, 0, 2) == [0, 1, 2]  # the array's tasks attach
    assert len(prepare(spec)) == 3  # a re-prepare of the same job resumes
    assert run_task(spec, 1, 2) == [3, 4, 5]
    finalize_run(spec)
    assert not lock.lock_path(job.job.output).exists()
    assert open_results(job.job.output).attrs["complete"]
