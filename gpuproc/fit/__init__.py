"""The batched fitting engine: Levenberg-Marquardt for many small problems at once."""

from gpuproc.fit.engine import FitResult, fit
from gpuproc.fit.models import Gauss1D, Gauss2DPolar, Model, Peaks1D, PVoigt2DPolar, get_model
from gpuproc.fit.options import FitOptions
from gpuproc.fit.status import Status

__all__ = ["FitOptions", "FitResult", "Gauss1D", "Gauss2DPolar", "Model", "PVoigt2DPolar", "Peaks1D", "Status", "fit", "get_model"]
