"""Fit windows: which cake bins belong to each reflection, as flat (q, azimuth) point lists.

A window is a rectangle in (q, azimuth). The azimuth range may cross the 180/-180 (or 0/360)
seam of the cake: bins are selected on the circle, and the coordinates handed to the fit are
continuous across the window (``lo + w(chi - lo)``), which the wrapped polar model accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuproc.waxs.job import ReflectionSpec


@dataclass
class Window:
    """Cake bins of one reflection."""

    name: str
    azimuth_index: np.ndarray  #: (n_az,) rows of the cake
    q_index: np.ndarray  #: (n_q,) columns of the cake
    q: np.ndarray  #: (n_az * n_q,) float32 q of each point, A^-1 or nm^-1
    phi: np.ndarray  #: (n_az * n_q,) float32 azimuth of each point, degrees

    @property
    def n_points(self) -> int:
        return self.q.size

    def take(self, cakes: np.ndarray) -> np.ndarray:
        """(n_frames, n_points) window values from cakes (n_frames, n_azimuth, n_q)."""
        xp_take = cakes[:, self.azimuth_index][:, :, self.q_index]
        return xp_take.reshape(cakes.shape[0], -1)


def make_window(spec: ReflectionSpec, q: np.ndarray, azimuth: np.ndarray, count: np.ndarray | None = None) -> Window:
    """Select the bins of ``spec`` in a cake with bin centres ``q`` and ``azimuth`` (degrees).

    ``count`` (n_azimuth, n_q), the pixels per bin left by the static mask, rejects a window that
    the mask (detector gaps, user mask) covers entirely.
    """
    lo_q, hi_q = spec.q_range
    q_index = np.nonzero((q >= lo_q) & (q <= hi_q))[0]
    if q_index.size < 3:
        raise ValueError(f"reflection {spec.name!r}: q window {spec.q_range} holds {q_index.size} bins of the cake "
                         f"(cake q range {q.min():.4g} to {q.max():.4g}); widen the window or the cake")
    lo, hi = spec.azimuth_range
    offset = np.mod(azimuth - lo, 360.0)
    az_index = np.nonzero(offset <= hi - lo)[0]
    if az_index.size < 3:
        raise ValueError(f"reflection {spec.name!r}: azimuth window {spec.azimuth_range} holds {az_index.size} "
                         "bins of the cake")
    if count is not None and not np.any(count[np.ix_(az_index, q_index)] > 0):
        raise ValueError(f"reflection {spec.name!r}: every pixel of its window (q {spec.q_range}, azimuth "
                         f"{spec.azimuth_range} deg) is masked (detector gaps or user mask)")
    phi = lo + offset[az_index]
    qq, pp = np.meshgrid(q[q_index], phi, indexing="xy")
    return Window(spec.name, az_index, q_index, qq.ravel().astype(np.float32), pp.ravel().astype(np.float32))
