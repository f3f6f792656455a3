"""``peaks1d``: a sum of N peaks (N = 1..4), each Gaussian, Lorentzian, pseudo-Voigt or split
Gaussian, plus a constant or linear background.

f(x) = sum_k A_k P(t_k; eta_k) + c0 + c1 x,   t_k = 2 (x - mu_k) / (FWHM_k (1 + alpha_k sign(x - mu_k)))

with P the pseudo-Voigt of :mod:`gpuproc.fit.models.profiles` (eta = 0 Gaussian, 1 Lorentzian).
Every peak has the same five parameters: height ``amplitude``, ``center``, ``fwhm`` (the sum of
its half widths at half maximum), ``eta`` (Lorentzian fraction, 0..1) and ``asymmetry`` (alpha,
-0.9..0.9; the half width is FWHM (1 - alpha) / 2 below the centre and FWHM (1 + alpha) / 2
above). A peak's shape decides which it holds: "gauss" eta = alpha = 0, "lorentz" eta = 1 and
alpha = 0, "pvoigt" alpha = 0, "split_gauss" eta = 0; shapes mix freely per peak. Area = amplitude
x FWHM x (eta pi/2 + (1 - eta) sqrt(pi/ln2)/2) for every shape. Device function:
kernels/models/peaks1d.cuh.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from gpuproc.fit.models.base import Model, axis, mean_spacing
from gpuproc.fit.models.gauss1d import Gauss1D
from gpuproc.fit.models.peak_sum import BACKGROUNDS, PeakSum
from gpuproc.fit.models.profiles import FWHM_PER_SIGMA, SHAPES, area, pvoigt_terms

PER_PEAK = ("amplitude", "center", "fwhm", "eta", "asymmetry")
MAX_ASYMMETRY = 0.9  #: |alpha| bound: half widths differ by at most a factor 19
START_ETA = 0.5  #: starting Lorentzian fraction of a peak whose eta is free


class Peaks1D(PeakSum):
    """Sum of peaks of the given ``shapes`` (one per peak) plus a ``background``."""

    name = "peaks1d"
    n_per_peak = len(PER_PEAK)

    def __init__(self, shapes: str | tuple[str, ...] | list[str] = ("pvoigt",), background: str = "constant"):
        shapes = (shapes,) if isinstance(shapes, str) else tuple(shapes)
        bad = [s for s in shapes if s not in SHAPES]
        if bad:
            raise ValueError(f"peaks1d: unknown peak shape {bad[0]!r}; shapes: {tuple(SHAPES)}")
        self._check(len(shapes), background)
        self.shapes = shapes
        self.param_names = tuple(f"{n}{k}" for k in range(1, self.n_peaks + 1) for n in PER_PEAK) + (
            ("c0", "c1")[: self.n_bg])
        self.kernel_id = 14 + 3 * (self.n_peaks - 1) + self.n_bg
        self.kernel_type = f"Peaks1D_{self.n_peaks}_{self.n_bg}"
        self.held = {self.n_per_peak * k + PER_PEAK.index(n): v for k, s in enumerate(shapes)
                     for n, v in SHAPES[s].items()}

    @classmethod
    def variants(cls) -> list[Model]:
        return [cls(("pvoigt",) * n, bg) for n in (1, 2, 3, 4) for bg in BACKGROUNDS]

    def __repr__(self) -> str:
        return f"Peaks1D(shapes={self.shapes}, background={self.background!r})"

    def _peak(self, x: Any, p: Any, k: int, xp: ModuleType) -> tuple[Any, ...]:
        a, mu, fwhm, eta, alpha = (p[:, self.n_per_peak * k + j, None] for j in range(self.n_per_peak))
        d = axis(x, 0, xp) - mu
        s = xp.where(d >= 0, 1.0, -1.0)
        side = 1.0 + alpha * s
        inv_h = 2.0 / (fwhm * side)
        t = d * inv_h
        return (a, fwhm, s, side, inv_h, t) + pvoigt_terms(t, eta, xp)

    def evaluate(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        f = 0.0
        for k in range(self.n_peaks):
            a, *_, prof, _, _, _ = self._peak(x, p, k, xp)
            f = f + a * prof
        return f + self.background_values(x, p, xp)

    def jacobian(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        shape = (p.shape[0], x.shape[-1])
        cols = []
        for k in range(self.n_peaks):
            a, fwhm, s, side, inv_h, t, prof, kk, lor, gau = self._peak(x, p, k, xp)
            dd = 2.0 * a * t * kk  # -A dP/dt
            cols += [xp.broadcast_to(c, shape) for c in
                     (prof, dd * inv_h, dd * t / fwhm, a * (lor - gau), dd * t * s / side)]
        return xp.stack(cols + self.background_columns(x, shape, xp), axis=-1)

    def guess(self, x: Any, y: Any, w: Any, xp: ModuleType = np) -> Any:
        """The Gaussian starts of :meth:`Gauss1D.guess` (highest point, half-maximum centroid and
        width, one peak at a time), with FWHM = 2.3548 sigma, eta 0.5 where free and alpha 0."""
        g = Gauss1D(self.n_peaks, self.background).guess(x, y, w, xp)
        blocks = [self.peak_block(k, g[:, 3 * k], g[:, 3 * k + 1], FWHM_PER_SIGMA * g[:, 3 * k + 2], xp)
                  for k in range(self.n_peaks)]
        return xp.concatenate(blocks + [g[:, 3 * self.n_peaks:]], axis=-1).astype(np.float32)

    def peak_block(self, k: int, amplitude: Any, center: Any, fwhm: Any, xp: ModuleType = np) -> Any:
        held = SHAPES[self.shapes[k]]
        eta = xp.full_like(amplitude, held.get("eta", START_ETA))
        return xp.stack([amplitude, center, fwhm, eta, xp.zeros_like(amplitude)], axis=-1)

    def peak_table(self, params: Any, errors: Any, xp: ModuleType = np, covariance: Any = None) -> dict[str, Any]:
        n = self.n_per_peak * self.n_peaks
        p = xp.asarray(params[:, :n], dtype=np.float64).reshape(-1, self.n_peaks, self.n_per_peak)
        e = xp.asarray(errors[:, :n], dtype=np.float64).reshape(-1, self.n_peaks, self.n_per_peak)
        a, mu, fw, eta = (p[..., j] for j in range(4))
        out = {"amplitude": a, "center": mu, "fwhm": fw, "area": area(a, fw, eta), "eta": eta, "asymmetry": p[..., 4]}
        out.update({f"{k}_err": e[..., j] for j, k in enumerate(("amplitude", "center", "fwhm"))})
        out["area_err"] = self.area_error(params, errors, covariance, xp)
        return out

    def area_terms(self, params: Any, xp: ModuleType = np) -> tuple[Any, Any, Any, np.ndarray, np.ndarray]:
        """Amplitude, FWHM and eta are parameters (a held eta has zero errors and covariances)."""
        n = self.n_per_peak * self.n_peaks
        p = xp.asarray(params[:, :n], dtype=np.float64).reshape(-1, self.n_peaks, self.n_per_peak)
        index = np.array([[self.n_per_peak * k + j for j in (0, 2, 3)] for k in range(self.n_peaks)])
        return p[..., 0], p[..., 2], p[..., 3], index, np.ones(3)

    def default_bounds(self, x: Any, xp: ModuleType = np) -> tuple[np.ndarray, np.ndarray]:
        """Heights >= 0; FWHM above that of a Gaussian of half the mean point spacing (as gauss1d);
        0 <= eta <= 1; |asymmetry| <= 0.9."""
        lo = np.full(self.n_params, -np.inf)
        hi = np.full(self.n_params, np.inf)
        spacing = mean_spacing(axis(x, 0, xp), xp)
        for k in range(self.n_peaks):
            b = self.n_per_peak * k
            lo[b] = 0.0
            lo[b + 2] = max(FWHM_PER_SIGMA * spacing / 2.0, 1e-30)
            lo[b + 3], hi[b + 3] = 0.0, 1.0
            lo[b + 4], hi[b + 4] = -MAX_ASYMMETRY, MAX_ASYMMETRY
        return lo, hi
