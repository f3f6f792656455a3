"""Registrations of the test user models (a job file names them as "models.py:NAME")."""

from pathlib import Path

from gpuproc.fit.models import Gauss1D, Gauss2DPolar
from gpuproc.fit.user_model import UserModel

HERE = Path(__file__).resolve().parent
_gauss1d = Gauss1D(1, "linear")
_polar = Gauss2DPolar()

# Starting-value rules and bounds borrowed from the built-ins these models reproduce.
gauss_linear = UserModel(
    "gauss_linear", HERE / "gauss_linear.cuh", "gauss_linear",
    params=("amplitude", "center", "sigma", "c0", "c1"), coordinates=("x",), positions={"center": "x"},
    guess=_gauss1d.guess, bounds=lambda x, xp: _gauss1d.default_bounds(x, xp),
)

spot_polar = UserModel(
    "spot_polar", HERE / "spot_polar.cuh", "spot_polar",
    params=("amplitude", "q0", "sigma_q", "phi0", "sigma_phi", "b0", "b1"), coordinates=("q", "phi"),
    positions={"q0": "q", "phi0": ("phi", 360.0)},
    guess=_polar.guess, bounds=lambda x, xp: _polar.default_bounds(x, xp),
)
