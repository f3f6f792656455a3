"""All the spot fits of a block in as few engine calls as possible.

Every reflection's window is fitted at every frame of a block. Instead of one
:func:`gpuproc.fit.fit` call per reflection, :func:`fit_windows` stacks the windows that have the
same model and the same number of points and fits them in one call (per-fit coordinates, weights,
starting values and bounds), which gives the engine's threads (or the GPU) larger batches and
pays its per-call set-up once per group.

The results are those of fitting each window alone, bit for bit: every fit is independent in
the engine, and each window's starting values are made here exactly as a lone call makes them
(the model's guess from that window's own coordinates, the masked weights in float32).

Preparing a group (the guesses, on one core: about 40 % of a WAXS block's fitting time on the
CPU) overlaps with fitting the group before it: on the CPU the engine runs in a background
thread, on the GPU its launches are asynchronous; the caller takes each group's results while
the later groups fit.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpuproc.backend import get_xp, resolve_device
from gpuproc.fit import FitResult, fit
from gpuproc.fit.models import get_model


@dataclass
class WindowProblem:
    """The fits of one window over the frames of a block (arrays on the fitting device)."""

    model: str  #: model name (gpuproc.fit.models)
    y: Any  #: (n_frames, n_points) intensities
    weight: Any  #: (n_frames, n_points) least-squares weights (1 / variance), or Poisson multiplicities
    valid: Any  #: (n_frames, n_points) bool: the bin counts in that frame's fit
    x: Any  #: (2, n_points) coordinates (q, azimuth) shared by the frames
    lower: np.ndarray  #: (n_params,) bounds
    upper: np.ndarray


def fit_windows(problems: list[WindowProblem], *, device: str, max_iter: int,
                estimator: str = "lsq") -> Iterator[tuple[int, FitResult]]:
    """Fit every window's problems, one engine call per (model, number of points) group.

    Yields
    ------
    (int, FitResult)
        The index of a problem in ``problems`` and its host results (shape (n_frames,)), group
        after group; absolute errors (least squares: the weights are 1 / variance;
        ``estimator="poisson"``: multiplicities).
    """
    dev = resolve_device(device)
    xp = get_xp(dev)
    groups: dict[tuple[str, int], list[int]] = {}
    for i, p in enumerate(problems):
        groups.setdefault((p.model, p.y.shape[1]), []).append(i)
    engine = ThreadPoolExecutor(1, thread_name_prefix="gpuproc-fit") if dev == "cpu" else None
    try:
        launched = []
        for (name, _), members in groups.items():
            call = functools.partial(fit, **_stacked([problems[i] for i in members], get_model(name), xp),
                                     estimator=estimator, absolute_sigma=True, device=dev, max_iter=max_iter)
            launched.append((members, engine.submit(call) if engine else _done(call())))
        for members, launch in launched:
            res = launch.result().get()
            for j, i in enumerate(members):
                yield i, FitResult(res.model, params=res.params[j], errors=res.errors[j], chi2=res.chi2[j],
                                   n_iter=res.n_iter[j], status=res.status[j], estimator=res.estimator,
                                   device=res.device)
    finally:
        if engine is not None:
            engine.shutdown(wait=True, cancel_futures=True)


def _done(result: Any) -> Future:
    """A future already holding ``result`` (a launch that is asynchronous by itself)."""
    future: Future = Future()
    future.set_result(result)
    return future


def _stacked(members: list[WindowProblem], model: Any, xp: Any) -> dict[str, Any]:
    """The engine's arguments for one group of windows with the same model and number of points:
    (window, frame) fits with per-fit coordinates, weights, starting values and bounds."""
    parts = [_prepared(p, model, xp) for p in members]
    y, w, x, p0 = (xp.stack([part[k] for part in parts]) for k in range(4))
    n = y.shape[1]
    lower = np.stack([np.broadcast_to(p.lower, (n, model.n_params)) for p in members])
    upper = np.stack([np.broadcast_to(p.upper, (n, model.n_params)) for p in members])
    return {"model": model, "data": y, "x": x, "p0": p0, "weights": w, "bounds": (lower, upper)}


def _prepared(p: WindowProblem, model: Any, xp: Any) -> tuple[Any, Any, Any, Any]:
    """Data, masked weights, per-frame coordinates and starting values of one window, as the
    engine prepares a lone call (float32; the guess from the shared coordinates)."""
    y = xp.ascontiguousarray(xp.asarray(p.y, dtype=np.float32))
    w = xp.where(~xp.asarray(p.valid), 0.0, xp.asarray(p.weight, dtype=np.float32)).astype(np.float32)
    x = xp.ascontiguousarray(xp.asarray(p.x, dtype=np.float32))
    p0 = xp.ascontiguousarray(model.guess(x, y, w, xp), dtype=np.float32)
    return y, w, xp.broadcast_to(x, (y.shape[0], *x.shape)), p0
