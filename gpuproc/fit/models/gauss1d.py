"""``gauss1d``: a sum of N Gaussians (N = 1..4) plus a constant or linear background.

f(x) = sum_k A_k exp(-(x - mu_k)^2 / (2 sigma_k^2)) + c0 + c1 x

x is any 1D coordinate, uniform or not, in any order (e.g. photon energy in eV). sigma is the
standard deviation; FWHM = 2 sqrt(2 ln 2) sigma, area = A sigma sqrt(2 pi) (integral breadth
1.0645 FWHM). Device function: kernels/models/gauss1d.cuh.
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
from gpuproc.fit.models.peak_sum import BACKGROUNDS, PeakSum
from gpuproc.fit.models.profiles import FWHM_PER_SIGMA, area


class Gauss1D(PeakSum):
    """Sum of ``n_peaks`` Gaussians plus a ``background`` of "none", "constant" or "linear"."""

    name = "gauss1d"
    n_per_peak = 3

    def __init__(self, n_peaks: int = 1, background: str = "constant"):
        self._check(n_peaks, background)
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
        return f + self.background_values(x, p, xp)

    def jacobian(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        xx = xp.broadcast_to(axis(x, 0, xp), (p.shape[0], x.shape[-1]))
        cols = []
        for k in range(self.n_peaks):
            a, mu, s = (p[:, 3 * k + j, None] for j in range(3))
            d = (xx - mu) / s
            e = xp.exp(-0.5 * d * d)
            cols += [e, a * e * d / s, a * e * d * d / s]
        return xp.stack(cols + self.background_columns(x, xx.shape, xp), axis=-1)

    @classmethod
    def variants(cls) -> list[Model]:
        return [cls(n, bg) for n in (1, 2, 3, 4) for bg in BACKGROUNDS]

    def peak_block(self, k: int, amplitude: Any, center: Any, fwhm: Any, xp: ModuleType = np) -> Any:
        return xp.stack([amplitude, center, fwhm / FWHM_PER_SIGMA], axis=-1)

    def peak_table(self, params: Any, errors: Any, xp: ModuleType = np, covariance: Any = None) -> dict[str, Any]:
        """FWHM = 2 sqrt(2 ln 2) sigma, area = A sigma sqrt(2 pi)."""
        n = 3 * self.n_peaks
        p = xp.asarray(params[:, :n], dtype=np.float64).reshape(-1, self.n_peaks, 3)
        e = xp.asarray(errors[:, :n], dtype=np.float64).reshape(-1, self.n_peaks, 3)
        a, mu, fw = p[..., 0], p[..., 1], FWHM_PER_SIGMA * p[..., 2]
        return {"amplitude": a, "center": mu, "fwhm": fw, "area": area(a, fw),
                "amplitude_err": e[..., 0], "center_err": e[..., 1], "fwhm_err": FWHM_PER_SIGMA * e[..., 2],
                "area_err": self.area_error(params, errors, covariance, xp),
                "eta": xp.zeros_like(a), "asymmetry": xp.zeros_like(a)}

    def area_terms(self, params: Any, xp: ModuleType = np) -> tuple[Any, Any, Any, np.ndarray, np.ndarray]:
        """Amplitude A, FWHM = 2.3548 sigma and eta = 0 (no parameter)."""
        p = xp.asarray(params[:, : 3 * self.n_peaks], dtype=np.float64).reshape(-1, self.n_peaks, 3)
        index = np.array([[3 * k, 3 * k + 2, -1] for k in range(self.n_peaks)])
        return p[..., 0], FWHM_PER_SIGMA * p[..., 2], 0.0, index, np.array([1.0, FWHM_PER_SIGMA, 1.0])

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
