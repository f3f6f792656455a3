"""Where a cake bin samples the pattern and how much it broadens a spot, read from the
integration matrix; the broadening's removal from the fitted widths.

A cake bin does not sample the pattern at its centre: its value is the normalisation-weighted
mean of the intensity at the centres of the pixels that contribute to it, and with pixel
splitting a pixel reaches every bin its footprint covers. :func:`bin_spread` gives, for every
bin, the mean and the variance of those pixel centres' offsets from the bin centre, from the
matrix pyFAI built (exact for the run's geometry, mask and bins; bin width, pixel footprint in
(q, chi) at that place of the detector and split mode all enter it). The spots are fitted at
each bin's mean pixel position (:func:`window_coordinates`), and a Gaussian fitted there is
wider than the spot on the detector, in variance by the spread about that mean;
:func:`window_broadening` is its normalisation-weighted mean over a window's bins and
:func:`deconvolve` subtracts it in quadrature from the fitted sigma (on a Pilatus 100k at
q ~ 1 A^-1: about 0.0093 A^-1 and 0.58 degrees, +10 % on sigma).

The bins' mean positions matter twice: near the beam a bin's pixels lie more on its outer side
(SAXS on a Pilatus 1M: +0.19 % of q, so q0 fitted at the bin centres was 0.7 standard errors
low), and where the bins are finer than the pixels (the Pilatus 100k's q bins are 5x finer) the
means scatter about the centres by a third of the spread: fitted at the centres, that scatter
broadens the spot as much as the spread does.

Quadrature is exact for a Gaussian kernel and, for a fit that weights the bins by the model
(Poisson likelihood, as the pipeline fits), for a box-like one too; measured on synthetic
Pilatus 100k scans (spots 2-3 pixels wide) the widths are within +0.4 % (0.1 standard error)
of the truth (benchmarks/pulls.py). Least squares weighted by the data (1 / counts) made every
fit narrower where the cake is jagged on the pixel scale (-1.1 % on the 100 spots). The
detector's own point spread (a real pixel integrates over its area), beam size and divergence
are not part of the cake: they stay in the per-reflection ``instrumental_fwhm`` a user measures
on a standard.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse


class BinOffsets(NamedTuple):
    """Per cake bin (n_azimuth, n_q), the contributing pixel centres' offsets from the bin centre:
    mean and variance about that mean (q unit, q unit^2; degrees, degree^2); 0 for empty bins."""

    mean_q: np.ndarray
    mean_chi: np.ndarray
    var_q: np.ndarray
    var_chi: np.ndarray


def bin_spread(matrix: scipy.sparse.spmatrix, bin_of_row: np.ndarray, pixel_q: np.ndarray, pixel_chi: np.ndarray,
               bin_q: np.ndarray, bin_chi: np.ndarray, pixel_norm: np.ndarray) -> BinOffsets:
    """Mean offset of the contributing pixel centres from each cake bin's centre, and their
    variance about that mean.

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
    BinOffsets
        Arrays (n_azimuth, n_q).
    """
    coo = matrix.tocoo()
    dest = np.asarray(bin_of_row)[coo.row]
    w = coo.data.astype(np.float64) * np.asarray(pixel_norm, np.float64)[coo.col]
    n_q, n_bins = bin_q.size, bin_q.size * bin_chi.size
    dq = np.asarray(pixel_q, np.float64)[coo.col] - bin_q[dest % n_q]
    dchi = np.asarray(pixel_chi, np.float64)[coo.col] - bin_chi[dest // n_q]
    dchi -= 360.0 * np.round(dchi / 360.0)
    total = np.bincount(dest, w, n_bins)
    means, variances = [], []
    for d in (dq, dchi):
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(dest, w * d, n_bins) / total
            var = np.bincount(dest, w * d * d, n_bins) / total - mean**2
        means.append(np.where(total > 0, mean, 0.0).reshape(bin_chi.size, n_q))
        variances.append(np.where(total > 0, np.maximum(var, 0.0), 0.0).reshape(bin_chi.size, n_q))
    return BinOffsets(*means, *variances)


def pixel_centres(ai: Any, shape: tuple[int, int], unit: str) -> tuple[np.ndarray, np.ndarray]:
    """(q in ``unit``, chi in degrees) at every pixel centre of a pyFAI geometry, detector-shaped."""
    q = np.asarray(ai.array_from_unit(shape, "center", unit), np.float64)
    chi = np.degrees(np.asarray(ai.array_from_unit(shape, "center", "chi_rad"), np.float64))
    return q, chi


def window_coordinates(offsets: BinOffsets, azimuth_index: np.ndarray, q_index: np.ndarray, q: np.ndarray,
                       phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A window's points (``q``, ``phi``: its bin centres, flattened (azimuth, q) as in
    :class:`gpuproc.waxs.windows.Window`) moved to their bins' mean pixel positions, float32."""
    ix = np.ix_(azimuth_index, q_index)
    return ((q + offsets.mean_q[ix].ravel()).astype(np.float32),
            (phi + offsets.mean_chi[ix].ravel()).astype(np.float32))


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
