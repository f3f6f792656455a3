"""Agreement of a fit backend with the CPU path, judged against a control: the CPU path itself
with the points of every fit reordered (same problems, only the summation order changes).

A fit is *well-posed* when the control moves it by less than ``WELL_POSED_SIGMA`` standard errors
and its errors by less than ``WELL_POSED_ERR`` (relative), both runs converged. Backends that sum
in another order (a warp's lanes and shuffle tree, the CPU's 64-point tiles) may change the
status only of fits that are not well-posed, as the control does; on well-posed fits the
parameters, errors and chi2 must agree as closely as the control agrees with the CPU (a factor
``SLACK`` over its worst case, plus a floor), and fixed parameters keep an error of 0. The floor of
the parameters is the stopping rule's resolution: a fit converges once the remaining step is below
``gtol`` (0.01) standard errors, so two correct runs may stop that far apart; errors and chi2 get a
float32 summation floor.
"""

from __future__ import annotations

import numpy as np

from gpuproc.fit import FitResult, Status

WELL_POSED_SIGMA = 0.1
WELL_POSED_ERR = 0.01
SLACK = 3.0
FLOOR = {"params": 0.01, "errors": 1e-4, "chi2": 1e-4}  # standard errors (gtol); relative; relative


def reorder(x, y, kw: dict, perm: np.ndarray):
    """The same problems with the points in the order ``perm`` (x: array or tuple of axes)."""
    def take(a):
        return a[..., perm]

    x = tuple(take(np.asarray(c)) for c in x) if isinstance(x, tuple) else take(np.asarray(x))
    kw = {k: take(np.asarray(v)) if k in ("mask", "weights") else v for k, v in kw.items()}
    return x, take(np.asarray(y)), kw


def deviations(cpu: FitResult, other: FitResult) -> dict[str, np.ndarray]:
    """Per fit: parameter change in CPU standard errors, relative error and chi2 changes (max over
    parameters), and whether fixed-parameter errors (0 on the CPU) stayed 0."""
    n_par = cpu.params.shape[-1]
    pc, po, ec, eo = (a.reshape(-1, n_par).astype(np.float64)
                      for a in (cpu.params, other.params, cpu.errors, other.errors))
    zero = ec == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        dp = np.where(zero, np.abs(po - pc) / np.maximum(np.abs(pc), 1e-30), np.abs(po - pc) / ec).max(axis=1)
        de = np.where(zero, 0.0, np.abs(eo / ec - 1.0)).max(axis=1)
        dc = np.abs(other.chi2.ravel().astype(np.float64) / cpu.chi2.ravel() - 1.0)
    return {"params": dp, "errors": de, "chi2": dc, "fixed_ok": np.all(~zero | (eo == 0), axis=1),
            "status": other.status.ravel() != cpu.status.ravel()}


def check_agreement(cpu: FitResult, other: FitResult, control: FitResult, label: str = "") -> dict:
    """Assert ``other`` agrees with ``cpu`` as well as ``control`` does (see the module doc).
    Returns the measured deviations (for reports)."""
    ctrl, dev = deviations(cpu, control), deviations(cpu, other)
    converged = (cpu.status.ravel() == Status.CONVERGED) & (control.status.ravel() == Status.CONVERGED)
    well = converged & (ctrl["params"] < WELL_POSED_SIGMA) & (ctrl["errors"] < WELL_POSED_ERR)
    flips = np.nonzero(dev["status"] & well)[0]
    assert flips.size == 0, (f"{label}: status differs on well-posed fits {flips[:10].tolist()}: cpu "
                             f"{cpu.status.ravel()[flips[:10]].tolist()}, other {other.status.ravel()[flips[:10]].tolist()}")
    assert dev["fixed_ok"].all(), f"{label}: a fixed parameter got a non-zero error"
    report = {"n": int(cpu.status.size), "well_posed": int(well.sum()),
              "status_flips": int(dev["status"].sum()), "control_status_flips": int(ctrl["status"].sum())}
    for key in ("params", "errors", "chi2"):
        c, o = ctrl[key][well], dev[key][well]
        if not o.size:
            continue
        limit = SLACK * c.max() + FLOOR[key]
        report[key] = (float(o.max()), float(c.max()))
        assert o.max() <= limit, (f"{label}: {key} deviate by up to {o.max():.3g} on well-posed fits (fit "
                                  f"{np.nonzero(well)[0][o.argmax()]}); the control, by {c.max():.3g}")
    return report
