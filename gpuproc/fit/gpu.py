"""GPU launcher: the CUDA kernel of kernels/fit.cu through CuPy, one warp per fit, the whole LM
loop on the device."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuproc.backend import cuda_kernel
from gpuproc.fit.models import Model
from gpuproc.fit.options import ESTIMATOR_TYPES, FitOptions
from gpuproc.fit.problem import Batch

THREADS_PER_BLOCK = 128  # 4 fits per block


def run_batch(model: Model, estimator: str, b: Batch, o: FitOptions, scale_errors: bool,
              out: dict[str, Any]) -> None:
    """Fit every problem of a CuPy batch, writing into the ``out`` arrays (rows of this batch)."""
    kernel = cuda_kernel("fit.cu", f"gp_fit_kernel<{model.kernel_type}, {ESTIMATOR_TYPES[estimator]}>")
    s = b.strides()
    n = b.n_fits
    grid = (n * 32 + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    i64, i32, f32 = np.int64, np.int32, np.float32
    kernel(
        (grid,), (THREADS_PER_BLOCK,),
        (i64(n), i32(b.n_points), b.x, i64(s["x_fit"]), i64(s["x_dim"]), b.y, i64(s["y"]), b.w, i64(s["w"]),
         b.p0, b.lo, b.hi, i64(s["bound"]), b.fixed, i64(s["fixed"]),
         i32(o.max_iter), f32(o.ftol), f32(o.xtol), f32(o.gtol), f32(o.lambda0), i32(scale_errors),
         out["params"], out["errors"], out["chi2"], out["n_iter"], out["status"]),
    )  # fmt: skip
