"""Shared fixtures and the ``gpu`` marker: GPU tests skip cleanly where CuPy sees no device."""

import pytest

from gpuproc.backend import gpu_available


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU with CuPy (gpuproc[gpu])")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
