"""CPU launcher: the compiled kernels/fit_cpu.cpp (the CUDA path's headers built for the host),
run over a thread pool. ctypes releases the GIL, so threads fit batches in parallel."""

from __future__ import annotations

import ctypes
import functools
import importlib.util

import numpy as np

from gpuproc.fit.options import ESTIMATORS, FitOptions
from gpuproc.fit.problem import Batch

_c_ll, _c_i, _c_f, _c_p = ctypes.c_longlong, ctypes.c_int, ctypes.c_float, ctypes.c_void_p


@functools.lru_cache(maxsize=None)
def library(path: str | None = None) -> ctypes.CDLL:
    """The compiled CPU kernels: gpuproc._fitcpu (built by ``pip install``), or the library at
    ``path`` (a user model's, gpuproc.fit.user_model), which has the same entry points."""
    spec = importlib.util.find_spec("gpuproc._fitcpu") if path is None else None
    if path is None and (spec is None or spec.origin is None):
        raise ImportError(
            "gpuproc._fitcpu is missing: the CPU kernels are built at install time; reinstall with "
            "`pip install -e .` (needs a C++17 compiler)"
        )
    lib = ctypes.CDLL(path or spec.origin)
    lib.gp_fit_cpu.restype = _c_i
    lib.gp_fit_cpu.argtypes = [
        _c_i, _c_i, _c_ll, _c_ll, _c_i,  # model, estimator, first, count, n_points
        _c_p, _c_ll, _c_ll,  # x, x_fit_stride, x_dim_stride
        _c_p, _c_ll, _c_p, _c_ll,  # y, y_stride, w, w_stride
        _c_p, _c_p, _c_p, _c_ll, _c_p, _c_ll,  # p0, lo, hi, bound_stride, fixed, fixed_stride
        _c_i, _c_f, _c_f, _c_f, _c_f, _c_i,  # options
        _c_p, _c_p, _c_p, _c_p, _c_p, _c_p,  # outputs: params, errors, covariance (or NULL), chi2, n_iter, status
    ]
    lib.gp_model_nparams.restype = _c_i
    lib.gp_model_nparams.argtypes = [_c_i]
    return lib


def run_batch(model_id: int, estimator: str, b: Batch, o: FitOptions, scale_errors: bool,
              out: dict[str, np.ndarray], library_path: str | None = None) -> None:
    """Fit every problem of a NumPy batch, writing into the ``out`` arrays (rows of this batch; the
    covariance only when ``out`` holds a "covariance" array), with the kernels of ``library_path``
    (default: the built-in library)."""
    s = b.strides()
    ptr = lambda a: a.ctypes.data  # noqa: E731
    rc = library(library_path).gp_fit_cpu(
        model_id, ESTIMATORS[estimator], 0, b.n_fits, b.n_points,
        ptr(b.x), s["x_fit"], s["x_dim"], ptr(b.y), s["y"], ptr(b.w), s["w"],
        ptr(b.p0), ptr(b.lo), ptr(b.hi), s["bound"], ptr(b.fixed), s["fixed"],
        o.max_iter, o.ftol, o.xtol, o.gtol, o.lambda0, int(scale_errors),
        ptr(out["params"]), ptr(out["errors"]), None if out.get("covariance") is None else ptr(out["covariance"]),
        ptr(out["chi2"]), ptr(out["n_iter"]), ptr(out["status"]),
    )  # fmt: skip
    if rc != 0:
        raise ValueError(f"CPU kernels do not know model id {model_id} with estimator {estimator!r}")
