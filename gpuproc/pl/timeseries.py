"""Response of a fitted quantity (peak energy) to stimulus events in a PL time series.

After each event, up to the next one, the trace is fitted (scipy ``curve_fit``) with

* ``"single"``: ``E(t) = E0 + dE (1 - exp(-(t - t_event) / tau))``,
* ``"double"``: ``E(t) = E0 + dE_fast (1 - exp(-(t - t_event) / tau_fast))
  + dE_slow (1 - exp(-(t - t_event) / tau_slow))`` with ``tau_fast < tau_slow``: most of a shift
  within seconds of the event, then a slow drift.

Times in s, energies in eV, shifts reported in meV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
from scipy.optimize import curve_fit

from gpuproc.backend import to_numpy

ResponseModel = Literal["single", "double"]
TAU_STARTS = ((0.02, 0.3), (0.05, 0.2), (0.1, 0.5))  # (fast, slow) as fractions of the segment length


@dataclass
class EventResponse:
    """Fitted response to one event; NaN values where the fit failed (see ``message``)."""

    time: float  #: s
    label: str
    n_points: int
    e0: float  #: eV, energy at the event
    shift_fast_mev: float  #: the only shift for the single-exponential model
    tau_fast: float  #: s
    shift_slow_mev: float  #: NaN for the single-exponential model
    tau_slow: float  #: s
    errors: dict[str, float]  #: standard errors of the above, by name
    chi2: float  #: reduced chi-square
    message: str = ""

    @property
    def total_shift_mev(self) -> float:
        """Shift at the end of the relaxation: fast + slow components, meV."""
        return self.shift_fast_mev + (0.0 if np.isnan(self.shift_slow_mev) else self.shift_slow_mev)


def single_exp(t: np.ndarray, e0: float, de: float, tau: float) -> np.ndarray:
    """``e0 + de (1 - exp(-t / tau))``, t measured from the event."""
    return e0 - de * np.expm1(-t / tau)


def double_exp(t: np.ndarray, e0: float, de_fast: float, tau_fast: float, de_slow: float,
               tau_slow: float) -> np.ndarray:
    """Sum of a fast and a slow exponential approach, t measured from the event."""
    return e0 - de_fast * np.expm1(-t / tau_fast) - de_slow * np.expm1(-t / tau_slow)


def event_responses(
    time: Any,
    value: Any,
    event_times: Sequence[float],
    labels: Sequence[str] | None = None,
    *,
    errors: Any = None,
    model: ResponseModel = "double",
) -> list[EventResponse]:
    """Fit the response of ``value`` (e.g. peak energy) to each event.

    Parameters
    ----------
    time : array, shape (nt,)
        Acquisition times, s.
    value : array, shape (nt,)
        Fitted quantity, eV; NaN points (failed fits) are skipped.
    event_times : sequence of float
        Event times, s, ascending. Each event is fitted from its time up to the next event.
    labels : sequence of str, optional
        Event labels such as ``"+200 V on"``.
    errors : array, shape (nt,), optional
        Standard errors of ``value`` (used as sigma, absolute); default unweighted.
    model : {"double", "single"}

    Returns
    -------
    list of EventResponse
    """
    t, v = to_numpy(time).astype(float), to_numpy(value).astype(float)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError(f"time and value must be 1D of equal length, got {t.shape} and {v.shape}")
    if model not in ("single", "double"):
        raise ValueError(f"model must be 'single' or 'double', got {model!r}")
    ev = np.asarray(event_times, dtype=float)
    if np.any(np.diff(ev) <= 0):
        raise ValueError("event_times must be strictly ascending")
    labels = list(labels) if labels is not None else [f"event {k + 1}" for k in range(ev.size)]
    if len(labels) != ev.size:
        raise ValueError(f"{len(labels)} labels for {ev.size} events")
    sig = None if errors is None else to_numpy(errors).astype(float)
    ends = np.append(ev[1:], np.inf)
    return [_fit_event(t, v, sig, t0, t1, label, model) for t0, t1, label in zip(ev, ends, labels)]


def _fit_event(t: np.ndarray, v: np.ndarray, sig: np.ndarray | None, t0: float, t1: float, label: str,
               model: ResponseModel) -> EventResponse:
    """Fit one segment ``t0 <= t < t1``, trying a few starting time constants, keep the best."""
    sel = (t >= t0) & (t < t1) & np.isfinite(v) & (np.isfinite(sig) & (sig > 0) if sig is not None else True)
    tt, vv = t[sel] - t0, v[sel]
    ss = sig[sel] if sig is not None else None
    n_par = 3 if model == "single" else 5
    if tt.size <= n_par:
        return _failed(t0, label, tt.size, f"{tt.size} valid points for {n_par} parameters")
    best = None
    for start in _starts(tt, vv, model):
        try:
            p, cov = curve_fit(_FUNCS[model], tt, vv, p0=start, sigma=ss, absolute_sigma=ss is not None,
                               bounds=_bounds(tt, model), maxfev=5000)
        except (RuntimeError, ValueError) as exc:
            best = best or (None, None, str(exc))
            continue
        cost = _chi2(_FUNCS[model](tt, *p), vv, ss, tt.size - n_par)
        if best is None or best[0] is None or cost < best[2]:
            best = (p, cov, cost)
    if best[0] is None:
        return _failed(t0, label, tt.size, best[2])
    return _response(t0, label, tt.size, model, *best)


def _starts(tt: np.ndarray, vv: np.ndarray, model: ResponseModel) -> list[list[float]]:
    """Starting values: E0 from the first point, the total change split between components."""
    span = max(float(tt.max()), 1e-9)
    e0, de = float(vv[0]), float(np.median(vv[-max(3, vv.size // 10):]) - vv[0])
    if model == "single":
        return [[e0, de, f * span] for f in (0.05, 0.2)]
    return [[e0, 0.5 * de, f * span, 0.5 * de, s * span] for f, s in TAU_STARTS]


def _bounds(tt: np.ndarray, model: ResponseModel) -> tuple[list[float], list[float]]:
    """Time constants between a tenth of the sampling step and ten times the segment length."""
    dt = float(np.min(np.diff(tt))) if tt.size > 1 else 1.0
    tau = (0.1 * dt, 10.0 * max(float(tt.max()), dt))
    if model == "single":
        return [-np.inf, -np.inf, tau[0]], [np.inf, np.inf, tau[1]]
    return [-np.inf, -np.inf, tau[0], -np.inf, tau[0]], [np.inf, np.inf, tau[1], np.inf, tau[1]]


def _chi2(model_values: np.ndarray, vv: np.ndarray, ss: np.ndarray | None, dof: int) -> float:
    r = (vv - model_values) / (ss if ss is not None else 1.0)
    return float(r @ r) / max(dof, 1)


def _response(t0: float, label: str, n: int, model: ResponseModel, p: np.ndarray, cov: np.ndarray,
              chi2: float) -> EventResponse:
    """Unpack the parameters (fast = shorter time constant) into an :class:`EventResponse`."""
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    if model == "double" and p[2] > p[4]:  # order the components: fast first
        p, err = p[[0, 3, 4, 1, 2]], err[[0, 3, 4, 1, 2]]
    names = ("e0", "shift_fast_mev", "tau_fast", "shift_slow_mev", "tau_slow")
    scale = np.array([1.0, 1e3, 1.0, 1e3, 1.0])[: p.size]
    vals = dict(zip(names, np.append(p * scale, [np.nan] * (5 - p.size))))
    errs = dict(zip(names, np.append(err * scale, [np.nan] * (5 - p.size))))
    return EventResponse(t0, label, n, **vals, errors=errs, chi2=chi2)


def _failed(t0: float, label: str, n: int, message: str) -> EventResponse:
    names = ("e0", "shift_fast_mev", "tau_fast", "shift_slow_mev", "tau_slow")
    return EventResponse(t0, label, n, *([np.nan] * 5), errors=dict.fromkeys(names, np.nan), chi2=np.nan,
                         message=message)


_FUNCS = {"single": single_exp, "double": double_exp}
