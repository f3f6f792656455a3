"""pvoigt2d_polar (pseudo-Voigt in q times a wrapped Gaussian in azimuth): the engine against
scipy least_squares (spots across the 0/360 seam, a masked gap, active bounds, fixed
parameters), positions at the Cramér–Rao bound on Poisson data, and a WAXS job that asks for it
per reflection. Jacobians: tests/test_fit_jacobians.py; NVRTC: tests/test_gpu_nvrtc.py."""

import numpy as np
import pytest
import tomli_w
import tomllib
from fit_problems import pvoigt_bragg_problem
from test_fit_precision import check, seam_spot_fits
from test_fit_vs_scipy import assert_close, assert_found_across_seam, gap_weights, run_both, scipy_fit

from gpuproc.fit import PVoigt2DPolar, fit
from gpuproc.fit.models.profiles import FWHM_PER_SIGMA
from gpuproc.io.results import open_results
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.pipeline import run_waxs


def perturbed_start(rng, truth):
    """A few percent off, positions off by a sixth of a FWHM (a third of a sigma)."""
    p0 = truth * rng.uniform(0.95, 1.05, truth.shape)
    p0[:, 1] = truth[:, 1] + rng.normal(0, 0.15, len(truth)) * truth[:, 2]
    p0[:, 4] = np.mod(truth[:, 4] + rng.normal(0, 0.15, len(truth)) * truth[:, 5], 360.0)
    p0[:, 3] = 0.5
    return p0.astype(np.float32)


@pytest.mark.parametrize("phi_center", [90.0, 0.0, 359.0])  # 0 and 359: the window straddles the seam
def test_pvoigt2d_polar_matches_scipy(phi_center):
    rng = np.random.default_rng(int(phi_center) + 21)
    (q, phi), y, truth = pvoigt_bragg_problem(rng, 12, phi_center=phi_center)
    model = PVoigt2DPolar()
    w = gap_weights(q)
    x = np.stack([q, phi])
    lo, hi = model.default_bounds(x)
    res, ref = run_both(model, x, y, w, lo, hi, np.zeros(8, bool), perturbed_start(rng, truth))
    assert_close(res.params, res.errors, ref, periodic=(4,))
    assert_found_across_seam(res, truth[:, 4])


def test_pvoigt2d_polar_bounds_and_fixed_match_scipy():
    rng = np.random.default_rng(22)
    (q, phi), y, truth = pvoigt_bragg_problem(rng, 10, phi_center=359.0)
    truth[:, 3] = 0.05  # nearly Gaussian: eta_q runs into its lower bound raised to 0.2 below
    model = PVoigt2DPolar()
    x = np.stack([q, phi])
    y = np.random.default_rng(23).poisson(model.evaluate(x.astype(np.float64), truth)).astype(np.float32)
    lo, hi = model.default_bounds(x)
    lo = lo.copy()
    lo[3] = 0.2
    fixed = np.zeros(8, bool)
    fixed[7] = True  # b1 held at its start
    p0 = truth.astype(np.float32)
    p0[:, 3], p0[:, 7] = 0.5, 0.0
    res, ref = run_both(model, x, y, np.ones(q.size, np.float32), lo, hi, fixed, p0)
    assert np.allclose(res["eta_q"], 0.2, rtol=1e-6)
    assert np.all(res["b1"] == 0.0) and np.all(res.error("b1") == 0.0)
    assert_close(res.params, res.errors, ref, periodic=(4,))


def test_pvoigt2d_polar_automatic_start_reaches_scipy_solution():
    """Default starting values: the engine converges to the optimum scipy finds from the truth."""
    rng = np.random.default_rng(24)
    (q, phi), y, truth = pvoigt_bragg_problem(rng, 20, phi_center=0.0)
    model = PVoigt2DPolar()
    w = 1.0 / np.maximum(y, 1.0)
    res = fit(model, y, (q, phi), weights=w, absolute_sigma=True, device="cpu")
    assert np.all(res.ok)
    x = np.stack([q, phi])
    lo, hi = model.default_bounds(x)
    ref = np.stack([scipy_fit(model, x, y[i], w[i], truth[i].astype(np.float32), lo, hi, np.zeros(8, bool))
                    for i in range(len(y))])
    assert_close(res.params, res.errors, ref, periodic=(4,))


def test_pvoigt2d_polar_position_reaches_crb():
    rng = np.random.default_rng(25)
    model = PVoigt2DPolar()
    p = np.array([150.0, 1.07, 0.024, 0.5, 1.0, 12.0, 8.0, 1.0])
    res, c = seam_spot_fits(rng, model, p)  # window across the 0/360 seam
    assert np.mean(res.ok) > 0.995
    ok = res.ok
    check(res["q0"][ok], res.error("q0")[ok], p[1], c[1, 1], "q0")
    check(res["phi0"][ok], res.error("phi0")[ok], p[4], c[4, 4], "phi0", periodic=True)
    check(res["fwhm_q"][ok], res.error("fwhm_q")[ok], p[2], c[2, 2], "fwhm_q")


def test_gaussian_spot_fitted_as_pvoigt_gives_the_gaussian_answer():
    """On Gaussian spots the pseudo-Voigt finds eta_q ~ 0 and the Gaussian's q0 and FWHM."""
    from fit_problems import bragg_problem

    rng = np.random.default_rng(26)
    (q, phi), y, truth = bragg_problem(rng, 200, phi_center=90.0, amplitude=800.0)
    w = 1.0 / np.maximum(y, 1.0)
    pv = fit(PVoigt2DPolar(), y, (q, phi), weights=w, absolute_sigma=True, device="cpu")
    ok = pv.ok
    assert ok.mean() > 0.95
    assert np.median(pv["eta_q"][ok]) < 0.1
    pull = (pv["fwhm_q"][ok] - FWHM_PER_SIGMA * truth[ok, 2]) / pv.error("fwhm_q")[ok]
    assert abs(np.median(pull)) < 0.5
    assert np.all(np.abs(pv["q0"][ok] - truth[ok, 1]) < 5 * pv.error("q0")[ok])


def test_waxs_job_with_pvoigt_reflections(tmp_path):
    """[[reflections]] model = "pvoigt2d_polar" runs through the pipeline: per-reflection model in
    the store, eta_q stored, positions and widths those of the Gaussian fit of the same spots."""
    job_path, _ = write_demo_job(tmp_path, shape=(3, 4), detector="Pilatus100k", seed=5, figures=False,
                                 job_overrides={"device": "cpu"})
    job = tomllib.loads(job_path.read_text())
    gauss = open_results(run_waxs(job_path))
    for r in job["reflections"]:
        if r.get("kind", "waxs") == "waxs":
            r["model"] = "pvoigt2d_polar"
    job["job"]["output"] = "pvoigt.results.zarr"
    path = tmp_path / "pvoigt.toml"
    path.write_text(tomli_w.dumps(job))
    pv = open_results(run_waxs(path))
    kinds = [r.get("kind", "waxs") for r in job["reflections"]]
    assert list(pv["spot_model"].values) == ["pvoigt2d_polar" if k == "waxs" else "gauss2d_polar" for k in kinds]
    assert list(gauss["spot_model"].values) == ["gauss2d_polar"] * len(kinds)
    ok = (pv["fit_status"].values == 0) & (gauss["fit_status"].values == 0)
    assert ok.mean() > 0.7
    wx = np.array(kinds) == "waxs"
    eta = pv["eta_q"].values[wx][ok[wx]]
    assert np.all((eta >= 0) & (eta <= 1)) and np.median(eta) < 0.3  # the synthetic spots are Gaussian
    assert np.all(gauss["eta_q"].values[ok] == 0.0)
    dq = np.abs(pv["q0"].values - gauss["q0"].values)[ok]
    assert np.all(dq < 2 * gauss["q0_err"].values[ok])
    ratio = (pv["fwhm_q"].values / gauss["fwhm_q"].values)[ok]
    assert abs(np.median(ratio) - 1) < 0.1
    assert np.isfinite(pv["size"].values).mean() > 0.5
    assert "spot_model" in pv["strain"].attrs["long_name"]
