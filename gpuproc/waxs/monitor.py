"""Monitor (I0) normalisation per frame: each frame's intensities are divided by its monitor
relative to the mean of the scan's usable monitor values."""

from __future__ import annotations

import warnings

import numpy as np


def monitor_scale(monitor: np.ndarray, where: str) -> np.ndarray:
    """Per-frame scale ``m / mean(m[usable])``, NaN for frames whose monitor is NaN, infinite,
    zero or negative (their fits get no valid point: INVALID_INPUT; the other frames are
    unaffected).

    Parameters
    ----------
    monitor : array, shape (n_frames,)
        Monitor counts (any unit; only ratios matter).
    where : str
        The scan the monitor belongs to, for the messages.

    Returns
    -------
    ndarray, shape (n_frames,), float64

    Raises
    ------
    ValueError
        If no frame has a finite positive monitor.
    """
    m = np.asarray(monitor, dtype=np.float64)
    usable = np.isfinite(m) & (m > 0)
    if not usable.any():
        raise ValueError(f"{where}: monitor has no finite positive value ({m.size} frames)")
    bad = np.flatnonzero(~usable)
    if bad.size:
        warnings.warn(f"{where}: {bad.size} frame(s) with a NaN, zero or negative monitor are invalid "
                      f"(frames {bad[:10].tolist()}{'...' if bad.size > 10 else ''})", stacklevel=2)
    return np.where(usable, m / np.mean(m[usable]), np.nan)
