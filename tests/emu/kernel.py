"""Builds kernels/fit.cu for the host under the SIMT emulation and calls it like a CuPy kernel.

``EmulatedKernel(lib, name)(grid, block, args)`` takes what ``gpuproc.fit.gpu.run_batch`` gives a
CuPy ``RawModule`` function: NumPy scalars are passed by value with their own type, arrays as
pointers to their data (C-contiguous), None as a null pointer (as CuPy passes it), and the
launcher refuses an argument list whose types differ from the kernel's parameters (None stands
for any pointer).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def build(kernel_dir: Path, out_dir: Path, source: Path | None = None, defines: tuple[str, ...] = ()) -> ctypes.CDLL:
    """Compile ``source`` (default ``kernel_dir/fit.cu``) with the emulation into a shared library;
    ``defines``: preprocessor definitions (``NAME=VALUE``) for the kernel source."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        raise RuntimeError("the SIMT emulation needs a C++17 compiler (g++)")
    src_dir = (source or kernel_dir / "fit.cu").parent
    lib = out_dir / "emu_fit.so"
    cmd = [cxx, "-O1", "-std=c++17", "-shared", "-fPIC", "-Wno-unknown-pragmas", f"-I{HERE}", f"-I{src_dir}",
           f"-I{kernel_dir}", *(f"-D{d}" for d in defines), "-o", str(lib), str(HERE / "launch.cpp")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"emulation build failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    cdll = ctypes.CDLL(str(lib))
    cdll.emu_launch.restype = ctypes.c_int
    cdll.emu_launch.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint,
                                ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_int]
    return cdll


def _marshal(a: object) -> tuple[str, object]:
    """Type code and a buffer holding the argument's value (a pointer for arrays)."""
    if a is None:
        return "null", ctypes.c_void_p(None)
    if isinstance(a, np.ndarray):
        if not a.flags.c_contiguous:
            raise ValueError(f"array argument of shape {a.shape} is not C-contiguous")
        return "*" + a.dtype.name, ctypes.c_void_p(a.ctypes.data)
    if isinstance(a, np.generic):
        return a.dtype.name, np.array(a)
    raise TypeError(f"kernel argument {a!r} is neither a NumPy array nor a NumPy scalar")


class EmulatedKernel:
    """One kernel instance of the emulation library, called as ``kernel(grid, block, args)``."""

    def __init__(self, lib: ctypes.CDLL, name: str):
        self.lib, self.name = lib, name

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None:
        codes, buffers = zip(*(_marshal(a) for a in args))
        ptrs = (ctypes.c_void_p * len(args))(
            *[ctypes.addressof(b) if isinstance(b, ctypes.c_void_p) else b.ctypes.data for b in buffers])
        err = ctypes.create_string_buffer(1024)
        if tuple(grid[1:]) + tuple(block[1:]) not in ((), (1,) * (len(grid) + len(block) - 2)):
            raise ValueError(f"only 1-D launches are emulated, got grid {grid}, block {block}")
        rc = self.lib.emu_launch(self.name.encode(), ",".join(codes).encode() + b",", grid[0], block[0], ptrs,
                                 err, len(err))
        if rc != 0:
            raise RuntimeError(f"{self.name}: {err.value.decode()}")


def emulate(monkeypatch, lib: ctypes.CDLL) -> None:
    """Route ``fit(..., device="gpu")`` through the engine's GPU branch with NumPy arrays and the
    kernels of ``lib`` (a pytest ``monkeypatch`` undoes it)."""
    from gpuproc.fit import engine, gpu

    monkeypatch.setattr(gpu, "cuda_kernel", lambda source, name: EmulatedKernel(lib, name))
    monkeypatch.setattr(gpu, "free_device_memory", lambda: 64 << 20)
    monkeypatch.setattr(engine, "resolve_device", lambda device: "gpu" if device == "gpu" else "cpu")
    monkeypatch.setattr(engine, "get_xp", lambda device: np)
