"""Settings of the Levenberg-Marquardt iteration, shared by both devices."""

from __future__ import annotations

from dataclasses import dataclass

ESTIMATORS = {"lsq": 0, "poisson": 1}
ESTIMATOR_TYPES = {"lsq": "LeastSquares", "poisson": "Poisson"}


@dataclass(frozen=True)
class FitOptions:
    """Stopping rules and damping (mirrors ``FitOptions`` in kernels/lm.cuh).

    A fit has converged when, after an accepted step, the remaining Gauss-Newton step is shorter
    than ``gtol`` standard errors (Mahalanobis length, so correlated parameters count properly),
    or the objective fell by less than ``ftol`` (relative) with a step smaller than ``xtol``
    (relative), or no step with any damping lowers the objective at working precision.
    Parameters on a bound whose gradient points outward are held for the step (active set).
    """

    max_iter: int = 100
    ftol: float = 1e-7
    xtol: float = 1e-7
    gtol: float = 1e-2
    lambda0: float = 1e-3

    def __post_init__(self) -> None:
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        for name in ("ftol", "xtol", "gtol", "lambda0"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
