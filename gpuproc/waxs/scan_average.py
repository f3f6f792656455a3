"""The scan-averaged cake and detector image: up to :data:`FRAMES` frames evenly spread over the
scan, averaged (the overview that the results store as ``mean_cake`` and ``mean_frame``).

The picked frames are added in their order, in batches of :data:`BATCH` frames (each batch summed
frame after frame, then added to the totals, as NumPy's ``sum(axis=0)`` of the batch and
:class:`gpuproc.waxs.mean_frame.MeanFrame` do), so the averages are the same bit for bit whoever
adds which frames: a run's blocks add the picked frames they hold, with the sums they integrated
already (:meth:`ScanAverage.add_block`), as long as they come in order; the finalize reads and
integrates the rest (:meth:`ScanAverage.finish`: all of them when other processes computed the
blocks, or the run resumed). Reading 32 frames from 32 different store chunks again took most of
a WAXS finalize (about 0.4 s for Pilatus 1M frames on 2 CPUs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gpuproc.backend import to_numpy
from gpuproc.waxs.mean_frame import MeanFrame

FRAMES = 32  #: frames (evenly spread over the scan) averaged into the overview cake
BATCH = 16  #: of them summed at a time (read and integrated at a time at finalize, at most)


def picked_frames(n_frames: int) -> np.ndarray:
    """The frames averaged: up to :data:`FRAMES` indices evenly spread over ``n_frames``."""
    return np.unique(np.linspace(0, n_frames - 1, min(n_frames, FRAMES)).astype(int))


class ScanAverage:
    """Sums of the picked frames' cakes (signal and normalisation) and detector images.

    Parameters
    ----------
    n_frames : int
        Frames of the scan.
    read_step : int
        Frames the finalize reads at a time, at most (``[job] batch_frames``, so that it holds no
        more frames than a block; :data:`BATCH` when more). The sums do not depend on it.
    """

    def __init__(self, n_frames: int, read_step: int) -> None:
        self.picks = picked_frames(n_frames)
        self.read_step = max(1, min(BATCH, int(read_step)))
        self.added = 0  #: picks[:added] are in the sums
        self._signal: np.ndarray | float = 0.0
        self._norm: np.ndarray | float = 0.0
        self._batch: list[np.ndarray] | None = None  # [signal, norm] sums of the open batch
        self.image = MeanFrame()

    def add_block(self, first: int, frames: Any, signal: Any, norm: Any, integrator: Any) -> None:
        """Add the picked frames among ``frames`` (frame indices ``first``, ``first + 1``, ...)
        that come next in order, with their integrated ``signal`` and ``norm`` (n, azimuth, q),
        NumPy or CuPy; the frames' pixels from ``integrator`` (:meth:`CakeIntegrator.pixel_signal`)."""
        stop = first + len(frames)
        while self.added < self.picks.size and first <= self.picks[self.added] < stop:
            j = int(self.picks[self.added]) - first
            self._add(to_numpy(signal[j]), to_numpy(norm[j]), integrator.pixel_signal(frames[j])[0])

    def finish(self, read: Callable[[np.ndarray], Any], integrator: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """The picked frames not added yet, read (``read(indices)``: frames as (n, H, W)) and
        integrated ``read_step`` at a time; returns the mean cake (azimuth, q) float32, NaN in empty
        bins, the mean detector image (H, W) float32 and the number of frames averaged."""
        while self.added < self.picks.size:
            stop = min(self.picks.size, self.added + self.read_step)
            frames = read(self.picks[self.added:stop])
            signal, norm = integrator.integrate_sums(frames)
            for j in range(len(frames)):
                self._add(to_numpy(signal[j]), to_numpy(norm[j]), integrator.pixel_signal(frames[j])[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            cake = np.where(self._norm > 0, self._signal / self._norm, np.nan).astype(np.float32)
        return cake, self.image.mean, int(self.picks.size)

    def _add(self, signal: np.ndarray, norm: np.ndarray, pixels: np.ndarray) -> None:
        """One picked frame: its cake sums and (H, W) pixels (NaN where invalid)."""
        if self._batch is None:
            self._batch = [signal.copy(), norm.copy()]
        else:
            self._batch[0] += signal
            self._batch[1] += norm
        self.image.add_frame(pixels)
        self.added += 1
        if self.added % BATCH == 0 or self.added == self.picks.size:
            self._signal = self._signal + self._batch[0]
            self._norm = self._norm + self._batch[1]
            self._batch = None
            self.image.end_batch()
