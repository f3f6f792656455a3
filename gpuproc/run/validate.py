"""Up-front checks of user-given numbers: each failure is one line naming the key (or file) and
the allowed range, raised before any work instead of surfacing later as NaN maps or library
internals (a negative ``npt_q`` inside scipy, a negative PONI distance as an IndexError)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def at_least(key: str, value: float, minimum: float) -> None:
    """ValueError unless ``value >= minimum``; ``key`` names it (e.g. ``"[integration] npt_q"``)."""
    if not value >= minimum:
        raise ValueError(f"{key} must be >= {minimum}, got {value}")


def positive(key: str, value: float | None, unit: str = "") -> None:
    """ValueError unless ``value`` is None (not given) or ``> 0`` (NaN fails)."""
    if value is not None and not value > 0:
        raise ValueError(f"{key} must be > 0{' ' + unit if unit else ''}, got {value}")


def check_geometry(ai: Any, poni: str | Path) -> None:
    """ValueError unless the geometry read from ``poni`` has a distance and a wavelength > 0 (m).

    Parameters
    ----------
    ai : pyFAI.integrator.azimuthal.AzimuthalIntegrator
    poni : str or Path
        The PONI file it was read from, named in the message.
    """
    for key, value in (("distance", ai.dist), ("wavelength", ai.wavelength)):
        if value is None or not value > 0:
            raise ValueError(f"PONI file {poni}: {key} must be > 0 m, got {value}")


def positive_axis(axis: Any, unit: str, name: str) -> None:
    """ValueError naming the first channel of a spectral axis (nm or eV) that is not > 0.

    Parameters
    ----------
    axis : array, shape (n_channels,)
    unit : {"nm", "eV"}
    name : str
        What the axis is, e.g. ``"map.h5: spectral axis"``.
    """
    bad = np.flatnonzero(~(np.asarray(axis, dtype=np.float64) > 0))
    if bad.size:
        what = "wavelengths" if unit == "nm" else "photon energies"
        raise ValueError(f"{name}: {what} must be > 0 {unit}; channel {bad[0]} is {axis[bad[0]]} {unit} "
                         f"({bad.size} of {len(axis)} channels are not)")
