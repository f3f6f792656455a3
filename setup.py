"""Builds the CPU kernels: kernels/fit_cpu.cpp (the fitting engine, from the same headers as the
CUDA path) and kernels/csr_cpu.cpp (frame preparation and the sparse product of the integrator).

Set GPUPROC_PORTABLE=1 to build without -march=native (for wheels that run on other CPUs).
"""

import os
import platform
import runpy
from pathlib import Path

from setuptools import Extension, find_packages, setup

flags = list(runpy.run_path(str(Path(__file__).resolve().parent / "kernels" / "__init__.py"))["CXX_FLAGS"])
if os.environ.get("GPUPROC_PORTABLE") != "1" and platform.machine().lower() in ("x86_64", "amd64"):
    flags.append("-march=native")

def kernel(name: str, source: str) -> Extension:
    """A CPU kernel library (loaded with ctypes; the module object only makes it installable)."""
    return Extension(name, sources=[source], include_dirs=["kernels"], define_macros=[("GP_PYTHON_MODULE", "1")],
                     extra_compile_args=flags, language="c++")


# kernels/ is installed as gpuproc.kernels (pyproject's package-dir): the CUDA sources the GPU path
# compiles at run time, in every install kind (wheel, sdist, editable).
packages = find_packages(include=["gpuproc", "gpuproc.*"]) + ["gpuproc.kernels", "gpuproc.kernels.models"]

setup(packages=packages, ext_modules=[kernel("gpuproc._fitcpu", "kernels/fit_cpu.cpp"), kernel("gpuproc._csrcpu", "kernels/csr_cpu.cpp")])
