"""Builds the CPU fitting kernels: kernels/fit_cpu.cpp compiles the same headers as the CUDA path.

Set GPUPROC_PORTABLE=1 to build without -march=native (for wheels that run on other CPUs).
"""

import os
import platform

from setuptools import Extension, setup

flags = ["-O3", "-std=c++17", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"]
if os.environ.get("GPUPROC_PORTABLE") != "1" and platform.machine().lower() in ("x86_64", "amd64"):
    flags.append("-march=native")

setup(
    ext_modules=[
        Extension(
            "gpuproc._fitcpu",
            sources=["kernels/fit_cpu.cpp"],
            include_dirs=["kernels"],
            define_macros=[("GP_PYTHON_MODULE", "1")],
            extra_compile_args=flags,
            language="c++",
        )
    ]
)
