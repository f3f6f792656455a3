"""The broadening a cake adds to every spot, read from the integration matrix, and its removal
from the fitted widths.

A cake bin does not sample the pattern at its centre: its value is the normalisation-weighted
mean of the intensity at the centres of the pixels that contribute to it, and with pixel
splitting a pixel reaches every bin its footprint covers. A Gaussian fitted to the cake is
therefore wider than the spot on the detector: in variance by the spread of the contributing
pixel centres about their mean in each bin (bin width, pixel footprint in (q, chi) at that
place of the detector and split mode all enter it). :func:`bin_spread` computes that spread
for every bin from the matrix pyFAI built (exact for the run's geometry, mask and bins);
a window's broadening is its normalisation-weighted mean over the window's bins, and
:func:`deconvolve` subtracts it in quadrature from the fitted sigma (on a Pilatus 100k at
q ~ 1 A^-1: about 0.009 A^-1 and 0.5 degrees, +5 % on sigma).

Quadrature is exact for a Gaussian kernel; the real kernel is flatter (a pixel footprint is a
box), so for spots only ~3x wider than the kernel it over-corrects slightly (measured: -0.5
standard errors on the 100 spots of the synthetic Pilatus 100k scan, unbiased from 110 on;
benchmarks/pulls.py). The detector's own point spread (a real pixel integrates over its
area), beam size and divergence are not part of the cake: they stay in the per-reflection
``instrumental_fwhm`` a user measures on a standard.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse


def bin_spread(matrix: scipy.sparse.spmatrix, bin_of_row: np.ndarray, pixel_q: np.ndarray, pixel_chi: np.ndarray,
               bin_q: np.ndarray, bin_chi: np.ndarray, pixel_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Variance of the contributing pixel centres about their weighted mean, per cake bin.

    Parameters
    ----------
    matrix : (n_rows, n_pixels) sparse
        Integration matrix (pixel fractions); ``bin_of_row`` (n_rows,) is the flat
        (azimuth, q) cake position of each row.
    pixel_q, pixel_chi : (n_pixels,)
        Pixel-centre q (q unit) and azimuth (degrees).
    bin_q, bin_chi : (n_q,), (n_azimuth,)
        Bin centres.
    pixel_norm : (n_pixels,)
        Normalisation of each pixel (solid angle x polarisation x flat; 0 where masked).

    Returns
    -------
    var_q, var_chi : (n_azimuth, n_q)
        q unit^2 and degree^2; 0 for empty bins.
    """
    coo = matrix.tocoo()
    dest = np.asarray(bin_of_row)[coo.row]
    w = coo.data.astype(np.float64) * np.asarray(pixel_norm, np.float64)[coo.col]
    n_q, n_bins = bin_q.size, bin_q.size * bin_chi.size
    dq = np.asarray(pixel_q, np.float64)[coo.col] - bin_q[dest % n_q]
    dchi = np.asarray(pixel_chi, np.float64)[coo.col] - bin_chi[dest // n_q]
    dchi -= 360.0 * np.round(dchi / 360.0)
    total = np.bincount(dest, w, n_bins)
    out = []
    for d in (dq, dchi):
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(dest, w * d, n_bins) / total
            var = np.bincount(dest, w * d * d, n_bins) / total - mean**2
        out.append(np.where(total > 0, np.maximum(var, 0.0), 0.0).reshape(bin_chi.size, n_q))
    return out[0], out[1]


def pixel_centres(ai: Any, shape: tuple[int, int], unit: str) -> tuple[np.ndarray, np.ndarray]:
    """(q in ``unit``, chi in degrees) at every pixel centre of a pyFAI geometry, detector-shaped."""
    q = np.asarray(ai.array_from_unit(shape, "center", unit), np.float64)
    chi = np.degrees(np.asarray(ai.array_from_unit(shape, "center", "chi_rad"), np.float64))
    return q, chi


def window_broadening(var: np.ndarray, norm: np.ndarray, azimuth_index: np.ndarray, q_index: np.ndarray) -> float:
    """Sigma of a window's broadening: the normalisation-weighted mean bin variance, square-rooted."""
    v, n = var[np.ix_(azimuth_index, q_index)], norm[np.ix_(azimuth_index, q_index)]
    return float(np.sqrt((v * n).sum() / n.sum())) if n.sum() > 0 else 0.0


def deconvolve(sigma: Any, error: Any, broadening: float) -> tuple[np.ndarray, np.ndarray]:
    """``sqrt(sigma^2 - broadening^2)`` and its propagated error; NaN where the fitted sigma is not
    wider than the broadening (a spot narrower than the cake can show)."""
    s = np.asarray(sigma, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        true = np.sqrt(s * s - broadening**2)
        ok = s > broadening
        return np.where(ok, true, np.nan), np.where(ok, np.asarray(error, np.float64) * s / true, np.nan)
