"""The ``statistics`` of a WAXS run (global Williamson-Hall line, Pearson r of a and b with the
size, binned medians, power law ``a - a0 = C s^-alpha``) against the synthetic truth
(:class:`gpuproc.synth.waxs.TruthModel`: the size law and a, b vs size), on one seeded 12 x 16
Pilatus 100k scan. Every tolerance is a multiple (3) of an error derived from the run's reported
errors: nothing is compared with a round number."""

import json
import math

import numpy as np
import pytest

from gpuproc.io.results import open_results
from gpuproc.synth.waxs import TruthModel, lattice_from_size
from gpuproc.waxs import derive, stats
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import run_waxs

K = 3.0  #: tolerance in standard errors
BIN_WIDTH = 0.5  #: nm, the pipeline's size bins


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    job, scan = write_demo_job(tmp_path_factory.mktemp("stats"), (12, 16), seed=4, figures=False,
                               job_overrides={"device": "cpu"})
    ds = open_results(run_waxs(load_job(job)))
    return ds, scan, json.loads(ds.attrs["statistics"])  # stored as JSON text


def _spots(ds, name):
    return np.moveaxis(ds[name].values, 0, -1).reshape(-1, ds.sizes["reflection"])


@pytest.mark.xfail(strict=True, reason="measured: size 12.29 nm vs the truth's 12.18 nm, +3.9 of its error "
                   "0.029 nm; strain 0.01824 vs 0.01787, +3.6 errors (the per-position size/strain bias)")
def test_global_williamson_hall(run):
    """The line through the per-reflection medians equals the one through the truth's medians;
    its error from the medians' standard errors, sqrt(pi/2) median(fwhm_q_err) / sqrt(n)."""
    ds, scan, st = run
    waxs = [i for i, r in enumerate(scan.reflections) if r.kind == "waxs"]
    t = scan.truth
    n_ref = len(waxs)
    truth = stats.global_williamson_hall(t["q0"][..., waxs].reshape(-1, n_ref),
                                         t["fwhm_q"][..., waxs].reshape(-1, n_ref))
    fw, fwe = _spots(ds, "fwhm_q"), _spots(ds, "fwhm_q_err")
    median_err = math.sqrt(math.pi / 2) * np.nanmedian(fwe, axis=0) / np.sqrt(np.isfinite(fw).sum(axis=0))
    err = derive.williamson_hall(np.nanmedian(_spots(ds, "q0"), axis=0), np.nanmedian(fw, axis=0), median_err)
    g = st["global_williamson_hall"]
    assert g["flag"] == 0
    assert abs(g["size_nm"] - 0.1 * float(truth.size)) < K * 0.1 * float(err.size_err), (g, float(truth.size))
    assert abs(g["strain"] - float(truth.strain)) < K * float(err.strain_err), (g, float(truth.strain))


@pytest.mark.parametrize("name", ["a", "b"])
def test_pearson_r_with_size(run, name):
    """r of the maps = the truth's r attenuated by the reported errors (each map's variance grows by
    its mean squared error), within 3 standard errors of Fisher's z, 1 / sqrt(n - 3)."""
    ds, scan, st = run
    t = scan.truth
    r_true = float(np.corrcoef(t[name].ravel(), t["size_nm"].ravel())[0, 1])
    att = 1.0
    for m, tm in ((name, name), ("size", "size_nm")):
        var = np.var(t[tm])
        att *= math.sqrt(var / (var + np.nanmean(ds[m + "_err"].values ** 2)))
    got = st["pearson"][name]
    assert got["n"] >= 0.95 * t[name].size
    assert abs(math.atanh(got["r"]) - math.atanh(att * r_true)) < K / math.sqrt(got["n"] - 3), (got, r_true, att)
    assert np.sign(got["r"]) == (-1 if name == "a" else 1)  # a shrinks, b grows with size


@pytest.mark.parametrize("name", ["a", "b"])
def test_binned_medians(run, name):
    """Bins of 0.5 nm of the measured size: the centres are the bins' midpoints, each median is
    the median of the positions in its bin (recomputed from the maps), and it equals the median
    of the true lattice parameter of the same positions within 3 of its reported errors."""
    ds, scan, _ = run
    size, value = ds["size"].values.ravel(), ds[name].values.ravel()
    truth = scan.truth[name].ravel()
    centres, medians = ds["size_bin"].values, ds[f"{name}_binned_median"].values
    np.testing.assert_allclose(np.mod(centres, BIN_WIDTH), BIN_WIDTH / 2, atol=1e-9)
    binned = stats.binned_medians(ds["size"].values, ds[name].values)
    checked = 0
    for c, med, e in zip(centres, medians, binned.errors):
        inside = np.isfinite(value) & (size >= c - BIN_WIDTH / 2) & (size < c + BIN_WIDTH / 2)
        if inside.sum() < 3:
            assert np.isnan(med)
            continue
        assert med == pytest.approx(np.median(value[inside]), abs=1e-6)
        assert abs(med - np.median(truth[inside])) < K * e, (c, med, np.median(truth[inside]), e)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("name", ["a", pytest.param("b", marks=pytest.mark.xfail(strict=True, reason=(
    "measured: b's a0 5.8863 vs 5.8994, -3.0 of its error 0.0043 (alpha 1.53 vs 1.1); sizes are "
    "biased high (tests/test_pulls_waxs.py)")))])
def test_power_law(run, name):
    """a0, C, alpha of the fitted law against the TruthModel's (C from the split, alpha =
    split_exponent), each within 3 of its reported errors; the law's prediction at the mean size
    within 3 of the binned medians' typical error."""
    ds, scan, st = run
    m = TruthModel()
    alpha, s_z = m.split_exponent, m.split_zero_nm
    c = 0.5 * m.split / (m.split_size_nm**-alpha - s_z**-alpha)
    sign = 1.0 if name == "a" else -1.0
    truth = {"a0": m.a_mean - sign * c * s_z**-alpha, "C": sign * c, "alpha": alpha}
    law = st["power_law"][name]
    for k, v in truth.items():
        assert abs(law[k] - v) < K * law[k + "_err"], (k, law, truth)
    s = 12.0
    predicted = stats.PowerLaw(**law)(s)
    expected = lattice_from_size(s, m)[0 if name == "a" else 1]
    binned = stats.binned_medians(ds["size"].values, ds[name].values)
    assert abs(predicted - expected) < K * np.nanmedian(binned.errors), (predicted, expected)


def test_binned_median_error_is_calibrated():
    """The error of a bin's median, sqrt(pi/2) sd / sqrt(n), equals the scatter of medians over
    800 seeded normal samples of 31 values to within 3 standard errors of that scatter (2.5 %)."""
    rng = np.random.default_rng(11)
    medians, errors = [], []
    for _ in range(800):
        b = stats.binned_medians(np.full(31, 10.2), rng.standard_normal(31))
        medians.append(b.medians[0])
        errors.append(b.errors[0])
    ratio = np.mean(errors) / np.std(medians)
    assert abs(ratio - 1.0) < 3.0 / np.sqrt(2 * 800), ratio
