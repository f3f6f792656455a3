"""Shift maps between two PL maps of the same crystal, after registering the second onto the first.

The crystal may move between maps; the translation is found by phase correlation of the two
intensity maps (subpixel, scikit-image), the second map's fitted peak energies are resampled
onto the first map's pixel grid (bilinear, scipy.ndimage.shift) and the difference is taken.
Registration runs on the host (NumPy); CuPy inputs are copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gpuproc.backend import to_numpy


@dataclass
class ShiftMap:
    """Result of :func:`shift_map`.

    Attributes
    ----------
    shift : ndarray, shape (2,)
        (dy, dx) in pixels that moves the second map onto the first.
    shift_mev : ndarray, shape (ny, nx)
        Energy of the second map minus the first, meV, in the first map's frame; NaN where
        either map has no valid value or the registered second map does not cover the pixel.
    registered_energy : ndarray, shape (ny, nx)
        The second map's energies registered onto the first map's grid, eV.
    error : float
        Normalised root-mean-square registration error from phase correlation.
    """

    shift: np.ndarray
    shift_mev: np.ndarray
    registered_energy: np.ndarray
    error: float


def register_shift(reference: Any, moving: Any, upsample_factor: int = 20) -> tuple[np.ndarray, float]:
    """Translation (dy, dx) in pixels that registers ``moving`` onto ``reference``.

    Parameters
    ----------
    reference, moving : array, shape (ny, nx)
        Intensity maps (e.g. integrated PL); NaN counts as 0.
    upsample_factor : int
        Subpixel precision 1 / upsample_factor pixel.

    Returns
    -------
    shift, error
        ``scipy.ndimage.shift(moving, shift)`` lies on ``reference``; the normalised RMS error.
    """
    from skimage.registration import phase_cross_correlation  # only a map pair needs it (with SciPy's ndimage)

    ref, mov = (np.nan_to_num(to_numpy(a).astype(np.float64)) for a in (reference, moving))
    if ref.shape != mov.shape or ref.ndim != 2:
        raise ValueError(f"intensity maps must be 2D and of equal shape, got {ref.shape} and {mov.shape}")
    shift, error, _ = phase_cross_correlation(ref, mov, upsample_factor=upsample_factor, normalization=None)
    return np.asarray(shift, dtype=float), float(error)


def shift_image(image: Any, shift: np.ndarray, valid_fraction: float = 0.99) -> np.ndarray:
    """Translate an image with NaNs by ``shift`` pixels (bilinear); NaN where not covered.

    A pixel of the result is valid when at least ``valid_fraction`` of its interpolation weight
    comes from valid input pixels.
    """
    from scipy import ndimage

    img = to_numpy(image).astype(np.float64)
    valid = np.isfinite(img)
    moved = ndimage.shift(np.where(valid, img, 0.0), shift, order=1, mode="constant", cval=0.0)
    weight = ndimage.shift(valid.astype(np.float64), shift, order=1, mode="constant", cval=0.0)
    ok = weight >= valid_fraction
    return np.where(ok, moved / np.where(ok, weight, 1.0), np.nan)


def shift_map(energy1: Any, intensity1: Any, energy2: Any, intensity2: Any, upsample_factor: int = 20) -> ShiftMap:
    """Energy shift map (meV) of map 2 relative to map 1 after registering map 2 onto map 1.

    Parameters
    ----------
    energy1, energy2 : array, shape (ny, nx)
        Peak energies in eV (NaN where not fitted).
    intensity1, intensity2 : array, shape (ny, nx)
        Intensity maps used for the registration.
    upsample_factor : int
        Subpixel precision of the registration, 1 / upsample_factor pixel.

    Returns
    -------
    ShiftMap
    """
    e1, e2 = to_numpy(energy1), to_numpy(energy2)
    if e1.shape != e2.shape:
        raise ValueError(f"energy maps differ in shape: {e1.shape} and {e2.shape}")
    shift, error = register_shift(intensity1, intensity2, upsample_factor)
    registered = shift_image(e2, shift)
    return ShiftMap(shift, 1e3 * (registered - e1), registered, error)
