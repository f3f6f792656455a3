"""Every built-in model's hand-written Jacobian (kernels/models/*.cuh, ``eval``) against its
dual-number version: the model's ``value<T>()`` with T = Dual<NP> through the user-model adapter,
compiled for the host (tests/dual/dual_check.cpp). Values must agree too, so ``value`` is the same
function as ``eval``. Random parameters inside the model's default bounds, random points, positions
near the 0/360 seam of a periodic coordinate."""

import ctypes
from pathlib import Path

import numpy as np
import pytest

from gpuproc.backend import kernel_dir
from gpuproc.fit.compile_cpu import build_library
from gpuproc.fit.models import MODELS
from gpuproc.fit.user_model import kernel_digest

SOURCE = Path(__file__).resolve().parent / "dual" / "dual_check.cpp"
VARIANTS = [m for cls in MODELS.values() for m in cls.variants()]
N_POINTS = 400
_p = ctypes.c_void_p


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPUPROC_CACHE_DIR", str(tmp_path_factory.mktemp("dual-cache")))
        # the cache key is the source text: the kernels' digest in it rebuilds after a model change
        source = f"// kernels {kernel_digest()}\n#line 1 \"{SOURCE}\"\n{SOURCE.read_text()}"
        path = build_library(source, "dual_check", [kernel_dir()], what=str(SOURCE))
    cdll = ctypes.CDLL(str(path))
    cdll.gp_dual_check.restype = ctypes.c_int
    cdll.gp_dual_check.argtypes = [ctypes.c_int, ctypes.c_int, _p, _p, _p, _p, _p, _p]
    cdll.gp_dual_position.restype = ctypes.c_int
    cdll.gp_dual_position.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                      ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_float)]
    return cdll


def compiled_ids(lib):
    ids, k = [], 0
    while lib.gp_dual_check(k, 0, None, None, None, None, None, None) != -1:
        ids.append(k)
        k += 1
    return ids


def positions(lib, model):
    """(parameter, coordinate, period) of each position of the compiled model."""
    out, k = [], 0
    param, dim, period = ctypes.c_int(), ctypes.c_int(), ctypes.c_float()
    while lib.gp_dual_position(model.kernel_id, k, param, dim, period) == 0:
        out.append((param.value, dim.value, period.value))
        k += 1
    return out


def sample(rng, model, pos):
    """Points (n_dims, N_POINTS) and one parameter vector inside the default bounds."""
    periods = {d: period for _, d, period in pos if period > 0}
    x = np.stack([rng.uniform(0.0, periods[d], N_POINTS) if d in periods else rng.uniform(1.0, 3.0, N_POINTS)
                  for d in range(model.n_dims)]).astype(np.float32)
    lo, hi = model.default_bounds(x.astype(np.float64))
    p = rng.normal(0.0, 1.0, model.n_params)
    for i in range(model.n_params):
        if np.isfinite(lo[i]) and np.isfinite(hi[i]):
            p[i] = rng.uniform(lo[i] + 0.05 * (hi[i] - lo[i]), hi[i] - 0.05 * (hi[i] - lo[i]))
        elif np.isfinite(lo[i]):
            p[i] = lo[i] + 0.2 * rng.uniform(0.5, 2.0)  # amplitudes, widths (a tenth of the x span)
    for i, d, period in pos:
        p[i] = np.mod(rng.uniform(-20.0, 20.0), period) if period > 0 else rng.uniform(1.3, 2.7)
    return x, p.astype(np.float32)


def test_every_builtin_model_has_a_dual_version(lib):
    ids = compiled_ids(lib)
    assert ids and set(ids) == {m.kernel_id for m in VARIANTS}, "compiled models and Python variants differ"
    missing = [m.kernel_type for m in VARIANTS if lib.gp_dual_check(m.kernel_id, 0, *[None] * 6) == 1]
    assert not missing, f"models without a value<T>() (their dual-number version): {missing}"


@pytest.mark.parametrize("model", VARIANTS, ids=[m.kernel_type for m in VARIANTS])
def test_hand_written_jacobian_equals_dual_numbers(lib, model):
    rng = np.random.default_rng(model.kernel_id)
    pos = positions(lib, model)
    assert len(pos) >= 1
    for _ in range(5):
        x, p = sample(rng, model, pos)
        f_hand, f_dual = np.empty(N_POINTS, np.float32), np.empty(N_POINTS, np.float32)
        g_hand, g_dual = (np.empty((N_POINTS, model.n_params), np.float32) for _ in range(2))
        rc = lib.gp_dual_check(model.kernel_id, N_POINTS, x.ctypes.data, p.ctypes.data, f_hand.ctypes.data,
                               g_hand.ctypes.data, f_dual.ctypes.data, g_dual.ctypes.data)
        assert rc == 0, f"{model.kernel_type} has no value<T>()"
        np.testing.assert_allclose(f_dual, f_hand, rtol=1e-5, atol=1e-5 * np.abs(f_hand).max())
        scale = np.abs(g_dual).max(axis=0)  # per parameter: derivatives differ by rounding only
        assert np.all(scale > 0), f"{model.kernel_type}: a parameter without influence at {p}"
        err = np.abs(g_hand - g_dual) / scale
        worst = np.unravel_index(np.argmax(err), err.shape)
        assert err.max() < 1e-4, (f"{model.kernel_type}: d f / d {model.param_names[worst[1]]} at point "
                                  f"{x[:, worst[0]]}, p = {p}: hand {g_hand[worst]} vs dual {g_dual[worst]}")
