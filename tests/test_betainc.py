"""The incomplete beta function and the Pearson p-value that runs compute without SciPy
(gpuproc.waxs.betainc, gpuproc.waxs.stats.pearson) agree with SciPy's."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats

from gpuproc.waxs.betainc import betainc
from gpuproc.waxs.stats import pearson

SHAPES = [(0.5, 0.5), (1.0, 1.0), (0.5, 3.0), (3.0, 0.5), (2.5, 7.3), (10.0, 10.0), (100.0, 100.0)]


@pytest.mark.parametrize(("a", "b"), SHAPES)
def test_betainc_matches_scipy(a, b):
    xs = np.concatenate([np.random.default_rng(0).uniform(0, 1, 200), [1e-8, 0.5, 0.4999, 1 - 1e-8]])
    got = np.array([betainc(a, b, float(x)) for x in xs])
    np.testing.assert_allclose(got, scipy.special.betainc(a, b, xs), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(("a", "x", "rtol"), [(1e4, 0.49, 1e-10), (5e5, 0.4999, 1e-8)])
def test_betainc_large_shapes(a, x, rtol):
    """Maps of 10^4-10^6 positions: the log-gamma terms cancel, a few digits go."""
    assert betainc(a, a, x) == pytest.approx(float(scipy.special.betainc(a, a, x)), rel=rtol)


def test_betainc_edges_and_bad_arguments():
    assert betainc(2.0, 3.0, 0.0) == 0.0 and betainc(2.0, 3.0, 1.0) == 1.0
    for bad in ((0.0, 1.0, 0.5), (1.0, -1.0, 0.5), (1.0, 1.0, 1.5), (1.0, 1.0, math.nan)):
        assert math.isnan(betainc(*bad))


@pytest.mark.parametrize(("n", "rho"), [(4, 0.5), (5, 0.0), (40, 0.3), (1000, 0.05), (1000, -0.9), (50_000, 0.01)])
def test_pearson_matches_scipy(n, rho):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    x[::7] = np.nan  # maps have gaps: only common finite positions count
    keep = np.isfinite(x) & np.isfinite(y)
    ref = scipy.stats.pearsonr(x[keep], y[keep])
    got = pearson(x, y)
    assert got.n == keep.sum()
    assert got.r == pytest.approx(float(ref.statistic), rel=1e-12, abs=1e-15)
    assert got.p_value == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-300)


def test_pearson_degenerate_maps_are_nan():
    assert math.isnan(pearson([1.0, 2.0], [3.0, 4.0]).r)
    constant = pearson(np.ones(10), np.arange(10.0))
    assert math.isnan(constant.r) and math.isnan(constant.p_value) and constant.n == 10
