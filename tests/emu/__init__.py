"""SIMT emulation of the CUDA fit kernel on the host (a test tool): simt.h, launch.cpp, kernel.py."""
