"""CUDA and C++ sources of gpuproc's kernels, installed as package data (gpuproc.kernels)."""
