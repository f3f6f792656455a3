"""Every CUDA kernel instance the code can ask for compiles with NVRTC, as CuPy compiles it at run
time (same options, name expressions), for sm_80 and sm_90 — without a GPU, through the PyPI wheels
nvidia-cuda-nvrtc-cu12 + cuda-bindings (the dev extra) — and ptxas's resource report per kernel."""

import re
from pathlib import Path

import pytest
from nvrtc import H100, compile_for_archs, fit_kernel_names, occupancy, parse_resources, require_nvrtc

from gpuproc.backend import kernel_dir
from gpuproc.fit import gpu

PACKAGE = Path(gpu.__file__).resolve().parent.parent
CUPY_KERNEL_APIS = re.compile(r"\b(RawKernel|RawModule|ElementwiseKernel|ReductionKernel)\b")


@pytest.fixture(scope="module")
def compiled():
    """arch -> (lowered names, cubin, ptxas log) of every fit kernel instance."""
    require_nvrtc()
    return compile_for_archs(kernel_dir() / "fit.cu", fit_kernel_names())


def test_every_fit_kernel_instance_compiles(compiled):
    names = fit_kernel_names()
    compiled_models = re.findall(r"^\s*X\(\d+,", (kernel_dir() / "models.cuh").read_text(), re.M)
    assert len(names) == 2 * len(compiled_models)  # every model of GP_MODELS x both estimators
    for arch, (lowered, cubin, _) in compiled.items():
        assert set(lowered) == set(names)
        assert len(set(lowered.values())) == len(names), f"{arch}: two name expressions share a kernel"
        for n, low in lowered.items():
            assert low.encode() in cubin, f"{arch}: {n} ({low}) is not in the cubin"


def test_cuda_kernel_is_the_only_way_to_device_code():
    """No CuPy kernel source elsewhere in gpuproc/ escapes this compile test: RawModule only in
    backend.cuda_kernel, which only gpu.run_batch calls (with fit_kernel_names' expressions)."""
    users = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(PACKAGE).as_posix()
        if CUPY_KERNEL_APIS.search(text):
            users.setdefault("cupy kernel API", []).append(rel)
        if re.search(r"\bcuda_kernel\(", text):
            users.setdefault("cuda_kernel", []).append(rel)
    assert users == {"cupy kernel API": ["backend.py"], "cuda_kernel": ["backend.py", "fit/gpu.py"]}, users


def test_resources_are_reported(compiled):
    for arch, (lowered, _, log) in compiled.items():
        res = parse_resources(log)
        for n, low in lowered.items():
            r = res[low]
            assert 0 < r.registers <= 255, (arch, n, r)
            occ = occupancy(r.registers, r.shared_bytes, gpu.THREADS_PER_BLOCK)
            assert 0 < occ["occupancy"] <= 1, (arch, n, occ)


@pytest.mark.xfail(strict=True, reason="known: with the LM state in shared memory no instance exceeds 150 "
                                        "registers, but ptxas still spills 4-16 bytes in 7 of them (sm_80 and sm_90) around "
                                        "the subroutine calls of IEEE division's slow path; gpu_resources.json")
def test_fit_kernels_do_not_spill(compiled):
    spills = {(arch, n): res for arch, (lowered, _, log) in compiled.items()
              for n, low in lowered.items() if (res := parse_resources(log)[low]).spill_stores}
    assert not spills, spills


def test_occupancy_follows_the_cuda_calculator():
    """Warps per SM on an H100 at 128 threads per block (registers allocated per warp in units
    of 256, 64 K per SM, at most 64 warps)."""
    assert occupancy(32, 0, 128)["warps_per_sm"] == 64  # limited by warps
    assert occupancy(64, 0, 128)["warps_per_sm"] == 32  # 2048 registers per warp -> 32 warps
    assert occupancy(255, 0, 128) == {"blocks_per_sm": 2, "warps_per_sm": 8, "occupancy": 0.125,
                                      "limited_by": "registers"}  # 8192 per warp -> 8 warps = 2 blocks
    assert occupancy(32, H100["shared_bytes"] // 2, 128)["blocks_per_sm"] == 1  # shared memory
