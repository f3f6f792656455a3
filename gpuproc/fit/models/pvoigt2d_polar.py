"""``pvoigt2d_polar``: a Bragg spot in a (q, azimuth) cake, pseudo-Voigt in q, Gaussian in azimuth.

f(q, phi) = A P(2 (q - q0) / fwhm_q; eta_q) exp(-4 ln2 w(phi - phi0)^2 / fwhm_phi^2) + b0 + b1 q

P is the pseudo-Voigt of :mod:`gpuproc.fit.models.profiles` (eta_q = 0 Gaussian, 1 Lorentzian,
both parts of FWHM ``fwhm_q``); w() wraps an angle difference into [-180, 180) degrees, so a spot
may straddle the 0/360 seam. The radial profile is the one size and strain broaden (Lorentzian
tails of a size distribution, Gaussian strain); the azimuthal one is an orientation distribution,
Gaussian as in ``gauss2d_polar`` (whose sigma_q, sigma_phi are FWHM / 2.3548). Radial integral
breadth: fwhm_q (eta_q pi/2 + (1 - eta_q) 1.0645). Device function: kernels/models/pvoigt2d_polar.cuh.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from gpuproc.fit.models.base import Model, axis
from gpuproc.fit.models.gauss2d_polar import Gauss2DPolar, wrap_deg
from gpuproc.fit.models.profiles import FWHM_PER_SIGMA, LN2, pvoigt_terms

START_ETA = 0.5  #: starting Lorentzian fraction in q


class PVoigt2DPolar(Model):
    """Pseudo-Voigt in q (mixing ``eta_q``) times a wrapped Gaussian in azimuth, plus b0 + b1 q."""

    name = "pvoigt2d_polar"
    param_names = ("amplitude", "q0", "fwhm_q", "eta_q", "phi0", "fwhm_phi", "b0", "b1")
    n_dims = 2
    kernel_id = 13
    kernel_type = "PVoigt2DPolar"
    #: the radial and azimuthal width parameters, and the FWHM one unit of them is
    widths = ("fwhm_q", "fwhm_phi")
    fwhm_per_width = 1.0

    def _parts(self, x: Any, p: Any, xp: ModuleType) -> tuple[Any, ...]:
        q, phi = axis(x, 0, xp), axis(x, 1, xp)
        a, q0, fq, eta, phi0, fp = (p[:, j, None] for j in range(6))
        t = 2.0 * (q - q0) / fq
        u = 2.0 * wrap_deg(phi - phi0, xp) / fp
        e = xp.exp(-LN2 * u * u)
        return (q, a, fq, fp, t, u, e) + pvoigt_terms(t, eta, xp)

    def evaluate(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        q, a, _, _, _, _, e, prof, *_ = self._parts(x, p, xp)
        return a * e * prof + p[:, 6, None] + p[:, 7, None] * q

    def jacobian(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        q, a, fq, fp, t, u, e, prof, kk, lor, gau = self._parts(x, p, xp)
        ga = a * e
        dd = 2.0 * ga * t * kk  # -dF/dt
        da = 2.0 * LN2 * ga * prof * u  # -dF/du
        cols = [prof * e, 2.0 * dd / fq, dd * t / fq, ga * (lor - gau), 2.0 * da / fp, da * u / fp]
        shape = cols[0].shape
        return xp.stack(cols + [xp.ones(shape), xp.broadcast_to(q, shape)], axis=-1)

    def guess(self, x: Any, y: Any, w: Any, xp: ModuleType = np) -> Any:
        """The starts of :meth:`Gauss2DPolar.guess` (highest point, centroid and second moments of
        the part above half maximum) with FWHM = 2.3548 sigma and eta_q = 0.5."""
        g = Gauss2DPolar().guess(x, y, w, xp)
        eta = xp.full_like(g[:, :1], START_ETA)
        return xp.concatenate([g[:, :2], FWHM_PER_SIGMA * g[:, 2:3], eta, g[:, 3:4], FWHM_PER_SIGMA * g[:, 4:5],
                               g[:, 5:]], axis=-1).astype(np.float32)

    def default_bounds(self, x: Any, xp: ModuleType = np) -> tuple[np.ndarray, np.ndarray]:
        """Those of gauss2d_polar in FWHM (amplitude >= 0, fwhm_q above 0.235 q spacings,
        0.0235 <= fwhm_phi <= 360 degrees) and 0 <= eta_q <= 1."""
        glo, ghi = Gauss2DPolar().default_bounds(x, xp)
        lo = np.array([glo[0], glo[1], FWHM_PER_SIGMA * glo[2], 0.0, glo[3], FWHM_PER_SIGMA * glo[4], glo[5], glo[6]])
        hi = np.array([ghi[0], ghi[1], ghi[2], 1.0, ghi[3], 360.0, ghi[5], ghi[6]])
        return lo, hi
