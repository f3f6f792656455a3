"""Faults: a run killed with SIGKILL resumes to identical results, a distributed worker killed
mid-run changes nothing, device out-of-memory splits the batch, memory stays bounded per block."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from run_helpers import assert_same_results, done_marks, job_with_output, variant

from gpuproc.io.results import open_results
from gpuproc.run import oom
from gpuproc.waxs import pipeline
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.pipeline import WaxsBlocks, run_waxs


def _wait_for_done(store: Path, n: int, alive, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while done_marks(store).sum() < n:
        assert alive(), "the run ended before it could be killed"
        assert time.monotonic() - t0 < timeout, "no progress"
        time.sleep(0.02)


def test_sigkilled_run_resumes_to_identical_results(job_file, reference, monkeypatch):
    job = variant(job_file, "killed")
    store = job.with_name("killed.zarr")
    proc = subprocess.Popen([sys.executable, "-m", "gpuproc.cli", "waxs", "run", str(job), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_done(store, random.Random().randint(1, 4), lambda: proc.poll() is None)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = done_marks(store)
    assert 1 <= done.sum() < done.size
    with pytest.raises(ValueError, match="has not finished"):
        open_results(store)
    computed = []
    real = WaxsBlocks.run_block
    monkeypatch.setattr(WaxsBlocks, "run_block", lambda self, b: (computed.append(b), real(self, b)))
    run_waxs(job)
    assert sorted(computed) == sorted(np.flatnonzero(~done).tolist())  # only what was missing
    assert_same_results(store, reference)


def test_worker_killed_mid_run(job_file, reference):
    from distributed import Client, LocalCluster

    store = job_file.with_name("worker_killed.zarr")
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = client.run(os.getpid)
        job = job_with_output(job_file, store, executor=f"scheduler:{cluster.scheduler_address}")
        errors = []
        run = threading.Thread(target=lambda: _capture(errors, run_waxs, job))
        run.start()
        _wait_for_done(store, 1, run.is_alive)
        os.kill(random.choice(list(pids.values())), signal.SIGKILL)
        run.join(timeout=300)
        assert not errors, errors
        assert set(client.run(os.getpid).values()) != set(pids.values())  # the nanny restarted it
    assert_same_results(store, reference)


def _capture(errors: list, f, *args) -> None:
    try:
        f(*args)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


class FakeOutOfMemory(Exception):
    """Stands in for cupy.cuda.memory.OutOfMemoryError."""


def test_out_of_memory_splits_the_batch(job_file, reference, monkeypatch):
    monkeypatch.setattr(oom, "oom_errors", lambda: (FakeOutOfMemory,))
    real = pipeline.process_block
    sizes = []

    def small_device(ctx, frames, frame_range, average=None):
        sizes.append(len(frames))
        if len(frames) > 3:
            raise FakeOutOfMemory("out of memory allocating 1 GB")
        return real(ctx, frames, frame_range, average)

    monkeypatch.setattr(pipeline, "process_block", small_device)
    with pytest.warns(RuntimeWarning, match="out of memory on items 0:8"):
        path = run_waxs(job_with_output(job_file, job_file.with_name("oom.zarr")))
    assert sizes[:5] == [8, 4, 2, 2, 4]  # halves, recursively
    assert_same_results(path, reference)


def test_out_of_memory_on_one_item_is_raised(monkeypatch):
    monkeypatch.setattr(oom, "oom_errors", lambda: (FakeOutOfMemory,))

    def compute(lo, hi):
        raise FakeOutOfMemory

    with pytest.raises(FakeOutOfMemory), pytest.warns(RuntimeWarning):
        oom.split_on_oom(compute, 0, 2, sum)


MEMORY_PROBE = """
import json, resource, sys
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import WaxsBlocks
runner = WaxsBlocks(load_job(sys.argv[1]), True)
blocks = runner.pending()
for b in blocks[:2]:  # warm-up: work buffers, fit caches
    runner.run_block(b)
warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for b in blocks[2:]:
    runner.run_block(b)
print(json.dumps({"warm_kb": warm, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""
CAP_SLACK = 16 * 2**20  #: memory the run may grow by after its first two blocks


def test_memory_is_bounded_by_the_batch_not_the_scan(tmp_path):
    """After two blocks, the rest of a scan ~8x larger than the allowed growth runs within it.

    Large arrays are mmap-allocated (MALLOC_MMAP_THRESHOLD_) so that the peak RSS measures live
    memory rather than what the allocator keeps after frees.
    """
    shape = (24, 16)  # 384 Pilatus100k frames, 24 blocks of 16
    job, _ = write_demo_job(tmp_path, shape, "Pilatus100k", seed=1, figures=False, npt_q=120, npt_azimuth=180,
                            job_overrides={"batch_frames": 16})
    rest_bytes = (shape[0] - 2) * shape[1] * 487 * 195 * 4
    assert rest_bytes > 7 * CAP_SLACK
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_ARENA_MAX": "2"}
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(job)], capture_output=True, text=True, check=True,
                         env=env)
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    growth = (rss["peak_kb"] - rss["warm_kb"]) * 1024
    assert growth < CAP_SLACK, f"RSS grew {growth / 2**20:.0f} MiB over {rest_bytes / 2**20:.0f} MiB of frames"
