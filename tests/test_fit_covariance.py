"""``fit(..., covariance=True)``: the whole parameter covariance, on the CPU, through the emulated
CUDA kernel (tests/emu/, the engine's GPU argument packing) and on a real GPU (``-m gpu``).

Its diagonal is the reported errors squared; fixed parameters have zero rows and columns, a
singular fit NaN ones; asking for it changes no other result. Least squares against scipy's
``curve_fit`` (its ``pcov``, noise scale from the residuals as ours without ``absolute_sigma``)
and Poisson against the inverse Fisher information, both evaluated with the Python model's own
Jacobian at the engine's solution, on the engine's test problems (tests/fit_problems.py).
"""

import shutil

import numpy as np
import pytest
from emu.kernel import build, emulate
from fit_problems import bragg_problem, pl_problem, shaped_peaks_problem
from scipy.optimize import curve_fit

from gpuproc.backend import kernel_dir
from gpuproc.fit import Gauss1D, Gauss2DPolar, Status, fit

#: |ours - reference| / sqrt(reference_ii reference_jj), largest entry over a problem's fits.
#: Measured, CPU and emulated kernel alike: 1.6e-4 (2-peak spectra), 7e-5 Bragg, 4e-5 pseudo-Voigt,
#: 2e-5 1-peak, Poisson 4e-5 (the engine sums the normal equations in float32, the references
#: in float64 at the same parameters).
COV_TOL = 1e-3


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the emulation")
    return build(kernel_dir(), tmp_path_factory.mktemp("emu_cov"))


@pytest.fixture(params=["cpu", "emulated", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request, monkeypatch):
    """The CPU library, ``device="gpu"`` through the emulated kernel, or a real GPU (gpu marker)."""
    if request.param == "emulated":
        emulate(monkeypatch, request.getfixturevalue("lib"))
    return "cpu" if request.param == "cpu" else "gpu"


def fitted(*args, **kw):
    """:func:`fit` with every result on the host."""
    return fit(*args, **kw).get()


def problems():
    """name -> (model, x, y, fit keywords): 1- and 2-peak spectra, Bragg spots across the 0/360
    seam with the slope fixed, pseudo-Voigt peaks (asymmetry held by the shape); started at the
    truth (this is not a test of convergence)."""
    rng = np.random.default_rng(21)
    x1, y1, t1 = pl_problem(rng, 10, n_points=256)
    x2, y2, t2 = pl_problem(rng, 10, n_points=256, n_peaks=2)
    (q, phi), yb, tb = bragg_problem(rng, 10, npt_q=24, npt_phi=36, phi_center=0.0)
    model_pv, xp, yp, tp = shaped_peaks_problem(rng, 10, ("pvoigt",), n_points=256)
    w = rng.uniform(0.5, 2.0, x1.size).astype(np.float32)  # 1/variance, relative
    start = {"gauss1d_1": t1[:, :4], "gauss1d_2": t2, "bragg_fixed_slope": tb, "pvoigt": tp}
    out = {
        "gauss1d_1": (Gauss1D(1, "constant"), x1, y1, {"weights": w}),
        "gauss1d_2": (Gauss1D(2, "linear"), x2, y2, {}),
        "bragg_fixed_slope": (Gauss2DPolar(), np.stack([q, phi]), yb, {"fixed": np.array([False] * 6 + [True])}),
        "pvoigt": (model_pv, xp, yp, {}),
    }
    for name, (_, _, _, kw) in out.items():
        kw["p0"] = start[name].astype(np.float32)
    return out


def _free(model, kw):
    fixed = np.zeros(model.n_params, bool) if "fixed" not in kw else kw["fixed"].copy()
    fixed[list(model.held)] = True
    return ~fixed


def _normalised_deviation(cov, ref):
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    return float(np.max(np.abs(cov - ref) / scale))


@pytest.mark.parametrize("name", sorted(problems()))
def test_least_squares_covariance_is_curve_fits(device, name):
    model, x, y, kw = problems()[name]
    r = fitted(model, y, x, device=device, covariance=True, **kw)
    assert np.all(r.status == Status.CONVERGED), r.status_counts()
    assert r.covariance.shape == y.shape[:-1] + (model.n_params, model.n_params)
    free = _free(model, kw)
    w = np.broadcast_to(kw.get("weights", np.ones(y.shape[-1], np.float32)), y.shape[-1])
    xx = (x if x.ndim == 2 else x[None]).astype(np.float64)
    worst = 0.0
    for i in range(y.shape[0]):
        p = r.params[i].astype(np.float64)

        def f(_, *pf):
            full = p.copy()
            full[free] = pf
            return model.evaluate(xx, full[None])[0]

        def jac(_, *pf):
            full = p.copy()
            full[free] = pf
            return model.jacobian(xx, full[None])[0][:, free]

        # started at our solution, scipy stays there (max_nfev=1 would not compute pcov reliably)
        popt, pcov = curve_fit(f, None, y[i].astype(np.float64), p0=p[free], sigma=1.0 / np.sqrt(w), jac=jac,
                               absolute_sigma=False, method="lm", xtol=1e-12, ftol=1e-12)
        cov = r.covariance[i].astype(np.float64)
        worst = max(worst, _normalised_deviation(cov[np.ix_(free, free)], pcov))
        assert np.all(cov[~free] == 0) and np.all(cov[:, ~free] == 0)
    assert worst < COV_TOL, f"{name} on {device}: covariance deviates from curve_fit's by {worst:.3g}"


def test_poisson_covariance_is_the_inverse_fisher_information(device):
    model, x, y, kw = problems()["gauss1d_2"]
    r = fitted(model, y, x, device=device, covariance=True, estimator="poisson", p0=kw["p0"])
    assert np.all(r.ok)
    p = r.params.astype(np.float64)
    mu = model.evaluate(x[None].astype(np.float64), p)
    jac = model.jacobian(x[None].astype(np.float64), p)
    fisher = np.einsum("fik,fil->fkl", jac / mu[..., None], jac)
    worst = max(_normalised_deviation(c, ref) for c, ref in zip(r.covariance.astype(np.float64),
                                                                np.linalg.inv(fisher)))
    assert worst < COV_TOL, worst


def test_diagonal_fixed_and_singular_entries(device):
    """Diagonal = errors^2, symmetric, zeros for fixed parameters, NaN for a flat (singular)
    spectrum's free ones and for a fit that could not start; params and errors are those of the
    same fit without the covariance, bit for bit."""
    rng = np.random.default_rng(8)
    x, y, _ = pl_problem(rng, 12, n_points=200)
    y[0] = 100.0  # flat: SINGULAR
    y[1] = np.nan  # no valid point: INVALID_INPUT
    fixed = np.zeros((12, 4), bool)
    fixed[2::3, 3] = True  # background held in some fits
    kw = dict(fixed=fixed, device=device)
    r = fitted("gauss1d", y, x, covariance=True, **kw)
    plain = fitted("gauss1d", y, x, **kw)
    assert plain.covariance is None
    for k in ("params", "errors", "chi2", "n_iter", "status"):
        np.testing.assert_array_equal(getattr(r, k), getattr(plain, k), err_msg=k)
    assert r.status[0] == Status.SINGULAR and r.status[1] == Status.INVALID_INPUT
    good = r.status == Status.CONVERGED
    assert good.sum() == 10
    cov = r.covariance[good]
    np.testing.assert_allclose(np.diagonal(cov, axis1=1, axis2=2), r.errors[good] ** 2, rtol=1e-6)
    scale = np.einsum("fi,fj->fij", r.errors[good], r.errors[good])
    np.testing.assert_array_less(np.abs(cov - np.swapaxes(cov, 1, 2)), 1e-5 * scale + 1e-30)
    held = fixed[good]
    assert np.all(cov[held] == 0) and np.all(np.swapaxes(cov, 1, 2)[held] == 0)
    for bad in (0, 1):
        assert np.isnan(r.covariance[bad]).all(), bad
    corr = cov / np.maximum(scale, 1e-30)
    assert np.all(np.abs(corr[:, 0, 2]) > 0.05)  # amplitude-width: a real off-diagonal term


def test_covariance_keeps_the_batch_shape_and_get_copies_it():
    x, y, _ = pl_problem(np.random.default_rng(3), 6, n_points=128)
    r = fit("gauss1d", y.reshape(2, 3, 128), x, device="cpu", covariance=True)
    assert r.covariance.shape == (2, 3, 4, 4)
    flat = fit("gauss1d", y, x, device="cpu", covariance=True, batch_size=4, n_threads=2)
    np.testing.assert_array_equal(r.get().covariance.reshape(6, 4, 4), flat.covariance)
