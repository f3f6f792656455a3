"""Peak areas' errors (PeakSum.peak_table / area_error) from the fits' covariance.

The area (amplitude x FWHM x breadth(eta)) of every profile has a large negative amplitude-width
correlation: with the covariance its error is calibrated (area pull sd ~1), without it too large
(sd 0.5-0.7: the reason for ``fit(..., covariance=True)``). The propagation itself is checked
against central differences of the area through the parameters.
"""

import numpy as np
import pytest
from fit_problems import pl_problem, shaped_peaks_problem
from pull_check import assert_calibrated

from gpuproc.fit import Gauss1D, fit


def fitted(shape, n=400):
    """``n`` single peaks of ``shape`` (gauss: the gauss1d model) fitted from the truth."""
    rng = np.random.default_rng(50 + len(shape))
    if shape == "gauss1d":
        x, y, t = pl_problem(rng, n, n_points=512)
        model, t = Gauss1D(1, "constant"), t[:, :4]
    else:
        model, x, y, t = shaped_peaks_problem(rng, n, (shape,))
    r = fit(model, y, x, estimator="poisson", device="cpu", covariance=True, p0=t.astype(np.float32))
    assert r.ok.mean() > 0.99
    return model, r, t


@pytest.mark.parametrize("shape", ["gauss1d", "gauss", "lorentz", "pvoigt", "split_gauss"])
def test_area_pulls_are_calibrated_with_the_covariance(shape):
    """Measured (n=400, pull sd with / without the covariance): gauss1d 1.01 / 0.6, pvoigt 1.01 /
    0.60, split_gauss 1.02 / 0.69, lorentz 0.96 / 0.54."""
    model, r, t = fitted(shape)
    ok = r.ok
    true_area = model.peak_table(t, np.zeros_like(t))["area"][ok, 0]
    with_cov = model.peak_table(r.params, r.errors, np, r.covariance)
    without = model.peak_table(r.params, r.errors)
    pull = (with_cov["area"][ok, 0] - true_area) / with_cov["area_err"][ok, 0]
    assert_calibrated(pull, f"{shape} area", min_n=390)
    loose = (without["area"][ok, 0] - true_area) / without["area_err"][ok, 0]
    assert loose.std() < 0.75, loose.std()  # the neglected correlation overstates the error


@pytest.mark.parametrize("shape", ["gauss1d", "pvoigt"])
def test_area_error_is_the_propagated_covariance(shape):
    model, r, _ = fitted(shape, n=20)
    p, cov = r.params.astype(np.float64), r.covariance.astype(np.float64)
    grad = np.empty_like(p)
    for j in range(p.shape[1]):
        h = 1e-6 * np.maximum(np.abs(p[:, j]), 1e-3)
        up, down = p.copy(), p.copy()
        up[:, j] += h
        down[:, j] -= h
        grad[:, j] = (model.peak_table(up, np.zeros_like(p))["area"][:, 0]
                      - model.peak_table(down, np.zeros_like(p))["area"][:, 0]) / (2 * h)
    expected = np.sqrt(np.einsum("fi,fij,fj->f", grad, cov, grad))
    got = model.peak_table(r.params, r.errors, np, r.covariance)["area_err"][:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
