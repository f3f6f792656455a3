"""A regular install carries the CUDA kernel sources: the sdist built from this checkout, then the
wheel built from that sdist, installed into a fresh virtual environment outside the checkout, finds
``fit.cu`` inside its own package (``gpuproc.kernels``), compiles a kernel from there with NVRTC
as CuPy would, and fits on the CPU with the libraries the wheel built."""

import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

CHECK = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(TESTS)!r})
import numpy as np
import gpuproc
from gpuproc.backend import kernel_dir
from gpuproc.fit import fit
from nvrtc import compile_kernels, nvrtc_module
prefix = Path(sys.prefix).resolve()
assert Path(gpuproc.__file__).resolve().is_relative_to(prefix), gpuproc.__file__
kdir = kernel_dir()
assert kdir.resolve().is_relative_to(prefix) and kdir.name == "kernels" and kdir.parent.name == "gpuproc", kdir
assert (kdir / "models" / "gauss2d_polar.cuh").is_file()
if nvrtc_module() is not None:
    low, cubin, _ = compile_kernels(kdir / "fit.cu", ["gp_fit_kernel<Gauss1D_1_0, LeastSquares>"], "sm_90")
    assert cubin
x = np.linspace(-1, 1, 64, dtype=np.float32)
r = fit("gauss1d", (100 * np.exp(-x**2 / 0.02) + 5)[None], x, device="cpu")
assert abs(float(r["center1"][0])) < 1e-3, r.params
print("ok", kdir)
"""


def nvrtc_library_path() -> dict[str, str]:
    """LD_LIBRARY_PATH with this environment's libnvrtc (cuda-bindings looks for it in the
    environment's own site-packages, which the dependencies' .pth does not extend)."""
    try:
        import nvidia.cuda_nvrtc
    except ImportError:
        return {}
    libs = [str(Path(p) / "lib") for p in nvidia.cuda_nvrtc.__path__]
    return {"LD_LIBRARY_PATH": os.pathsep.join(libs + [os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)}


def run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_wheel_from_sdist_ships_and_finds_the_kernels(tmp_path):
    sdist = run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                 "print(b.build_sdist(sys.argv[1]))", tmp_path], cwd=ROOT).strip().splitlines()[-1]
    with tarfile.open(tmp_path / sdist) as tar:
        members = tar.getnames()
        assert any(m.endswith("kernels/models/gauss1d.cuh") for m in members), members
        tar.extractall(tmp_path / "src", filter="data")
    (src,) = (tmp_path / "src").iterdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"GPUPROC_PORTABLE": "1"}
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "wheels",
         src], env=env, cwd=tmp_path)
    (wheel,) = (tmp_path / "wheels").glob("gpuproc-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    # the wheel first, into the empty environment (pip must not see, let alone replace, this one's gpuproc)
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
        env=env, cwd=tmp_path)
    # then this environment's packages as the dependencies, after the new one's own site-packages
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = run([python, "-c", CHECK], env=env | nvrtc_library_path(), cwd=tmp_path)
    assert out.startswith("ok ")
