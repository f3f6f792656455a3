"""Fit every PL spectrum with 1..N peaks in energy plus background; N chosen per pixel by BIC.

Peak shapes
-----------
``peak_shape`` "gauss" (the default) fits the ``gauss1d`` model; "lorentz", "pvoigt" and
"split_gauss", or a list with one shape per peak (the first for the 1-peak fit's peak, the second
for the peak the 2-peak fit adds, ...), fit ``peaks1d`` (gpuproc.fit.models.peaks1d). Widths are
FWHM and areas the integral of the fitted profile (amplitude x FWHM x its integral breadth per
FWHM: 1.0645 Gaussian, 1.5708 Lorentzian, gpuproc.fit.models.profiles) whatever the shape.

Model selection
---------------
For N = 1 .. ``max_peaks`` each spectrum is fitted with the ``gauss1d`` engine. The 1-peak fit
starts from a baseline that peaks cannot pull up (a clipped quadratic fit) and the highest smoothed
feature above it, so sloped and curved backgrounds do not capture the start; the N-peak fit starts
from the (N-1)-peak result plus a new peak at the largest (smoothed, noise-weighted) residual, so
a shoulder or a second maximum is where the search starts. Each fit, and the background alone
(N = 0), is scored by the Bayesian information criterion with k free parameters (3N + n_background
for Gaussians; a pseudo-Voigt adds its eta, a split Gaussian its asymmetry) and n valid channels:

* least squares: ``BIC = n ln(RSS_w / n) + k ln n`` (Gaussian likelihood with the noise scale
  free; RSS_w is the weighted residual sum of squares),
* Poisson: ``BIC = D + k ln n`` with the deviance ``D = 2 sum(y ln(y/mu) - (y - mu))``.

A fit can only be chosen when it converged, its BIC is below the background's, every peak has
``amplitude / error`` of at least ``min_significance`` and its height and width are jointly
resolved, ``sqrt((da/a)^2 + (dw/w)^2 (+ the eta term)) <= 1 / min_significance`` (the area over its
error with the amplitude-width correlation left out: a narrow noise bump, whose height and width
anti-correlate, is not a peak however well its area is known), every centre lies
inside the energy window and every FWHM is between that of Gaussians of sigma one mean channel
spacing (narrower: not resolved) and a quarter of the window (broader "peaks" are background). The admissible fit with
the lowest BIC wins; a pixel with no admissible fit (dark, no emission) gets ``n_peaks = 0`` and
NaN values. On emission-free CCD spectra fewer than 0.1 % get a peak.

The (N+1)-peak fit is only tried on pixels whose N-peak fit is admissible: it starts from that
fit, and a pixel whose N-peak fit failed or holds an insignificant peak (dark pixels, a spurious
peak fading to zero) would spend many iterations on a fit that is almost never admissible. An
untried fit counts as inadmissible (BIC inf). On a 48 x 48 x 1024 synthetic map this skips
1 - 1571/2304 of the 2-peak and 1 - 207/2304 of the 3-peak fits, none of which won BIC.

Per-pixel values refer to the dominant peak, the one with the largest area
(``A sigma sqrt(2 pi)`` for a Gaussian); per-peak arrays have a trailing dimension of length ``max_peaks``, sorted by
ascending energy and NaN-padded. Energies are in eV, widths in meV (FWHM = 2 sqrt(2 ln 2) sigma).
Errors are the engine's standard errors; area errors are propagated from the engine's
covariance of each fit (``fit(..., covariance=True)``), so the negative amplitude-width correlation
(and, for a pseudo-Voigt, those with eta) counts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any, Literal

import numpy as np

from gpuproc.backend import get_xp
from gpuproc.fit import FitResult, Status, fit, get_model
from gpuproc.fit.models import Gauss1D, Peaks1D
from gpuproc.fit.models.peak_sum import PeakSum
from gpuproc.fit.models.profiles import SHAPES
from gpuproc.pl.spectra import check_axis, ndimage_module

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
PeakShape = Literal["gauss", "lorentz", "pvoigt", "split_gauss"]
N_BACKGROUND = {"none": 0, "constant": 1, "linear": 2}
BASELINE_ITERATIONS = 30  #: clip-and-refit passes of the starting background


@dataclass
class PeakMaps:
    """Per-pixel results of :func:`fit_peaks`, arrays shaped like the spectra's leading dimensions.

    Per-peak fields (``peak_*``) have one more trailing dimension of length ``max_peaks``.
    Arrays are NumPy or CuPy, like the fitting device.
    """

    energy: Any  #: dominant peak centre, eV
    energy_err: Any  #: eV
    fwhm_mev: Any  #: dominant peak FWHM, meV
    fwhm_err_mev: Any
    amplitude: Any  #: dominant peak height, intensity units
    amplitude_err: Any
    area: Any  #: dominant peak area (integral of its profile), intensity x eV
    area_err: Any
    total_area: Any  #: sum of the areas of all peaks (integrated PL intensity)
    centroid: Any  #: background-subtracted, model-free intensity-weighted mean energy, eV
    n_peaks: Any  #: int8, peaks chosen (0: no admissible fit)
    chi2: Any  #: reduced chi-square (or deviance per dof) of the chosen fit
    status: Any  #: uint8 Status of the chosen fit (n_peaks == 0: NO_PEAK, or the failed 1-peak fit's)
    bic: Any  #: (..., max_peaks) BIC of the 1..max_peaks fits (inf where not admissible)
    peak_energy: Any  #: (..., max_peaks) eV
    peak_energy_err: Any
    peak_fwhm_mev: Any
    peak_amplitude: Any
    peak_area: Any
    peak_eta: Any  #: (..., max_peaks) Lorentzian fraction of each profile (0 Gaussian)
    peak_asymmetry: Any  #: (..., max_peaks) alpha: half widths FWHM (1 -+ alpha) / 2

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict of arrays."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def fit_peaks(
    spectra: Any,
    energy: Any,
    *,
    max_peaks: int = 3,
    background: str = "linear",
    weights: Any = None,
    estimator: str = "lsq",
    min_significance: float = 3.0,
    device: str = "auto",
    peak_shape: str | tuple[str, ...] | list[str] = "gauss",
) -> PeakMaps:
    """Fit 1..``max_peaks`` Gaussians + background to every spectrum and keep the BIC-best.

    Parameters
    ----------
    spectra : array, shape (..., n_channels)
        Intensity per unit energy (see :func:`gpuproc.pl.spectra.to_energy`), or photon counts for
        ``estimator="poisson"``. NaN channels are excluded; all-NaN spectra give ``n_peaks = 0``.
    energy : array, shape (n_channels,)
        Photon energy in eV, strictly monotonic, any spacing.
    max_peaks : int
        Largest number of peaks tried, 1..4.
    background : {"linear", "constant", "none"}
    weights : array, shape (n_channels,) or like ``spectra``, optional
        Least-squares weights 1/variance, e.g. :meth:`gpuproc.pl.noise.NoiseModel.weights`.
    estimator : {"lsq", "poisson"}
    min_significance : float
        Smallest amplitude / standard error for a peak to count.
    device : {"auto", "cpu", "gpu"}
    peak_shape : {"gauss", "lorentz", "pvoigt", "split_gauss"} or a sequence of ``max_peaks`` of them
        One shape for every peak, or one per peak in the order the peaks are added (see above).

    Returns
    -------
    PeakMaps
    """
    if not 1 <= max_peaks <= 4:
        raise ValueError(f"max_peaks must be 1..4, got {max_peaks}")
    if background not in N_BACKGROUND:
        raise ValueError(f"background must be one of {tuple(N_BACKGROUND)}, got {background!r}")
    models = peak_models(peak_shape, max_peaks, background)
    xp = get_xp(device)
    y = xp.asarray(spectra, dtype=np.float32)
    check_axis(energy, y.shape[-1] if y.ndim else None, "energy")
    e = xp.asarray(energy, dtype=np.float64)
    batch = y.shape[:-1]
    y = y.reshape(-1, y.shape[-1])
    w = _weights(weights, y, xp)
    opts = dict(estimator=estimator, device=device)
    points = _Points.of(y, w, xp)
    results, scores, p0 = [], [], _first_start(y, e, background, estimator, xp)
    gauss_p0 = p0  # the background BIC's start (gauss1d)
    p0 = _converted(p0, models[0], xp)
    bic0 = _background_bic(y, e, w, gauss_p0, background, opts, points, xp)
    tried = xp.ones(y.shape[0], dtype=bool)
    for n in range(1, max_peaks + 1):
        r = _fit_rows(y, e, w, tried, models[n - 1], p0, opts, xp)
        mu = _model(r, e, xp)  # once per ladder step: the BIC and the next start both use it
        bic = _bic(r, mu, w, points, xp)
        admissible = tried & _admissible(r, e, min_significance, xp) & (bic < bic0)
        results.append(r)
        scores.append(xp.where(admissible, bic, xp.inf))
        if n < max_peaks:
            tried, p0 = admissible, _next_start(r, models[n], mu, y, e, w, xp)
    maps = _select(results, xp.stack(scores, axis=-1), xp.isfinite(bic0), y, e, max_peaks, xp)
    return PeakMaps(**{k: v.reshape(batch + v.shape[1:]) for k, v in maps.items()})


def peak_models(peak_shape: str | tuple[str, ...] | list[str], max_peaks: int, background: str) -> list[PeakSum]:
    """The 1..``max_peaks``-peak models of ``peak_shape`` (all Gaussian: gauss1d, else peaks1d)."""
    shapes = (peak_shape,) * max_peaks if isinstance(peak_shape, str) else tuple(peak_shape)
    if len(shapes) != max_peaks or any(s not in SHAPES for s in shapes):
        raise ValueError(f"peak_shape must be one of {tuple(SHAPES)} or a list of max_peaks = {max_peaks} "
                         f"of them, got {peak_shape!r}")
    if all(s == "gauss" for s in shapes):
        return [Gauss1D(n, background) for n in range(1, max_peaks + 1)]
    return [Peaks1D(shapes[:n], background) for n in range(1, max_peaks + 1)]


def _converted(p0: Any, model: PeakSum, xp: ModuleType) -> Any:
    """A 1-peak gauss1d start (amplitude, centre, sigma, background) as ``model``'s start."""
    if isinstance(model, Gauss1D):
        return p0
    peak = model.peak_block(0, p0[:, 0], p0[:, 1], FWHM_PER_SIGMA * p0[:, 2], xp)
    return xp.concatenate([peak, p0[:, 3:]], axis=-1).astype(np.float32)


def _weights(weights: Any, y: Any, xp: ModuleType) -> Any:
    """Weights as (n_fits, n) or (n,) float32 with 0 for non-finite entries, or ones."""
    if weights is None:
        return xp.ones(y.shape[-1], dtype=np.float32)
    w = xp.asarray(weights, dtype=np.float32)
    w = w.reshape(-1, y.shape[-1]) if w.ndim > 1 else w
    return xp.where(xp.isfinite(w), w, 0.0).astype(np.float32)


def _fit_rows(y: Any, e: Any, w: Any, rows: Any, model: Any, p0: Any, opts: dict[str, Any],
              xp: ModuleType) -> FitResult:
    """Fit ``model`` to the spectra ``rows`` (bool, (n_fits,)) only; the others get NaN values.
    With the covariance, for the errors of the areas the chosen fit reports.

    Rows not fitted get status ``INVALID_INPUT`` and 0 iterations; they are never chosen.
    """
    n_fits, n_params = y.shape[0], model.n_params
    out = FitResult(model, params=xp.full((n_fits, n_params), xp.nan, dtype=np.float32),
                    errors=xp.full((n_fits, n_params), xp.nan, dtype=np.float32),
                    chi2=xp.full(n_fits, xp.nan, dtype=np.float32), n_iter=xp.zeros(n_fits, dtype=np.int32),
                    status=xp.full(n_fits, Status.INVALID_INPUT, dtype=np.uint8), estimator=opts["estimator"],
                    device=opts["device"],
                    covariance=xp.full((n_fits, n_params, n_params), xp.nan, dtype=np.float32))
    if not bool(rows.any()):
        return out
    sub = fit(model, y[rows], e, p0=None if p0 is None else p0[rows], weights=w[rows] if w.ndim > 1 else w,
              covariance=True, **opts)
    for k in ("params", "errors", "chi2", "n_iter", "status", "covariance"):
        getattr(out, k)[rows] = getattr(sub, k)
    out.device = sub.device
    return out


def _model(r: FitResult, e: Any, xp: ModuleType) -> Any:
    """Model values of every fit, (n_fits, n)."""
    return r.model.evaluate(e[None, :], xp.asarray(r.params, dtype=np.float64), xp)


def _background_bic(y: Any, e: Any, w: Any, p0: Any, background: str, opts: dict[str, Any], points: _Points,
                    xp: ModuleType) -> Any:
    """BIC of the background alone (no peak), per spectrum; inf where it cannot be computed.

    Fitted as the 1-peak model with the amplitude held at 0 (centre and width then do not count),
    starting from the background of ``p0``; with no background the model is 0 (least squares) or
    not scored (Poisson).
    """
    model = get_model("gauss1d", n_peaks=1, background=background)
    start = xp.asarray(p0, dtype=np.float32).copy()
    start[:, 0] = 0.0
    if background == "none":
        r = FitResult(model, params=start, errors=xp.zeros_like(start), chi2=xp.zeros(y.shape[0], dtype=np.float32),
                      n_iter=xp.zeros(y.shape[0], dtype=np.int32),
                      status=xp.full(y.shape[0], Status.CONVERGED, dtype=np.uint8), estimator=opts["estimator"],
                      device=opts["device"])
        if opts["estimator"] == "poisson":
            return xp.full(y.shape[0], xp.inf)
    else:
        fixed = np.zeros(model.n_params, dtype=bool)
        fixed[:3] = True
        r = fit(model, y, e, p0=start, weights=w, fixed=fixed, **opts)
    bic = _bic(r, _model(r, e, xp), w, points, xp, k=model.n_params - 3)
    return xp.where(r.status == Status.CONVERGED, bic, xp.inf)


@dataclass(frozen=True)
class _Points:
    """What every BIC of a set of spectra shares: the points that count and the data there."""

    valid: Any  #: (n_fits, n) finite data with a positive weight
    n: Any  #: (n_fits,) number of valid points
    yy: Any  #: (n_fits, n) float64 data, 0 at invalid points

    @classmethod
    def of(cls, y: Any, w: Any, xp: ModuleType) -> _Points:
        valid = xp.isfinite(y) & (w > 0)
        return cls(valid, valid.sum(axis=-1), xp.where(valid, y, 0.0).astype(np.float64))


def _bic(r: FitResult, mu: Any, w: Any, points: _Points, xp: ModuleType, k: int | None = None) -> Any:
    """BIC of each fit (see the module docstring) with model values ``mu`` (:func:`_model`) and
    ``k`` free parameters (default: all the model's); inf where the fit has no valid points."""
    valid, n, yy = points.valid, points.n, points.yy
    if r.estimator == "poisson":
        mu = xp.maximum(mu, 1e-300)
        term = xp.where(yy > 0, yy * xp.log(xp.maximum(yy, 1e-300) / mu), 0.0) - (yy - mu)
        misfit = 2.0 * xp.where(valid, term, 0.0).sum(axis=-1)
    else:
        rss = xp.where(valid, w * (yy - mu) ** 2, 0.0).sum(axis=-1)
        misfit = n * xp.log(xp.maximum(rss, 1e-300) / xp.maximum(n, 1))
    k = r.model.n_params - len(r.model.held) if k is None else k
    return xp.where(n > k, misfit + k * xp.log(xp.maximum(n, 1)), xp.inf)


#: the per-peak values of a fit :func:`_select` keeps (PeakSum.peak_table), values then errors
PEAK_VALUES = ("amplitude", "center", "fwhm", "area")
#: and the profile of each peak, without errors (what the example spectra redraw)
PROFILE_VALUES = ("eta", "asymmetry")


def _peak_table(r: FitResult, xp: ModuleType, correlated: bool = True) -> dict[str, Any]:
    """Per peak (n_fits, N): amplitude, centre, FWHM, area and their errors (``*_err``); the area's
    from the fit's covariance, or (``correlated=False``) from the errors alone."""
    return r.model.peak_table(r.params, r.errors, xp, r.covariance if correlated else None)


def _admissible(r: FitResult, e: Any, min_significance: float, xp: ModuleType) -> Any:
    """Converged peaks with a significant height, height and width jointly resolved (see the
    module docstring), inside the window, narrower than a quarter of it and at least one mean
    channel spacing wide (narrower ones are not resolved: noise or spikes)."""
    t = _peak_table(r, xp, correlated=False)
    a, da = t["amplitude"], t["amplitude_err"]
    lo, hi = float(e.min()), float(e.max())
    significant = (a >= min_significance * da) & (t["area"] >= min_significance * t["area_err"])
    inside = (t["center"] >= lo) & (t["center"] <= hi)
    sigma = t["fwhm"] / FWHM_PER_SIGMA  # the limits are those of a Gaussian of this FWHM
    width = (sigma < 0.25 * (hi - lo)) & (sigma >= (hi - lo) / (e.shape[0] - 1))
    return (r.status == Status.CONVERGED) & xp.all(significant & inside & width & (da > 0), axis=-1)


def _first_start(y: Any, e: Any, background: str, estimator: str, xp: ModuleType) -> Any:
    """Start of the 1-peak fit: the background first, then the peak from what rises above it.

    The background is a quadratic baseline that peaks cannot pull up (modified polynomial fit:
    fit, clip the spectrum to the fit from above, refit; BASELINE_ITERATIONS times), so a sloped
    or curved background is not mistaken for the peak, as a level taken from a low quantile is
    (the "peak" guess then starts at the window's high end). The peak is the highest feature
    above the baseline (:func:`_peak_guess`); the start background is the straight line (or
    level) closest to the baseline, raised where needed to stay positive for the Poisson
    estimator (its likelihood needs a positive model everywhere).
    """
    n_bg = N_BACKGROUND[background]
    ec = e - e.mean()  # centred: well-conditioned fits
    finite = xp.isfinite(y)
    fill = xp.where(finite, y, 0.0).sum(axis=-1, keepdims=True) / xp.maximum(finite.sum(axis=-1, keepdims=True), 1)
    b = xp.where(finite, y, fill).astype(np.float64)
    quad = xp.stack([xp.ones_like(ec), ec, ec**2], axis=-1)  # (n, 3)
    solve = xp.linalg.pinv(quad).T  # (n, 3): least-squares quadratic coefficients of a spectrum
    fitted, quad_t = xp.empty_like(b), xp.ascontiguousarray(quad.T)
    for _ in range(BASELINE_ITERATIONS):  # in place: no (n_fits, n) allocation per pass
        xp.matmul(b @ solve, quad_t, out=fitted)
        xp.minimum(b, fitted, out=b)
    base = (b @ solve) @ quad.T
    peak = _peak_guess(xp.where(finite, y, fill) - base, e, xp)
    lin = quad[:, : max(n_bg, 1)]
    coef = base @ xp.linalg.pinv(lin).T  # (n_fits, n_bg): the line (level) closest to the baseline
    if n_bg == 0:
        return peak.astype(np.float32)
    line = coef @ lin.T
    if estimator == "poisson":
        floor = 1e-3 * xp.where(finite, xp.abs(y), 0.0).max(axis=-1) + 1e-6
        coef[:, 0] = coef[:, 0] + xp.maximum(floor - line.min(axis=-1), 0.0)
    bg = [coef[:, 0] - (coef[:, 1] * float(e.mean()) if n_bg == 2 else 0.0)] + ([coef[:, 1]] if n_bg == 2 else [])
    p0 = xp.concatenate([peak] + [v[:, None] for v in bg], axis=-1)  # background in powers of E
    return xp.where(xp.isfinite(p0), p0, 0.0).astype(np.float32)


def _peak_guess(resid: Any, e: Any, xp: ModuleType) -> Any:
    """Amplitude, centre and sigma, (n_fits, 3), of the highest feature of ``resid``.

    The residual is smoothed over ``n / 64`` (at least 3) channels, so single noisy channels do
    not win; the centre is its maximum, the width that of the contiguous run above half of it
    (between 2 channel spacings and a quarter of the window).
    """
    n = e.shape[0]
    smooth = ndimage_module(xp).uniform_filter1d(resid, max(3, n // 64), axis=-1, mode="nearest")
    i = xp.argmax(smooth, axis=-1)[:, None]
    a = xp.maximum(xp.take_along_axis(smooth, i, axis=-1), 0.0)
    channel = xp.arange(n)[None, :]
    below = smooth < 0.5 * a
    left = xp.where(below & (channel < i), channel, -1).max(axis=-1) + 1
    right = xp.where(below & (channel > i), channel, n).min(axis=-1) - 1
    spacing = float(xp.abs(e[-1] - e[0])) / (n - 1)
    fwhm = xp.abs(e[right] - e[left]) + spacing
    sigma = xp.clip(fwhm / FWHM_PER_SIGMA, 2 * spacing, 0.25 * (n - 1) * spacing)
    return xp.stack([a[:, 0], e[i[:, 0]], sigma], axis=-1)


def _next_start(r: FitResult, model: PeakSum, mu: Any, y: Any, e: Any, w: Any, xp: ModuleType) -> Any:
    """Start of the (N+1)-peak fit: the N-peak parameters plus a peak at the largest residual.

    The residual is weighted by sqrt(w) and smoothed over the median first-peak sigma (a matched
    filter: systematic misfit of peak width stands out of the channel noise); the new peak gets
    the smoothed unweighted residual there as amplitude and 0.6 x the first peak's sigma.
    ``mu``: the N-peak model values (:func:`_model`); ``model``: the (N+1)-peak model.
    """
    ndi = ndimage_module(xp)
    params = xp.asarray(r.params, dtype=np.float64)
    resid = xp.where(xp.isfinite(y), y - mu, 0.0)
    spacing = float(e.max() - e.min()) / (e.shape[0] - 1)
    first_sigma = _peak_table(r, xp, correlated=False)["fwhm"][:, 0] / FWHM_PER_SIGMA
    width = _median_width(first_sigma, spacing, e.shape[0], xp)
    z = ndi.uniform_filter1d(resid * xp.sqrt(xp.broadcast_to(w, resid.shape)), width, axis=-1, mode="nearest")
    i = xp.argmax(z, axis=-1)
    smooth = ndi.uniform_filter1d(resid, width, axis=-1, mode="nearest")
    floor = 1e-6 * xp.where(xp.isfinite(y), xp.abs(y), 0.0).max(axis=-1)
    amp = xp.maximum(xp.take_along_axis(smooth, i[:, None], axis=-1)[:, 0], floor)
    n = r.model.n_peaks
    new = model.peak_block(n, amp, e[i], 0.6 * FWHM_PER_SIGMA * first_sigma, xp)
    split = r.model.n_per_peak * n
    p0 = xp.concatenate([params[:, :split], new, params[:, split:]], axis=-1)
    return xp.where(xp.isfinite(p0), p0, 0.0).astype(np.float32)


def _median_width(sigma: Any, spacing: float, n: int, xp: ModuleType) -> int:
    """Median fitted sigma in channels (at least 3, at most n / 8): the residual smoothing window."""
    finite = sigma[xp.isfinite(sigma) & (sigma > 0)]
    channels = float(xp.median(finite)) / spacing if finite.size else 3.0
    return int(min(max(round(channels), 3), max(n // 8, 3)))


def _select(results: list[FitResult], bic: Any, background_fitted: Any, y: Any, e: Any, max_peaks: int,
            xp: ModuleType) -> dict[str, Any]:
    """Pick the BIC-best admissible fit per pixel and derive the per-pixel and per-peak values.

    Without an admissible fit the status is ``NO_PEAK`` where the background alone was fitted (no
    significant emission: a measurement), else the 1-peak fit's."""
    best = xp.argmin(bic, axis=-1)
    n_peaks = xp.where(xp.isfinite(bic.min(axis=-1)), best + 1, 0).astype(np.int8)
    peaks = xp.stack([_padded(r, max_peaks, xp) for r in results])  # (N, n_fits, max_peaks, 10)
    idx = xp.broadcast_to(best[None, :, None, None], (1,) + peaks.shape[1:])
    chosen = xp.take_along_axis(peaks, idx, axis=0)[0]
    chosen = xp.where((n_peaks > 0)[:, None, None], chosen, xp.nan)
    order = xp.argsort(xp.where(xp.isfinite(chosen[..., 1]), chosen[..., 1], xp.inf), axis=-1)
    chosen = xp.take_along_axis(chosen, order[..., None], axis=1)
    a, mu, fwhm, area, da, dmu, dfwhm, darea, eta, alpha = (chosen[..., j] for j in range(peaks.shape[-1]))
    dom = xp.argmax(xp.where(xp.isfinite(area), area, -xp.inf), axis=-1)[:, None]

    def pick(v: Any) -> Any:
        return xp.take_along_axis(v, dom, axis=-1)[:, 0]

    fallback = xp.where(n_peaks > 0, best, 0)
    chi2 = xp.stack([r.chi2 for r in results])
    status = xp.stack([r.status for r in results])
    return {
        "energy": pick(mu), "energy_err": pick(dmu),
        "fwhm_mev": 1e3 * pick(fwhm), "fwhm_err_mev": 1e3 * pick(dfwhm),
        "amplitude": pick(a), "amplitude_err": pick(da),
        "area": pick(area), "area_err": pick(darea),
        "total_area": xp.where(n_peaks > 0, xp.nansum(area, axis=-1), xp.nan),
        "centroid": _centroid(results, best, n_peaks, y, e, xp),
        "n_peaks": n_peaks,
        "chi2": xp.take_along_axis(chi2, fallback[None], axis=0)[0],
        "status": xp.where((n_peaks == 0) & background_fitted, np.uint8(Status.NO_PEAK),
                           xp.take_along_axis(status, fallback[None], axis=0)[0]).astype(np.uint8),
        "bic": bic,
        "peak_energy": mu, "peak_energy_err": dmu, "peak_fwhm_mev": 1e3 * fwhm,
        "peak_amplitude": a, "peak_area": area, "peak_eta": eta, "peak_asymmetry": alpha,
    }


def _padded(r: FitResult, max_peaks: int, xp: ModuleType) -> Any:
    """(n_fits, max_peaks, 10): :data:`PEAK_VALUES`, their errors and :data:`PROFILE_VALUES`, NaN-padded."""
    t = _peak_table(r, xp)
    v = xp.stack([t[k] for k in PEAK_VALUES] + [t[k + "_err"] for k in PEAK_VALUES]
                 + [t[k] for k in PROFILE_VALUES], axis=-1)
    pad = xp.full((v.shape[0], max_peaks - v.shape[1], v.shape[2]), xp.nan)
    return xp.concatenate([v, pad], axis=1)


def _centroid(results: list[FitResult], best: Any, n_peaks: Any, y: Any, e: Any, xp: ModuleType) -> Any:
    """Intensity-weighted mean energy of the spectrum minus the chosen fit's background.

    Trapezoid-like weights |dE| make it correct on a non-uniform axis; no peak model is used.
    """
    bg = xp.zeros(y.shape, dtype=np.float64)
    for n, r in enumerate(results):
        b = _background(r, e, xp)
        bg = xp.where((best == n)[:, None], b, bg)
    signal = xp.where(xp.isfinite(y), y - bg, 0.0) * xp.abs(xp.gradient(e))
    total = signal.sum(axis=-1)
    c = (signal * e).sum(axis=-1) / xp.where(total != 0, total, xp.nan)
    return xp.where(n_peaks > 0, c, xp.nan)


def _background(r: FitResult, e: Any, xp: ModuleType) -> Any:
    """The fitted background alone, (n_fits, n)."""
    return r.model.background_values(e[None, :], xp.asarray(r.params, dtype=np.float64), xp)
