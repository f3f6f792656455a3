"""``gpuproc.fit``: many independent small nonlinear fits at once, on a GPU or the CPU.

The same Levenberg-Marquardt code (kernels/lm.cuh) runs as a CUDA kernel (one warp per fit) and
as a compiled CPU library (a thread per batch of fits); this module validates the inputs, makes
starting values, cuts the fits into batches of bounded memory and collects the results.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpuproc.backend import get_xp, resolve_device, to_numpy
from gpuproc.fit import cpu, gpu
from gpuproc.fit.models import Model, get_model
from gpuproc.fit.options import ESTIMATORS, FitOptions
from gpuproc.fit.problem import Problem, build_problem, make_batch
from gpuproc.fit.status import Status

CPU_BATCH = 1024  # fits per CPU task: small enough to spread over threads, large for NumPy guesses


@dataclass
class FitResult:
    """Per-fit results, arrays shaped like the data's leading (batch) dimensions.

    Arrays live on the device that fitted them (NumPy or CuPy); :meth:`get` copies to NumPy.
    ``errors`` are standard errors from the covariance (0 for fixed parameters, NaN when singular);
    ``covariance`` (only when ``fit(..., covariance=True)``, else None) is the whole matrix,
    ``(*batch, n_params, n_params)`` float32, scaled as the errors (its diagonal is ``errors**2``),
    0 in the rows and columns of fixed parameters and NaN in the others when singular;
    ``chi2`` is the reduced objective (chi-square, or Poisson deviance, per degree of freedom).
    """

    model: Model
    params: Any  # (*batch, n_params) float32
    errors: Any  # (*batch, n_params) float32
    chi2: Any  # (*batch,) float32
    n_iter: Any  # (*batch,) int32
    status: Any  # (*batch,) uint8, values of Status
    estimator: str = "lsq"
    device: str = "cpu"
    covariance: Any = None  # (*batch, n_params, n_params) float32, or None when not asked for
    param_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.param_names = self.model.param_names

    @property
    def ok(self) -> Any:
        """True where the fit converged."""
        return self.status == Status.CONVERGED

    def __getitem__(self, name: str) -> Any:
        """One parameter by name, e.g. ``result["center1"]``."""
        return self.params[..., self.param_names.index(name)]

    def error(self, name: str) -> Any:
        """Standard error of one parameter by name."""
        return self.errors[..., self.param_names.index(name)]

    def get(self) -> FitResult:
        """A copy with every array on the host (NumPy)."""
        arrays = {k: to_numpy(getattr(self, k)) for k in ("params", "errors", "chi2", "n_iter", "status")}
        cov = None if self.covariance is None else to_numpy(self.covariance)
        return FitResult(self.model, **arrays, estimator=self.estimator, device=self.device, covariance=cov)

    def status_counts(self) -> dict[str, int]:
        """Number of fits per status name."""
        s = to_numpy(self.status).ravel()
        return {st.name: int((s == st).sum()) for st in Status}


def fit(
    model: str | Model,
    data: Any,
    x: Any,
    *,
    p0: Any = None,
    weights: Any = None,
    mask: Any = None,
    bounds: Any = None,
    fixed: Any = None,
    estimator: str = "lsq",
    absolute_sigma: bool = False,
    max_iter: int = 100,
    ftol: float = 1e-7,
    xtol: float = 1e-7,
    gtol: float = 1e-2,
    device: str = "auto",
    batch_size: int | None = None,
    n_threads: int | None = None,
    covariance: bool = False,
    **model_options: Any,
) -> FitResult:
    """Fit a model to every row of ``data`` independently.

    Parameters
    ----------
    model : str or Model
        ``"gauss1d"`` (options ``n_peaks=1..4``, ``background="none" | "constant" | "linear"``),
        ``"gauss2d_polar"``, or a model instance (e.g. a user model,
        :class:`gpuproc.fit.user_model.UserModel`: a C++ value function compiled at first use).
    data : array, shape (..., n_points)
        One problem per row; any leading shape (e.g. (ny, nx) of a map). NumPy or CuPy; a CuPy
        array already on the GPU is used without a copy when float32 and contiguous.
    x : array or tuple of arrays
        Coordinates, shared by all fits (``(n_points,)`` for gauss1d, ``(q, phi)`` or
        ``(2, n_points)`` for gauss2d_polar) or one set per fit (leading shape of ``data``).
    p0 : array, shape (n_params,) or (..., n_params), optional
        Starting values; by default each model's automatic guess from the data.
    weights : array, shape (n_points,) or (..., n_points), optional
        Least-squares weights (1/sigma^2); 0 excludes a point. Poisson: multiplicity of a point.
    mask : bool array, shape (n_points,) or (..., n_points), optional
        True excludes a point (NumPy masked-array convention). NaN/inf points are always excluded.
    bounds : (lower, upper), optional
        Scalars or arrays of shape (n_params,) or (..., n_params); defaults: the model's.
    fixed : bool array, shape (n_params,) or (..., n_params), optional
        True holds a parameter at its starting value.
    estimator : {"lsq", "poisson"}
        Weighted least squares, or Poisson maximum likelihood (data are photon counts).
    absolute_sigma : bool
        Least squares: take ``weights`` as 1/sigma^2 in absolute units; if False (default, as in
        scipy's curve_fit) the covariance is scaled by the reduced chi-square. Poisson errors
        are always absolute.
    max_iter, ftol, xtol, gtol : stopping rules, see :class:`gpuproc.fit.options.FitOptions`.
    device : {"auto", "cpu", "gpu"}
        Where to fit; "gpu" raises :class:`gpuproc.backend.BackendError` without a usable GPU.
    batch_size : int, optional
        Fits per batch (bounds memory). Default: 1024 on CPU, from free device memory on GPU.
    n_threads : int, optional
        CPU threads (default: the CPUs this process may use).
    covariance : bool
        Also return every fit's parameter covariance (``FitResult.covariance``, n_params^2 floats
        per fit, scaled as the errors); by default only its diagonal, as ``errors``.

    Returns
    -------
    FitResult
    """
    m = get_model(model, **model_options)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {tuple(ESTIMATORS)}, got {estimator!r}")
    opts = FitOptions(max_iter=max_iter, ftol=ftol, xtol=xtol, gtol=gtol)
    dev = resolve_device(device)
    xp = get_xp(dev)
    pr = build_problem(m, data, x, xp, p0=p0, weights=weights, mask=mask, bounds=bounds, fixed=fixed)
    scale = estimator == "lsq" and not absolute_sigma
    out = {
        "params": xp.empty((pr.n_fits, m.n_params), dtype=np.float32),
        "errors": xp.empty((pr.n_fits, m.n_params), dtype=np.float32),
        "chi2": xp.empty(pr.n_fits, dtype=np.float32),
        "n_iter": xp.empty(pr.n_fits, dtype=np.int32),
        "status": xp.empty(pr.n_fits, dtype=np.uint8),
    }
    if covariance:
        out["covariance"] = xp.empty((pr.n_fits, m.n_params, m.n_params), dtype=np.float32)
    if dev == "cpu":
        _run_cpu(pr, estimator, opts, scale, out, batch_size or CPU_BATCH, n_threads)
    else:
        gpu.run_problem(pr, estimator, opts, scale, out, batch_size, xp)
    shape = pr.batch_shape
    return FitResult(
        m,
        params=out["params"].reshape(shape + (m.n_params,)),
        errors=out["errors"].reshape(shape + (m.n_params,)),
        chi2=out["chi2"].reshape(shape),
        n_iter=out["n_iter"].reshape(shape),
        status=out["status"].reshape(shape),
        estimator=estimator,
        device=dev,
        covariance=out["covariance"].reshape(shape + (m.n_params, m.n_params)) if covariance else None,
    )


def _ranges(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, n)) for i in range(0, n, max(size, 1))]


def _rows(out: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    return {k: v[start:stop] for k, v in out.items()}


def _run_cpu(pr: Problem, estimator: str, opts: FitOptions, scale: bool, out: dict[str, Any], size: int,
             n_threads: int | None) -> None:
    def task(r: tuple[int, int]) -> None:
        b = make_batch(pr, r[0], r[1], np)
        cpu.run_batch(pr.model.kernel_id, estimator, b, opts, scale, _rows(out, *r), pr.model.cpu_library())

    threads = n_threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    threads = max(1, threads or 1)
    ranges = _ranges(pr.n_fits, min(size, -(-pr.n_fits // threads)))  # every thread gets work
    threads = min(threads, len(ranges))
    if threads == 1:
        for r in ranges:
            task(r)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(task, ranges))  # re-raises the first error of any batch
