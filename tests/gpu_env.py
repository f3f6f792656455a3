"""Whether the ``gpu`` tests can run here: skipped only where CuPy is not installed or sees no
CUDA device; a CuPy that is installed but broken (an import error other than CuPy itself
missing, a CUDA driver or runtime error) fails them, so a broken GPU node never passes as a
machine without a GPU."""

from __future__ import annotations

import functools
import importlib

import pytest

CUDA_ERROR_NO_DEVICE = 100  # cudaErrorNoDevice


def classify() -> tuple[str, str] | None:
    """None when CuPy sees a device, else ("skip" | "fail", reason)."""
    try:
        cupy = importlib.import_module("cupy")
    except ModuleNotFoundError as exc:
        if exc.name == "cupy":
            return "skip", "needs a CUDA GPU with CuPy (gpuproc[gpu]); CuPy is not installed"
        return "fail", f"CuPy is installed but does not import: {exc}"
    except Exception as exc:
        return "fail", f"CuPy is installed but does not import: {type(exc).__name__}: {exc}"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        if getattr(exc, "status", None) == CUDA_ERROR_NO_DEVICE:
            return "skip", f"CuPy sees no CUDA device ({exc})"
        return "fail", f"CuPy is installed but CUDA fails: {type(exc).__name__}: {exc}"
    return ("skip", "CuPy sees no CUDA device") if n < 1 else None


@functools.cache
def _state() -> tuple[str, str] | None:
    return classify()


def require_gpu() -> None:
    """Skip or fail the calling test as :func:`classify` says."""
    state = _state()
    if state is not None:
        (pytest.skip if state[0] == "skip" else pytest.fail)(state[1])
