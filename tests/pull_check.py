"""Pulls (fit - truth) / reported error, and the calibration criterion of issue 15.

A pull mean within +-0.3 (unbiased to 0.3 standard errors) and a pull sd within 0.8-1.25 (the
reported errors right to -20 % / +25 %); both are in units of the reported error. The sampling
uncertainty of the criterion itself is 1/sqrt(n) on the mean and ~1/sqrt(2n) on the sd, so every
test draws enough pulls (``min_n``) that it is well below the tolerance.
"""

from __future__ import annotations

import numpy as np

MEAN_TOLERANCE = 0.3
SD_RANGE = (0.8, 1.25)


def pulls(fit, err, truth, period: float | None = None) -> np.ndarray:
    """Finite pulls, flattened; differences wrapped into +-period/2 when a period is given."""
    d = np.asarray(fit, float) - np.asarray(truth, float)
    if period:
        d = d - period * np.round(d / period)
    p = (d / np.asarray(err, float)).ravel()
    return p[np.isfinite(p)]


def assert_calibrated(p: np.ndarray, name: str, min_n: int, statistic: str = "both") -> None:
    """Pull mean within +-MEAN_TOLERANCE and/or sd within SD_RANGE (``statistic``: "mean", "sd" or
    "both"), over at least ``min_n`` pulls."""
    assert p.size >= min_n, f"{name}: only {p.size} finite pulls (need {min_n})"
    mean, sd = float(p.mean()), float(p.std())
    lo, hi = SD_RANGE
    text = f"{name}: n={p.size} pull mean {mean:+.3f}, sd {sd:.3f}"
    if statistic in ("mean", "both"):
        assert abs(mean) <= MEAN_TOLERANCE, text
    if statistic in ("sd", "both"):
        assert lo <= sd <= hi, text
