"""The regularised incomplete beta function, for the p-value of a correlation without SciPy.

``scipy.stats`` takes ~1 s to import on 2 cores (``scipy.special`` ~0.3 s) and a run's
statistics need one special function of it, once per map pair (:func:`gpuproc.waxs.stats.pearson`):
computing it here keeps that import out of every run's fixed cost. tests/test_betainc.py checks
it against ``scipy.special.betainc``.
"""

from __future__ import annotations

import math

_EPS = 1e-15  #: relative step at which the continued fraction has converged
_TINY = 1e-300  #: guard against division by zero in Lentz's method
_MAX_TERMS = 100_000  #: the fraction needs O(sqrt(max(a, b))) terms


def betainc(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function (as ``scipy.special.betainc``).

    Parameters
    ----------
    a, b : float
        Shape parameters, > 0.
    x : float
        Upper limit of the integral, in [0, 1].

    Returns
    -------
    float
        ``B(x; a, b) / B(a, b)``; relative accuracy ~1e-14 for a, b up to 100, 1e-12 at 1e4 and
        1e-9 at 1e6 (the log-gamma terms cancel); NaN for arguments out of range or when the
        continued fraction does not converge.
    """
    if not (a > 0 and b > 0 and 0 <= x <= 1):
        return math.nan
    if x == 0 or x == 1:
        return float(x)
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):  # the fraction converges fast on this side; else use symmetry
        return math.exp(log_front) * _fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _fraction(b, a, 1.0 - x) / b


def _fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz's method; NaN if it does not converge)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            step = d * c
            h *= step
        if abs(step - 1.0) < _EPS:
            return h
    return math.nan
