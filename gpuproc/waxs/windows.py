"""Fit windows: which cake bins belong to each reflection, as flat (q, azimuth) point lists.

A window is a rectangle in (q, azimuth). The azimuth range may cross the 180/-180 (or 0/360)
seam of the cake: bins are selected on the circle, and the coordinates handed to the fit are
continuous across the window (``lo + w(chi - lo)``), which the wrapped polar model accepts.

Coverage: a bin is *valid* when its normalisation (sum of pixel fractions x flat x polarisation x
solid angle over its unmasked pixels) is at least :data:`VALID_BIN_FRACTION` of a full bin's at
the same q, the 90th percentile of the ring's non-empty bins. A bin that keeps a sliver of a
pixel next to a gap or a user mask is not valid. A window's coverage is the fraction of its bins
that are valid; its weight fraction is its normalisation over that of full bins.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gpuproc.backend import array_namespace
from gpuproc.waxs.job import ReflectionSpec

#: a bin counts as valid when its normalisation is at least this fraction of a full bin's
VALID_BIN_FRACTION = 0.25
#: percentile of a ring's non-empty bin normalisations taken as a full bin's
FULL_BIN_PERCENTILE = 90.0


class CoverageWarning(UserWarning):
    """A reflection window is partly masked (coverage below ``[fit] warn_coverage``)."""


@dataclass
class Window:
    """Cake bins of one reflection."""

    name: str
    azimuth_index: np.ndarray  #: (n_az,) rows of the cake
    q_index: np.ndarray  #: (n_q,) columns of the cake
    q: np.ndarray  #: (n_az * n_q,) float32 q of each point, A^-1 or nm^-1
    phi: np.ndarray  #: (n_az * n_q,) float32 azimuth of each point, degrees
    full_norm: Any  #: (n_az * n_q,) float32 normalisation of a full bin at each point's q
    #: (n_az * n_q,) int64 position of each point in a flattened (azimuth, q) cake; this and
    #: ``full_norm`` are NumPy, or on the fitting device for a whole run (:meth:`on`)
    flat_index: Any
    coverage: float = 1.0  #: fraction of the window's bins valid under the static mask
    weight_fraction: float = 1.0  #: window normalisation under the static mask / that of full bins

    @property
    def n_points(self) -> int:
        return self.q.size

    @functools.cached_property
    def bin_widths(self) -> tuple[float, float]:
        """(q, azimuth) bin widths of the window (q unit, degrees); computed once (every block's
        fit bounds read them)."""
        q, phi = np.unique(self.q), np.unique(self.phi)
        return float(np.median(np.diff(q))), float(np.median(np.diff(phi)))

    def on(self, xp: Any) -> Window:
        """This window with the arrays that every block reads (:attr:`flat_index`, :attr:`full_norm`)
        on ``xp``'s device: uploaded once, not with every block."""
        return replace(self, flat_index=xp.asarray(self.flat_index), full_norm=xp.asarray(self.full_norm))

    def take(self, cakes: Any) -> Any:
        """(n_frames, n_points) window values from cakes (n_frames, n_azimuth, n_q), one gather."""
        return cakes.reshape(cakes.shape[0], -1)[:, self.flat_index]

    def valid(self, norm: Any) -> Any:
        """(n_frames, n_points) True where a window bin is valid, from window normalisations
        ``norm`` (n_frames, n_points) (NumPy or CuPy)."""
        xp = array_namespace(norm)
        return norm >= VALID_BIN_FRACTION * xp.asarray(self.full_norm)


def full_bin_norm(norm: np.ndarray) -> np.ndarray:
    """Normalisation of a full (unmasked) bin per q column, (n_q,): the
    :data:`FULL_BIN_PERCENTILE` percentile of the column's non-empty bins (0 where all are empty).

    ``norm`` is the static cake normalisation (n_azimuth, n_q).
    """
    filled = np.where(norm > 0, norm, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-empty columns
        full = np.nanpercentile(filled, FULL_BIN_PERCENTILE, axis=0)
    return np.nan_to_num(full, nan=0.0)


def make_window(spec: ReflectionSpec, q: np.ndarray, azimuth: np.ndarray, norm: np.ndarray, *,
                min_coverage: float = 0.0, warn_coverage: float = 0.0) -> Window:
    """Select the bins of ``spec`` in a cake with bin centres ``q`` and ``azimuth`` (degrees).

    Parameters
    ----------
    spec : ReflectionSpec
    q, azimuth : numpy.ndarray
        Cake bin centres (uniform bins), q unit and degrees.
    norm : numpy.ndarray
        Static normalisation (n_azimuth, n_q) of the cake (detector gaps and user mask applied).
    min_coverage, warn_coverage : float
        A window whose coverage (fraction of valid bins) is below ``min_coverage`` is refused
        (ValueError), below ``warn_coverage`` it gives a :class:`CoverageWarning`; both name the
        reflection and the fractions.

    Raises
    ------
    ValueError
        The q window leaves the cake's q range (naming both ranges), holds fewer than 3 bins in
        q or azimuth, or its coverage is below ``min_coverage``.
    """
    half = 0.5 * float(np.median(np.diff(q))) if q.size > 1 else 0.0
    cake_q = (float(q[0]) - half, float(q[-1]) + half)
    lo_q, hi_q = spec.q_range
    if lo_q < cake_q[0] or hi_q > cake_q[1]:
        raise ValueError(f"reflection {spec.name!r}: q window {lo_q:.6g} to {hi_q:.6g} leaves the integration q range "
                         f"{cake_q[0]:.6g} to {cake_q[1]:.6g} ([integration] q_range); widen q_range or narrow "
                         "the window")
    q_index = np.nonzero((q >= lo_q) & (q <= hi_q))[0]
    if q_index.size < 3:
        raise ValueError(f"reflection {spec.name!r}: q window {spec.q_range} holds {q_index.size} bins of the cake "
                         f"(cake q range {cake_q[0]:.6g} to {cake_q[1]:.6g}); widen the window or the cake")
    lo, hi = spec.azimuth_range
    offset = np.mod(azimuth - lo, 360.0)
    az_index = np.nonzero(offset <= hi - lo)[0]
    if az_index.size < 3:
        raise ValueError(f"reflection {spec.name!r}: azimuth window {spec.azimuth_range} holds {az_index.size} "
                         "bins of the cake")
    phi = lo + offset[az_index]
    qq, pp = np.meshgrid(q[q_index], phi, indexing="xy")
    full = np.broadcast_to(full_bin_norm(norm[:, q_index]), qq.shape).ravel().astype(np.float32)  # its columns only
    flat = (az_index[:, None] * q.size + q_index[None, :]).ravel().astype(np.int64)
    window = Window(spec.name, az_index, q_index, qq.ravel().astype(np.float32), pp.ravel().astype(np.float32), full,
                    flat)
    static = norm[np.ix_(az_index, q_index)].ravel()
    window.coverage = float(np.mean(window.valid(static[None])[0]))
    window.weight_fraction = float(static.sum() / max(float(full.sum()), 1e-30))
    _check_coverage(spec, window, min_coverage, warn_coverage)
    return window


def _check_coverage(spec: ReflectionSpec, window: Window, min_coverage: float, warn_coverage: float) -> None:
    """Refuse a window below ``min_coverage``, warn below ``warn_coverage``."""
    (q_lo, q_hi), (a_lo, a_hi) = spec.q_range, spec.azimuth_range
    text = (f"reflection {spec.name!r}: {window.coverage:.0%} of its window's bins (q {q_lo:.4g} to {q_hi:.4g}, "
            f"azimuth {a_lo:.4g} to {a_hi:.4g} deg) are valid, {window.weight_fraction:.1%} of the full weight "
            "(detector gaps, user mask)")
    if window.coverage < min_coverage:
        raise ValueError(f"{text}; [fit] min_coverage is {min_coverage:.0%}")
    if window.coverage < warn_coverage:
        warnings.warn(f"{text}; below [fit] warn_coverage {warn_coverage:.0%}", CoverageWarning, stacklevel=3)
