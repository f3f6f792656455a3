"""What the 1D peak models (``gauss1d``, ``peaks1d``) share: peaks in blocks of parameters, then
a polynomial background of ``n_bg`` terms (c0 [+ c1 x]); the per-peak table (height, centre, FWHM,
area) that spectra analyses (gpuproc.pl.peaks) use whatever the profile."""

from __future__ import annotations

from abc import abstractmethod
from types import ModuleType
from typing import Any

import numpy as np

from gpuproc.fit.models.base import Model, axis

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
    def peak_table(self, params: Any, errors: Any, xp: ModuleType = np) -> dict[str, Any]:
        """Per peak, each ``(n_fits, n_peaks)``: ``amplitude``, ``center``, ``fwhm``, ``area``
        (integral over x) and their standard errors ``*_err`` (the area's with covariances
        neglected)."""
