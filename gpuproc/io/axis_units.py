"""Units of spectral and navigation axes as files write them, and the conversions gpuproc needs.

A spectral axis is stored in nm (wavelength) or eV (photon energy). Files also use um, Angstrom,
meV and Raman shift (cm^-1); a Raman-shift axis becomes the absolute wavelength of the scattered
light with the excitation (laser) wavelength ``lambda_L`` in nm::

    lambda = 1e7 / (1e7 / lambda_L - shift)      (shift in cm^-1, Stokes shifts positive)

in the medium ``lambda_L`` is given in (air or vacuum, as the file's laser line).
Navigation axes (map steps, time steps) are converted to um and s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_SPECTRAL = {
    "nm": ("nm", 1.0), "nanometer": ("nm", 1.0), "nanometers": ("nm", 1.0), "wavelength_nm": ("nm", 1.0),
    "um": ("nm", 1e3), "\u00b5m": ("nm", 1e3), "\u03bcm": ("nm", 1e3), "micron": ("nm", 1e3), "micrometer": ("nm", 1e3),
    "a": ("nm", 0.1), "å": ("nm", 0.1), "angstrom": ("nm", 0.1),
    "ev": ("eV", 1.0), "electronvolt": ("eV", 1.0), "energy_ev": ("eV", 1.0),
    "mev": ("eV", 1e-3),
    "cm-1": ("cm-1", 1.0), "cm^-1": ("cm-1", 1.0), "1/cm": ("cm-1", 1.0), "cm⁻¹": ("cm-1", 1.0),
    "rcm": ("cm-1", 1.0), "raman_shift": ("cm-1", 1.0),
}
_LENGTH_UM = {"um": 1.0, "\u00b5m": 1.0, "\u03bcm": 1.0, "micron": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}
_TIME_S = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "us": 1e-6,
           "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}


def spectral_unit(unit: str | None) -> tuple[str, float] | None:
    """``("nm" | "eV" | "cm-1", factor)`` for a unit string as files write it, else None.

    ``factor`` converts the file's values to the canonical unit (um -> nm: 1000).
    """
    if unit is None:
        return None
    key = str(unit).strip().lower().replace(" ", "").replace("(", "").replace(")", "")
    return _SPECTRAL.get(key)


def length_um(unit: str | None) -> float | None:
    """Factor from a length unit to um (None: not a length)."""
    return None if unit is None else _LENGTH_UM.get(str(unit).strip().lower().replace("micrometer", "um"))


def time_s(unit: str | None) -> float | None:
    """Factor from a time unit to s (None: not a time)."""
    return None if unit is None else _TIME_S.get(str(unit).strip().lower())


def raman_to_wavelength(shift_cm: Any, laser_nm: float) -> np.ndarray:
    """Absolute wavelength (nm) of light Raman-shifted by ``shift_cm`` (cm^-1) from ``laser_nm``."""
    return 1e7 / (1e7 / float(laser_nm) - np.asarray(shift_cm, dtype=np.float64))


def absolute_axis(axis: Any, unit: str | None, laser_nm: float | None, where: str) -> tuple[np.ndarray, str]:
    """A spectral axis in nm or eV, whatever unit the file used.

    Parameters
    ----------
    axis : array, shape (n_channels,)
    unit : str or None
        As the file (or the caller) names it; None means nm.
    laser_nm : float, optional
        Excitation wavelength in nm, needed for Raman-shift (cm^-1) axes.
    where : str
        The file, for messages.

    Returns
    -------
    axis, unit
        ``unit`` is "nm" or "eV".

    Raises
    ------
    ValueError
        An unknown unit (e.g. "pixel": the file holds no calibration), or a Raman-shift axis
        without a laser wavelength.
    """
    ax = np.asarray(axis, dtype=np.float64).ravel()
    if unit is None:
        return ax, "nm"
    known = spectral_unit(unit)
    if known is None:
        raise ValueError(f"{where}: spectral axis in {unit!r}, not a wavelength, energy or Raman shift "
                         "(no calibration?); give the axis and its unit ([input] axis, axis_unit)")
    canonical, factor = known
    if canonical != "cm-1":
        return ax * factor, canonical
    if laser_nm is None or not np.isfinite(laser_nm) or laser_nm <= 0:
        raise ValueError(f"{where}: the spectral axis is a Raman shift (cm^-1) and the file names no laser "
                         "wavelength; set [input] laser_nm (excitation wavelength, nm)")
    wavelength = raman_to_wavelength(ax, laser_nm)
    if not np.all(wavelength > 0):
        raise ValueError(f"{where}: Raman shifts up to {ax.max():g} cm^-1 exceed the laser's "
                         f"{1e7 / laser_nm:g} cm^-1 ({laser_nm:g} nm)")
    return wavelength, "nm"
