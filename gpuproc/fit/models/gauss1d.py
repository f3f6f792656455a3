"""``gauss1d``: a sum of N Gaussians (N = 1..4) plus a constant or linear background.

f(x) = sum_k A_k exp(-(x - mu_k)^2 / (2 sigma_k^2)) + c0 + c1 x

x is any 1D coordinate, uniform or not, in any order (e.g. photon energy in eV). sigma is the
standard deviation; FWHM = 2 sqrt(2 ln 2) sigma. Device function: kernels/models/gauss1d.cuh.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from gpuproc.fit.models.base import (
    HALF_MAX_MOMENT_1D,
    Model,
    axis,
    low_quantile,
    mean_spacing,
    valid_points,
)

BACKGROUNDS = {"none": 0, "constant": 1, "linear": 2}


class Gauss1D(Model):
    """Sum of ``n_peaks`` Gaussians plus a ``background`` of "none", "constant" or "linear"."""

    n_dims = 1

    def __init__(self, n_peaks: int = 1, background: str = "constant"):
        if n_peaks not in (1, 2, 3, 4):
            raise ValueError(f"gauss1d: n_peaks must be 1..4, got {n_peaks!r}")
        if background not in BACKGROUNDS:
            raise ValueError(f"gauss1d: background must be one of {tuple(BACKGROUNDS)}, got {background!r}")
        self.n_peaks = n_peaks
        self.background = background
        self.n_bg = BACKGROUNDS[background]
        self.name = "gauss1d"
        names = []
        for k in range(1, n_peaks + 1):
            names += [f"amplitude{k}", f"center{k}", f"sigma{k}"]
        names += ["c0", "c1"][: self.n_bg]
        self.param_names = tuple(names)
        self.kernel_id = 3 * (n_peaks - 1) + self.n_bg
        self.kernel_type = f"Gauss1D_{n_peaks}_{self.n_bg}"

    def evaluate(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        xx = axis(x, 0, xp)
        f = 0.0
        for k in range(self.n_peaks):
            a, mu, s = (p[:, 3 * k + j, None] for j in range(3))
            f = f + a * xp.exp(-0.5 * ((xx - mu) / s) ** 2)
        if self.n_bg > 0:
            f = f + p[:, 3 * self.n_peaks, None]
        if self.n_bg > 1:
            f = f + p[:, 3 * self.n_peaks + 1, None] * xx
        return f

    def jacobian(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        xx = xp.broadcast_to(axis(x, 0, xp), (p.shape[0], x.shape[-1]))
        cols = []
        for k in range(self.n_peaks):
            a, mu, s = (p[:, 3 * k + j, None] for j in range(3))
            d = (xx - mu) / s
            e = xp.exp(-0.5 * d * d)
            cols += [e, a * e * d / s, a * e * d * d / s]
        if self.n_bg > 0:
            cols.append(xp.ones_like(xx))
        if self.n_bg > 1:
            cols.append(xx)
        return xp.stack(cols, axis=-1)

    def guess(self, x: Any, y: Any, w: Any, xp: ModuleType = np) -> Any:
        """Background from the 10 % quantile, then peaks one by one: the highest remaining point,
        refined to the centroid and width of the part above half maximum, then subtracted."""
        valid = valid_points(x, y, w, xp)
        xx = xp.broadcast_to(axis(x, 0, xp), y.shape)
        bg = low_quantile(y, valid, 0.1, xp)
        span = _span(xx, valid, xp)
        resid = xp.where(valid, y - bg[:, None], 0.0)
        p = xp.zeros((y.shape[0], self.n_params), dtype=np.float64)
        for k in range(self.n_peaks):
            i = xp.argmax(xp.where(valid, resid, -xp.inf), axis=-1)
            a = xp.take_along_axis(resid, i[:, None], axis=-1)
            mu = xp.take_along_axis(xx, i[:, None], axis=-1)
            u = xp.where(valid, xp.clip(resid - 0.5 * a, 0.0, None), 0.0)
            norm = xp.maximum(u.sum(axis=-1, keepdims=True), 1e-30)
            mu = xp.where(u.sum(axis=-1, keepdims=True) > 0, (u * xx).sum(axis=-1, keepdims=True) / norm, mu)
            var = (u * (xx - mu) ** 2).sum(axis=-1, keepdims=True) / norm / HALF_MAX_MOMENT_1D
            s = xp.clip(xp.sqrt(var), span[:, None] / (4 * y.shape[-1]), span[:, None])
            a = xp.maximum(a, 0.0)  # flat data: A = 0 leaves centre and width undetermined (SINGULAR)
            p[:, 3 * k], p[:, 3 * k + 1], p[:, 3 * k + 2] = a[:, 0], mu[:, 0], s[:, 0]
            resid = resid - a * xp.exp(-0.5 * ((xx - mu) / s) ** 2)
        if self.n_bg > 0:
            p[:, 3 * self.n_peaks] = bg
        return p.astype(np.float32)

    def default_bounds(self, x: Any, xp: ModuleType = np) -> tuple[np.ndarray, np.ndarray]:
        """Amplitudes >= 0 and widths above half the mean point spacing (a narrower Gaussian is not
        resolved by the sampling: it would fit single-channel spikes)."""
        lo = np.full(self.n_params, -np.inf)
        hi = np.full(self.n_params, np.inf)
        spacing = mean_spacing(axis(x, 0, xp), xp)
        for k in range(self.n_peaks):
            lo[3 * k] = 0.0
            lo[3 * k + 2] = max(spacing / 2.0, 1e-30)
        return lo, hi


def _span(xx: Any, valid: Any, xp: ModuleType) -> Any:
    hi = xp.where(valid, xx, -xp.inf).max(axis=-1)
    lo = xp.where(valid, xx, xp.inf).min(axis=-1)
    return xp.where(hi > lo, hi - lo, 1.0)
