"""Every status code from a crafted bad input; a bad fit never disturbs its neighbours."""

import numpy as np
import pytest

from gpuproc.fit import Status, fit

X = np.linspace(2.3, 2.8, 256).astype(np.float32)


def peak(center=2.55, amplitude=500.0, sigma=0.03, background=20.0):
    return (amplitude * np.exp(-0.5 * ((X - center) / sigma) ** 2) + background).astype(np.float32)


GOOD = np.random.default_rng(0).poisson(peak()).astype(np.float32)
CASES = {
    # name: (spectrum, expected status for lsq, for poisson)
    "all_nan": (np.full(256, np.nan, np.float32), Status.INVALID_INPUT, Status.INVALID_INPUT),
    "flat": (np.full(256, 100.0, np.float32), Status.SINGULAR, Status.SINGULAR),
    "constant_zero": (np.zeros(256, np.float32), Status.SINGULAR, Status.INVALID_INPUT),
    "peak_outside_window": (peak(center=2.9), Status.OUT_OF_BOUNDS, Status.OUT_OF_BOUNDS),
    "good": (GOOD, Status.CONVERGED, Status.CONVERGED),
}


@pytest.mark.parametrize("estimator", ["lsq", "poisson"])
def test_crafted_inputs_get_their_status(estimator):
    data = np.stack([c[0] for c in CASES.values()])
    res = fit("gauss1d", data, X, estimator=estimator, device="cpu")
    expected = [c[1] if estimator == "lsq" else c[2] for c in CASES.values()]
    assert [Status(s) for s in res.status] == expected
    bad = res.status != Status.CONVERGED
    singular = res.status == Status.SINGULAR
    assert np.all(np.isnan(res.errors[singular]))
    assert np.all(np.isfinite(res.params[~bad]))


def test_too_few_valid_points_is_invalid_input():
    mask = np.ones(256, bool)
    mask[:4] = False  # 4 valid points for 4 free parameters: no degree of freedom
    res = fit("gauss1d", GOOD[None], X, mask=mask, device="cpu")
    assert res.status[0] == Status.INVALID_INPUT


def test_non_finite_start_is_invalid_input():
    res = fit("gauss1d", GOOD[None], X, p0=np.array([np.nan, 2.5, 0.03, 10.0]), device="cpu")
    assert res.status[0] == Status.INVALID_INPUT


def test_max_iterations():
    res = fit("gauss1d", GOOD[None], X, p0=np.array([300.0, 2.6, 0.05, 0.0]), max_iter=1, device="cpu")
    assert res.status[0] == Status.MAX_ITERATIONS and res.n_iter[0] == 1


def test_gauss2d_polar_statuses():
    q, phi = np.meshgrid(np.linspace(1.0, 1.14, 30), np.linspace(-20, 20, 40), indexing="ij")
    q, phi = q.ravel().astype(np.float32), phi.ravel().astype(np.float32)
    spot = 300 * np.exp(-0.5 * ((q - 1.07) / 0.01) ** 2 - 0.5 * (phi / 4.0) ** 2) + 10
    outside = 300 * np.exp(-0.5 * ((q - 1.07) / 0.01) ** 2 - 0.5 * ((phi - 26.0) / 4.0) ** 2) + 10
    data = np.stack([np.full(q.size, np.nan), np.full(q.size, 10.0), outside, spot]).astype(np.float32)
    res = fit("gauss2d_polar", data, (q, phi), device="cpu")
    assert [Status(s) for s in res.status] == [Status.INVALID_INPUT, Status.SINGULAR, Status.OUT_OF_BOUNDS,
                                               Status.CONVERGED]


def test_pathological_fits_do_not_touch_neighbours():
    """Good rows fitted among bad ones give bit-identical results to the good rows alone."""
    rng = np.random.default_rng(1)
    good = rng.poisson(np.stack([peak(center=c) for c in rng.uniform(2.45, 2.65, 20)])).astype(np.float32)
    bad = np.stack([c[0] for name, c in CASES.items() if name != "good"] * 5)
    mixed = np.concatenate([good, bad])[rng.permutation(40)]
    alone = fit("gauss1d", good, X, device="cpu")
    together = fit("gauss1d", mixed, X, device="cpu", batch_size=7)  # odd batches cut through the mix
    order = [np.nonzero((mixed == g).all(axis=1))[0][0] for g in good]
    np.testing.assert_array_equal(together.params[order], alone.params)
    np.testing.assert_array_equal(together.status[order], alone.status)
