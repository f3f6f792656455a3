"""Device selection and the array namespace: NumPy on the CPU, CuPy on a CUDA GPU.

``device`` is ``"auto"`` (CuPy when it imports and sees a CUDA device, else NumPy), ``"cpu"`` or
``"gpu"`` (an error when no GPU is usable, never a silent fallback).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np

Device = Literal["auto", "cpu", "gpu"]
DEVICES = ("auto", "cpu", "gpu")


class BackendError(RuntimeError):
    """The requested device cannot be used."""


@functools.lru_cache(maxsize=1)
def _cupy_status() -> tuple[ModuleType | None, str]:
    """CuPy module if it imports and sees a CUDA device, else None and the reason."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA installation
        return None, f"CuPy is not importable ({exc.__class__.__name__}: {exc}); install gpuproc[gpu]"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return None, f"CuPy sees no CUDA driver or device ({exc})"
    if n < 1:
        return None, "CuPy sees no CUDA device"
    return cupy, ""


def gpu_available() -> bool:
    """True when CuPy imports and a CUDA device is present."""
    return _cupy_status()[0] is not None


def resolve_device(device: str = "auto") -> Literal["cpu", "gpu"]:
    """Turn ``"auto" | "cpu" | "gpu"`` into the device that will run."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    cupy, why = _cupy_status()
    if cupy is None:
        if device == "gpu":
            raise BackendError(f"device='gpu' was requested but no GPU is usable: {why}")
        return "cpu"
    return "gpu"


def get_xp(device: str = "auto") -> ModuleType:
    """The array namespace for a device: ``numpy`` or ``cupy``."""
    return np if resolve_device(device) == "cpu" else _cupy_status()[0]


def array_namespace(*arrays: Any) -> ModuleType:
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy

            return cupy
    return np


def is_device_array(a: Any) -> bool:
    """True for a CuPy array."""
    return type(a).__module__.startswith("cupy")


def to_numpy(a: Any) -> np.ndarray:
    """A NumPy copy (or view) of a NumPy or CuPy array."""
    return a.get() if is_device_array(a) else np.asarray(a)


def free_device_memory() -> int:
    """Free bytes on the current CUDA device (including CuPy's pool), 0 without a GPU."""
    cupy = _cupy_status()[0]
    if cupy is None:
        return 0
    free, _ = cupy.cuda.runtime.memGetInfo()
    pool = cupy.get_default_memory_pool()
    return int(free + pool.free_bytes())


def kernel_dir() -> Path:
    """Directory of the CUDA kernel sources: the package ``gpuproc.kernels`` (any install kind),
    else the checkout's top-level ``kernels/`` (running from a source tree)."""
    candidates = []
    try:
        candidates.append(Path(str(resources.files("gpuproc.kernels"))))
    except ModuleNotFoundError:
        pass
    candidates.append(Path(__file__).resolve().parent.parent / "kernels")
    for path in candidates:
        if (path / "fit.cu").is_file():
            return path
    raise BackendError(f"the CUDA kernel sources (fit.cu) are in none of {[str(p) for p in candidates]}; "
                       "reinstall gpuproc")


def nvrtc_options(kdir: Path) -> tuple[str, ...]:
    """The NVRTC options :func:`cuda_kernel` gives CuPy (CuPy adds ``--gpu-architecture``)."""
    return ("-std=c++17", f"-I{kdir}")


@functools.lru_cache(maxsize=None)
def cuda_kernel(source: str, name_expression: str) -> Any:
    """Compile (once per process; CuPy also caches on disk) one kernel from a source in kernels/
    (or at an absolute path: a user model's generated source, which includes kernels/ files).
    A source that does not compile raises gpuproc.fit.compile_cpu.CompileError (NVRTC's first
    error as file:line, then its log)."""
    cupy = _cupy_status()[0]
    if cupy is None:
        raise BackendError(_cupy_status()[1])
    kdir = kernel_dir()
    try:  # CuPy compiles in RawModule() or, in newer versions, in get_function()
        module = cupy.RawModule(
            code=(kdir / source).read_text(),
            options=nvrtc_options(kdir),
            name_expressions=(name_expression,),
        )
        return module.get_function(name_expression)
    except cupy.cuda.compiler.CompileException as exc:
        from gpuproc.fit.compile_cpu import CompileError  # gpuproc.fit imports this module

        raise CompileError(f"{Path(source).name} ({name_expression}) with NVRTC", str(exc)) from None
