"""CUDA and C++ sources of gpuproc's kernels, installed as package data (gpuproc.kernels)."""

#: C++ flags of every CPU kernel build: setup.py's libraries and the user models' run-time builds
#: (gpuproc.fit.compile_cpu). This module imports nothing, so setup.py can read it before install.
CXX_FLAGS = ("-O3", "-std=c++17", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math")
