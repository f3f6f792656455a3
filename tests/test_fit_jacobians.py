"""Every model's analytic Jacobian against central finite differences: the Python models
directly, and the compiled kernels' (kernels/models/*.cuh) through the covariance they report
(errors = sqrt(diag((J^T W J)^-1)) at the solution, with J from finite differences here)."""

import numpy as np
import pytest
from fit_problems import bragg_problem, pvoigt_bragg_problem, shaped_peaks_problem

from gpuproc.fit import fit
from gpuproc.fit.models import get_model

GAUSS1D = [(n, bg) for n in (1, 2, 3, 4) for bg in ("none", "constant", "linear")]
#: peaks1d shape mixes; the Jacobian is checked in every parameter, held ones included
SHAPE_MIXES = [("gauss",), ("lorentz",), ("pvoigt",), ("split_gauss",), ("pvoigt", "split_gauss", "lorentz", "gauss")]


def central_differences(model, x, p, rel=1e-6):
    """df/dp by central differences in float64, shape (n_fits, n_points, n_params)."""
    cols = []
    for j in range(p.shape[1]):
        h = rel * np.maximum(np.abs(p[:, j]), 1.0)
        up, down = p.copy(), p.copy()
        up[:, j] += h
        down[:, j] -= h
        cols.append((model.evaluate(x, up) - model.evaluate(x, down)) / (2 * h[:, None]))
    return np.stack(cols, axis=-1)


def gauss1d_params(rng, n_fits, n_peaks, n_bg):
    p = []
    for k in range(n_peaks):
        p += [rng.uniform(50, 200, n_fits), rng.uniform(2.45, 2.6, n_fits), rng.uniform(0.01, 0.04, n_fits)]
    p += [rng.uniform(20, 40, n_fits), rng.uniform(-5, 5, n_fits)][:n_bg]
    return np.stack(p, axis=-1)


@pytest.mark.parametrize("n_peaks,background", GAUSS1D)
def test_gauss1d_jacobian_matches_finite_differences(n_peaks, background):
    rng = np.random.default_rng(n_peaks)
    m = get_model("gauss1d", n_peaks=n_peaks, background=background)
    x = np.linspace(2.3, 2.75, 301)[None, :]
    p = gauss1d_params(rng, 8, n_peaks, m.n_bg)
    np.testing.assert_allclose(m.jacobian(x, p), central_differences(m, x, p), rtol=1e-5, atol=1e-5)


POLAR = [("gauss2d_polar", bragg_problem), ("pvoigt2d_polar", pvoigt_bragg_problem)]


@pytest.mark.parametrize("name,problem", POLAR)
@pytest.mark.parametrize("phi_center", [0.0, 90.0, 359.0])
def test_polar_jacobian_matches_finite_differences_across_the_seam(name, problem, phi_center):
    rng = np.random.default_rng(7)
    (q, phi), _, p = problem(rng, 8, phi_center=phi_center)
    m = get_model(name)
    x = np.stack([q, phi]).astype(np.float64)
    np.testing.assert_allclose(m.jacobian(x, p), central_differences(m, x, p), rtol=1e-5, atol=1e-4)


def covariance_errors(model, x, p, w):
    """Standard errors from finite-difference J at p: sqrt(diag((J^T W J)^-1)) over the free
    parameters (0 for those the model holds)."""
    free = np.array([i not in model.held for i in range(model.n_params)])
    jac = central_differences(model, x, p.astype(np.float64))[..., free]
    fisher = np.einsum("fni,fn,fnj->fij", jac, w, jac)
    out = np.zeros(p.shape)
    out[:, free] = np.sqrt(np.diagonal(np.linalg.inv(fisher), axis1=1, axis2=2))
    return out


def assert_kernel_jacobian(model, x, y, w, truth):
    """Fit from the truth (this is about derivatives, not starting values) and compare errors."""
    r = fit(model, y, x[0] if model.n_dims == 1 else (x[0], x[1]), p0=truth.astype(np.float32), weights=w,
            absolute_sigma=True, device="cpu")
    ok = r.status == 0
    assert ok.mean() > 0.9
    expected = covariance_errors(model, x, r.params[ok].astype(np.float64), w[ok])
    np.testing.assert_allclose(r.errors[ok], expected, rtol=2e-3)


@pytest.mark.parametrize("n_peaks,background", [(1, "linear"), (2, "constant"), (3, "none"), (4, "linear")])
def test_compiled_gauss1d_jacobian(n_peaks, background):
    rng = np.random.default_rng(11)
    m = get_model("gauss1d", n_peaks=n_peaks, background=background)
    x = np.linspace(2.3, 2.8, 400)[None, :]
    p = gauss1d_params(rng, 64, n_peaks, m.n_bg)
    p[:, 1:3 * n_peaks:3] = 2.4 + 0.1 * np.arange(n_peaks) + rng.normal(0, 0.005, (64, n_peaks))  # resolved peaks
    y = rng.poisson(m.evaluate(x, p))
    assert_kernel_jacobian(m, x, y.astype(np.float32), 1.0 / np.maximum(y, 1.0), p)


@pytest.mark.parametrize("name,problem", POLAR)
def test_compiled_polar_jacobian_across_the_seam(name, problem):
    rng = np.random.default_rng(12)
    (q, phi), y, p = problem(rng, 64, phi_center=359.0)
    m = get_model(name)
    assert_kernel_jacobian(m, np.stack([q, phi]).astype(np.float64), y, 1.0 / np.maximum(y, 1.0), p)


@pytest.mark.parametrize("shapes", SHAPE_MIXES)
def test_peaks1d_jacobian_matches_finite_differences(shapes):
    rng = np.random.default_rng(len(shapes))
    m, x, _, p = shaped_peaks_problem(rng, 8, shapes)
    p[:, 3::5] = rng.uniform(0.2, 0.8, (8, len(shapes)))  # eta and asymmetry away from 0 in every peak
    p[:, 4:5 * len(shapes):5] = rng.uniform(-0.5, 0.5, (8, len(shapes)))
    x = x[None].astype(np.float64)
    np.testing.assert_allclose(m.jacobian(x, p), central_differences(m, x, p), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shapes", [("pvoigt",), ("split_gauss", "pvoigt")])
def test_compiled_peaks1d_jacobian(shapes):
    rng = np.random.default_rng(13)
    m, x, y, p = shaped_peaks_problem(rng, 64, shapes, counts=5000.0)
    assert_kernel_jacobian(m, x[None].astype(np.float64), y, 1.0 / np.maximum(y, 1.0), p)
