"""What bounds a run's memory (issue 16: peak memory set by ``batch_frames``, whatever the scan
size): the frames a WAXS run holds at once are at most the blocks the prefetch queue allows
(the one computing and ``DEFAULT_DEPTH`` read ahead) of ``batch_frames`` frames each, sub-row
blocks included, and finalize's mean cake reads no more than a block at a time; the command
line caps glibc's malloc arenas (benchmarks/bench_memory.py measures the peak itself)."""

import threading
import weakref

import pytest
from run_helpers import demo_job

from gpuproc.io.store import Scan
from gpuproc.run import heap, prefetch
from gpuproc.waxs.pipeline import run_waxs


class FramesAlive:
    """Frames read from scans and still referenced: the current count and the largest."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.reads: list[int] = []
        self._lock = threading.Lock()

    def track(self, frames):
        n = 1 if frames.ndim == 2 else len(frames)
        with self._lock:
            self.now += n
            self.most = max(self.most, self.now)
            self.reads.append(n)
        weakref.finalize(frames, self._freed, n)
        return frames

    def _freed(self, n: int) -> None:
        with self._lock:
            self.now -= n


@pytest.fixture
def alive(monkeypatch):
    counter = FramesAlive()
    read = Scan.read
    monkeypatch.setattr(Scan, "read", lambda self, index: counter.track(read(self, index)))
    return counter


@pytest.mark.parametrize("batch", [8, 3])  # a scan row (8 positions), and thirds of a row (sub-row blocks)
def test_frames_held_bounded_by_the_queue_and_batch(alive, tmp_path, batch):
    run_waxs(demo_job(tmp_path, batch_frames=batch))
    bound = (prefetch.DEFAULT_DEPTH + 1) * batch
    assert max(alive.reads) <= batch  # no read of more than a block (probe frames, blocks, mean cake)
    assert sum(alive.reads) >= 3 + 48  # the probe frames and every frame of the 6 x 8 scan
    assert alive.most <= bound
    assert alive.most > batch  # the queue held a block ahead (the bound is what limits it)
    assert alive.now == 0


def test_limit_arenas(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert heap.limit_arenas(heap.ARENAS) is True  # glibc (Linux)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert heap.limit_arenas() is False  # the user's setting stands
