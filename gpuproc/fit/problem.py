"""Turn user inputs into the flat, float32, kernel-ready arrays of one batch of fits.

Every array here lives on one device (NumPy or CuPy, the ``xp`` of the batch). Arrays shared by
all fits get a fit stride of 0, so a common coordinate axis, mask or bound set costs no memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from gpuproc.fit.models import Model


@dataclass
class Problem:
    """All fits of one call, normalised (still on the caller's device, not yet float32)."""

    model: Model
    batch_shape: tuple[int, ...]
    data: Any  # (n_fits, n_points)
    x: Any  # (n_dims, n_points) or (n_fits, n_dims, n_points)
    w: Any  # (n_points,) or (n_fits, n_points), 0 where masked
    p0: Any | None  # (n_params,) or (n_fits, n_params), or None for automatic starts
    lo: np.ndarray  # (n_params,) or (n_fits, n_params)
    hi: np.ndarray
    fixed: np.ndarray  # uint32 bit masks: (1,) or (n_fits,)

    @property
    def n_fits(self) -> int:
        return self.data.shape[0]

    @property
    def n_points(self) -> int:
        return self.data.shape[1]


@dataclass
class Batch:
    """A contiguous slice of fits as float32 device arrays, with the strides the kernels take."""

    y: Any
    x: Any
    w: Any
    p0: Any
    lo: Any
    hi: Any
    fixed: Any

    @property
    def n_fits(self) -> int:
        return self.y.shape[0]

    @property
    def n_points(self) -> int:
        return self.y.shape[1]

    def strides(self) -> dict[str, int]:
        """Element strides between consecutive fits (0 = shared) and between coordinate axes."""
        n = self.n_points
        return {
            "x_fit": self.x.shape[-2] * n if self.x.ndim == 3 else 0,
            "x_dim": n,
            "y": n,
            "w": n if self.w.ndim == 2 else 0,
            "bound": self.lo.shape[-1] if self.lo.ndim == 2 else 0,
            "fixed": 1 if self.fixed.shape[0] > 1 else 0,
        }


def _per_fit(a: Any, batch_shape: tuple[int, ...], tail: tuple[int, ...], name: str, xp: ModuleType) -> Any:
    """Accept ``tail`` (shared) or ``batch_shape + tail`` (per fit); return shared or (n_fits, *tail)."""
    a = xp.asarray(a)
    if a.shape == tail:
        return a
    if a.shape == batch_shape + tail:
        return a.reshape((-1,) + tail)
    raise ValueError(
        f"{name}: expected shape {tail} (shared by all fits) or {batch_shape + tail} (one per fit), got {a.shape}"
    )


def _coords(x: Any, model: Model, batch_shape: tuple[int, ...], n_points: int, xp: ModuleType) -> Any:
    nd = model.n_dims
    if nd > 1 and isinstance(x, (tuple, list)):
        if len(x) != nd:
            raise ValueError(f"x: {model.name} takes {nd} coordinate arrays, got {len(x)}")
        parts = [xp.asarray(c) for c in x]
        shapes = {c.shape for c in parts}
        if len(shapes) != 1:
            raise ValueError(f"x: the {nd} coordinate arrays differ in shape: {[c.shape for c in parts]}")
        x = xp.stack(parts, axis=-2)
    x = xp.asarray(x)
    if nd == 1:
        x = x[..., None, :]
    try:
        return _per_fit(x, batch_shape, (nd, n_points), "x", xp)
    except ValueError:
        raise ValueError(
            f"x: {model.name} needs coordinates of shape {'(n_points,)' if nd == 1 else f'({nd}, n_points)'} "
            f"shared by all fits, or one set per fit, with n_points = {n_points} matching data; got "
            f"{tuple(x.shape) if nd > 1 else tuple(x.shape[:-2]) + (x.shape[-1],)}"
        ) from None


def build_problem(
    model: Model,
    data: Any,
    x: Any,
    xp: ModuleType,
    p0: Any = None,
    weights: Any = None,
    mask: Any = None,
    bounds: Any = None,
    fixed: Any = None,
) -> Problem:
    """Validate and normalise the arguments of :func:`gpuproc.fit`. Errors name the argument."""
    data = xp.asarray(data)
    if data.ndim < 1 or data.shape[-1] < 1:
        raise ValueError(f"data: expected shape (..., n_points) with n_points >= 1, got {data.shape}")
    if data.dtype.kind not in "fiu":
        raise TypeError(f"data: expected a real numeric array, got dtype {data.dtype}")
    batch_shape = tuple(data.shape[:-1])
    n_points = data.shape[-1]
    flat = data.reshape(-1, n_points)
    coords = _coords(x, model, batch_shape, n_points, xp)

    w = xp.ones(n_points, dtype=np.float32)
    if weights is not None:
        w = _per_fit(weights, batch_shape, (n_points,), "weights", xp).astype(np.float32)
        if bool(xp.any(w < 0)):
            raise ValueError("weights: must be >= 0 (0 excludes a point)")
    if mask is not None:
        m = _per_fit(mask, batch_shape, (n_points,), "mask", xp)
        if m.dtype != bool:
            raise TypeError(f"mask: expected a boolean array (True = point excluded), got dtype {m.dtype}")
        w = xp.where(m, 0.0, w).astype(np.float32)

    npar = model.n_params
    if p0 is not None:
        p0 = _per_fit(p0, batch_shape, (npar,), f"p0 ({', '.join(model.param_names)})", xp)

    if bounds is None:
        lo, hi = model.default_bounds(coords, xp)
    else:
        if len(bounds) != 2:
            raise ValueError("bounds: expected a pair (lower, upper)")
        lo, hi = (
            _per_fit(np.broadcast_to(np.asarray(b, dtype=np.float64), (npar,)) if np.ndim(b) == 0 else b,
                     batch_shape, (npar,), name, np)
            for b, name in zip(bounds, ("bounds[0] (lower)", "bounds[1] (upper)"))
        )
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if lo.shape != hi.shape:
            lo, hi = np.broadcast_arrays(lo, hi)
        if np.any(lo > hi):
            bad = [model.param_names[i] for i in np.nonzero(np.any(lo > hi, axis=0) if lo.ndim == 2 else lo > hi)[0]]
            raise ValueError(f"bounds: lower > upper for {bad}")

    bits = np.zeros(1, dtype=np.uint32)
    if fixed is not None:
        f = np.asarray(_per_fit(fixed, batch_shape, (npar,), "fixed", np), dtype=bool)
        bits = (f.reshape(-1, npar) * (np.uint32(1) << np.arange(npar, dtype=np.uint32))).sum(axis=-1).astype(np.uint32)
    bits = bits | np.uint32(sum(1 << i for i in model.held))
    return Problem(model, batch_shape, flat, coords, w, p0, lo, hi, bits)


def make_batch(pr: Problem, start: int, stop: int, xp: ModuleType) -> Batch:
    """Fits ``start:stop`` of a problem as contiguous float32 arrays on ``xp``'s device."""

    def dev(a: Any, per_fit: bool, dtype: Any = np.float32) -> Any:
        a = a[start:stop] if per_fit else a
        return xp.ascontiguousarray(xp.asarray(a, dtype=dtype))

    y = dev(pr.data, True)
    x = dev(pr.x, pr.x.ndim == 3)
    w = dev(pr.w, pr.w.ndim == 2)
    if pr.p0 is None:
        p0 = xp.ascontiguousarray(pr.model.guess(x, y, w, xp), dtype=np.float32)
    else:
        p0 = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(pr.p0[start:stop] if pr.p0.ndim == 2 else pr.p0,
                                                                dtype=np.float32), (stop - start, pr.model.n_params)))
    if pr.model.held:
        p0 = p0.copy()  # may be a view of the caller's p0
        for i, value in pr.model.held.items():
            p0[:, i] = value
    lo = dev(pr.lo, pr.lo.ndim == 2)
    hi = dev(pr.hi, pr.hi.ndim == 2)
    fixed = dev(pr.fixed, pr.fixed.shape[0] > 1, np.uint32)
    return Batch(y, x, w, p0, lo, hi, fixed)
