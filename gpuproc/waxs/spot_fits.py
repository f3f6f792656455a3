"""All the spot fits of a block in as few engine calls as possible.

Every reflection's window is fitted at every frame of a block. Instead of one
:func:`gpuproc.fit.fit` call per reflection, :func:`fit_windows` stacks the windows that have the
same model and the same number of points and fits them in one call (per-fit coordinates, weights,
starting values and bounds), which gives the engine's threads (or the GPU) larger batches and
pays its per-call set-up once per group.

The results are those of fitting each window alone, bit for bit: every fit is independent in
the engine, and each window's starting values are made here exactly as a lone call makes them
(the model's guess from that window's own coordinates, the masked weights in float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gpuproc.backend import get_xp
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
                estimator: str = "lsq") -> list[FitResult]:
    """Fit every window's problems, one engine call per (model, number of points) group.

    Returns
    -------
    list of FitResult
        Host results (shape (n_frames,)) in the order of ``problems``; absolute errors (least
        squares: the weights are 1 / variance; ``estimator="poisson"``: multiplicities).
    """
    xp = get_xp(device)
    groups: dict[tuple[str, int], list[int]] = {}
    for i, p in enumerate(problems):
        groups.setdefault((p.model, p.y.shape[1]), []).append(i)
    out: list[FitResult | None] = [None] * len(problems)
    for (name, _), members in groups.items():
        model = get_model(name)
        parts = [_prepared(problems[i], model, xp) for i in members]
        y, w, x, p0 = (xp.stack([part[k] for part in parts]) for k in range(4))
        n = y.shape[1]
        lower = np.stack([np.broadcast_to(problems[i].lower, (n, model.n_params)) for i in members])
        upper = np.stack([np.broadcast_to(problems[i].upper, (n, model.n_params)) for i in members])
        res = fit(model, y, x, p0=p0, weights=w, bounds=(lower, upper), estimator=estimator,
                  absolute_sigma=True, device=device,
                  max_iter=max_iter).get()
        for j, i in enumerate(members):
            out[i] = FitResult(model, params=res.params[j], errors=res.errors[j], chi2=res.chi2[j],
                               n_iter=res.n_iter[j], status=res.status[j], estimator=res.estimator, device=res.device)
    return out  # type: ignore[return-value]


def _prepared(p: WindowProblem, model: Any, xp: Any) -> tuple[Any, Any, Any, Any]:
    """Data, masked weights, per-frame coordinates and starting values of one window, as the
    engine prepares a lone call (float32; the guess from the shared coordinates)."""
    y = xp.ascontiguousarray(xp.asarray(p.y, dtype=np.float32))
    w = xp.where(~xp.asarray(p.valid), 0.0, xp.asarray(p.weight, dtype=np.float32)).astype(np.float32)
    x = xp.ascontiguousarray(xp.asarray(p.x, dtype=np.float32))
    p0 = xp.ascontiguousarray(model.guess(x, y, w, xp), dtype=np.float32)
    return y, w, xp.broadcast_to(x, (y.shape[0], *x.shape)), p0
