"""NVRTC compiles of the CUDA kernels without a GPU, as CuPy does them at run time (the PyPI
wheels nvidia-cuda-nvrtc-cu12 + cuda-bindings), with ptxas's resource report per kernel."""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from gpuproc.backend import nvrtc_options
from gpuproc.fit import gpu
from gpuproc.fit.models import MODELS
from gpuproc.fit.options import ESTIMATOR_TYPES

ARCHS = ("sm_80", "sm_90")


def fit_kernel_names() -> list[str]:
    """Every name expression gpu.run_batch can ask for: each model variant x estimator."""
    models = [m for cls in MODELS.values() for m in cls.variants()]
    return [gpu.kernel_name(m, est) for m in models for est in ESTIMATOR_TYPES]


@dataclass
class Resources:
    """ptxas's report for one kernel entry."""

    registers: int
    stack_bytes: int
    spill_stores: int
    spill_loads: int
    shared_bytes: int


def nvrtc_module():
    """cuda.bindings.nvrtc, or None when the wheels are not installed."""
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        return None
    return nvrtc


def require_nvrtc():
    """cuda.bindings.nvrtc; the test skips without it, and fails under CI=true."""
    nvrtc = nvrtc_module()
    if nvrtc is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs cuda-bindings + nvidia-cuda-nvrtc-cu12 (pip install -e '.[dev]')")
        pytest.skip("cuda-bindings / nvidia-cuda-nvrtc-cu12 not installed")
    return nvrtc


def _check(result, prog, nvrtc, what: str) -> None:
    err = result[0] if isinstance(result, tuple) else result
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"{what}: {err}\n{program_log(prog, nvrtc)}")


def program_log(prog, nvrtc) -> str:
    _, size = nvrtc.nvrtcGetProgramLogSize(prog)
    log = b" " * size
    nvrtc.nvrtcGetProgramLog(prog, log)
    return log.decode(errors="replace").rstrip("\x00")


def compile_kernels(source: Path, names: list[str], arch: str,
                    include_dir: Path | None = None) -> tuple[dict[str, str], bytes, str]:
    """Compile ``source`` for ``arch`` with the options ``gpuproc.backend.cuda_kernel`` gives CuPy
    (plus ``--gpu-architecture``, which CuPy adds, and ``-Xptxas -v`` for the report), including
    from ``include_dir`` (default: the source's folder; the kernel folder for a generated source).
    Returns the lowered (mangled) name of every expression, the cubin and the log."""
    nvrtc = nvrtc_module()
    err, prog = nvrtc.nvrtcCreateProgram(source.read_text().encode(), source.name.encode(), 0, [], [])
    _check(err, prog, nvrtc, "nvrtcCreateProgram")
    try:
        for n in names:
            _check(nvrtc.nvrtcAddNameExpression(prog, n.encode()), prog, nvrtc, f"name expression {n}")
        opts = [o.encode() for o in nvrtc_options(include_dir or source.parent)] + [f"--gpu-architecture={arch}".encode(),
                                                                      b"--ptxas-options=-v"]
        _check(nvrtc.nvrtcCompileProgram(prog, len(opts), opts), prog, nvrtc, f"{source.name} for {arch}")
        lowered = {}
        for n in names:
            err, low = nvrtc.nvrtcGetLoweredName(prog, n.encode())
            _check(err, prog, nvrtc, f"lowered name of {n}")
            lowered[n] = low.decode()
        _, size = nvrtc.nvrtcGetCUBINSize(prog)
        cubin = b" " * size
        _check(nvrtc.nvrtcGetCUBIN(prog, cubin), prog, nvrtc, "cubin")
        return lowered, cubin, program_log(prog, nvrtc)
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def compile_for_archs(source: Path, names: list[str], archs: tuple[str, ...] = ARCHS) -> dict[str, tuple]:
    """:func:`compile_kernels` for each arch, in parallel processes (an NVRTC compile holds the GIL)."""
    with ProcessPoolExecutor(len(archs), mp_context=multiprocessing.get_context("fork")) as pool:
        return dict(zip(archs, pool.map(partial(compile_kernels, source, names), archs)))


def parse_resources(log: str) -> dict[str, Resources]:
    """Per mangled entry name: registers, stack frame, spill stores/loads, shared memory (bytes)."""
    out = {}
    for block in re.split(r"ptxas info\s*: Compiling entry function ", log)[1:]:
        name = re.match(r"'([^']+)'", block).group(1)

        def num(pattern: str) -> int:
            m = re.search(pattern, block)
            return int(m.group(1)) if m else 0

        out[name] = Resources(num(r"Used (\d+) registers"), num(r"(\d+) bytes stack frame"),
                              num(r"(\d+) bytes spill stores"), num(r"(\d+) bytes spill loads"),
                              num(r"(\d+) bytes smem"))
    return out


# H100 (sm_90) per SM: 64 K 32-bit registers allocated per warp in units of 256, at most 64 warps
# and 32 blocks, 228 KB shared memory (227 KB per block, 1 KB reserved per block).
H100 = {"registers": 65536, "register_unit": 256, "max_warps": 64, "max_blocks": 32,
        "shared_bytes": 233472, "shared_reserved_per_block": 1024}


def occupancy(registers: int, shared_bytes: int, threads_per_block: int, sm: dict = H100) -> dict:
    """Resident blocks and warps per SM and the occupancy (resident / max warps) a kernel reaches."""
    warps_per_block = -(-threads_per_block // 32)
    regs_per_warp = -(-registers * 32 // sm["register_unit"]) * sm["register_unit"]
    by_regs = (sm["registers"] // regs_per_warp) // warps_per_block if registers else sm["max_blocks"]
    by_warps = sm["max_warps"] // warps_per_block
    by_shared = sm["shared_bytes"] // (shared_bytes + sm["shared_reserved_per_block"])
    blocks = min(by_regs, by_warps, by_shared, sm["max_blocks"])
    limiter = min((by_regs, "registers"), (by_warps, "warps"), (by_shared, "shared memory"),
                  (sm["max_blocks"], "blocks"))[1]
    return {"blocks_per_sm": blocks, "warps_per_sm": blocks * warps_per_block,
            "occupancy": blocks * warps_per_block / sm["max_warps"], "limited_by": limiter}
