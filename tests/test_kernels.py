"""The CUDA sources compile with nvcc for sm_80 and sm_90 (CI has nvcc but no GPU), and the CPU
library was built from the same headers."""

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from gpuproc.backend import kernel_dir
from gpuproc.fit import cpu
from gpuproc.fit.models import MODELS

ARCHS = ("sm_80", "sm_90")


def nvcc_or_fail():
    nvcc = shutil.which("nvcc") or (os.path.exists("/usr/local/cuda/bin/nvcc") and "/usr/local/cuda/bin/nvcc")
    if not nvcc:
        if os.environ.get("CI"):
            pytest.fail("nvcc is required on CI to compile kernels/*.cu")
        pytest.skip("nvcc not installed")
    return nvcc


def test_every_cu_file_compiles(tmp_path):
    nvcc = nvcc_or_fail()
    sources = sorted(kernel_dir().glob("*.cu"))
    assert sources, "no kernels/*.cu found"
    jobs = [(src, arch) for src in sources for arch in ARCHS]

    def compile_one(job):
        src, arch = job
        out = tmp_path / f"{src.stem}_{arch}.o"
        cmd = [nvcc, f"-arch={arch}", "-std=c++17", f"-I{kernel_dir()}", "-c", str(src), "-o", str(out)]
        return job, subprocess.run(cmd, capture_output=True, text=True)

    with ThreadPoolExecutor(2) as pool:
        for (src, arch), proc in pool.map(compile_one, jobs):
            assert proc.returncode == 0, f"{src.name} for {arch}:\n{proc.stderr[-3000:]}"


def test_cpu_library_matches_model_table():
    lib = cpu.library()
    ids = []
    for cls in MODELS.values():
        for m in cls.variants():
            assert lib.gp_model_nparams(m.kernel_id) == m.n_params, m
            ids.append(m.kernel_id)
    assert sorted(ids) == list(range(len(ids))), "every compiled model has one Python variant"
