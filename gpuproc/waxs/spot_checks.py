"""Is a converged spot fit a measurement? Bounds for the fit and the checks after it.

The fit engine reports how the minimisation ended; a fit that converged is still not a
measurement when (in this order of precedence, see :class:`gpuproc.fit.Status`):

* ``LOW_COVERAGE``: fewer than ``min_coverage`` of its window's bins are valid in that frame
  (masked or invalid pixels, :mod:`gpuproc.waxs.windows`); this replaces whatever status the
  engine gave, as it is the cause;
* ``AT_BOUND``: a width (radial or azimuthal) sits at its lower bound, ``min_fwhm_bins`` cake
  bins of FWHM: the spot is not resolved by the bins. This comes before the significance test,
  as the amplitude and width of an unresolved spot are degenerate (a large amplitude error);
* ``NO_PEAK``: the amplitude is below ``min_significance`` standard errors (an empty window, or
  a spot hidden in a gap: the fit describes noise or background);
* ``AT_BOUND`` also when a standard error is not finite.

After the run, :func:`status_counts` per reflection go into the results' statistics and
:func:`warn_failing` names each reflection most of whose fits did not pass.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from gpuproc.fit import FitResult, Status
from gpuproc.fit.models import Model, get_model
from gpuproc.waxs import broadening
from gpuproc.waxs.derive import FWHM_PER_SIGMA
from gpuproc.waxs.windows import Window

MODEL = "gauss2d_polar"  #: the default spot model ([[reflections]] model)
#: a width within this relative distance of its lower bound is at the bound
AT_BOUND_RTOL = 1e-3


def width_indices(model: Model) -> list[int]:
    """Indices of the radial and azimuthal width parameters of a spot model (``model.widths``)."""
    return [model.param_names.index(n) for n in model.widths]


def spot_bounds(window: Window, min_fwhm_bins: float, model: str = MODEL) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper parameter bounds of a spot fit in ``window``: the model's, with both widths
    at least ``min_fwhm_bins`` bins of FWHM (gauss2d_polar: sigma >= min_fwhm_bins * bin / 2.3548)."""
    m = get_model(model)
    lo, hi = m.default_bounds(np.stack([window.q, window.phi]))
    for j, width in zip(width_indices(m), window.bin_widths):
        lo[j] = max(lo[j], min_fwhm_bins * width / m.fwhm_per_width)
    return lo, hi


def radial_eta(res: FitResult) -> tuple[np.ndarray, np.ndarray]:
    """Lorentzian fraction of each fit's radial profile and its error: ``eta_q`` of pvoigt2d_polar,
    0 (exactly) for the Gaussian gauss2d_polar."""
    if "eta_q" in res.param_names:
        return np.asarray(res["eta_q"]), np.asarray(res.error("eta_q"))
    zero = np.zeros(np.shape(res.chi2), np.float32)
    return zero, zero


def spot_fwhm(res: FitResult, cake_sigma: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Radial and azimuthal FWHM of each fit and their errors, the cake's broadening (``cake_sigma``:
    its radial and azimuthal sigma) removed in quadrature (:func:`gpuproc.waxs.broadening.deconvolve`;
    exact for a Gaussian, for the pseudo-Voigt in q of pvoigt2d_polar the usual approximation);
    NaN where the fitted width is not larger than the broadening."""
    k = res.model.fwhm_per_width
    return [broadening.deconvolve(k * np.asarray(res.params)[:, j], k * np.asarray(res.errors)[:, j],
                                  FWHM_PER_SIGMA * s) for j, s in zip(width_indices(res.model), cake_sigma)]


def classify(res: FitResult, valid_fraction: Any, lower: np.ndarray, *, min_significance: float,
             min_coverage: float) -> np.ndarray:
    """Status of each fit (uint8, :class:`gpuproc.fit.Status`) after the checks above.

    Parameters
    ----------
    res : FitResult
        Host results of the spot fits (:meth:`FitResult.get`), shape (n_fits,).
    valid_fraction : array
        (n_fits,) fraction of the window's bins valid in each fit's frame.
    lower : numpy.ndarray
        (n_params,) lower bounds the fits ran with.
    min_significance, min_coverage : float
        ``[fit]`` keys of the job.
    """
    status = np.array(res.status, np.uint8)
    p, e = np.asarray(res.params), np.asarray(res.errors)
    widths = width_indices(res.model)
    with np.errstate(invalid="ignore"):
        width_at_bound = np.any(p[:, widths] <= lower[widths] * (1.0 + AT_BOUND_RTOL), axis=1)
        no_peak = ~(p[:, 0] >= min_significance * e[:, 0])
    not_finite = ~np.all(np.isfinite(e), axis=1)
    low = np.asarray(valid_fraction) < min_coverage
    status[low] = Status.LOW_COVERAGE
    converged = status == Status.CONVERGED
    checks = ((width_at_bound, Status.AT_BOUND), (no_peak, Status.NO_PEAK), (not_finite, Status.AT_BOUND))
    for failed, code in checks:
        hit = converged & failed
        status[hit] = code
        converged &= ~hit
    return status


class FailingFitsWarning(UserWarning):
    """Fewer than half the fits of a reflection passed (CONVERGED): no peak, or none measurable."""


def status_counts(status: np.ndarray, names: list[str]) -> dict[str, dict[str, int]]:
    """Fits per status name of each reflection, from ``fit_status`` (n_reflections, ...)."""
    flat = np.asarray(status).reshape(len(names), -1)
    return {name: {s.name: int(n) for s in Status if (n := int((row == s).sum()))} for name, row in zip(names, flat)}


def warn_failing(counts: dict[str, dict[str, int]], min_passing: float = 0.5) -> None:
    """A :class:`FailingFitsWarning` for each reflection with fewer than ``min_passing`` of its fits
    CONVERGED, naming it and its status counts."""
    for name, c in counts.items():
        total = sum(c.values())
        if total and c.get(Status.CONVERGED.name, 0) < min_passing * total:
            warnings.warn(f"reflection {name!r}: {c.get(Status.CONVERGED.name, 0)} of {total} fits passed "
                          f"(CONVERGED); statuses {c}", FailingFitsWarning, stacklevel=3)
