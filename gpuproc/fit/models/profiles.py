"""Line profiles of the peak models, their FWHM and integral breadth (kernels/models/profiles.cuh).

Every profile is written in the reduced coordinate ``t = (x - centre) / HWHM``, so it is 1/2 at
``t = +-1`` whatever its shape and its FWHM is a parameter of the model:

=============  ==========================================  ===============================
shape          profile P(t) (height 1)                     integral breadth / FWHM
=============  ==========================================  ===============================
gauss          G(t) = exp(-ln2 t^2)                        sqrt(pi / ln2) / 2 = 1.0645
lorentz        L(t) = 1 / (1 + t^2)                        pi / 2 = 1.5708
pvoigt         eta L(t) + (1 - eta) G(t)                   eta pi/2 + (1 - eta) 1.0645
split_gauss    G(t), HWHM (1 -+ alpha) FWHM / 2 each side  1.0645 (any alpha)
=============  ==========================================  ===============================

The integral breadth is the area over the height: area = amplitude x breadth. A split profile
has half widths ``FWHM (1 - alpha) / 2`` below and ``FWHM (1 + alpha) / 2`` above the centre, so its
FWHM is still ``FWHM`` and its area that of the symmetric profile. A Gaussian of standard
deviation sigma has FWHM = 2 sqrt(2 ln 2) sigma.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

LN2 = math.log(2.0)
#: FWHM of a Gaussian in units of its standard deviation, 2 sqrt(2 ln 2)
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * LN2)
GAUSS_BREADTH_PER_FWHM = 0.5 * math.sqrt(math.pi / LN2)
LORENTZ_BREADTH_PER_FWHM = 0.5 * math.pi

#: peak shapes of :class:`gpuproc.fit.models.peaks1d.Peaks1D` and the parameters each holds fixed
SHAPES: dict[str, dict[str, float]] = {
    "gauss": {"eta": 0.0, "asymmetry": 0.0},
    "lorentz": {"eta": 1.0, "asymmetry": 0.0},
    "pvoigt": {"asymmetry": 0.0},
    "split_gauss": {"eta": 0.0},
}


def pvoigt_terms(t: Any, eta: Any, xp: ModuleType = np) -> tuple[Any, Any, Any, Any]:
    """Pseudo-Voigt in the reduced coordinate ``t`` (see the module docstring).

    Returns
    -------
    p, k, l, g : arrays
        ``P(t)``, ``k = -dP/dt / (2 t) = eta L^2 + (1 - eta) ln2 G`` (finite at t = 0), ``L(t)``
        and ``G(t)``.
    """
    t2 = t * t
    lor = 1.0 / (1.0 + t2)
    gau = xp.exp(-LN2 * t2)
    return eta * lor + (1.0 - eta) * gau, eta * lor * lor + (1.0 - eta) * LN2 * gau, lor, gau


def breadth_per_fwhm(eta: Any) -> Any:
    """Integral breadth of a (split) pseudo-Voigt in units of its FWHM; ``eta`` = 0 Gaussian, 1 Lorentzian."""
    return eta * LORENTZ_BREADTH_PER_FWHM + (1.0 - eta) * GAUSS_BREADTH_PER_FWHM


def area(amplitude: Any, fwhm: Any, eta: Any = 0.0) -> Any:
    """Integral of a (split) pseudo-Voigt of height ``amplitude``: ``amplitude * fwhm * breadth_per_fwhm(eta)``
    (units: amplitude x unit of the coordinate)."""
    return amplitude * fwhm * breadth_per_fwhm(eta)


def area_relative_error(amplitude: Any, fwhm: Any, eta: Any, covariance: Any, xp: ModuleType = np) -> Any:
    """Relative standard error of :func:`area`, propagated to first order.

    ``covariance``: ``(..., 3, 3)`` covariance of (amplitude, FWHM, eta) per peak (rows and columns
    of a held eta 0); a diagonal one (:func:`diagonal_covariance`) neglects the correlations, of
    which the amplitude-width one is large and negative for every profile.
    """
    slope = (LORENTZ_BREADTH_PER_FWHM - GAUSS_BREADTH_PER_FWHM) / breadth_per_fwhm(eta)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero height: an infinite relative error
        g = xp.stack([1.0 / amplitude, 1.0 / fwhm, slope + xp.zeros_like(amplitude)], axis=-1)  # d ln(area) / d(a, FWHM, eta)
    return xp.sqrt(xp.einsum("...i,...ij,...j->...", g, covariance, g))


def diagonal_covariance(errors: Any, xp: ModuleType = np) -> Any:
    """``(..., k, k)`` covariance with the variances ``errors**2`` (``(..., k)``) and no correlation."""
    return errors[..., :, None] ** 2 * xp.eye(errors.shape[-1])
