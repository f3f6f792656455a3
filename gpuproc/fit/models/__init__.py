"""Fit models. A model is its function and Jacobian (here, for NumPy/CuPy), its initial-guess rule
and default bounds, and its device function (kernels/models/). Add one by writing both halves,
listing it in kernels/models.cuh and in ``MODELS`` below."""

from __future__ import annotations

from typing import Any

from gpuproc.fit.models.base import Model
from gpuproc.fit.models.gauss1d import Gauss1D
from gpuproc.fit.models.gauss2d_polar import Gauss2DPolar
from gpuproc.fit.models.peaks1d import Peaks1D
from gpuproc.fit.models.pvoigt2d_polar import PVoigt2DPolar

MODELS = {"gauss1d": Gauss1D, "gauss2d_polar": Gauss2DPolar, "peaks1d": Peaks1D, "pvoigt2d_polar": PVoigt2DPolar}


def get_model(model: str | Model, **options: Any) -> Model:
    """A model instance from its name and options (``get_model("gauss1d", n_peaks=2)``,
    ``get_model("peaks1d", shapes=("pvoigt", "gauss"))``), or as given."""
    if isinstance(model, Model):
        if options:
            raise TypeError("model options are only accepted with a model name")
        return model
    try:
        cls = MODELS[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; known models: {sorted(MODELS)}") from None
    return cls(**options)


__all__ = ["Gauss1D", "Gauss2DPolar", "MODELS", "Model", "PVoigt2DPolar", "Peaks1D", "get_model"]
