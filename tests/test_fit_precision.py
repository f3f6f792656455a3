"""Precision of fitted peak positions against the Cramér–Rao bound, on Poisson data.

Many noise realisations of one known spectrum / spot are fitted with the Poisson maximum-
likelihood estimator. The CRB is inv(F) with the Fisher information F = J^T diag(1/f) J at the
true parameters. Required: the spread of the estimates within 10 % of sqrt(CRB), no bias beyond
3 standard errors of the mean, and the reported errors matching the spread within 10 %.
"""

import numpy as np
import pytest

from gpuproc.fit import Gauss1D, Gauss2DPolar, fit


def crb(model, x, p):
    f = model.evaluate(x, p[None])[0]
    j = model.jacobian(x, p[None])[0]
    return np.linalg.inv(j.T @ (j / f[:, None]))


def seam_spot_fits(rng, model, p, n=2000):
    """Poisson fits of ``n`` noise realisations of the spot ``p`` in a (q, azimuth) window across the
    0/360 seam; returns the results and the CRB."""
    qg, pg = np.meshgrid(np.linspace(0.99, 1.15, 40), np.linspace(-30, 30, 60), indexing="ij")
    x = np.stack([qg.ravel(), np.mod(pg.ravel(), 360.0)])
    y = rng.poisson(np.broadcast_to(model.evaluate(x, p[None])[0], (n, x.shape[1]))).astype(np.float32)
    return fit(model, y, x.astype(np.float32), estimator="poisson", device="cpu"), crb(model, x, p)


def check(est, errs, truth, bound, name, periodic=False):
    d = est.astype(np.float64) - truth
    if periodic:
        d -= 360.0 * np.round(d / 360.0)
    n = d.size
    sd = d.std(ddof=1)
    assert abs(sd / np.sqrt(bound) - 1.0) < 0.10, f"{name}: spread {sd:.3g} vs CRB {np.sqrt(bound):.3g}"
    assert abs(d.mean()) < 3.0 * sd / np.sqrt(n), f"{name}: bias {d.mean():.3g} (sd of mean {sd / np.sqrt(n):.3g})"
    assert abs(np.median(errs) / sd - 1.0) < 0.10, f"{name}: reported error {np.median(errs):.3g} vs spread {sd:.3g}"


@pytest.mark.parametrize("counts", [300.0, 3000.0])
def test_gauss1d_center_reaches_crb(counts):
    rng = np.random.default_rng(int(counts))
    model = Gauss1D(1, "constant")
    x = (1239.84198 / np.linspace(450, 530, 512)).astype(np.float32)  # non-uniform energy axis
    p = np.array([counts, 2.54, 0.02, 30.0])
    y = rng.poisson(np.broadcast_to(model.evaluate(x[None], p[None])[0], (3000, 512))).astype(np.float32)
    res = fit(model, y, x, estimator="poisson", device="cpu")
    assert np.mean(res.ok) > 0.999
    c = crb(model, x[None].astype(np.float64), p)
    ok = res.ok
    check(res["center1"][ok], res.error("center1")[ok], p[1], c[1, 1], "center")
    check(res["sigma1"][ok], res.error("sigma1")[ok], p[2], c[2, 2], "sigma")


def test_gauss2d_polar_position_reaches_crb():
    rng = np.random.default_rng(7)
    model = Gauss2DPolar()
    p = np.array([150.0, 1.07, 0.01, 1.0, 5.0, 8.0, 1.0])
    res, c = seam_spot_fits(rng, model, p)
    assert np.mean(res.ok) > 0.999
    ok = res.ok
    check(res["q0"][ok], res.error("q0")[ok], p[1], c[1, 1], "q0")
    check(res["phi0"][ok], res.error("phi0")[ok], p[3], c[3, 3], "phi0", periodic=True)
