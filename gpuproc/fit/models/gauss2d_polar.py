"""``gauss2d_polar``: a Bragg spot in a (q, azimuth) cake.

f(q, phi) = A exp(-(q - q0)^2 / (2 sq^2) - w(phi - phi0)^2 / (2 sphi^2)) + b0 + b1 q

w() wraps an angle difference into [-180, 180) degrees, so a spot may straddle the 0/360 seam.
q in any unit (A^-1 or nm^-1), phi in degrees; sq and sphi are standard deviations.
Device function: kernels/models/gauss2d_polar.cuh.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from gpuproc.fit.models.base import (
    HALF_MAX_MOMENT_2D,
    Model,
    axis,
    low_quantile,
    mean_spacing,
    valid_points,
)
from gpuproc.fit.models.profiles import FWHM_PER_SIGMA


def wrap_deg(d: Any, xp: ModuleType = np) -> Any:
    """Angle difference wrapped into [-180, 180) degrees."""
    return d - 360.0 * xp.floor(d / 360.0 + 0.5)


class Gauss2DPolar(Model):
    """2D Gaussian in (q, azimuth) with an azimuth that wraps at 360 degrees, plus b0 + b1 q."""

    name = "gauss2d_polar"
    param_names = ("amplitude", "q0", "sigma_q", "phi0", "sigma_phi", "b0", "b1")
    n_dims = 2
    kernel_id = 12
    kernel_type = "Gauss2DPolar"
    #: the radial and azimuthal width parameters, and the FWHM one unit of them is
    widths = ("sigma_q", "sigma_phi")
    fwhm_per_width = FWHM_PER_SIGMA

    def _parts(self, x: Any, p: Any, xp: ModuleType) -> tuple[Any, ...]:
        q, phi = axis(x, 0, xp), axis(x, 1, xp)
        a, q0, sq, phi0, sp, b0, b1 = (p[:, j, None] for j in range(7))
        dq = (q - q0) / sq
        dp = wrap_deg(phi - phi0, xp) / sp
        e = xp.exp(-0.5 * (dq * dq + dp * dp))
        return q, a, sq, sp, b0, b1, dq, dp, e

    def evaluate(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        q, a, _, _, b0, b1, _, _, e = self._parts(x, p, xp)
        return a * e + b0 + b1 * q

    def jacobian(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        q, a, sq, sp, _, _, dq, dp, e = self._parts(x, p, xp)
        q = xp.broadcast_to(q, e.shape)
        ae = a * e
        return xp.stack([e, ae * dq / sq, ae * dq * dq / sq, ae * dp / sp, ae * dp * dp / sp, xp.ones_like(e), q], axis=-1)

    def guess(self, x: Any, y: Any, w: Any, xp: ModuleType = np) -> Any:
        """Background from the 10 % quantile; the spot at the highest point, refined to the centroid
        and second moments (circular in azimuth) of the part above half maximum."""
        valid = valid_points(x, y, w, xp)
        q = xp.broadcast_to(axis(x, 0, xp), y.shape)
        phi = xp.broadcast_to(axis(x, 1, xp), y.shape)
        bg = low_quantile(y, valid, 0.1, xp)[:, None]
        resid = xp.where(valid, y - bg, -xp.inf)
        i = xp.argmax(resid, axis=-1)[:, None]
        a = xp.take_along_axis(resid, i, axis=-1)
        q0 = xp.take_along_axis(q, i, axis=-1)
        phi_ref = xp.take_along_axis(phi, i, axis=-1)
        u = xp.where(valid, xp.clip(resid - 0.5 * a, 0.0, None), 0.0)
        norm = xp.maximum(u.sum(axis=-1, keepdims=True), 1e-30)
        dphi = wrap_deg(phi - phi_ref, xp)
        q0 = (u * q).sum(axis=-1, keepdims=True) / norm
        shift = (u * dphi).sum(axis=-1, keepdims=True) / norm
        phi0 = phi_ref + shift
        var_q = (u * (q - q0) ** 2).sum(axis=-1, keepdims=True) / norm / HALF_MAX_MOMENT_2D
        var_p = (u * (dphi - shift) ** 2).sum(axis=-1, keepdims=True) / norm / HALF_MAX_MOMENT_2D
        dq_min = mean_spacing(axis(x, 0, xp), xp)
        sq = xp.maximum(xp.sqrt(var_q), 0.5 * dq_min)
        sp = xp.clip(xp.sqrt(var_p), 0.1, 90.0)
        phi0 = xp.mod(phi0, 360.0)
        a = xp.where(xp.isfinite(a), xp.maximum(a, 0.0), 0.0)
        zeros = xp.zeros_like(a)
        p = xp.concatenate([a, q0, sq, phi0, sp, bg, zeros], axis=-1)
        return p.astype(np.float32)

    def default_bounds(self, x: Any, xp: ModuleType = np) -> tuple[np.ndarray, np.ndarray]:
        """Amplitude >= 0; sigma_q above a tenth of the q spacing; 0.01 <= sigma_phi <= 180 degrees."""
        lo = np.full(self.n_params, -np.inf)
        hi = np.full(self.n_params, np.inf)
        lo[0] = 0.0
        lo[2] = max(mean_spacing(axis(x, 0, xp), xp) / 10.0, 1e-30)
        lo[4], hi[4] = 0.01, 180.0
        return lo, hi
