"""Response of a fitted quantity (peak energy) to stimulus events in a PL time series.

After each event, up to the next one, the trace is fitted (scipy ``curve_fit``) with one of

* ``"none"``: ``E(t) = E0`` (no response),
* ``"single"``: ``E(t) = E0 + dE (1 - exp(-(t - t_event) / tau))``,
* ``"double"``: ``E(t) = E0 + dE_fast (1 - exp(-(t - t_event) / tau_fast))
  + dE_slow (1 - exp(-(t - t_event) / tau_slow))`` with ``tau_fast < tau_slow``: most of a shift
  within seconds of the event, then a slow drift.

``"auto"`` (the default) fits all three and keeps the one with the lowest Bayesian information
criterion among the *admissible* fits. A fit is inadmissible (degenerate) when it does not
measure its parameters: a non-finite or larger-than-value error of a shift or time constant,
two components with the same time constant (ratio below :data:`MIN_TAU_RATIO` or within their
errors), or two components of opposite sign that cancel (:data:`MAX_CANCELLATION`). A rejected
model is named in :attr:`EventResponse.flag`. A model set explicitly is always reported, with the
same flag when it is degenerate.

Times in s, energies in eV, shifts reported in meV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

from gpuproc.backend import to_numpy

ResponseModel = Literal["none", "single", "double"]
ResponseChoice = Literal["auto", "none", "single", "double"]
MODELS: tuple[ResponseModel, ...] = ("none", "single", "double")
N_PARAMS = {"none": 1, "single": 3, "double": 5}
TAU_STARTS = ((0.02, 0.3), (0.05, 0.2), (0.1, 0.5))  # (fast, slow) as fractions of the segment length
MIN_TAU_RATIO = 1.5  #: two components closer than this in time constant are one
MAX_CANCELLATION = 3.0  #: |dE_fast| + |dE_slow| above this times |dE_fast + dE_slow|: cancelling components
NAMES = ("e0", "shift_fast_mev", "tau_fast", "shift_slow_mev", "tau_slow")
_SCALE = np.array([1.0, 1e3, 1.0, 1e3, 1.0])  # fit units (eV, s) -> reported units (eV, meV, s)


@dataclass
class EventResponse:
    """Fitted response to one event; NaN values where the fit failed (see ``message``).

    For the ``"none"`` model both shifts are 0 and the time constants NaN; for ``"single"`` the
    slow component is NaN.
    """

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
    model: str = ""  #: the model reported ("none", "single", "double"; "" when every fit failed)
    flag: str = ""  #: degenerate models rejected (auto) or reported (explicit), "" when none
    bic: dict[str, float] = field(default_factory=dict)  #: BIC of each model tried (inf: inadmissible)
    end: float = np.inf  #: s, end of the fitted segment (the next event)

    @property
    def total_shift_mev(self) -> float:
        """Shift at the end of the relaxation: fast + slow components, meV."""
        return self.shift_fast_mev + (0.0 if np.isnan(self.shift_slow_mev) else self.shift_slow_mev)

    def curve(self, time: Any) -> np.ndarray:
        """The fitted response at ``time`` (s), eV; NaN outside the event's segment or without a fit."""
        t = np.asarray(time, dtype=float)
        out = np.full(t.shape, np.nan)
        if not self.model:
            return out
        inside = (t >= self.time) & (t < self.end)
        p = np.array([getattr(self, n) for n in NAMES[: N_PARAMS[self.model]]]) / _SCALE[: N_PARAMS[self.model]]
        out[inside] = _FUNCS[self.model](t[inside] - self.time, *p)
        return out


def no_response(t: np.ndarray, e0: float) -> np.ndarray:
    """``e0`` at every time."""
    return np.full(np.shape(t), e0, dtype=float)


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
    model: ResponseChoice | Sequence[ResponseChoice] = "auto",
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
    model : {"auto", "none", "single", "double"} or a sequence of them, one per event
        ``"auto"`` chooses per event by BIC among the admissible fits.

    Returns
    -------
    list of EventResponse
    """
    t, v = to_numpy(time).astype(float), to_numpy(value).astype(float)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError(f"time and value must be 1D of equal length, got {t.shape} and {v.shape}")
    ev = np.asarray(event_times, dtype=float)
    if np.any(np.diff(ev) <= 0):
        raise ValueError("event_times must be strictly ascending")
    models = [model] * ev.size if isinstance(model, str) else list(model)
    if len(models) != ev.size:
        raise ValueError(f"{len(models)} response models for {ev.size} events")
    for m in models:
        if m not in ("auto", *MODELS):
            raise ValueError(f"response model must be one of {['auto', *MODELS]}, got {m!r}")
    labels = list(labels) if labels is not None else [f"event {k + 1}" for k in range(ev.size)]
    if len(labels) != ev.size:
        raise ValueError(f"{len(labels)} labels for {ev.size} events")
    sig = None if errors is None else to_numpy(errors).astype(float)
    ends = np.append(ev[1:], np.inf)
    return [_fit_event(t, v, sig, t0, t1, label, m) for t0, t1, label, m in zip(ev, ends, labels, models)]


def response_curve(responses: Sequence[EventResponse], time: Any) -> np.ndarray:
    """The fitted responses of all events at ``time`` (s), eV; NaN before the first event and
    where a segment has no fit."""
    out = np.full(np.shape(time), np.nan)
    for r in responses:
        c = r.curve(time)
        out = np.where(np.isfinite(c), c, out)
    return out


@dataclass
class _Fit:
    """One model fitted to one segment."""

    model: ResponseModel
    p: np.ndarray
    err: np.ndarray
    chi2: float  #: sum of squared normalised residuals
    bic: float
    problem: str  #: why the fit is degenerate, "" when admissible


def _fit_event(t: np.ndarray, v: np.ndarray, sig: np.ndarray | None, t0: float, t1: float, label: str,
               choice: ResponseChoice) -> EventResponse:
    """Fit one segment ``t0 <= t < t1`` with the chosen model (or every model, for "auto")."""
    sel = (t >= t0) & (t < t1) & np.isfinite(v) & (np.isfinite(sig) & (sig > 0) if sig is not None else True)
    tt, vv = t[sel] - t0, v[sel]
    ss = sig[sel] if sig is not None else None
    tried = MODELS if choice == "auto" else (choice,)
    fits, failures = {}, []
    for m in tried:
        if tt.size <= N_PARAMS[m]:
            failures.append(f"{m}: {tt.size} valid points for {N_PARAMS[m]} parameters")
            continue
        result = _fit_model(tt, vv, ss, m)
        if isinstance(result, str):
            failures.append(f"{m}: {result}")
        else:
            fits[m] = result
    if not fits:
        return _failed(t0, t1, label, tt.size, "; ".join(failures))
    admissible = {m: f for m, f in fits.items() if not f.problem}
    pool = admissible or ({} if choice == "auto" else fits)
    if not pool:  # auto, every model degenerate: even the constant
        return _failed(t0, t1, label, tt.size, "; ".join(f"{m}: {f.problem}" for m, f in fits.items()))
    best = min(pool.values(), key=lambda f: f.bic)
    flag = "; ".join(f"{m} rejected: {f.problem}" for m, f in fits.items() if f.problem)
    bic = {m: (f.bic if not f.problem else np.inf) for m, f in fits.items()}
    return _response(t0, t1, label, tt.size, best, flag, bic, "; ".join(failures))


def _fit_model(tt: np.ndarray, vv: np.ndarray, ss: np.ndarray | None, model: ResponseModel) -> _Fit | str:
    """The best of a few starts for one model; a message when every start failed."""
    from scipy.optimize import curve_fit  # here: a PL map run does not import SciPy's optimisers (~0.4 s)

    n_par = N_PARAMS[model]
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    message = ""
    for start in _starts(tt, vv, model):
        try:
            p, cov = curve_fit(_FUNCS[model], tt, vv, p0=start, sigma=ss, absolute_sigma=ss is not None,
                               bounds=_bounds(tt, model), maxfev=5000)
        except (RuntimeError, ValueError) as exc:
            message = str(exc)
            continue
        r = (vv - _FUNCS[model](tt, *p)) / (ss if ss is not None else 1.0)
        chi2 = float(r @ r)
        if best is None or chi2 < best[2]:
            best = (p, cov, chi2)
    if best is None:
        return message
    p, cov, chi2 = best
    err = np.sqrt(np.diag(cov)) if np.all(np.isfinite(cov)) else np.full(n_par, np.inf)
    err = np.where(np.diag(cov) >= 0, err, np.inf)
    if model == "double" and p[2] > p[4]:  # order the components: fast first
        p, err = p[[0, 3, 4, 1, 2]], err[[0, 3, 4, 1, 2]]
    n = tt.size
    # BIC: absolute errors give chi2 = -2 ln L + const; without them the Gaussian likelihood of
    # the residual variance
    fit_term = chi2 if ss is not None else n * np.log(max(chi2, 1e-300) / n)
    return _Fit(model, p, err, chi2, float(fit_term + n_par * np.log(n)), _degenerate(model, p, err))


def _degenerate(model: ResponseModel, p: np.ndarray, err: np.ndarray) -> str:
    """Why a fit does not measure its parameters ("" when it does)."""
    if model == "none":
        return "" if np.isfinite(err[0]) else "no finite error of e0"
    for i in range(1, p.size):
        if not np.isfinite(err[i]) or err[i] > abs(p[i]):
            return f"error of {NAMES[i]} ({err[i] * _SCALE[i]:.3g}) exceeds its value ({p[i] * _SCALE[i]:.3g})"
    if model == "double":
        tf, ts = p[2], p[4]
        if ts / tf < MIN_TAU_RATIO or ts - tf < err[2] + err[4]:
            return f"time constants {tf:.3g} s and {ts:.3g} s are not distinct"
        if abs(p[1]) + abs(p[3]) > MAX_CANCELLATION * abs(p[1] + p[3]):
            return f"components of opposite sign cancel ({p[1] * 1e3:.3g} and {p[3] * 1e3:.3g} meV)"
    return ""


def _starts(tt: np.ndarray, vv: np.ndarray, model: ResponseModel) -> list[list[float]]:
    """Starting values: E0 from the first point, the total change split between components."""
    span = max(float(tt.max()), 1e-9)
    e0, de = float(vv[0]), float(np.median(vv[-max(3, vv.size // 10):]) - vv[0])
    if model == "none":
        return [[float(np.mean(vv))]]
    if model == "single":
        return [[e0, de, f * span] for f in (0.05, 0.2)]
    return [[e0, 0.5 * de, f * span, 0.5 * de, s * span] for f, s in TAU_STARTS]


def _bounds(tt: np.ndarray, model: ResponseModel) -> tuple[list[float], list[float]]:
    """Time constants between a tenth of the sampling step and ten times the segment length."""
    dt = float(np.min(np.diff(tt))) if tt.size > 1 else 1.0
    tau = (0.1 * dt, 10.0 * max(float(tt.max()), dt))
    lo, hi = [-np.inf], [np.inf]
    for _ in range((N_PARAMS[model] - 1) // 2):
        lo += [-np.inf, tau[0]]
        hi += [np.inf, tau[1]]
    return lo, hi


def _response(t0: float, t1: float, label: str, n: int, fit: _Fit, flag: str, bic: dict[str, float],
              message: str) -> EventResponse:
    """Unpack a fit's parameters into an :class:`EventResponse` (reported units)."""
    k = fit.p.size
    vals = np.full(5, np.nan)
    errs = np.full(5, np.nan)
    vals[:k], errs[:k] = fit.p * _SCALE[:k], fit.err * _SCALE[:k]
    if fit.model == "none":
        vals[1] = 0.0
    chi2 = fit.chi2 / max(n - k, 1)
    return EventResponse(t0, label, n, *map(float, vals), errors=dict(zip(NAMES, map(float, errs))), chi2=chi2,
                         message=message, model=fit.model, flag=flag, bic=bic, end=t1)


def _failed(t0: float, t1: float, label: str, n: int, message: str) -> EventResponse:
    return EventResponse(t0, label, n, *([np.nan] * 5), errors=dict.fromkeys(NAMES, np.nan), chi2=np.nan,
                         message=message, end=t1)


_FUNCS = {"none": no_response, "single": single_exp, "double": double_exp}
