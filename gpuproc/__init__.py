"""gpuproc: batch fitting of scanning X-ray nanodiffraction and hyperspectral PL data on GPUs and CPUs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gpuproc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

from gpuproc.fit import FitResult, Status, fit  # noqa: E402

__all__ = ["FitResult", "Status", "fit", "__version__"]
