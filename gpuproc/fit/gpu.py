"""GPU launcher: the CUDA kernel of kernels/fit.cu through CuPy, one warp per fit, the whole LM
loop on the device.

Everything but the kernel call itself (batch sizing, the kernel's name expression, launch shape
and argument list) takes any array namespace, so the tests run it with NumPy arrays against an
emulated kernel (tests/emu/).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from gpuproc.backend import cuda_kernel, free_device_memory
from gpuproc.fit.models import Model
from gpuproc.fit.options import ESTIMATOR_TYPES, FitOptions
from gpuproc.fit.problem import Batch, Problem, make_batch

THREADS_PER_BLOCK = 64  # 2 fits per block: kernels/fit.cu GP_FIT_THREADS (its shared memory per block)
MIN_BATCH = 1024  # fits per batch at least, whatever the free memory says
MEMORY_FRACTION = 0.4  # of the free device memory, for one batch's inputs and outputs


def kernel_name(model: Model, estimator: str) -> str:
    """CuPy name expression of the kernel instance for a model and estimator."""
    return f"gp_fit_kernel<{model.kernel_type}, {ESTIMATOR_TYPES[estimator]}>"


def launch_shape(n_fits: int) -> tuple[tuple[int], tuple[int]]:
    """Grid and block of a launch: one warp (32 threads) per fit."""
    return ((n_fits * 32 + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,), (THREADS_PER_BLOCK,)


def kernel_args(b: Batch, o: FitOptions, scale_errors: bool, out: dict[str, Any]) -> tuple:
    """The 27 arguments of ``gp_fit_kernel``, in order, with the kernel's scalar types; the
    covariance pointer is null (None) unless ``out`` holds a "covariance" array."""
    s = b.strides()
    i64, i32, f32 = np.int64, np.int32, np.float32
    return (
        i64(b.n_fits), i32(b.n_points), b.x, i64(s["x_fit"]), i64(s["x_dim"]), b.y, i64(s["y"]), b.w, i64(s["w"]),
        b.p0, b.lo, b.hi, i64(s["bound"]), b.fixed, i64(s["fixed"]),
        i32(o.max_iter), f32(o.ftol), f32(o.xtol), f32(o.gtol), f32(o.lambda0), i32(scale_errors),
        out["params"], out["errors"], out.get("covariance"), out["chi2"], out["n_iter"], out["status"],
    )  # fmt: skip


def batch_size(pr: Problem, free_bytes: int) -> int:
    """Fits per batch: a fraction of ``free_bytes`` (device memory) over one fit's footprint."""
    per_fit = 4 * pr.n_points * (3 + pr.model.n_dims) + 16 * pr.model.n_params + 16
    return max(MIN_BATCH, int(MEMORY_FRACTION * free_bytes / per_fit))


def run_batch(model: Model, estimator: str, b: Batch, o: FitOptions, scale_errors: bool,
              out: dict[str, Any]) -> None:
    """Fit every problem of a device batch, writing into the ``out`` arrays (rows of this batch)."""
    kernel = cuda_kernel(model.kernel_source, kernel_name(model, estimator))
    grid, block = launch_shape(b.n_fits)
    kernel(grid, block, kernel_args(b, o, scale_errors, out))


def run_problem(pr: Problem, estimator: str, o: FitOptions, scale_errors: bool, out: dict[str, Any],
                size: int | None, xp: ModuleType) -> None:
    """Fit every problem in batches of ``size`` fits (default: from the free device memory)."""
    size = size or batch_size(pr, free_device_memory())
    for start in range(0, pr.n_fits, size):
        stop = min(start + size, pr.n_fits)
        b = make_batch(pr, start, stop, xp)
        run_batch(pr.model, estimator, b, o, scale_errors, {k: v[start:stop] for k, v in out.items()})
