"""User models (gpuproc.fit.user_model): a value function in a header, the Jacobian from dual
numbers, compiled at run time. Hand-written user versions of the built-in Gaussians give the
built-ins' answers to float32 tolerance on the CPU; the generated CUDA source compiles with NVRTC as
CuPy compiles it; a broken header gives the compiler's first error with file and line."""

import os
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from agreement import check_agreement, reorder
from emu.kernel import build
from fit_problems import bragg_problem, pl_problem
from nvrtc import compile_kernels, require_nvrtc
from test_gpu_emulation import emulate

from gpuproc.backend import kernel_dir
from gpuproc.fit import fit, get_model, gpu
from gpuproc.fit.compile_cpu import CompileError, first_error
from gpuproc.fit.options import ESTIMATOR_TYPES
from gpuproc.fit import user_model
from gpuproc.fit.user_model import UserModel, resolve_model

MODELS_DIR = Path(__file__).resolve().parent / "user_models"
sys.path.insert(0, str(MODELS_DIR))
import models as registered  # noqa: E402

GAUSS_PARAMS = ("amplitude", "center", "sigma", "c0", "c1")
BROKEN = MODELS_DIR / "broken.cuh"  # an undeclared name on line 5


def broken_model():
    return UserModel("broken", BROKEN, "broken", ("center", "amplitude"), ("x",), {"center": "x"})


def assert_same_fits(ours, theirs):
    """The same answers to float32 tolerance: same statuses; where converged, parameters equal in
    the median to 1e-3 standard errors and everywhere within 0.05 (float32 sums of J^T W J with
    rounding of their own leave a background's offset and slope, correlated to ~0.9999 over a
    narrow window, 0.03 sigma apart at most), errors and chi-square within 1e-3."""
    assert (ours.status == theirs.status).mean() > 0.99
    ok = ours.ok & theirs.ok
    assert ok.mean() > 0.8
    sigmas = np.abs(ours.params[ok] - theirs.params[ok]) / np.where(theirs.errors[ok] > 0, theirs.errors[ok], 1.0)
    assert np.median(sigmas) < 1e-3 and sigmas.max() < 0.05, (np.median(sigmas), sigmas.max(axis=0))
    np.testing.assert_allclose(ours.errors[ok], theirs.errors[ok], rtol=1e-3)
    np.testing.assert_allclose(ours.chi2[ok], theirs.chi2[ok], rtol=1e-3)


def test_user_model_values_and_jacobian_equal_the_builtin():
    rng = np.random.default_rng(1)
    x, _, p = pl_problem(rng, 16, n_points=300, slope=3.0)
    builtin = get_model("gauss1d", n_peaks=1, background="linear")
    xs = x[None].astype(np.float64)
    user = registered.gauss_linear
    # float32 arithmetic (as in the kernels): (x - center) / sigma carries ~1e-5 relative rounding
    np.testing.assert_allclose(user.evaluate(xs, p), builtin.evaluate(xs, p), rtol=5e-5)
    scale = np.abs(builtin.jacobian(xs, p)).max(axis=1, keepdims=True)
    np.testing.assert_allclose(user.jacobian(xs, p) / scale, builtin.jacobian(xs, p) / scale, atol=5e-5)
    own = xs[None] + rng.normal(0, 0.01, (16, 1, 1))  # coordinates per fit
    np.testing.assert_allclose(user.evaluate(own, p), builtin.evaluate(own, p), rtol=5e-5)


@pytest.mark.parametrize("estimator", ["lsq", "poisson"])
def test_gaussian_user_model_gives_the_builtin_answers(estimator):
    rng = np.random.default_rng(2)
    x, y, _ = pl_problem(rng, 400, n_points=256, slope=4.0)
    mask = rng.random(256) < 0.05
    builtin = get_model("gauss1d", n_peaks=1, background="linear")
    kw = dict(estimator=estimator, mask=mask, device="cpu")
    assert_same_fits(fit(registered.gauss_linear, y, x, **kw), fit(builtin, y, x, **kw))


def test_fixed_parameters_and_bounds_act_as_for_the_builtin():
    rng = np.random.default_rng(3)
    x, y, truth = pl_problem(rng, 200, n_points=256)
    builtin = get_model("gauss1d", n_peaks=1, background="linear")
    fixed = np.array([False, False, False, False, True])  # slope held at its start, 0
    p0 = builtin.guess(x[None], y, np.ones(256, np.float32))
    bounds = (np.array([0, 2.5, 0.015, -np.inf, -np.inf]), np.full(5, np.inf))  # some centres at the bound
    kw = dict(p0=p0, fixed=fixed, bounds=bounds, device="cpu")
    ours, theirs = fit(registered.gauss_linear, y, x, **kw), fit(builtin, y, x, **kw)
    assert_same_fits(ours, theirs)
    assert np.all(ours["c1"] == 0) and np.all(ours.error("c1") == 0)
    assert np.any(ours["center"] == np.float32(2.5))


@pytest.mark.parametrize("phi_center", [0.0, 359.0])
def test_periodic_position_user_model_matches_gauss2d_polar_across_the_seam(phi_center):
    rng = np.random.default_rng(4)
    (q, phi), y, _ = bragg_problem(rng, 200, phi_center=phi_center)
    kw = dict(estimator="poisson", device="cpu")
    ours, theirs = fit(registered.spot_polar, y, (q, phi), **kw), fit(get_model("gauss2d_polar"), y, (q, phi), **kw)
    assert_same_fits(ours, theirs)


def test_a_position_that_leaves_the_window_is_out_of_bounds():
    rng = np.random.default_rng(5)
    x, y, truth = pl_problem(rng, 32, n_points=256)
    p0 = truth.copy()
    p0[:, 1], p0[:, 2] = x.min() - 0.05, 0.1  # a wide peak held just outside the data
    r = fit(registered.gauss_linear, y, x, p0=p0, fixed=[False, True, True, False, False], device="cpu")
    assert np.all(r.status == 4), r.status_counts()  # OUT_OF_BOUNDS


def test_libraries_are_cached_by_source_hash(tmp_path):
    header = tmp_path / "g.cuh"
    shutil.copy(MODELS_DIR / "gauss_linear.cuh", header)

    def model():
        return UserModel("g", header, "gauss_linear", GAUSS_PARAMS, ("x",), {"center": "x"})

    first = Path(model().cpu_library())
    stamp = first.stat().st_mtime_ns
    user_model._cpu_library.cache_clear()  # as in a new process: only the disk cache is left
    assert Path(model().cpu_library()) == first and first.stat().st_mtime_ns == stamp  # found, not rebuilt
    header.write_text(header.read_text().replace("p[3] + p[4] * x[0]", "p[3] + 2.0f * p[4] * x[0]"))
    changed = model()
    assert Path(changed.cpu_library()) != first
    x = np.linspace(0.0, 1.0, 8)[None]
    np.testing.assert_allclose(changed.evaluate(x, np.array([[0.0, 0.5, 1.0, 0.0, 1.0]]))[0], 2 * x[0], rtol=1e-6)
    assert first.parent == Path(os.environ["GPUPROC_CACHE_DIR"]) / "kernels"  # the session's (conftest)


def test_with_caching_off_libraries_are_built_per_process(monkeypatch):
    monkeypatch.setenv("GPUPROC_CACHE_DIR", "none")
    user_model._cpu_library.cache_clear()
    path = Path(registered.gauss_linear.cpu_library())
    assert path.is_file() and path.parent.name.startswith("gpuproc-kernels-")


def test_a_broken_header_gives_the_compilers_message_with_file_and_line():
    m = broken_model()
    with pytest.raises(CompileError) as err:
        m.compile()
    head = str(err.value).splitlines()[0]
    assert head.startswith(f"{BROKEN}:5: error:"), head
    assert "offset" in head and "user model 'broken'" in head
    with pytest.raises(CompileError):  # a fit fails the same way, before any batch
        fit(m, np.ones((2, 4)), np.arange(4.0), p0=[1.0, 1.0], device="cpu")


def test_first_error_reads_gcc_clang_and_nvrtc_logs():
    gcc = "In file included from x.cpp:1:\n/a/m.cuh: In function 'T f()':\n/a/m.cuh:7:12: error: 'q' was not declared"
    nvrtc = '/a/fit.cu(3): warning: unused\n/a/m.cuh(9): error: identifier "q" is undefined\n1 error detected'
    assert first_error(gcc) == "/a/m.cuh:7: error: 'q' was not declared"
    assert first_error(nvrtc) == '/a/m.cuh:9: error: identifier "q" is undefined'
    two = "/k/user_model.cuh:20:5: error: no match\n/a/m.cuh:4:1: error: bad"
    assert first_error(two, prefer_file="/a/m.cuh") == "/a/m.cuh:4: error: bad"
    assert first_error("all good") is None


def test_registration_errors_name_the_model_and_the_key(tmp_path):
    header = MODELS_DIR / "gauss_linear.cuh"
    args = dict(header=header, function="gauss_linear", params=GAUSS_PARAMS, coordinates=("x",))
    for positions, message in [({}, "at least one"), ({"mu": "x"}, "'mu' is not a parameter"),
                               ({"center": "t"}, "coordinate 't'"), ({"center": ("x", -1.0)}, "period")]:
        with pytest.raises(ValueError, match=message):
            UserModel("g", positions=positions, **args)
    with pytest.raises(ValueError, match="at most 2 coordinates"):
        UserModel("g", header, "gauss_linear", GAUSS_PARAMS, ("x", "y", "z"), {"center": "x"})
    with pytest.raises(ValueError, match="params must be distinct identifiers"):
        UserModel("g", header, "gauss_linear", ("a", "a"), ("x",), {"a": "x"})
    with pytest.raises(FileNotFoundError, match="missing.cuh"):
        UserModel("g", tmp_path / "missing.cuh", "f", ("a",), ("x",), {"a": "x"})
    no_guess = UserModel("g", positions={"center": "x"}, **args)
    with pytest.raises(ValueError, match="no starting-value rule"):
        fit(no_guess, np.ones((2, 8)), np.arange(8.0), device="cpu")


def test_job_files_name_a_user_model_by_its_registration_path(tmp_path):
    loaded = resolve_model("models.py:gauss_linear", base_dir=MODELS_DIR)
    assert loaded.kernel_type == registered.gauss_linear.kernel_type
    assert resolve_model("models.py:gauss_linear", base_dir=MODELS_DIR) is loaded  # imported once
    assert resolve_model(f"{MODELS_DIR}/models.py:spot_polar").param_names[3] == "phi0"
    assert resolve_model("gauss1d", n_peaks=2).n_params == 7  # built-ins by name, with options
    clone = pickle.loads(pickle.dumps(loaded))  # as a Dask/SLURM worker receives it: by reference
    assert clone.origin == loaded.origin and clone.kernel_type == loaded.kernel_type
    with pytest.raises(ValueError, match="no model named 'nope'.*gauss_linear"):
        resolve_model("models.py:nope", base_dir=MODELS_DIR)
    with pytest.raises(FileNotFoundError, match="not a Python file"):
        resolve_model("missing.py:x", base_dir=tmp_path)


@pytest.mark.parametrize("model", ["gauss_linear", "spot_polar"])
def test_user_model_kernels_compile_with_nvrtc(model):
    """The source gpu.run_batch hands cuda_kernel (model.kernel_source), with its name expressions
    and the options CuPy gets, for sm_90."""
    require_nvrtc()
    m = getattr(registered, model)
    names = [gpu.kernel_name(m, est) for est in ESTIMATOR_TYPES]
    lowered, cubin, _ = compile_kernels(Path(m.kernel_source), names, "sm_90", include_dir=kernel_dir())
    for n in names:
        assert lowered[n].encode() in cubin, n


def test_a_broken_header_gives_nvrtcs_message_with_file_and_line():
    require_nvrtc()
    m = broken_model()
    with pytest.raises(RuntimeError) as err:
        compile_kernels(Path(m.kernel_source), [gpu.kernel_name(m, "lsq")], "sm_90", include_dir=kernel_dir())
    head = first_error(str(err.value), prefer_file=str(BROKEN))
    assert head.startswith(f"{BROKEN}:5: error:") and "offset" in head, head


def test_cuda_kernel_reports_nvrtc_errors_with_file_and_line(monkeypatch):
    """backend.cuda_kernel turns CuPy's CompileException (NVRTC's log) into a CompileError."""
    from types import SimpleNamespace

    from gpuproc import backend

    class CompileException(Exception):
        pass

    def raw_module(**kw):
        raise CompileException(f'{BROKEN}(5): error: identifier "offset" is undefined\n\n1 error detected')

    fake = SimpleNamespace(RawModule=raw_module, cuda=SimpleNamespace(compiler=SimpleNamespace(
        CompileException=CompileException)))
    monkeypatch.setattr(backend, "_cupy_status", lambda: (fake, ""))
    with pytest.raises(CompileError) as err:
        backend.cuda_kernel.__wrapped__(broken_model().kernel_source, "gp_fit_kernel<X, LeastSquares>")
    assert str(err.value).startswith(f'{BROKEN}:5: error: identifier "offset" is undefined'), str(err.value)


@pytest.fixture(scope="module")
def emulated_spot_polar(tmp_path_factory):
    """spot_polar's generated CUDA source built under the SIMT emulation (tests/emu), whose
    launcher serves the models GP_MODELS names: here the user model alone (also the only one
    fit.cu instantiates)."""
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the emulation")
    m, folder = registered.spot_polar, tmp_path_factory.mktemp("emu-user")
    kdir = kernel_dir()
    (folder / "fit.cu").write_text(Path(m.kernel_source).read_text().replace(
        '#include "fit.cu"\n', f'#include "{kdir / "models.cuh"}"\n#undef GP_MODELS\n'
        f'#define GP_MODELS(X) X(0, user, {m.kernel_type})\n#include "{kdir / "fit.cu"}"\n'))
    return build(kdir, folder, folder / "fit.cu")


def test_user_model_on_the_emulated_gpu_equals_the_cpu(monkeypatch, emulated_spot_polar):
    """fit(device="gpu") with a user model: model.kernel_source and its name expression through
    gpu.run_batch, the warp accumulator evaluating Dual<NP>, against the CPU path and its control."""
    emulate(monkeypatch, emulated_spot_polar)
    rng = np.random.default_rng(8)
    (q, phi), y, _ = bragg_problem(rng, 40, npt_q=24, npt_phi=36, phi_center=0.0)
    xr, yr, perm_kw = reorder((q, phi), y, {"mask": (phi > 5) & (phi < 8)}, rng.permutation(y.shape[-1]))
    for estimator in ("lsq", "poisson"):
        kw = dict(estimator=estimator, mask=(phi > 5) & (phi < 8))
        cpu, emu = (fit(registered.spot_polar, y, (q, phi), device=d, **kw) for d in ("cpu", "gpu"))
        assert emu.device == "gpu"
        control = fit(registered.spot_polar, yr, xr, device="cpu", estimator=estimator, **perm_kw)
        check_agreement(cpu, emu, control, f"spot_polar {estimator}")
