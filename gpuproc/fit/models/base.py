"""What a model is: its function and Jacobian (array API, for NumPy or CuPy), its initial-guess
rule and bounds, and the name of its compiled device function in kernels/models.cuh.

Coordinates ``x`` have shape ``(n_dims, n_points)`` (shared by all fits) or
``(n_fits, n_dims, n_points)``; data ``y`` and weights ``w`` are ``(n_fits, n_points)``
(weights may also be ``(n_points,)``); parameters are ``(n_fits, n_params)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any

import numpy as np


class Model(ABC):
    """Base class of the fit models."""

    #: name used in configs and results
    name: str
    #: parameter names, in kernel order
    param_names: tuple[str, ...]
    #: number of coordinate axes per point
    n_dims: int
    #: index of the model in GP_MODELS (kernels/models.cuh)
    kernel_id: int
    #: C++ type of the model in kernels/models.cuh
    kernel_type: str
    #: CUDA source that defines the model's kernels (a file of kernels/, or an absolute path)
    kernel_source: str = "fit.cu"

    def cpu_library(self) -> str | None:
        """Path of the CPU library with this model's kernels; None: gpuproc's own (built-ins)."""
        return None

    #: parameters the model itself holds at a value, index -> value (e.g. a Gaussian peak's
    #: Lorentzian fraction in peaks1d); the fit holds them whatever ``p0`` and ``fixed`` say
    held: dict[int, float] = {}

    @classmethod
    def variants(cls) -> list[Model]:
        """One instance per compiled kernel of this model class (kernels/models.cuh)."""
        return [cls()]

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @abstractmethod
    def evaluate(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        """Model values, shape ``(n_fits, n_points)``."""

    @abstractmethod
    def jacobian(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        """Derivatives df/dp, shape ``(n_fits, n_points, n_params)``."""

    @abstractmethod
    def guess(self, x: Any, y: Any, w: Any, xp: ModuleType = np) -> Any:
        """Starting values from the data, shape ``(n_fits, n_params)``, float32."""

    @abstractmethod
    def default_bounds(self, x: Any, xp: ModuleType = np) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds shared by all fits, each of shape ``(n_params,)``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.param_names)})"


def axis(x: Any, d: int, xp: ModuleType) -> Any:
    """Coordinate ``d`` as ``(n_points,)`` or ``(n_fits, n_points)``."""
    return x[d] if x.ndim == 2 else x[:, d, :]


def valid_points(x: Any, y: Any, w: Any, xp: ModuleType) -> Any:
    """Points that count in a fit: positive weight, finite value and coordinates."""
    ok = (w > 0) & xp.isfinite(y)
    finite_x = xp.all(xp.isfinite(x), axis=-2)
    return ok & finite_x


def low_quantile(y: Any, valid: Any, q: float, xp: ModuleType) -> Any:
    """Per-fit ``q`` quantile of the valid values (a robust background level), shape ``(n_fits,)``."""
    s = xp.sort(xp.where(valid, y, xp.inf), axis=-1)
    n = valid.sum(axis=-1)
    idx = xp.clip(xp.floor(q * (n - 1)).astype(np.int64), 0, y.shape[-1] - 1)
    v = xp.take_along_axis(s, idx[:, None], axis=-1)[:, 0]
    return xp.where(n > 0, v, 0.0)


def mean_spacing(xx: Any, xp: ModuleType) -> float:
    """Mean spacing of a coordinate over its finite values: (max - min) / n_points."""
    finite = xx[xp.isfinite(xx)]
    if finite.size == 0:
        return 0.0
    return float((finite.max() - finite.min()) / max(xx.shape[-1], 2))


def _half_max_second_moment(n_dims: int) -> float:
    """E[d^2] per axis of a unit Gaussian weighted by its excess over half maximum.

    Starting widths use sum(u d^2) / sum(u) with u = (f - bkg - A/2)_+, which is robust to the tails
    and the noise; this is the factor that turns that moment into sigma^2.
    """
    r = np.linspace(0.0, np.sqrt(2.0 * np.log(2.0)), 20001)
    u = np.exp(-0.5 * r**2) - 0.5
    jac = np.ones_like(r) if n_dims == 1 else r  # line element on the real line / in the plane
    return float(np.trapezoid(r**2 * u * jac, r) / np.trapezoid(u * jac, r) / n_dims)


HALF_MAX_MOMENT_1D = _half_max_second_moment(1)
HALF_MAX_MOMENT_2D = _half_max_second_moment(2)
