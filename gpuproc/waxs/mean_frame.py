"""The scan-averaged detector image: frame - dark per pixel, averaged over the frames in which
the pixel is valid (the frames the mean cake reads), stored in the results with the beam
centre so that the figure (:func:`gpuproc.report.waxs.plot_detector_image`) can be redrawn.

Stored as ``mean_frame`` (dims ``detector_y``, ``detector_x``; units count; NaN where no frame
has a valid pixel: gaps, masked and flagged pixels) with the attribute ``beam_centre_px`` =
[row, column], the direct beam on the detector (pyFAI's FIT2D centre) in pixel coordinates
whose integers are pixel edges (pixel ``i`` spans ``i .. i + 1``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

NAME = "mean_frame"
DIMS = ("detector_y", "detector_x")


class MeanFrame:
    """Running per-pixel mean of frames, each pixel over the frames where it is finite."""

    def __init__(self) -> None:
        self._total: np.ndarray | float = 0.0
        self._count: np.ndarray | int = 0
        self._batch: list[np.ndarray] | None = None  # [sum, count] of the open batch

    def add(self, pixels: Iterable[np.ndarray]) -> None:
        """Add a batch of frames with NaN at invalid pixels (:meth:`CakeIntegrator.pixel_signal`):
        an (n, H, W) array, or (H, W) frames one at a time (a generator: one frame in memory instead
        of the batch's float32 image and its temporaries, 64 MB each for 16 Pilatus 1M frames).

        The batch is summed in float64 frame after frame, then added to the running total (as
        ``np.nansum(batch, axis=0, dtype=np.float64)`` does: the same sums bit for bit)."""
        for frame in pixels:
            self.add_frame(frame)
        self.end_batch()

    def add_frame(self, frame: np.ndarray) -> None:
        """Add one (H, W) frame to the open batch (:meth:`add`, frame by frame)."""
        values = np.where(np.isnan(frame), np.float32(0), frame)
        if self._batch is None:
            self._batch = [values.astype(np.float64), np.isfinite(frame).astype(np.int64)]
        else:
            self._batch[0] += values
            self._batch[1] += np.isfinite(frame)

    def end_batch(self) -> None:
        """Add the open batch's sums to the running total."""
        if self._batch is not None:
            self._total = self._total + self._batch[0]
            self._count = self._count + self._batch[1]
            self._batch = None

    @property
    def mean(self) -> np.ndarray:
        """(H, W) float32 mean, NaN where no frame had a valid pixel."""
        count = np.asarray(self._count)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(count > 0, self._total / np.maximum(count, 1), np.nan).astype(np.float32)


def beam_centre_px(ai: Any) -> list[float]:
    """Direct-beam position [row, column] on the detector, pixels (integers at pixel edges)."""
    fit2d = ai.getFit2D()
    return [float(fit2d.centerY), float(fit2d.centerX)]


def store_mean_frame(store: Any, mean: np.ndarray, beam_centre: list[float], n_frames: int) -> None:
    """Write ``mean`` into the results ``store`` as :data:`NAME` with the beam centre.

    Parameters
    ----------
    store : gpuproc.io.results.ResultStore
    mean : (H, W) array, counts
    beam_centre : [row, column] of the direct beam, pixels (:func:`beam_centre_px`)
    n_frames : number of frames averaged
    """
    store.add_array(NAME, mean, DIMS, "count",
                    f"frame - dark averaged over the valid pixels of {n_frames} frames spread over the scan "
                    "(NaN: masked or invalid in all)")
    store.group[NAME].attrs["beam_centre_px"] = [float(v) for v in beam_centre]
