"""kernels/fit.cu itself, run on the CPU under a SIMT emulation (tests/emu/): one warp of 32
emulated lanes per fit, shuffles and warp reductions as meeting points. The engine's GPU branch
(``fit(..., device="gpu")``: batch sizing, gpu.run_problem/run_batch, the 27-argument list) runs
unchanged with NumPy arrays; only CuPy's kernel object is replaced by the emulated one. The
answers must equal the CPU path's as closely as the CPU path agrees with itself when the points
are reordered (tests/agreement.py)."""

import shutil

import numpy as np
import pytest
from agreement import check_agreement, reorder
from emu.kernel import EmulatedKernel, build, emulate
from fit_problems import bragg_problem, pl_problem

from gpuproc.backend import kernel_dir
from gpuproc.fit import Status, fit, gpu
from gpuproc.fit.models import get_model
from gpuproc.fit.options import FitOptions
from gpuproc.fit.problem import build_problem, make_batch

KERNEL_CODES = {Status.CONVERGED, Status.MAX_ITERATIONS, Status.SINGULAR, Status.INVALID_INPUT,
                Status.OUT_OF_BOUNDS}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the emulation")
    return build(kernel_dir(), tmp_path_factory.mktemp("emu"))


@pytest.fixture
def gpu_emulated(monkeypatch, lib):
    emulate(monkeypatch, lib)


@pytest.fixture(scope="module")
def lib_tiled(tmp_path_factory):
    """The kernel with every model on the tiled accumulation (by default only models with more
    than GP_TILED_SUMS sums, which no well-posed test problem here has)."""
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the emulation")
    return build(kernel_dir(), tmp_path_factory.mktemp("emu_tiled"), defines=("GP_TILED_SUMS=0",))


def pl_case(seed, n_peaks, background, estimator, n=100, n_points=256):
    """Non-uniform descending axis, a masked band, NaN points and a NaN spectrum."""
    rng = np.random.default_rng(seed)
    x, y, _ = pl_problem(rng, n, n_points=n_points, n_peaks=n_peaks)
    y[3] = np.nan
    y[5, 10:20] = np.nan
    mask = np.zeros(n_points, bool)
    mask[100:110] = True
    return "gauss1d", y, x, dict(n_peaks=n_peaks, background=background, estimator=estimator, mask=mask)


def pl_per_fit_case(estimator, n=70, n_points=200):
    """Every stride per fit: own axis, weights, bounds (widths capped below the truth for some,
    so fits end on the bound) and fixed parameters."""
    rng = np.random.default_rng(11)
    x, y, truth = pl_problem(rng, n, n_points=n_points)
    xs = x[None, :] + rng.normal(0, 0.002, (n, 1)).astype(np.float32)
    w = rng.uniform(0.5, 2.0, (n, n_points)).astype(np.float32)
    lo = np.tile([0.0, -np.inf, 0.004, -np.inf], (n, 1))
    hi = np.tile([np.inf, np.inf, 1.0, np.inf], (n, 1))
    hi[::3, 2] = 0.015
    fixed = np.zeros((n, 4), bool)
    fixed[1::4, 3] = True
    p0 = np.column_stack([y.max(axis=1), truth[:, 1] + 0.01, np.full(n, 0.02), np.full(n, 40.0)])
    return "gauss1d", y, xs, dict(estimator=estimator, weights=w, bounds=(lo, hi), fixed=fixed, p0=p0,
                                  batch_size=37)  # batches end inside a block of 2 warps


def bragg_case(estimator, n=80):
    """Spots across the 0/360 seam, a detector gap, the slope b1 fixed."""
    rng = np.random.default_rng(7)
    (q, phi), y, _ = bragg_problem(rng, n, npt_q=24, npt_phi=36, phi_center=0.0)
    gap = (phi > 5) & (phi < 8)
    fixed = np.array([False] * 6 + [True])
    return "gauss2d_polar", y, (q, phi), dict(estimator=estimator, mask=gap, fixed=fixed)


def status_case(estimator):
    """A crafted row for every kernel status code among good ones."""
    x = np.linspace(2.3, 2.8, 256).astype(np.float32)

    def peak(c=2.55):
        return 500 * np.exp(-0.5 * ((x - c) / 0.03) ** 2) + 20

    rows = [np.full(256, 100.0), peak(2.9)] + [peak(c) for c in (2.45, 2.5, 2.6, 2.55)]
    y = np.stack(rows).astype(np.float32)
    y[2:] = np.random.default_rng(2).poisson(y[2:])
    y[0] = 100.0  # flat: SINGULAR
    y[-1] = np.nan  # no valid point: INVALID_INPUT
    p0 = make_batch(build_problem(get_model("gauss1d"), y, x, np), 0, len(rows), np).p0  # automatic starts
    p0[3, 0] = np.nan  # non-finite start: INVALID_INPUT
    return "gauss1d", y, x, dict(estimator=estimator, p0=p0)


CASES = {
    **{f"pl{k}_{bg}_{est}": (lambda k=k, bg=bg, est=est: pl_case(k, k, bg, est))
       for k, bg in ((1, "constant"), (2, "linear")) for est in ("lsq", "poisson")},
    **{f"pl_per_fit_{est}": (lambda est=est: pl_per_fit_case(est)) for est in ("lsq", "poisson")},
    **{f"bragg_seam_{est}": (lambda est=est: bragg_case(est)) for est in ("lsq", "poisson")},
    **{f"statuses_{est}": (lambda est=est: status_case(est)) for est in ("lsq", "poisson")},
}


def run_three(model, y, x, kw):
    """CPU, emulated GPU, and the control (CPU with the points of every fit reordered)."""
    cpu = fit(model, y, x, device="cpu", **kw)
    emu = fit(model, y, x, device="gpu", **kw)
    xr, yr, kwr = reorder(x, y, kw, np.random.default_rng(5).permutation(y.shape[-1]))
    return cpu, emu, fit(model, yr, xr, device="cpu", **kwr)


@pytest.mark.parametrize("case", sorted(CASES))
def test_emulated_kernel_equals_cpu(gpu_emulated, case):
    cpu, emu, control = run_three(*CASES[case]())
    assert emu.device == "gpu"
    check_agreement(cpu, emu, control, case)


@pytest.mark.parametrize("case", ["pl2_linear_poisson", "pl_per_fit_lsq", "bragg_seam_lsq", "statuses_lsq"])
def test_tiled_accumulation_equals_cpu(monkeypatch, lib_tiled, case):
    """The accumulation of models with many parameters (the lanes' gradients through a tile of
    shared memory) on the test problems of the register accumulation."""
    emulate(monkeypatch, lib_tiled)
    cpu, emu, control = run_three(*CASES[case]())
    check_agreement(cpu, emu, control, case)


def test_every_kernel_status_code_is_reached(gpu_emulated):
    seen = set()
    for est in ("lsq", "poisson"):
        model, y, x, kw = status_case(est)
        cpu = fit(model, y, x, device="cpu", **kw)
        emu = fit(model, y, x, device="gpu", **kw)
        np.testing.assert_array_equal(emu.status, cpu.status)  # crafted: no ill-posed fit among them
        seen |= {Status(s) for s in emu.status}
        model, y, x, kw = pl_case(1, 1, "constant", est, n=8)
        emu = fit(model, y, x, device="gpu", max_iter=2, **kw)
        seen |= {Status(s) for s in emu.status}
    assert seen >= KERNEL_CODES, KERNEL_CODES - seen


def test_argument_types_are_checked(lib):
    """The launcher refuses an argument list whose types differ from the kernel's parameters, and
    a block larger than the kernel's shared memory is laid out for."""
    model, y, x, kw = pl_case(1, 1, "constant", "lsq", n=8)
    kernel = EmulatedKernel(lib, "gp_fit_kernel<Gauss1D_1_1, LeastSquares>")
    out = {"params": np.zeros((4, 4), np.float32), "errors": np.zeros((4, 4), np.float32),
           "chi2": np.zeros(4, np.float32), "n_iter": np.zeros(4, np.int32), "status": np.zeros(4, np.uint8)}
    b = make_batch(build_problem(get_model(model, n_peaks=1), y, x, np, mask=kw["mask"]), 0, 4, np)
    args = list(gpu.kernel_args(b, FitOptions(), True, out))
    kernel(*gpu.launch_shape(4), tuple(args))
    assert np.all(out["n_iter"][:3] > 0) and out["status"][3] == Status.INVALID_INPUT  # row 3 is all NaN
    with pytest.raises(RuntimeError, match="exceeds the kernel's"):
        kernel((1,), (2 * gpu.THREADS_PER_BLOCK,), tuple(args))
    args[1] = np.int64(args[1])  # n_points as a 64-bit integer
    with pytest.raises(RuntimeError, match="differ from the kernel's"):
        kernel(*gpu.launch_shape(4), tuple(args))


def test_a_broken_lane_index_is_caught(monkeypatch, tmp_path):
    """The check has power: fit.cu with lanes striding the points by 16 instead of 32 fails it."""
    src = (kernel_dir() / "fit.cu").read_text()
    broken = src.replace("for (int i = lane; i < n; i += 32) {\n            float xs[M::NDIM], g[NP]",
                         "for (int i = lane; i < n; i += 16) {\n            float xs[M::NDIM], g[NP]")
    assert broken != src
    (tmp_path / "fit.cu").write_text(broken)
    emulate(monkeypatch, build(kernel_dir(), tmp_path, tmp_path / "fit.cu"))
    with pytest.raises(AssertionError):
        check_agreement(*run_three(*bragg_case("poisson", n=24)), "broken lane stride")


def test_pl_peak_selection_runs_on_the_emulated_gpu(gpu_emulated, monkeypatch):
    """The PL pipeline's fitting step (1..3 peaks + BIC, pl.peaks.fit_peaks) through its device
    branch. Control: the CPU with the channels in reverse order (the PL code needs a monotonic
    axis). The number of peaks may differ only on as many pixels as the control's, plus one."""
    from gpuproc.pl import peaks

    monkeypatch.setattr(peaks, "get_xp", lambda device: np)
    x, y, _ = pl_problem(np.random.default_rng(4), 60, n_points=256, n_peaks=2)
    kw = dict(max_peaks=3, background="linear", estimator="poisson")
    emu = peaks.fit_peaks(y, x, device="gpu", **kw).as_dict()
    cpu = peaks.fit_peaks(y, x, device="cpu", **kw).as_dict()
    ctrl = peaks.fit_peaks(y[:, ::-1], x[::-1], device="cpu", **kw).as_dict()
    flips, ctrl_flips = emu["n_peaks"] != cpu["n_peaks"], ctrl["n_peaks"] != cpu["n_peaks"]
    assert flips.sum() <= ctrl_flips.sum() + 1, (flips.sum(), ctrl_flips.sum())
    same = ~flips & ~ctrl_flips & (cpu["n_peaks"] > 0)
    de, dc = (np.abs(r["energy"][same] - cpu["energy"][same]) for r in (emu, ctrl))
    steady = dc < 1e-3  # eV: pixels whose dominant peak the reordering does not move
    assert steady.sum() > 20
    assert de[steady].max() <= 3 * dc[steady].max() + 1e-5
