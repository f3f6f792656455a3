"""CuPy path against the NumPy path on the same problems (needs a CUDA GPU). Tolerances come from
the control of tests/agreement.py: the CPU path with the points of every fit reordered."""

import numpy as np
import pytest
from agreement import check_agreement, reorder
from fit_problems import bragg_problem, pl_problem

from gpuproc.fit import fit

pytestmark = pytest.mark.gpu


def agree(model, y, x, gpu_result=None, **kw):
    """GPU (``gpu_result``, or a fit of ``y``) against the CPU, judged by the reordering control."""
    g = (gpu_result if gpu_result is not None else fit(model, y, x, device="gpu", **kw)).get()
    xr, yr, kwr = reorder(x, y, kw, np.random.default_rng(5).permutation(y.shape[-1]))
    check_agreement(fit(model, y, x, device="cpu", **kw), g, fit(model, yr, xr, device="cpu", **kwr), model)


@pytest.mark.parametrize("estimator", ["lsq", "poisson"])
@pytest.mark.parametrize("n_peaks", [1, 2])
def test_gauss1d_gpu_equals_cpu(estimator, n_peaks):
    rng = np.random.default_rng(n_peaks)
    x, y, _ = pl_problem(rng, 500, n_points=512, n_peaks=n_peaks)
    y[3] = np.nan
    mask = np.zeros(512, bool)
    mask[100:110] = True
    agree("gauss1d", y, x, n_peaks=n_peaks, background="linear", estimator=estimator, mask=mask)


@pytest.mark.parametrize("estimator", ["lsq", "poisson"])
def test_gauss2d_polar_gpu_equals_cpu(estimator):
    rng = np.random.default_rng(9)
    (q, phi), y, _ = bragg_problem(rng, 400, phi_center=0.0)
    agree("gauss2d_polar", y, (q, phi), estimator=estimator)


def test_device_arrays_are_used_in_place():
    import cupy

    rng = np.random.default_rng(2)
    x, y, _ = pl_problem(rng, 100, n_points=256)
    res = fit("gauss1d", cupy.asarray(y), cupy.asarray(x), device="gpu")
    assert isinstance(res.params, cupy.ndarray)
    agree("gauss1d", y, x, gpu_result=res)
