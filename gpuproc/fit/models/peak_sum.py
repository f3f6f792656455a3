"""What the 1D peak models (``gauss1d``, ``peaks1d``) share: peaks in blocks of parameters, then
a polynomial background of ``n_bg`` terms (c0 [+ c1 x]); the per-peak table (height, centre, FWHM,
area) that spectra analyses (gpuproc.pl.peaks) use whatever the profile."""

from __future__ import annotations

from abc import abstractmethod
from types import ModuleType
from typing import Any

import numpy as np

from gpuproc.fit.models.base import Model, axis
from gpuproc.fit.models.profiles import area, area_relative_error, diagonal_covariance

BACKGROUNDS = {"none": 0, "constant": 1, "linear": 2}


class PeakSum(Model):
    """A sum of ``n_peaks`` peaks of ``n_per_peak`` parameters each, plus the background."""

    n_dims = 1
    n_peaks: int
    n_per_peak: int
    background: str
    n_bg: int

    def _check(self, n_peaks: int, background: str) -> None:
        if n_peaks not in (1, 2, 3, 4):
            raise ValueError(f"{self.name}: n_peaks must be 1..4, got {n_peaks!r}")
        if background not in BACKGROUNDS:
            raise ValueError(f"{self.name}: background must be one of {tuple(BACKGROUNDS)}, got {background!r}")
        self.n_peaks, self.background, self.n_bg = n_peaks, background, BACKGROUNDS[background]

    def background_values(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        """The background alone, ``(n_fits, n_points)``."""
        xx = axis(x, 0, xp)
        b0 = self.n_per_peak * self.n_peaks
        out = xp.zeros((p.shape[0], x.shape[-1]), dtype=p.dtype)
        for j in range(self.n_bg):
            out = out + p[:, b0 + j, None] * xx**j
        return out

    def background_columns(self, x: Any, shape: tuple[int, int], xp: ModuleType = np) -> list[Any]:
        """Jacobian columns of the background terms, each of ``shape`` (n_fits, n_points)."""
        xx = xp.broadcast_to(axis(x, 0, xp), shape)
        return [xp.ones(shape), xx][: self.n_bg]

    @abstractmethod
    def peak_block(self, k: int, amplitude: Any, center: Any, fwhm: Any, xp: ModuleType = np) -> Any:
        """Starting parameters of peak ``k`` (0-based), ``(n_fits, n_per_peak)``, from its height,
        centre and FWHM (each ``(n_fits,)``)."""

    @abstractmethod
    def peak_table(self, params: Any, errors: Any, xp: ModuleType = np, covariance: Any = None) -> dict[str, Any]:
        """Per peak, each ``(n_fits, n_peaks)``: ``amplitude``, ``center``, ``fwhm``, ``area``
        (integral over x) and their standard errors ``*_err`` (the area's from :meth:`area_error`),
        and the profile's ``eta`` and ``asymmetry`` (:mod:`gpuproc.fit.models.peaks1d`; 0 for a Gaussian)."""

    @abstractmethod
    def area_terms(self, params: Any, xp: ModuleType = np) -> tuple[Any, Any, Any, np.ndarray, np.ndarray]:
        """Per peak, each ``(n_fits, n_peaks)``: amplitude, FWHM and eta (the area's factors), and
        how they follow from the parameters: ``(n_peaks, 3)`` parameter indices (-1: a constant, no
        error) and the ``(3,)`` scales, (amplitude, FWHM, eta) = scale x parameter."""

    def area_error(self, params: Any, errors: Any, covariance: Any = None, xp: ModuleType = np) -> Any:
        """Standard error of every peak's area, ``(n_fits, n_peaks)``, propagated from the fits'
        ``covariance`` (``(n_fits, n_params, n_params)``, :func:`gpuproc.fit.fit` with
        ``covariance=True``) or, without it, from the ``errors`` alone: the correlations neglected,
        of which the amplitude-width one is negative, so that the error comes out too large."""
        a, fwhm, eta, index, scale = self.area_terms(params, xp)
        known = xp.asarray(index >= 0)
        j = xp.asarray(np.where(index >= 0, index, 0))
        if covariance is None:
            s = xp.where(known, xp.asarray(errors, dtype=np.float64)[:, j] * xp.asarray(scale), 0.0)
            c = diagonal_covariance(s, xp)
        else:
            c = xp.asarray(covariance, dtype=np.float64)[:, j[:, :, None], j[:, None, :]] * xp.asarray(np.outer(scale, scale))
            c = xp.where(known[:, :, None] & known[:, None, :], c, 0.0)
        return area(a, fwhm, eta) * area_relative_error(a, fwhm, eta, c, xp)
