"""Derived quantities (gpuproc.waxs.derive) and scan statistics (gpuproc.waxs.stats) against
hand-computed values, exact ground truth and Monte-Carlo error estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpuproc.waxs import derive, stats

TWO_PI = 2.0 * math.pi
HKL = [(1, 0, 0), (0, 1, 0), (1, 1, 0), (2, 0, 0), (0, 2, 0)]
RNG_SEED = 1234


def q_of(hkl, a, b, c=np.inf):
    """Exact q0 (A^-1) of reflections for lattice parameters a, b, c (arrays broadcast)."""
    h, k, l = (np.asarray(v, dtype=float) for v in zip(*hkl))
    a, b, c = (np.asarray(v, dtype=float)[..., None] for v in (a, b, c))
    return TWO_PI * np.sqrt(h**2 / a**2 + k**2 / b**2 + l**2 / c**2)


def wh_fwhm(q, strain, size, K=0.85):
    """Radial FWHM following Williamson-Hall exactly."""
    return np.sqrt((np.asarray(strain)[..., None] * q) ** 2 + (TWO_PI * K / np.asarray(size)[..., None]) ** 2)


def mc_std(func, nominal, errors, n=20000, seed=RNG_SEED):
    """Monte-Carlo standard deviation of func(*inputs) for independent Gaussian input errors."""
    rng = np.random.default_rng(seed)
    draws = [v + e * rng.standard_normal((n,) + np.shape(v)) if e is not None else np.broadcast_to(v, (n,) + np.shape(v))
             for v, e in zip(nominal, errors)]
    return np.nanstd(func(*draws), axis=0)


def test_fwhm_and_orientation():
    r = derive.fwhm(np.array([1.0, 0.01]), np.array([0.1, 0.001]))
    np.testing.assert_allclose(r.value, [2.354820045, 0.02354820045])
    np.testing.assert_allclose(r.error, [0.2354820045, 0.002354820045])
    assert np.isnan(derive.fwhm(1.0).error)
    o = derive.orientation(np.array([355.0, 185.0, 30.0]), np.array([0.5, 0.5, 0.5]))
    np.testing.assert_allclose(o.value, [-5.0, -175.0, 30.0])
    np.testing.assert_allclose(o.error, 0.5)
    np.testing.assert_allclose(derive.orientation(np.array([95.0, 184.0]), period=90.0).value, [5.0, 4.0])
    np.testing.assert_allclose(derive.orientation(np.array([-40.0]), period=90.0, reference=30.0).value, [50.0])


def test_lattice_exact_overdetermined():
    a = np.array([5.87, 5.90, 5.85])
    b = np.array([5.87, 5.86, 5.89])
    lat = derive.lattice_parameters(q_of(HKL, a, b), HKL)
    np.testing.assert_allclose(lat.a, a, rtol=1e-12)
    np.testing.assert_allclose(lat.b, b, rtol=1e-12)
    assert np.all(np.isnan(lat.c))


def test_lattice_with_c_and_missing_reflections():
    hkl = HKL + [(0, 0, 1), (0, 1, 1)]
    q = q_of(hkl, 5.88, 5.86, 5.83)
    lat = derive.lattice_parameters(q, hkl, q0_err=np.full_like(q, 1e-4))
    np.testing.assert_allclose([lat.a, lat.b, lat.c], [5.88, 5.86, 5.83], rtol=1e-12)
    # 010 failed: b still follows from 110 and 020
    lat = derive.lattice_parameters(np.where(np.arange(7) == 1, np.nan, q), hkl)
    np.testing.assert_allclose([lat.a, lat.b, lat.c], [5.88, 5.86, 5.83], rtol=1e-12)
    # every l != 0 fit failed: a and b from the hk0 reflections, c unknown
    lat = derive.lattice_parameters(np.where(np.arange(7) < 5, q, np.nan), hkl, q0_err=np.full_like(q, 1e-4))
    np.testing.assert_allclose([lat.a, lat.b], [5.88, 5.86], rtol=1e-12)
    assert np.isnan(lat.c) and np.isnan(lat.c_err) and np.isfinite(lat.a_err)
    # only a-axis reflections left: a follows from them, b and c are unknown
    lat = derive.lattice_parameters(np.where(np.isin(np.arange(7), [0, 3]), q, np.nan), hkl)
    np.testing.assert_allclose(lat.a, 5.88, rtol=1e-12)
    assert np.isnan(lat.b) and np.isnan(lat.c)
    # 100 and 110 (a and b) with 011 (b and c) but one equation for each: still determined
    lat = derive.lattice_parameters(np.where(np.isin(np.arange(7), [0, 2, 6]), q, np.nan), hkl)
    np.testing.assert_allclose([lat.a, lat.b, lat.c], [5.88, 5.86, 5.83], rtol=1e-12)


def test_lattice_errors_match_monte_carlo():
    q = q_of(HKL, 5.88, 5.85)
    q_err = np.array([2e-3, 2e-3, 3e-3, 4e-3, 4e-3])
    lat = derive.lattice_parameters(q, HKL, q_err)
    mc = mc_std(lambda qq: np.stack(derive.lattice_parameters(qq, HKL, q_err)[:2], axis=-1), [q], [q_err])
    np.testing.assert_allclose([lat.a_err, lat.b_err], mc, rtol=0.1)
    # unweighted: errors from the residual scatter; for equal errors in 1/d^2 their rms equals
    # the spread of the fitted values
    inv_d2 = (q / TWO_PI) ** 2 + 1e-5 * np.random.default_rng(1).standard_normal((20000, 5))
    unweighted = derive.lattice_parameters(TWO_PI * np.sqrt(inv_d2), HKL)
    assert np.sqrt(np.mean(unweighted.a_err**2)) == pytest.approx(np.std(unweighted.a), rel=0.1)


def test_williamson_hall_recovers_truth():
    strain = np.array([0.018, 0.010, 0.025, 0.0])
    size = np.array([126.0, 85.0, 160.0, 100.0])  # A
    q = q_of(HKL, np.array([5.87, 5.9, 5.84, 5.87]), np.array([5.87, 5.85, 5.9, 5.87]))
    wh = derive.williamson_hall(q, wh_fwhm(q, strain, size))
    np.testing.assert_allclose(wh.strain, strain, atol=1e-7)
    np.testing.assert_allclose(wh.size, size, rtol=1e-9)
    np.testing.assert_allclose(wh.dq_size, TWO_PI * 0.85 / size, rtol=1e-9)
    assert np.all(wh.flag == 0) and np.all(wh.n_used == 5)
    # K is configurable and the size scales with it
    assert derive.williamson_hall(q, wh_fwhm(q, strain, size, K=0.9), shape_factor=0.9).size[0] == pytest.approx(126.0)


def test_williamson_hall_instrumental_subtraction():
    q = q_of(HKL, 5.87, 5.87)
    inst = 0.02 + 0.002 * q
    observed = np.sqrt(wh_fwhm(q, 0.018, 126.0) ** 2 + inst**2)
    for instrumental in (inst, lambda qq: 0.02 + 0.002 * qq):
        wh = derive.williamson_hall(q, observed, instrumental=instrumental)
        assert wh.strain[()] == pytest.approx(0.018) and wh.size[()] == pytest.approx(126.0)
    assert derive.williamson_hall(q, observed).size[()] < 120.0  # not subtracted: too small


def test_williamson_hall_unphysical_gives_nan_and_flags():
    q = q_of(HKL, 5.87, 5.87)[None].repeat(4, axis=0)
    good = wh_fwhm(q[0], 0.018, 126.0)
    widths = np.stack([
        good,
        0.08 - 0.01 * q[1],  # width decreasing with q: negative slope
        np.sqrt(0.02**2 * q[2] ** 2 - 0.01**2),  # negative intercept
        np.where(np.arange(5) == 0, good, np.nan),  # one valid reflection
    ])
    wh = derive.williamson_hall(q, widths)
    F = derive.WHFlag
    assert list(wh.flag) == [F.OK, F.NEGATIVE_SLOPE, F.NEGATIVE_INTERCEPT, F.TOO_FEW]
    assert np.isfinite(wh.size[0]) and np.all(np.isnan(wh.size[1:])) and np.all(np.isnan(wh.strain[1:]))
    assert list(wh.n_used) == [5, 5, 5, 1]


def test_williamson_hall_errors_match_monte_carlo():
    q = q_of(HKL, 5.87, 5.87)
    width = wh_fwhm(q, 0.018, 126.0)
    width_err = 0.03 * width
    wh = derive.williamson_hall(q, width, width_err)

    def strain_size(w):
        r = derive.williamson_hall(q, w, width_err)
        return np.stack([r.strain, r.size], axis=-1)

    np.testing.assert_allclose([wh.strain_err, wh.size_err], mc_std(strain_size, [width], [width_err]), rtol=0.1)


def test_orientational_disorder_formula_and_nan():
    q0, dq, eps, do = 1.0, 0.05, 0.02, 0.03
    dphi_deg = np.degrees(np.sqrt(do**2 + (dq / q0) ** 2 + eps**2))
    r = derive.orientational_disorder(np.array([dphi_deg, 1.0]), q0, dq, eps)
    assert r.value[0] == pytest.approx(do)
    assert np.isnan(r.value[1])  # 1 degree = 0.0175 rad < sqrt(0.05^2 + 0.02^2)


def test_orientational_disorder_errors_match_monte_carlo():
    nominal = [np.degrees(0.07), 1.07, 0.04, 0.018]
    errors = [np.degrees(0.002), 0.001, 0.002, 0.002]
    r = derive.orientational_disorder(*nominal, fwhm_phi_err=errors[0], q0_err=errors[1],
                                      dq_size_err=errors[2], strain_err=errors[3])
    mc = mc_std(lambda *v: derive.orientational_disorder(*v).value, nominal, errors)
    assert r.error == pytest.approx(mc, rel=0.1)


def test_superlattice():
    a1, a2 = 140.0, 130.0
    q = np.array([[TWO_PI / a1, TWO_PI / a2, TWO_PI / a1, TWO_PI / a2]])
    sl = derive.superlattice(q, np.full_like(q, 1e-4), groups=((0, 2), (1, 3)))
    np.testing.assert_allclose(sl.a, [[a1, a2]])
    np.testing.assert_allclose(sl.a_mean, [135.0])
    expected = np.hypot(a1**2 / TWO_PI * 1e-4 / np.sqrt(2), a2**2 / TWO_PI * 1e-4 / np.sqrt(2)) / 2
    np.testing.assert_allclose(sl.a_mean_err, [expected], rtol=1e-9)
    np.testing.assert_allclose(derive.superlattice(q).a, [[a1, a2, a1, a2]])
    # one Friedel mate failed: its direction from the other; a whole direction failed: no <a_SC>
    failed = np.where(np.arange(4) == 2, np.nan, q)
    sl = derive.superlattice(failed, np.full_like(q, 1e-4), groups=((0, 2), (1, 3)))
    np.testing.assert_allclose(sl.a, [[a1, a2]])
    np.testing.assert_allclose(sl.a_err[0, 0], a1**2 / TWO_PI * 1e-4, rtol=1e-9)
    np.testing.assert_allclose(sl.a_mean, [135.0])
    sl = derive.superlattice(np.where(np.isin(np.arange(4), [0, 2]), np.nan, q), groups=((0, 2), (1, 3)))
    assert np.isnan(sl.a[0, 0]) and sl.a[0, 1] == pytest.approx(a2) and np.isnan(sl.a_mean[0])


def test_summary_and_correlations():
    m = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    s = stats.summarize(m)
    assert (s.mean, s.q1, s.median, s.q3, s.n) == (3.0, 2.0, 3.0, 4.0, 5)
    assert stats.summarize_maps({"x": m})["x"] == s
    size = np.linspace(8.5, 16.0, 50)
    corr = stats.size_correlations(-size, np.where(size > 15, np.nan, size), size)
    assert corr["a"].r == pytest.approx(-1.0) and corr["b"].r == pytest.approx(1.0) and corr["b"].n < 50


def test_binned_medians_and_power_law_recovers_truth():
    rng = np.random.default_rng(RNG_SEED)
    a0, C, alpha = 5.85, 0.4, 1.1
    size = rng.uniform(8.5, 16.0, 20000)
    a = stats.power_law(size, a0, C, alpha) + rng.normal(0.0, 0.002, size.size)
    binned = stats.binned_medians(size, a, width=0.5)
    np.testing.assert_allclose(np.diff(binned.centers), 0.5)
    assert binned.counts.sum() == size.size
    fit = stats.fit_power_law(binned.centers, binned.medians, binned.errors)
    assert fit.a0 == pytest.approx(a0, abs=3 * fit.a0_err + 1e-3)
    assert fit.alpha == pytest.approx(alpha, abs=3 * fit.alpha_err + 0.02)
    assert fit.C == pytest.approx(C, abs=3 * fit.C_err + 0.02)
    exact = stats.fit_power_law(size, stats.power_law(size, a0, C, alpha))
    np.testing.assert_allclose([exact.a0, exact.C, exact.alpha], [a0, C, alpha], rtol=1e-6)


def test_global_williamson_hall_through_medians():
    rng = np.random.default_rng(RNG_SEED)
    n = 500
    q = q_of(HKL, 5.87 + rng.normal(0, 0.005, n), 5.87 + rng.normal(0, 0.005, n))
    width = wh_fwhm(q, np.full(n, 0.018), np.full(n, 126.0)) * (1 + rng.normal(0, 0.01, q.shape))
    width[::7] = np.nan  # failed fits are ignored
    g = stats.global_williamson_hall(q, width)
    assert g.flag == 0
    assert g.strain == pytest.approx(0.018, rel=0.05) and g.size == pytest.approx(126.0, rel=0.03)
