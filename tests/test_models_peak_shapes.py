"""peaks1d (Gaussian, Lorentzian, pseudo-Voigt and split-Gaussian peaks, mixed per peak): the
engine against scipy least_squares (masks, NaN, active bounds, fixed and held parameters),
positions at the Cramér–Rao bound on Poisson data, FWHM and areas against numerical integrals,
and PL fits / a PL job with ``peak_shape``. Jacobians: tests/test_fit_jacobians.py; NVRTC:
tests/test_gpu_nvrtc.py."""

import numpy as np
import pytest
from fit_problems import shaped_peaks_problem
from scipy.integrate import quad
from test_fit_precision import check
from test_fit_vs_scipy import assert_close, run_both

from gpuproc.fit import Gauss1D, Peaks1D, fit
from gpuproc.fit.models.profiles import FWHM_PER_SIGMA, SHAPES
from gpuproc.io.results import open_results
from gpuproc.pl.peaks import fit_peaks
from gpuproc.pl.pipeline import run_pl
from gpuproc.synth.pl import pl_map

MIXES = [("pvoigt",), ("lorentz", "gauss"), ("split_gauss",), ("pvoigt", "split_gauss")]


def held_mask(model):
    return np.array([i in model.held for i in range(model.n_params)])


def perturbed(rng, model, truth):
    """A few percent off, centres off by a tenth of a FWHM, free eta at 0.5, asymmetry 0."""
    p0 = truth * rng.uniform(0.97, 1.03, truth.shape)
    for k, shape in enumerate(model.shapes):
        b = 5 * k
        p0[:, b + 1] = truth[:, b + 1] + rng.normal(0, 0.1, len(truth)) * truth[:, b + 2]
        p0[:, b + 3] = SHAPES[shape].get("eta", 0.5)
        p0[:, b + 4] = 0.0
    p0[:, -1] = 0.0
    return p0.astype(np.float32)


@pytest.mark.parametrize("shapes", MIXES)
def test_peaks1d_matches_scipy(shapes):
    rng = np.random.default_rng(30 + len(shapes) + len(shapes[0]))
    model, x, y, truth = shaped_peaks_problem(rng, 16, shapes)
    w = np.ones(x.size, np.float32)
    w[rng.choice(x.size, 60, replace=False)] = 0.0  # masked channels
    y[:, 5] = np.nan  # a NaN channel must not count either
    lo, hi = model.default_bounds(x[None])
    res, ref = run_both(model, x, y, w, lo, hi, held_mask(model), perturbed(rng, model, truth))
    assert_close(res.params, res.errors, ref)
    for i, v in model.held.items():  # held parameters: at their shape's value, error 0
        assert np.all(res.params[:, i] == v) and np.all(res.errors[:, i] == 0.0)


def test_peaks1d_bounds_fixed_and_held_match_scipy():
    rng = np.random.default_rng(35)
    model, x, y, truth = shaped_peaks_problem(rng, 12, ("pvoigt", "split_gauss"))
    p0 = truth.astype(np.float32)
    p0[:, 3], p0[:, 9], p0[:, -1] = 0.5, 0.7, 0.0  # a wrong held eta (0.7) the engine must replace by 0
    lo, hi = model.default_bounds(x[None])
    hi = hi.copy()
    hi[3] = 0.15  # below every true eta of peak 1: the bound is active at the solution
    fixed = held_mask(model)
    fixed[-1] = True  # slope held at 0
    res = fit(model, y, x, p0=p0, bounds=(lo, hi), fixed=fixed, device="cpu")
    p0[:, 9] = 0.0
    _, ref = run_both(model, x, y, np.ones(x.size, np.float32), lo, hi, fixed, p0)
    assert np.all(res.ok)
    assert np.allclose(res["eta1"], 0.15, rtol=1e-6) and np.all(res["eta2"] == 0.0)
    assert np.all(res["c1"] == 0.0) and np.all(res.error("c1") == 0.0)
    assert_close(res.params, res.errors, ref)


def test_all_gaussian_peaks1d_gives_gauss1d_answers():
    """peaks1d with Gaussian shapes is gauss1d with FWHM = 2.3548 sigma (float32 tolerance)."""
    rng = np.random.default_rng(36)
    g = Gauss1D(2, "linear")
    pv = Peaks1D(("gauss", "gauss"), "linear")
    _, x, y, truth = shaped_peaks_problem(rng, 40, ("gauss", "gauss"))
    start = truth * rng.uniform(0.98, 1.02, truth.shape)  # the same start for both
    gauss_start = np.concatenate([start[:, 5 * k:5 * k + 3] / [1, 1, FWHM_PER_SIGMA] for k in range(2)]
                                 + [start[:, 10:]], axis=-1)
    rg = fit(g, y, x, p0=gauss_start.astype(np.float32), device="cpu")
    rp = fit(pv, y, x, p0=start.astype(np.float32), device="cpu")
    np.testing.assert_array_equal(rp.status, rg.status)
    ok = rg.ok
    assert ok.mean() > 0.7
    tg, tp = g.peak_table(rg.params, rg.errors), pv.peak_table(rp.params, rp.errors)
    for k in ("center", "fwhm", "area", "amplitude"):
        np.testing.assert_allclose(tp[k][ok], tg[k][ok], rtol=0, atol=1e-3 * np.abs(tg[k][ok]).max(), err_msg=k)
        np.testing.assert_allclose(tp[k + "_err"][ok], tg[k + "_err"][ok], rtol=2e-3, err_msg=k)


@pytest.mark.parametrize("shape,asymmetry", [("gauss", 0.0), ("lorentz", 0.0), ("pvoigt", 0.0),
                                             ("split_gauss", 0.5), ("split_gauss", -0.3)])
def test_fwhm_and_area_are_those_of_the_profile(shape, asymmetry):
    model = Peaks1D((shape,), "none")
    p = np.array([[7.0, 2.5, 0.04, SHAPES[shape].get("eta", 0.3), asymmetry]])
    f = lambda v: model.evaluate(np.array([[v]]), p)[0, 0]  # noqa: E731
    integral = quad(f, 2.5 - 40, 2.5 + 40, points=[2.5], limit=500, epsabs=1e-12)[0]
    tab = model.peak_table(p, np.zeros_like(p))
    assert tab["area"][0, 0] == pytest.approx(integral, rel=1e-3 if shape in ("lorentz", "pvoigt") else 1e-6)
    half = np.array([[2.5 - 0.02 * (1 - asymmetry), 2.5 + 0.02 * (1 + asymmetry)]])
    np.testing.assert_allclose(model.evaluate(half, p)[0], 3.5, rtol=1e-12)  # half maximum at +-HWHM
    assert tab["fwhm"][0, 0] == pytest.approx(0.04)


@pytest.mark.parametrize("shape,param", [("pvoigt", "center1"), ("pvoigt", "fwhm1"), ("lorentz", "center1"),
                                         ("split_gauss", "center1")])
def test_peaks1d_reaches_crb(shape, param):
    rng = np.random.default_rng(37 + len(shape))
    model = Peaks1D((shape,), "constant")
    x = (1239.84198 / np.linspace(450, 530, 512)).astype(np.float32)
    p = np.array([3000.0, 2.54, 0.05, SHAPES[shape].get("eta", 0.5), SHAPES[shape].get("asymmetry", 0.3), 30.0])
    y = rng.poisson(np.broadcast_to(model.evaluate(x[None], p[None])[0], (2000, 512))).astype(np.float32)
    res = fit(model, y, x, estimator="poisson", device="cpu")
    assert np.mean(res.ok) > 0.995
    free = ~held_mask(model)
    xx = x[None].astype(np.float64)
    f, j = model.evaluate(xx, p[None])[0], model.jacobian(xx, p[None])[0][:, free]
    c = np.linalg.inv(j.T @ (j / f[:, None]))
    i = list(np.array(model.param_names)[free]).index(param)
    ok = res.ok
    check(res[param][ok], res.error(param)[ok], p[model.param_names.index(param)], c[i, i], param)


def lorentzian_spectra(rng, n=200):
    """One Lorentzian line on a linear background, Poisson counts, on the PL energy axis."""
    model = Peaks1D(("lorentz",), "linear")
    e = (1239.84198 / np.linspace(450, 530, 512)).astype(np.float64)
    p = np.stack([rng.uniform(800, 1200, n), rng.uniform(2.5, 2.56, n), rng.uniform(0.03, 0.05, n),
                  np.ones(n), np.zeros(n), np.full(n, 50.0), np.zeros(n)], axis=-1)
    return model, e, rng.poisson(model.evaluate(e[None], p)).astype(np.float32), p


def test_pl_peak_shape_lorentz_measures_lorentzian_lines():
    """Fitted as Lorentzians, Lorentzian lines give their FWHM and area; fitted as Gaussians the
    area misses the tails (the reason for peak_shape)."""
    rng = np.random.default_rng(38)
    model, e, y, p = lorentzian_spectra(rng)
    w = 1.0 / np.maximum(y, 1.0)
    lor = fit_peaks(y, e, max_peaks=2, weights=w, peak_shape="lorentz", device="cpu")
    gau = fit_peaks(y, e, max_peaks=2, weights=w, peak_shape="gauss", device="cpu")
    one = lor.n_peaks == 1
    assert one.mean() > 0.95
    truth = model.peak_table(p, np.zeros_like(p))
    area_pull = (lor.area - truth["area"][:, 0]) / lor.area_err
    assert abs(np.median(area_pull[one])) < 0.5
    fwhm_pull = (lor.fwhm_mev - 1e3 * p[:, 2]) / lor.fwhm_err_mev
    assert abs(np.median(fwhm_pull[one])) < 0.5
    assert np.median(gau.total_area / truth["area"][:, 0]) < 0.95  # Gaussians lose the Lorentzian tails


def test_pl_peak_shape_per_peak_and_errors():
    rng = np.random.default_rng(39)
    _, e, y, _ = lorentzian_spectra(rng, 20)
    r = fit_peaks(y, e, max_peaks=2, peak_shape=["pvoigt", "gauss"], device="cpu")
    assert (r.n_peaks >= 1).mean() > 0.9
    with pytest.raises(ValueError, match="peak_shape"):
        fit_peaks(y, e, max_peaks=2, peak_shape=["pvoigt"], device="cpu")
    with pytest.raises(ValueError, match="peak_shape"):
        fit_peaks(y, e, max_peaks=1, peak_shape="voigt", device="cpu")


def test_pl_job_with_peak_shape(tmp_path):
    """[fit] peak_shape runs through the PL pipeline and is recorded; on the (Gaussian) synthetic
    map the pseudo-Voigt energies are those of the Gaussian fit."""
    import h5py

    m = pl_map((6, 6), 256, n_spikes=0, seed=3)
    with h5py.File(tmp_path / "map.h5", "w") as f:
        f["data"], f["axis"] = m.counts, m.wavelength
        f["axis"].attrs["units"] = "nm"
    from gpuproc.pl.job import job_from_dict
    from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS

    def run(name, **fit_keys):
        cfg = {"job": {"output": str(tmp_path / f"{name}.zarr"), "device": "cpu"},
               "input": {"source": str(tmp_path / "map.h5"), "store": str(tmp_path / f"{name}.spectra.zarr")},
               "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS}, "fit": {"max_peaks": 2, **fit_keys}}
        return open_results(run_pl(job_from_dict(cfg), progress=False))

    gauss = run("gauss")
    pv = run("pvoigt", peak_shape="pvoigt")
    mixed = run("mixed", peak_shape=["split_gauss", "gauss"])
    assert pv.attrs["peak_shape"] == "pvoigt" and mixed.attrs["peak_shape"] == ["split_gauss", "gauss"]
    assert gauss.attrs["peak_shape"] == "gauss"
    ok = (gauss["n_peaks"].values > 0) & (pv["n_peaks"].values > 0)
    assert ok.mean() > 0.5
    d = np.abs(pv["energy"].values - gauss["energy"].values)[ok]
    assert np.median(d / gauss["energy_err"].values[ok]) < 1.0
    assert (mixed["n_peaks"].values > 0).mean() > 0.5
