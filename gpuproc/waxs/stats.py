"""Statistics across scan positions: summaries of maps, size correlations, binned medians and the
empirical power law ``a - a0 = C s^-alpha``, and the global Williamson-Hall line.

These run once per scan on small arrays, so they use NumPy (SciPy's ``curve_fit`` for the power
law, imported only then; CuPy inputs are copied to the host). NaN marks a missing value everywhere and is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from gpuproc.backend import to_numpy
from gpuproc.waxs.betainc import betainc
from gpuproc.waxs.derive import DEFAULT_SHAPE_FACTOR, WilliamsonHall, williamson_hall

#: standard error of a median in units of sigma / sqrt(n) for normal data, sqrt(pi / 2)
_MEDIAN_SE = float(np.sqrt(np.pi / 2.0))


class MapSummary(NamedTuple):
    """Mean and quartiles of one map over its finite values."""

    mean: float
    q1: float
    median: float
    q3: float
    n: int  #: number of finite values


class Correlation(NamedTuple):
    """Pearson correlation over the positions where both maps are finite."""

    r: float
    p_value: float
    n: int


class BinnedMedians(NamedTuple):
    """Medians of a quantity in bins of another (e.g. lattice parameter in size bins)."""

    centers: np.ndarray  #: bin centres
    medians: np.ndarray  #: NaN for bins with fewer than ``min_count`` values
    errors: np.ndarray  #: standard error of the median, sqrt(pi/2) std / sqrt(n)
    counts: np.ndarray


class PowerLaw(NamedTuple):
    """Fitted ``a(s) = a0 + C s^-alpha`` with standard errors."""

    a0: float
    C: float
    alpha: float
    a0_err: float
    C_err: float
    alpha_err: float

    def __call__(self, s: Any) -> np.ndarray:
        return power_law(np.asarray(s, dtype=float), self.a0, self.C, self.alpha)


def summarize(values: Any) -> MapSummary:
    """Mean, first quartile, median and third quartile of a map, ignoring NaN.

    Parameters
    ----------
    values : array
        Any shape; NaN (missing) values are left out. All-NaN gives NaN statistics and n = 0.
    """
    v = _finite(values)
    if v.size == 0:
        return MapSummary(np.nan, np.nan, np.nan, np.nan, 0)
    q1, med, q3 = np.percentile(v, [25.0, 50.0, 75.0])
    return MapSummary(float(v.mean()), float(q1), float(med), float(q3), int(v.size))


def summarize_maps(maps: Mapping[str, Any]) -> dict[str, MapSummary]:
    """:func:`summarize` for each map of a mapping name -> array."""
    return {name: summarize(m) for name, m in maps.items()}


def pearson(x: Any, y: Any) -> Correlation:
    """Pearson correlation coefficient r of two maps, over positions where both are finite.

    ``r = cov(x, y) / (std(x) std(y))`` and the two-sided p-value of r = 0 for normal data, as
    ``scipy.stats.pearsonr`` computes them (r from the normalised deviations; r / 2 + 1 / 2 is
    Beta(n / 2 - 1, n / 2 - 1) under the null hypothesis). NaN when fewer than 3 common positions
    remain or either map is constant there.
    """
    x, y = to_numpy(x).ravel().astype(float), to_numpy(y).ravel().astype(float)
    keep = np.isfinite(x) & np.isfinite(y)
    n = int(keep.sum())
    if n < 3:
        return Correlation(np.nan, np.nan, n)
    dx, dy = x[keep] - x[keep].mean(), y[keep] - y[keep].mean()
    nx, ny = np.linalg.norm(dx), np.linalg.norm(dy)
    if nx == 0 or ny == 0:
        return Correlation(np.nan, np.nan, n)
    r = float(np.clip(np.dot(dx / nx, dy / ny), -1.0, 1.0))
    shape = n / 2 - 1
    return Correlation(r, 2 * betainc(shape, shape, (1 - abs(r)) / 2), n)


def size_correlations(a: Any, b: Any, size: Any) -> dict[str, Correlation]:
    """Pearson correlations of the lattice parameters a and b with the crystallite size s.

    Published for one CsPbBr3 supercrystal: r(a, s) = -0.61, r(b, s) = +0.59.
    """
    return {"a": pearson(a, size), "b": pearson(b, size)}


def binned_medians(size: Any, values: Any, width: float = 0.5, min_count: int = 3) -> BinnedMedians:
    """Medians of ``values`` in bins of ``size`` of the given width.

    Bin edges are multiples of ``width`` (0.5 nm for sizes in nm) covering the finite sizes.

    Parameters
    ----------
    size : array
        Binning quantity (e.g. WH size in nm).
    values : array, same shape
        Quantity whose medians are taken (e.g. lattice parameter a in A).
    width : float
        Bin width, unit of ``size``.
    min_count : int
        Bins with fewer values get NaN median and error.
    """
    s, v = to_numpy(size).ravel().astype(float), to_numpy(values).ravel().astype(float)
    keep = np.isfinite(s) & np.isfinite(v)
    s, v = s[keep], v[keep]
    if s.size == 0:
        empty = np.empty(0)
        return BinnedMedians(empty, empty, empty, np.empty(0, dtype=int))
    lo, hi = np.floor(s.min() / width), np.floor(s.max() / width) + 1
    edges = np.arange(lo, hi + 1) * width
    index = np.clip(np.digitize(s, edges) - 1, 0, edges.size - 2)
    counts = np.bincount(index, minlength=edges.size - 1)
    medians = np.full(counts.size, np.nan)
    errors = np.full(counts.size, np.nan)
    for i in np.flatnonzero(counts >= min_count):
        group = v[index == i]
        medians[i] = np.median(group)
        errors[i] = _MEDIAN_SE * group.std(ddof=1) / np.sqrt(group.size)
    return BinnedMedians(0.5 * (edges[:-1] + edges[1:]), medians, errors, counts)


def power_law(s: np.ndarray, a0: float, C: float, alpha: float) -> np.ndarray:
    """``a0 + C s^-alpha``."""
    return a0 + C * s ** (-alpha)


def fit_power_law(s: Any, a: Any, a_err: Any | None = None,
                  p0: tuple[float, float, float] | None = None) -> PowerLaw:
    """Fit the empirical law ``a - a0 = C s^-alpha`` (e.g. to binned medians).

    Non-linear least squares (``scipy.optimize.curve_fit``); weighted by ``1 / a_err^2`` with
    absolute errors when ``a_err`` is given. Starting values, unless ``p0``: alpha = 1 and the
    linear least-squares a0, C at that alpha.

    Parameters
    ----------
    s : array
        Sizes (e.g. bin centres in nm), positive.
    a : array
        Lattice parameter (A) at those sizes; NaN points are left out.
    a_err : array, optional
        Standard errors of ``a``.
    p0 : (a0, C, alpha), optional
        Starting values.

    Returns
    -------
    PowerLaw
        a0 (unit of a), C (unit of a times unit of s^alpha), alpha, and standard errors.
    """
    s, a = to_numpy(s).ravel().astype(float), to_numpy(a).ravel().astype(float)
    sigma = None if a_err is None else to_numpy(a_err).ravel().astype(float)
    keep = np.isfinite(s) & np.isfinite(a) & (s > 0)
    if sigma is not None:
        keep &= np.isfinite(sigma) & (sigma > 0)
        sigma = sigma[keep]
    s, a = s[keep], a[keep]
    if p0 is None:
        (a0, c), *_ = np.linalg.lstsq(np.stack([np.ones_like(s), 1.0 / s], axis=1), a, rcond=None)
        p0 = (a0, c, 1.0)
    from scipy import optimize

    popt, pcov = optimize.curve_fit(power_law, s, a, p0=p0, sigma=sigma, absolute_sigma=sigma is not None,
                                    maxfev=20000)
    return PowerLaw(*(float(v) for v in popt), *(float(e) for e in np.sqrt(np.diag(pcov))))


def global_williamson_hall(q0: Any, fwhm_q: Any, *, shape_factor: float = DEFAULT_SHAPE_FACTOR,
                           instrumental: Any | Callable[[Any], Any] | None = None) -> WilliamsonHall:
    """One Williamson-Hall line through the per-reflection medians over all positions.

    The medians (NaN ignored) of q0 and of the radial FWHM of each reflection are fitted with
    :func:`gpuproc.waxs.derive.williamson_hall` (unweighted; errors from the scatter about the
    line when there are more than 2 reflections).

    Parameters
    ----------
    q0, fwhm_q : array, shape (..., n_refl)
        Per-position radial positions and FWHM (A^-1).
    shape_factor, instrumental
        As in :func:`gpuproc.waxs.derive.williamson_hall`.

    Returns
    -------
    WilliamsonHall
        Scalar (0-d) fields: size (A for q in A^-1), strain, the line and its flag.
    """
    q0, width = to_numpy(q0), to_numpy(fwhm_q)
    n_refl = q0.shape[-1]
    q_med = _nanmedian_columns(q0.reshape(-1, n_refl))
    w_med = _nanmedian_columns(width.reshape(-1, n_refl))
    return williamson_hall(q_med, w_med, shape_factor=shape_factor, instrumental=instrumental)


def _nanmedian_columns(x: np.ndarray) -> np.ndarray:
    """Median of each column over its finite values, NaN for an all-NaN column."""
    return np.array([np.median(c[np.isfinite(c)]) if np.isfinite(c).any() else np.nan for c in x.T])


def _finite(values: Any) -> np.ndarray:
    """Finite values of an array, flattened, as float NumPy."""
    v = to_numpy(values).ravel().astype(float)
    return v[np.isfinite(v)]
