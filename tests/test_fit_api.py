"""The public fit() interface: shapes, per-fit coordinates, options and clear errors."""

import numpy as np
import pytest

from gpuproc.backend import BackendError, gpu_available, resolve_device
from gpuproc.fit import Gauss1D, Status, fit, get_model
from fit_problems import pl_problem


def test_batch_shape_is_kept():
    rng = np.random.default_rng(0)
    x, y, _ = pl_problem(rng, 12, n_points=128)
    res = fit("gauss1d", y.reshape(3, 4, 128), x, device="cpu")
    assert res.params.shape == (3, 4, 4) and res.status.shape == (3, 4) and res.chi2.shape == (3, 4)
    flat = fit("gauss1d", y, x, device="cpu")
    np.testing.assert_array_equal(res.params.reshape(12, 4), flat.params)
    assert res["center1"].shape == (3, 4)


def test_per_fit_coordinates_equal_shared_ones():
    rng = np.random.default_rng(1)
    x, y, _ = pl_problem(rng, 6, n_points=200)
    shared = fit("gauss1d", y, x, device="cpu")
    per_fit = fit("gauss1d", y, np.broadcast_to(x, y.shape), device="cpu")
    np.testing.assert_array_equal(shared.params, per_fit.params)


def test_threads_and_batches_do_not_change_results():
    rng = np.random.default_rng(2)
    x, y, _ = pl_problem(rng, 50, n_points=200)
    a = fit("gauss1d", y, x, device="cpu", n_threads=1, batch_size=1000)
    b = fit("gauss1d", y, x, device="cpu", n_threads=2, batch_size=7)
    np.testing.assert_array_equal(a.params, b.params)


def test_float64_and_integer_data_are_accepted():
    rng = np.random.default_rng(3)
    x, y, _ = pl_problem(rng, 4, n_points=100)
    r32 = fit("gauss1d", y, x, device="cpu")
    r_int = fit("gauss1d", y.astype(np.int32), x.astype(np.float64), device="cpu")
    np.testing.assert_array_equal(r32.params, r_int.params)


def test_model_by_name_and_options():
    m = get_model("gauss1d", n_peaks=3, background="linear")
    assert m.n_params == 11 and m.param_names[-2:] == ("c0", "c1")
    with pytest.raises(ValueError, match="n_peaks must be 1..4"):
        get_model("gauss1d", n_peaks=5)
    with pytest.raises(ValueError, match="unknown model 'lorentz'"):
        fit("lorentz", np.zeros((1, 10)), np.arange(10))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"x": np.arange(9)}, r"x: gauss1d needs coordinates .* n_points = 10"),
        ({"p0": np.ones(3)}, r"p0 \(amplitude1, center1, sigma1, c0\): expected shape \(4,\)"),
        ({"mask": np.ones(10)}, "mask: expected a boolean array"),
        ({"weights": -np.ones(10)}, "weights: must be >= 0"),
        ({"bounds": (np.ones(4), np.zeros(4))}, r"bounds: lower > upper for \['amplitude1'"),
        ({"estimator": "huber"}, "estimator must be one of"),
        ({"device": "tpu"}, "device must be one of"),
        ({"max_iter": 0}, "max_iter must be >= 1"),
    ],
)
def test_bad_arguments_name_what_is_wrong(kwargs, match):
    args = {"x": np.linspace(0, 1, 10), **kwargs}
    x = args.pop("x")
    with pytest.raises((ValueError, TypeError), match=match):
        fit(Gauss1D(), np.ones((2, 10)), x, **args)


@pytest.mark.skipif(gpu_available(), reason="checks the error raised where no GPU is usable")
def test_gpu_request_without_gpu_is_an_error():
    with pytest.raises(BackendError, match="device='gpu' was requested but no GPU is usable"):
        fit("gauss1d", np.ones((1, 10)), np.arange(10.0), device="gpu")
    assert resolve_device("auto") == "cpu"


def test_result_helpers():
    rng = np.random.default_rng(4)
    x, y, _ = pl_problem(rng, 5, n_points=100)
    y[0] = np.nan
    res = fit("gauss1d", y, x, device="cpu")
    counts = res.status_counts()
    assert counts["INVALID_INPUT"] == 1 and counts["CONVERGED"] == 4
    assert res.ok.tolist() == [False, True, True, True, True]
    assert res.get().params is not None and res.status[0] == Status.INVALID_INPUT
