"""Derived quantities from fitted Bragg and superlattice peaks, per scan position.

Every function is a pure array function in the ``xp`` idiom: it runs on NumPy or CuPy arrays
(whichever it is given) and is vectorised over any leading scan axes ``(...)``. Per-reflection
inputs carry the reflections on the last axis, ``(..., n_refl)``.

Conventions
-----------
* Widths are FWHM (full width at half maximum); a Gaussian of standard deviation sigma has
  ``FWHM = 2 sqrt(2 ln 2) sigma ~ 2.3548 sigma``.
* q in A^-1 (any reciprocal length works; lengths then come out in its reciprocal unit).
* Azimuths in degrees at the input, angular widths in radians where a formula needs them.
* Uncertainties are first-order (linear) propagations of the fit standard errors, inputs treated
  as independent unless stated. Least-squares errors are the formal covariance of the weighted
  fit (weights 1/sigma^2) when errors are given; without errors the fit is unweighted and its
  covariance is scaled by the residual variance chi^2 / (n - n_unknowns) (NaN when n equals the
  number of unknowns).
* Missing values (failed fits) are NaN at the input and propagate as NaN.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from gpuproc.backend import array_namespace

#: FWHM of a Gaussian in units of its standard deviation, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Scherrer shape factor for the Williamson-Hall size.
DEFAULT_SHAPE_FACTOR = 0.85
TWO_PI = 2.0 * math.pi
#: relative determinant below which a normal matrix counts as singular
_SINGULAR = 1e-12


def _quiet(func: Callable[..., Any]) -> Callable[..., Any]:
    """Silence NumPy's warnings on NaN and division by zero: missing values are NaN by design."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(invalid="ignore", divide="ignore"):
            return func(*args, **kwargs)

    return wrapper


class Estimate(NamedTuple):
    """A value and its one-standard-deviation uncertainty (same shape, NaN where unknown)."""

    value: Any
    error: Any


class Lattice(NamedTuple):
    """Lattice parameters and errors (A for q in A^-1); ``c`` is NaN when no l != 0 is listed."""

    a: Any
    b: Any
    c: Any
    a_err: Any
    b_err: Any
    c_err: Any


class WHFlag(enum.IntFlag):
    """Why a Williamson-Hall line is unphysical (bits of :attr:`WilliamsonHall.flag`)."""

    OK = 0
    TOO_FEW = 1  #: fewer than 2 valid reflections, or all at the same q
    NEGATIVE_SLOPE = 2  #: slope eps^2 < 0
    NEGATIVE_INTERCEPT = 4  #: intercept dq0^2 <= 0


class WilliamsonHall(NamedTuple):
    """Per-position Williamson-Hall result; strain, size and dq_size are NaN where flag != 0."""

    strain: Any  #: microstrain eps (dimensionless)
    strain_err: Any
    size: Any  #: s = 2 pi K / dq0, reciprocal unit of q (A for q in A^-1)
    size_err: Any
    dq_size: Any  #: size width dq0 = sqrt(intercept), unit of q
    dq_size_err: Any
    slope: Any  #: fitted eps^2
    slope_err: Any
    intercept: Any  #: fitted dq0^2, unit of q squared
    intercept_err: Any
    slope_intercept_cov: Any  #: covariance of slope and intercept (negative: they share the reflections)
    n_used: Any  #: number of valid reflections in the fit
    flag: Any  #: WHFlag bits, uint8


class Superlattice(NamedTuple):
    """SAXS superlattice parameters (A for q in A^-1)."""

    a: Any  #: (..., n_directions) a_i = 2 pi / q_i
    a_err: Any
    a_mean: Any  #: (...,) <a_SC>, mean over directions
    a_mean_err: Any


def fwhm(sigma: Any, sigma_err: Any | None = None) -> Estimate:
    """FWHM of a Gaussian from its standard deviation.

    ``FWHM = 2 sqrt(2 ln 2) sigma``, ``err(FWHM) = 2 sqrt(2 ln 2) err(sigma)``; same unit as sigma.

    Parameters
    ----------
    sigma : array
        Gaussian standard deviations (e.g. fitted ``sigma_q`` in A^-1, ``sigma_phi`` in degrees).
    sigma_err : array, optional
        Their standard errors; NaN errors when omitted.
    """
    xp = array_namespace(sigma, sigma_err)
    value = FWHM_PER_SIGMA * xp.asarray(sigma)
    return Estimate(value, _scaled_error(FWHM_PER_SIGMA, sigma_err, value, xp))


def orientation(phi0_deg: Any, phi0_err: Any | None = None, *, period: float = 360.0,
                reference: float = 0.0) -> Estimate:
    """In-plane orientation: the azimuth ``phi0`` of the 100 reflection, in degrees.

    ``value = reference + w(phi0 - reference)`` with ``w`` wrapping into ``[-period/2, period/2)``;
    the error passes through unchanged.

    Parameters
    ----------
    phi0_deg : array
        Fitted azimuth of the 100 spot (degrees).
    phi0_err : array, optional
        Its standard error (degrees).
    period : float
        Symmetry period of the orientation (degrees): 360 keeps 100 and -100 apart, 180 merges
        Friedel mates, 90 a four-fold (pseudo)cubic lattice.
    reference : float
        Centre of the output range (degrees), e.g. the mean orientation of the crystal.
    """
    xp = array_namespace(phi0_deg, phi0_err)
    d = xp.asarray(phi0_deg) - reference
    value = reference + d - period * xp.floor(d / period + 0.5)
    return Estimate(value, _scaled_error(1.0, phi0_err, value, xp))


@_quiet
def lattice_parameters(q0: Any, hkl: Sequence[Sequence[int]], q0_err: Any | None = None) -> Lattice:
    """Orthorhombic lattice parameters by linear least squares over the listed reflections.

    With ``d = 2 pi / q0`` each reflection gives one equation, linear in the unknowns
    ``x = (1/a^2, 1/b^2[, 1/c^2])``::

        1/d^2 = (q0 / 2 pi)^2 = h^2/a^2 + k^2/b^2 + l^2/c^2

    solved per position by weighted least squares with ``err(1/d^2) = 2 q0 err(q0) / (2 pi)^2``.
    Then ``a = x_a^(-1/2)`` and ``err(a) = a err(x_a) / (2 x_a)`` (same for b, c). The unknown
    1/c^2 is included only when some listed reflection has l != 0; otherwise ``c`` is NaN.
    Reflections with NaN q0 (or NaN / non-positive error: fits that did not pass) are left out;
    a parameter that no remaining reflection involves is NaN (the others are still solved), and a
    position whose remaining reflections do not determine their unknowns gives NaN.

    Parameters
    ----------
    q0 : array, shape (..., n_refl)
        Fitted radial positions (A^-1).
    hkl : sequence of (h, k, l), length n_refl
        Miller indices of the reflections on the last axis of ``q0``.
    q0_err : array, shape (..., n_refl), optional
        Standard errors of q0 (A^-1); weights 1/err^2. Unweighted when omitted.

    Returns
    -------
    Lattice
        a, b, c and their errors (A), each of shape (...).
    """
    xp = array_namespace(q0, q0_err)
    q0 = xp.asarray(q0, dtype=float)
    miller = xp.asarray(hkl, dtype=float) ** 2
    if miller.shape != (q0.shape[-1], 3):
        raise ValueError(f"hkl must list one (h, k, l) per reflection: {q0.shape[-1]}, got {miller.shape}")
    used = [j for j in range(3) if bool((miller[:, j] > 0).any())]
    y = (q0 / TWO_PI) ** 2
    y_err = None if q0_err is None else 2.0 * q0 * xp.asarray(q0_err, dtype=float) / TWO_PI**2
    design = xp.broadcast_to(miller[:, used], q0.shape + (len(used),))
    x, cov = _weighted_lstsq(design, y, y_err, xp)
    out = [xp.full(q0.shape[:-1], xp.nan) for _ in range(6)]
    for i, j in enumerate(used):
        out[j], out[j + 3] = _inverse_sqrt(x[..., i], xp.sqrt(cov[..., i, i]), xp)
    return Lattice(*out)


@_quiet
def williamson_hall(q0: Any, fwhm_q: Any, fwhm_q_err: Any | None = None, *,
                    shape_factor: float = DEFAULT_SHAPE_FACTOR,
                    instrumental: Any | Callable[[Any], Any] | None = None) -> WilliamsonHall:
    """Williamson-Hall analysis per position over the reflections.

    With radial FWHM ``dq`` (unit of q) the line, straight in q^2, ::

        dq^2 = eps^2 q0^2 + dq0^2

    is fitted by weighted linear least squares of ``y = dq^2`` against ``x = q0^2`` with
    ``err(y) = 2 dq err(dq)`` (the q0 errors, about 100 times smaller in relative terms, are
    neglected). Then microstrain ``eps = sqrt(slope)``, size width ``dq0 = sqrt(intercept)`` and
    crystallite size ``s = 2 pi K / dq0`` (Scherrer with FWHM widths, shape factor K), with
    ``err(eps) = err(slope) / (2 eps)``, ``err(dq0) = err(intercept) / (2 dq0)``,
    ``err(s) = s err(dq0) / dq0``; the covariance of slope and intercept is kept (see
    :func:`disorder_over_reflections`).

    An instrumental radial FWHM ``dq_inst`` is removed in quadrature first,
    ``dq^2 <- dq^2 - dq_inst^2``; a reflection where this is not positive is left out.
    A position is unphysical, reported as NaN with a :class:`WHFlag`, when fewer than 2 valid
    reflections remain (or all lie at the same q), the slope is negative or the intercept not
    positive.

    Parameters
    ----------
    q0 : array, shape (..., n_refl)
        Fitted radial positions (A^-1).
    fwhm_q : array, shape (..., n_refl)
        Radial FWHM (A^-1) of whatever radial profile was fitted: ``fwhm(sigma_q).value`` of
        gauss2d_polar, ``fwhm_q`` of pvoigt2d_polar (the pipeline stores which as ``spot_model``).
    fwhm_q_err : array, shape (..., n_refl), optional
        Standard errors of ``fwhm_q``; unweighted fit when omitted.
    shape_factor : float
        Scherrer constant K (0.85 by default) for FWHM widths.
    instrumental : array of shape (n_refl,) or (..., n_refl), or callable q -> FWHM, optional
        Instrumental radial FWHM (A^-1) per reflection, or a function of q0.

    Returns
    -------
    WilliamsonHall
        Arrays of shape (...): size in A for q in A^-1 (divide by 10 for nm).
    """
    xp = array_namespace(q0, fwhm_q, fwhm_q_err)
    q0 = xp.asarray(q0, dtype=float)
    width = xp.asarray(fwhm_q, dtype=float)
    y = width**2 - instrumental_width(q0, instrumental) ** 2
    y = xp.where(y > 0, y, xp.nan)
    y_err = None if fwhm_q_err is None else 2.0 * width * xp.asarray(fwhm_q_err, dtype=float)
    design = xp.stack([q0**2, xp.ones_like(q0)], axis=-1)
    coef, cov = _weighted_lstsq(design, y, y_err, xp)
    slope, intercept = coef[..., 0], coef[..., 1]
    slope_err, intercept_err = xp.sqrt(cov[..., 0, 0]), xp.sqrt(cov[..., 1, 1])
    n_used = xp.sum(xp.isfinite(y) & xp.isfinite(q0), axis=-1)
    flag = _wh_flags(slope, intercept, n_used, xp)
    ok = flag == 0
    strain, strain_err = _sqrt_estimate(xp.where(ok, slope, xp.nan), slope_err, xp)
    dq_size, dq_size_err = _sqrt_estimate(xp.where(ok, intercept, xp.nan), intercept_err, xp)
    size = shape_factor * TWO_PI / dq_size
    return WilliamsonHall(strain, strain_err, size, size * dq_size_err / dq_size, dq_size, dq_size_err,
                          slope, slope_err, intercept, intercept_err, cov[..., 0, 1], n_used, flag)


def instrumental_width(q0: Any, instrumental: Any | Callable[[Any], Any] | None) -> Any:
    """Instrumental radial FWHM at the reflections: zero, a per-reflection array, or ``f(q0)``."""
    xp = array_namespace(q0)
    if instrumental is None:
        return xp.zeros_like(q0)
    if callable(instrumental):
        return xp.asarray(instrumental(q0), dtype=float)
    return xp.broadcast_to(xp.asarray(instrumental, dtype=float), q0.shape)


@_quiet
def orientational_disorder(fwhm_phi_deg: Any, q0: Any, dq_size: Any, strain: Any, *,
                           fwhm_phi_err: Any | None = None, q0_err: Any | None = None,
                           dq_size_err: Any | None = None, strain_err: Any | None = None) -> Estimate:
    """Orientational disorder: azimuthal width corrected for size and strain broadening (rad).

    The arc width ``q0 dphi`` adds in quadrature with the size width ``dq0`` and the strain
    width ``eps q0``, so ::

        dphi_do = sqrt(dphi^2 - (dq0 / q0)^2 - eps^2)

    with ``dphi`` the azimuthal FWHM in radians. NaN where the argument is negative. First-order
    error (independent inputs; an omitted error counts as zero, all omitted gives NaN)::

        err^2 = [(dphi e_dphi)^2 + (dq0 e_dq0 / q0^2)^2 + (dq0^2 e_q0 / q0^3)^2 + (eps e_eps)^2] / dphi_do^2

    Parameters
    ----------
    fwhm_phi_deg : array, shape (..., n_refl) or (...)
        Azimuthal FWHM (degrees).
    q0 : array, broadcastable
        Radial position of the reflection (A^-1).
    dq_size : array, broadcastable
        Size width dq0 (A^-1), e.g. :attr:`WilliamsonHall.dq_size` (add ``[..., None]`` to
        broadcast a per-position value over reflections).
    strain : array, broadcastable
        Microstrain eps (dimensionless).
    fwhm_phi_err, q0_err, dq_size_err, strain_err : array, optional
        Standard errors (degrees for ``fwhm_phi_err``, the units above otherwise).
    """
    xp = array_namespace(fwhm_phi_deg, q0, dq_size, strain)
    dphi = xp.deg2rad(xp.asarray(fwhm_phi_deg, dtype=float))
    q0, dq, eps = (xp.asarray(v, dtype=float) for v in (q0, dq_size, strain))
    u = dphi**2 - _size_strain_arc2(q0, dq**2, eps**2)
    value = xp.sqrt(xp.where(u >= 0, u, xp.nan))
    terms = [(dphi, _rad(fwhm_phi_err, xp)), (dq / q0**2, dq_size_err), (dq**2 / q0**3, q0_err), (eps, strain_err)]
    terms = [(g, e) for g, e in terms if e is not None]
    if not terms:
        return Estimate(value, xp.full_like(value, xp.nan))
    var = sum(xp.square(g * xp.asarray(e, dtype=float)) for g, e in terms)
    return Estimate(value, xp.sqrt(var) / value)


@_quiet
def disorder_over_reflections(fwhm_phi_deg: Any, fwhm_phi_err: Any, q0: Any, wh: WilliamsonHall,
                              q0_err: Any | None = None) -> Estimate:
    """Orientational disorder of each position from all its reflections (rad).

    Every reflection i estimates the squared disorder without bias, ::

        u_i = dphi_i^2 - err(dphi_i)^2 - (I / q_i^2 + S)

    with ``dphi`` the azimuthal FWHM in radians and ``I = dq0^2``, ``S = eps^2`` the position's
    Williamson-Hall intercept and slope (so ``I / q^2 + S = (dq0 / q0)^2 + eps^2``); the
    ``err^2`` term removes the mean excess of a squared noisy width. The u_i are averaged with
    weights ``w_i = 1 / var_i``, ``var_i = (2 dphi_i err(dphi_i))^2 + (2 I err(q_i) / q_i^3)^2``,
    and the square root is taken once, ``dphi_do = sqrt(u)``. (A square root per reflection,
    averaged with weights that grow with its own value and with the negative ``u_i`` dropped, is
    biased high where the disorder is small.) Error::

        err(u)^2 = 1 / sum(w) + C_SS + 2 m C_SI + m^2 C_II,   m = sum(w / q^2) / sum(w)
        err(dphi_do) = err(u) / (2 dphi_do)

    with C the covariance of the line's (S, I): all reflections share the line, and slope and
    intercept are anticorrelated, so their errors do not add in quadrature. NaN where the line is
    flagged (:class:`WHFlag`), no reflection has an error, or ``u < 0``. Measured on draws with 3 %
    width errors (tests/test_waxs_disorder.py): pull mean -0.14, sd 1.02 (the weights, from the
    measured widths, favour reflections that came out narrow).

    Parameters
    ----------
    fwhm_phi_deg, fwhm_phi_err : array, shape (..., n_refl)
        Azimuthal FWHM and its standard error (degrees); NaN for failed fits.
    q0 : array, shape (..., n_refl)
        Radial positions (unit of q).
    wh : WilliamsonHall
        The positions' Williamson-Hall result (fields of shape (...)) from the same reflections.
    q0_err : array, shape (..., n_refl), optional
        Standard errors of q0.
    """
    xp = array_namespace(fwhm_phi_deg, fwhm_phi_err, q0)
    dphi, dphi_err = xp.deg2rad(xp.asarray(fwhm_phi_deg, dtype=float)), _rad(fwhm_phi_err, xp)
    q0 = xp.asarray(q0, dtype=float)
    slope, intercept = (xp.asarray(v, dtype=float)[..., None] for v in (wh.slope, wh.intercept))
    u = dphi**2 - dphi_err**2 - _size_strain_arc2(q0, intercept, slope)
    var = (2.0 * dphi * dphi_err) ** 2
    if q0_err is not None:
        var = var + (2.0 * intercept * xp.asarray(q0_err, dtype=float) / q0**3) ** 2
    w = xp.where(xp.isfinite(u) & xp.isfinite(var) & (var > 0), 1.0 / var, 0.0)
    total = w.sum(axis=-1)
    mean_u = (w * xp.where(w > 0, u, 0.0)).sum(axis=-1) / total
    m = (w * xp.where(w > 0, 1.0 / q0**2, 0.0)).sum(axis=-1) / total
    shared = wh.slope_err**2 + 2.0 * m * wh.slope_intercept_cov + m**2 * wh.intercept_err**2
    ok = (xp.asarray(wh.flag) == 0) & (total > 0) & (mean_u >= 0)
    value = xp.sqrt(xp.where(ok, mean_u, xp.nan))
    return Estimate(value, xp.sqrt(1.0 / total + shared) / (2.0 * value))


@_quiet
def superlattice(q: Any, q_err: Any | None = None,
                 groups: Sequence[Sequence[int]] | None = None) -> Superlattice:
    """Superlattice (SC) parameters from the first-order SAXS peaks.

    For each lattice direction i, ``a_i = 2 pi / q_i`` with ``q_i`` the mean of its peaks that
    passed (finite q and error; e.g. a Friedel pair, or one mate when the other fit failed; NaN when
    none did), ``err(a_i) = a_i err(q_i) / q_i``; the mean lattice parameter is
    ``<a_SC> = mean_i a_i`` (``(a1 + a2) / 2`` for two directions; NaN when a direction is
    missing), ``err = sqrt(sum err_i^2) / n``.

    Parameters
    ----------
    q : array, shape (..., n_peaks)
        Fitted radial positions of the SAXS peaks (A^-1).
    q_err : array, shape (..., n_peaks), optional
        Their standard errors.
    groups : sequence of index sequences, optional
        Peaks belonging to each direction, e.g. ``((0, 2), (1, 3))`` for peaks ordered
        10, 01, -10, 0-1. Each peak is its own direction by default.

    Returns
    -------
    Superlattice
        a (..., n_directions), a_mean (...), with errors; A for q in A^-1.
    """
    xp = array_namespace(q, q_err)
    q = xp.asarray(q, dtype=float)
    groups = [[j] for j in range(q.shape[-1])] if groups is None else [list(g) for g in groups]
    e = None if q_err is None else xp.asarray(q_err, dtype=float)
    passed = xp.isfinite(q) if e is None else xp.isfinite(q) & xp.isfinite(e)
    n_dir = xp.stack([passed[..., g].sum(axis=-1) for g in groups], axis=-1)
    q_dir = xp.stack([xp.where(passed[..., g], q[..., g], 0.0).sum(axis=-1) for g in groups], axis=-1) / n_dir
    a = TWO_PI / q_dir
    if e is None:
        a_err = xp.full_like(a, xp.nan)
    else:
        var = [xp.where(passed[..., g], e[..., g] ** 2, 0.0).sum(axis=-1) for g in groups]
        a_err = a * xp.sqrt(xp.stack(var, axis=-1)) / n_dir / q_dir
    n = len(groups)
    return Superlattice(a, a_err, a.mean(axis=-1), xp.sqrt((a_err**2).sum(axis=-1)) / n)


def _weighted_lstsq(design: Any, y: Any, y_err: Any | None, xp: ModuleType) -> tuple[Any, Any]:
    """Batched weighted linear least squares ``y ~ design @ x``, one system per leading index.

    design (..., n, p), y and y_err (..., n). Rows with a non-finite value, or non-finite or
    non-positive error, get zero weight. An unknown that no valid row involves (e.g. 1/c^2 when
    every 00l fit failed) is left out: NaN, with the others solved without it. Returns x (..., p)
    and its covariance (..., p, p), NaN where the normal matrix is singular. With ``y_err`` the
    covariance is (J^T W J)^-1 with W = 1/err^2; without, the fit is unweighted and the
    covariance scaled by chi^2 / (n - p) (p counting the unknowns solved).
    """
    w = xp.ones_like(y) if y_err is None else 1.0 / xp.asarray(y_err, dtype=float) ** 2
    valid = xp.isfinite(y) & xp.isfinite(w) & (w > 0) & xp.all(xp.isfinite(design), axis=-1)
    w = xp.where(valid, w, 0.0)
    y0 = xp.where(valid, y, 0.0)
    design0 = xp.where(valid[..., None], design, 0.0)
    normal = xp.einsum("...ni,...n,...nj->...ij", design0, w, design0)
    rhs = xp.einsum("...ni,...n->...i", design0, w * y0)
    eye = xp.eye(normal.shape[-1])
    solved = xp.diagonal(normal, axis1=-2, axis2=-1) > 0  # (..., p): unknowns some valid row involves
    normal = normal + eye * ~solved[..., None, :]  # unit pivots for the others
    p = solved.sum(axis=-1)
    diag = xp.prod(xp.diagonal(normal, axis1=-2, axis2=-1), axis=-1)
    good = xp.abs(xp.linalg.det(normal)) > _SINGULAR * diag
    cov = xp.linalg.inv(xp.where(good[..., None, None], normal, eye))
    x = xp.einsum("...ij,...j->...i", cov, rhs)
    if y_err is None:
        n = valid.sum(axis=-1)
        resid = xp.where(valid, y0 - xp.einsum("...ni,...i->...n", design0, x), 0.0)
        scale = xp.where(n > p, (resid**2).sum(axis=-1) / (n - p), xp.nan)
        cov = cov * scale[..., None, None]
    keep = good[..., None] & solved
    x = xp.where(keep, x, xp.nan)
    cov = xp.where(keep[..., :, None] & keep[..., None, :], cov, xp.nan)
    return x, cov


def _size_strain_arc2(q0: Any, dq_size2: Any, strain2: Any) -> Any:
    """``(dq0 / q0)^2 + eps^2`` from ``dq0^2`` and ``eps^2``: the size and strain part of a squared
    azimuthal FWHM (rad^2)."""
    return dq_size2 / q0**2 + strain2


def _wh_flags(slope: Any, intercept: Any, n_used: Any, xp: ModuleType) -> Any:
    """WHFlag bits for each position."""
    too_few = (n_used < 2) | ~xp.isfinite(slope) | ~xp.isfinite(intercept)
    flag = xp.where(too_few, int(WHFlag.TOO_FEW), 0)
    flag = flag | xp.where(~too_few & (slope < 0), int(WHFlag.NEGATIVE_SLOPE), 0)
    flag = flag | xp.where(~too_few & (intercept <= 0), int(WHFlag.NEGATIVE_INTERCEPT), 0)
    return flag.astype(xp.uint8)


def _sqrt_estimate(x: Any, x_err: Any, xp: ModuleType) -> Estimate:
    """``sqrt(x)`` and its first-order error ``err(x) / (2 sqrt(x))``; NaN for x < 0."""
    root = xp.sqrt(xp.where(x >= 0, x, xp.nan))
    return Estimate(root, x_err / (2.0 * root))


def _inverse_sqrt(x: Any, x_err: Any, xp: ModuleType) -> Estimate:
    """``x^(-1/2)`` and its first-order error ``x^(-3/2) err(x) / 2``; NaN for x <= 0."""
    v = 1.0 / xp.sqrt(xp.where(x > 0, x, xp.nan))
    return Estimate(v, 0.5 * v**3 * x_err)


def _scaled_error(factor: float, err: Any | None, like: Any, xp: ModuleType) -> Any:
    """``factor * err``, or NaN shaped like ``like`` when there is no error."""
    return xp.full_like(like, xp.nan, dtype=float) if err is None else factor * xp.asarray(err, dtype=float)


def _rad(deg: Any | None, xp: ModuleType) -> Any | None:
    """Degrees to radians, passing None through."""
    return None if deg is None else xp.deg2rad(xp.asarray(deg, dtype=float))


