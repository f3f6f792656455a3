"""gpuproc: batch fitting of scanning X-ray nanodiffraction and hyperspectral PL data on GPUs and CPUs."""

from typing import Any

__all__ = ["FitResult", "Status", "__version__"]


def __getattr__(name: str) -> Any:
    """``__version__``, ``FitResult`` and ``Status`` on first use, so that ``import gpuproc.cli``
    (``gpuproc --help``) loads neither importlib.metadata nor the fitting engine. The fitting
    function is ``gpuproc.fit.fit`` (``gpuproc.fit`` is always the subpackage)."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("gpuproc")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
            value = "0+unknown"
    elif name in ("FitResult", "Status", "fit"):
        import importlib

        module = importlib.import_module("gpuproc.fit")
        value = module if name == "fit" else getattr(module, name)
    else:
        raise AttributeError(f"module 'gpuproc' has no attribute {name!r}")
    globals()[name] = value
    return value
