"""CuPy path against the NumPy path on the same problems (needs a CUDA GPU)."""

import numpy as np
import pytest

from gpuproc.fit import fit
from fit_problems import bragg_problem, pl_problem

pytestmark = pytest.mark.gpu


def agree(a, b):
    g, c = a.get(), b
    np.testing.assert_array_equal(g.status, c.status)
    ok = c.ok
    scale = np.where(c.errors[ok] > 0, c.errors[ok], 1.0)
    d = np.abs(g.params[ok].astype(np.float64) - c.params[ok]) / scale
    assert d.max() < 0.05, d.max(axis=0)
    np.testing.assert_allclose(g.errors[ok], c.errors[ok], rtol=1e-2)


@pytest.mark.parametrize("estimator", ["lsq", "poisson"])
@pytest.mark.parametrize("n_peaks", [1, 2])
def test_gauss1d_gpu_equals_cpu(estimator, n_peaks):
    rng = np.random.default_rng(n_peaks)
    x, y, _ = pl_problem(rng, 500, n_points=512, n_peaks=n_peaks)
    y[3] = np.nan
    mask = np.zeros(512, bool)
    mask[100:110] = True
    kw = dict(n_peaks=n_peaks, background="linear", estimator=estimator, mask=mask)
    agree(fit("gauss1d", y, x, device="gpu", **kw), fit("gauss1d", y, x, device="cpu", **kw))


@pytest.mark.parametrize("estimator", ["lsq", "poisson"])
def test_gauss2d_polar_gpu_equals_cpu(estimator):
    rng = np.random.default_rng(9)
    (q, phi), y, _ = bragg_problem(rng, 400, phi_center=0.0)
    agree(fit("gauss2d_polar", y, (q, phi), device="gpu", estimator=estimator),
          fit("gauss2d_polar", y, (q, phi), device="cpu", estimator=estimator))


def test_device_arrays_are_used_in_place():
    import cupy

    rng = np.random.default_rng(2)
    x, y, _ = pl_problem(rng, 100, n_points=256)
    yd, xd = cupy.asarray(y), cupy.asarray(x)
    res = fit("gauss1d", yd, xd, device="gpu")
    assert isinstance(res.params, cupy.ndarray)
    agree(res, fit("gauss1d", y, x, device="cpu"))
