"""Settings of the Levenberg-Marquardt iteration, shared by both devices."""

from __future__ import annotations

from dataclasses import dataclass

ESTIMATORS = {"lsq": 0, "poisson": 1}
ESTIMATOR_TYPES = {"lsq": "LeastSquares", "poisson": "Poisson"}


@dataclass(frozen=True)
class FitOptions:
    """Stopping rules and damping (mirrors ``FitOptions`` in kernels/lm.cuh).

    A fit has converged when, after an accepted step, the largest |cosine| between the weighted
    residual and a Jacobian column is below ``gtol`` (the gradient vanishes: the remaining step is
    about gtol * sqrt(n_points) standard errors, 0.003-0.005 for 1000-2400 points at the default),
    or the objective fell by less than ``ftol`` (relative) with a step smaller than ``xtol``
    (relative), or no step with any damping lowers the objective at working precision.
    float32 sums put a floor near gtol = 1e-5 below which only iterations are added.
    """

    max_iter: int = 100
    ftol: float = 1e-7
    xtol: float = 1e-7
    gtol: float = 1e-4
    lambda0: float = 1e-3

    def __post_init__(self) -> None:
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        for name in ("ftol", "xtol", "gtol", "lambda0"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
