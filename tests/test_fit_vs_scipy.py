"""The engine against scipy.optimize.least_squares on fresh random problems.

Each problem is fitted by both from the same start, bounds and fixed parameters, on the same
valid points; the parameters must agree to a small fraction of their standard error (our
default stopping rule leaves < 0.01 sigma; the tolerance is 0.03 sigma).
"""

import numpy as np
import pytest
from scipy.optimize import least_squares

from gpuproc.fit import Gauss1D, Gauss2DPolar, Status, fit
from fit_problems import bragg_problem, pl_problem

TOL_SIGMA = 0.03


def scipy_fit(model, x, y, w, p0, lo, hi, fixed):
    """Reference fit of one problem with scipy (trf, analytic Jacobian, tight tolerances)."""
    ok = (w > 0) & np.isfinite(y)
    x = x if x.ndim == 2 else x[None]
    xs = x[..., ok].astype(np.float64)
    ys, sw = y[ok].astype(np.float64), np.sqrt(w[ok])
    free = ~fixed

    def full(pf):
        p = p0.astype(np.float64).copy()
        p[free] = pf
        return p[None]

    def res(pf):
        return sw * (model.evaluate(xs, full(pf))[0] - ys)

    def jac(pf):
        return sw[:, None] * model.jacobian(xs, full(pf))[0][:, free]

    start = np.clip(p0[free].astype(np.float64), lo[free], hi[free])
    r = least_squares(res, start, jac=jac, bounds=(lo[free], hi[free]), method="trf",
                      x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=2000)
    return full(r.x)[0]


def perturbed(rng, truth, n_peaks):
    """Starting values a few percent off, centres off by a third of a width."""
    p0 = truth * rng.uniform(0.95, 1.05, truth.shape)
    for k in range(n_peaks):
        p0[:, 3 * k + 1] = truth[:, 3 * k + 1] + rng.normal(0, 0.3, len(truth)) * truth[:, 3 * k + 2]
    p0[:, 3 * n_peaks + 1 :] = 0.0  # slope
    return p0.astype(np.float32)


def assert_close(ours, errors, ref, periodic=()):
    d = ours.astype(np.float64) - ref
    for j in periodic:
        d[..., j] -= 360.0 * np.floor(d[..., j] / 360.0 + 0.5)
    scale = np.where(errors > 0, errors, 1.0)
    dev = np.abs(d) / scale
    assert np.all(dev < TOL_SIGMA), f"max deviation {dev.max(axis=0)} sigma"


def run_both(model, x, y, w, lo, hi, fixed, p0):
    res = fit(model, y, x, weights=w, bounds=(lo, hi), fixed=fixed, p0=p0, device="cpu")
    assert np.all(res.status == Status.CONVERGED), res.status_counts()
    ref = np.stack([scipy_fit(model, x, y[i], w, p0[i], lo, hi, fixed) for i in range(len(y))])
    return res, ref


@pytest.mark.parametrize("n_peaks,background", [(1, "constant"), (2, "linear")])
def test_gauss1d_matches_scipy(n_peaks, background):
    rng = np.random.default_rng(10 + n_peaks)
    x, y, truth = pl_problem(rng, 30, n_peaks=n_peaks, slope=0.0)
    model = Gauss1D(n_peaks, background)
    w = np.ones(x.size, np.float32)
    w[rng.choice(x.size, 60, replace=False)] = 0.0  # masked channels
    y[:, 5] = np.nan  # a NaN channel must not count either
    p0 = perturbed(rng, truth[:, : model.n_params], n_peaks)
    lo, hi = model.default_bounds(x[None])
    res, ref = run_both(model, x, y, w, lo, hi, np.zeros(model.n_params, bool), p0)
    assert_close(res.params, res.errors, ref)


def test_gauss1d_bounds_and_fixed_match_scipy():
    rng = np.random.default_rng(3)
    x, y, truth = pl_problem(rng, 20)
    model = Gauss1D(1, "linear")
    p0 = truth[:, :5].astype(np.float32)
    p0[:, 4] = 0.0
    lo, hi = model.default_bounds(x[None])
    hi = hi.copy()
    hi[2] = 0.011  # below every true sigma: the bound is active at the solution
    fixed = np.array([False, False, False, False, True])  # slope held at 0
    res, ref = run_both(model, x, y, np.ones(x.size, np.float32), lo, hi, fixed, p0)
    assert np.allclose(res["sigma1"], 0.011, rtol=1e-6)
    assert np.all(res["c1"] == 0.0) and np.all(res.error("c1") == 0.0)
    assert_close(res.params, res.errors, ref)


@pytest.mark.parametrize("phi_center", [90.0, 0.0, 359.0])  # 0 and 359: the window straddles the seam
def test_gauss2d_polar_matches_scipy(phi_center):
    rng = np.random.default_rng(int(phi_center) + 1)
    (q, phi), y, truth = bragg_problem(rng, 12, phi_center=phi_center)
    model = Gauss2DPolar()
    w = gap_weights(q)
    p0 = truth * rng.uniform(0.95, 1.05, truth.shape)
    p0[:, 1] = truth[:, 1] + rng.normal(0, 0.3, 12) * truth[:, 2]
    p0[:, 3] = np.mod(truth[:, 3] + rng.normal(0, 0.3, 12) * truth[:, 4], 360.0)
    p0 = p0.astype(np.float32)
    lo, hi = model.default_bounds(np.stack([q, phi]))
    x = np.stack([q, phi])
    res, ref = run_both(model, x, y, w, lo, hi, np.zeros(7, bool), p0)
    assert_close(res.params, res.errors, ref, periodic=(3,))
    assert_found_across_seam(res, truth[:, 3])


def gap_weights(q):
    """Unit weights with a detector gap across the window (1.03 < q < 1.04 masked)."""
    w = np.ones(q.size, np.float32)
    w[(q > 1.03) & (q < 1.04)] = 0.0
    return w


def assert_found_across_seam(res, phi0):
    """Every fitted phi0 within a degree of the true one, modulo 360."""
    d = res["phi0"] - phi0
    assert np.all(np.abs(d - 360 * np.round(d / 360)) < 1.0)


def test_automatic_start_reaches_scipy_solution():
    """Default starting values: the engine converges to the same optimum as scipy started at truth."""
    rng = np.random.default_rng(5)
    (q, phi), y, truth = bragg_problem(rng, 10, phi_center=0.0)
    model = Gauss2DPolar()
    res = fit(model, y, (q, phi), device="cpu")
    assert np.all(res.ok)
    lo, hi = model.default_bounds(np.stack([q, phi]))
    ref = np.stack([scipy_fit(model, np.stack([q, phi]), y[i], np.ones(q.size), truth[i].astype(np.float32), lo, hi,
                              np.zeros(7, bool)) for i in range(10)])
    assert_close(res.params, res.errors, ref, periodic=(3,))
