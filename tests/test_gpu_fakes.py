"""Lines of the GPU path that do not call CuPy themselves, run here through fakes of the few CuPy
(and dask-cuda) calls they make: the gpu marker's verdict, free device memory, batch sizing,
batching of the engine's GPU branch, what cuda_kernel hands CuPy's RawModule (and its compile
errors), out-of-memory splitting with CuPy's exception class, and the ``cuda`` executor's cluster.
The device data flow (stored-dtype frames, pinned buffers, streams, uploads once per run) is in
tests/test_gpu_dataflow.py."""

import re
import sys
import types
import warnings

import numpy as np
import pytest
from fit_problems import pl_problem
from gpu_env import classify

from gpuproc import backend
from gpuproc.fit import engine, fit, gpu
from gpuproc.fit.compile_cpu import CompileError
from gpuproc.fit.models import get_model
from gpuproc.run import clusters, oom
from gpuproc.run.settings import Execution


class CUDARuntimeError(RuntimeError):
    def __init__(self, status):
        super().__init__(f"cudaError {status}")
        self.status = status


def fake_cupy(device_count=1, free=6 << 30, pool_free=1 << 30):
    """A module with the attributes of CuPy that gpuproc reads outside kernels and arrays."""
    cupy = types.ModuleType("cupy")
    runtime = types.SimpleNamespace(memGetInfo=lambda: (free, 80 << 30))

    def count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    runtime.getDeviceCount = count
    memory = types.ModuleType("cupy.cuda.memory")
    memory.OutOfMemoryError = type("OutOfMemoryError", (MemoryError,), {})
    cupy.cuda = types.SimpleNamespace(runtime=runtime, memory=memory)
    pool = types.SimpleNamespace(free_bytes=lambda: pool_free, freed=0)
    pool.free_all_blocks = lambda: setattr(pool, "freed", pool.freed + 1)
    cupy.get_default_memory_pool = lambda: pool
    return cupy


def importer(result):
    """An importlib stand-in whose import_module returns or raises ``result``."""
    def import_module(name):
        if isinstance(result, BaseException):
            raise result
        return result

    return types.SimpleNamespace(import_module=import_module)


@pytest.mark.parametrize("outcome, expected", [
    (ModuleNotFoundError("No module named 'cupy'", name="cupy"), "skip"),
    (ModuleNotFoundError("No module named 'fastrlock'", name="fastrlock"), "fail"),
    (ImportError("libcudart.so.12: cannot open shared object file"), "fail"),
    (fake_cupy(device_count=CUDARuntimeError(35)), "fail"),  # cudaErrorInsufficientDriver
    (fake_cupy(device_count=CUDARuntimeError(100)), "skip"),  # cudaErrorNoDevice
    (fake_cupy(device_count=0), "skip"),
    (fake_cupy(device_count=2), None),
])
def test_gpu_marker_skips_only_without_cupy_or_device(monkeypatch, outcome, expected):
    import gpu_env

    monkeypatch.setattr(gpu_env, "importlib", importer(outcome))
    verdict = classify()
    assert (verdict and verdict[0]) == expected, verdict


@pytest.mark.parametrize("cupy, reason", [
    (fake_cupy(device_count=1), ""),
    (fake_cupy(device_count=0), "CuPy sees no CUDA device"),
    (fake_cupy(device_count=CUDARuntimeError(35)), "CuPy sees no CUDA driver or device (cudaError 35)"),
    (None, "CuPy is not importable (ModuleNotFoundError"),  # sys.modules["cupy"] = None: import fails
])
def test_backend_finds_cupy_and_a_device(monkeypatch, cupy, reason):
    """backend._cupy_status with the module CuPy's import gives: the device check and each reason;
    device="gpu" then raises naming it, "auto" falls back to the CPU."""
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    backend._cupy_status.cache_clear()
    try:
        module, why = backend._cupy_status()
        assert (module is cupy) if not reason else (module is None and why.startswith(reason)), why
        assert backend.resolve_device("auto") == ("gpu" if not reason else "cpu")
        if reason:
            with pytest.raises(backend.BackendError, match=re.escape(reason)):
                backend.resolve_device("gpu")
    finally:
        backend._cupy_status.cache_clear()


def test_free_device_memory_counts_the_pool(monkeypatch):
    monkeypatch.setattr(backend, "_cupy_status", lambda: (fake_cupy(free=3 << 30, pool_free=1 << 30), ""))
    assert backend.free_device_memory() == 4 << 30


def test_batch_size_follows_free_memory():
    x, y, _ = pl_problem(np.random.default_rng(0), 4, n_points=1000)
    from gpuproc.fit.problem import build_problem

    pr = build_problem(get_model("gauss1d"), y, x, np)
    per_fit = 4 * 1000 * 4 + 16 * 4 + 16
    assert gpu.batch_size(pr, 10 * per_fit) == gpu.MIN_BATCH  # floor
    assert gpu.batch_size(pr, 1 << 30) == int(gpu.MEMORY_FRACTION * (1 << 30) / per_fit)


def test_gpu_branch_cuts_batches_from_free_memory(monkeypatch):
    """fit(device="gpu") -> run_problem -> run_batch: launches cover every fit once, in order,
    with one warp per fit; batches as large as the free memory allows."""
    launches = []

    class Kernel:
        def __call__(self, grid, block, args):
            n = int(args[0])
            assert grid[0] * block[0] >= 32 * n > (grid[0] - 1) * block[0]
            launches.append(n)
            args[-1][:] = 0  # status CONVERGED
            args[-2][:] = 1

    x, y, _ = pl_problem(np.random.default_rng(0), 2500, n_points=64)
    per_fit = 4 * 64 * 4 + 16 * 4 + 16
    monkeypatch.setattr(gpu, "cuda_kernel", lambda source, name: Kernel())
    monkeypatch.setattr(gpu, "free_device_memory", lambda: int(1100 * per_fit / gpu.MEMORY_FRACTION) + 1)
    monkeypatch.setattr(engine, "resolve_device", lambda device: "gpu")
    monkeypatch.setattr(engine, "get_xp", lambda device: np)
    res = fit("gauss1d", y, x, device="gpu")
    assert launches == [1100, 1100, 300]
    assert res.device == "gpu" and np.all(res.n_iter == 1)


def test_cuda_kernel_hands_cupy_the_source_and_nvrtc_options(monkeypatch):
    """backend.cuda_kernel: the kernel file's text, backend.nvrtc_options (what tests/nvrtc.py
    compiles for sm_80/sm_90) and the one name expression go to RawModule; an NVRTC error becomes a
    CompileError whose first line is the error as file:line."""
    made = []

    class RawModule:
        def __init__(self, code, options, name_expressions):
            made.append((code, options, name_expressions))
            if "broken" in name_expressions[0]:
                raise cupy.cuda.compiler.CompileException(
                    "/k/fit.cu(12): error: identifier \"lane\" is undefined\n1 error detected")

        def get_function(self, name):
            return ("function", name)

    cupy = fake_cupy()
    cupy.RawModule = RawModule
    cupy.cuda.compiler = types.SimpleNamespace(CompileException=type("CompileException", (Exception,), {}))
    monkeypatch.setattr(backend, "_cupy_status", lambda: (cupy, ""))
    backend.cuda_kernel.cache_clear()
    try:
        name = gpu.kernel_name(get_model("gauss1d"), "poisson")
        assert backend.cuda_kernel("fit.cu", name) == ("function", name)
        assert backend.cuda_kernel("fit.cu", name) == ("function", name) and len(made) == 1  # compiled once
        kdir = backend.kernel_dir()
        assert made[0] == ((kdir / "fit.cu").read_text(), backend.nvrtc_options(kdir), (name,))
        with pytest.raises(CompileError, match=r"^/k/fit.cu:12: error: identifier \"lane\" is undefined"):
            backend.cuda_kernel("fit.cu", "broken<1>")
    finally:
        backend.cuda_kernel.cache_clear()


def test_oom_splits_with_cupys_exception_class(monkeypatch):
    cupy = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cupy.cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.memory", cupy.cuda.memory)
    oom.oom_errors.cache_clear()
    try:
        def compute(lo, hi):
            if hi - lo > 2:
                raise cupy.cuda.memory.OutOfMemoryError("out of memory allocating 1 GB")
            return list(range(lo, hi))

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = oom.split_on_oom(compute, 0, 7, lambda parts: sum(parts, []))
        assert out == list(range(7))
        assert any("out of memory" in str(w.message) for w in caught)
        assert cupy.get_default_memory_pool().freed >= 1
        with pytest.raises(ValueError):  # other errors are not split
            oom.split_on_oom(lambda lo, hi: (_ for _ in ()).throw(ValueError("bad")), 0, 4, list)
    finally:
        oom.oom_errors.cache_clear()


def test_cuda_executor_builds_one_worker_per_gpu(monkeypatch):
    made = {}
    dask_cuda = types.ModuleType("dask_cuda")
    dask_cuda.LocalCUDACluster = lambda **kw: made.update(kw) or "cluster"
    monkeypatch.setitem(sys.modules, "dask_cuda", dask_cuda)
    assert clusters._cluster(Execution("cuda", n_workers=2), log_directory=None) == "cluster"
    assert made == {"n_workers": 2, "threads_per_worker": 1, "host": clusters.LOCALHOST, "dashboard_address": None}
    monkeypatch.setitem(sys.modules, "dask_cuda", None)  # not installed
    with pytest.raises(RuntimeError, match="needs dask-cuda"):
        clusters._cluster(Execution("cuda"), log_directory=None)
