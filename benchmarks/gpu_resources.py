"""Registers, stack, spills and shared memory of every fit kernel instance as CuPy builds it
(NVRTC, the options of gpuproc.backend.cuda_kernel, sm_80 and sm_90; no GPU needed), with the
occupancy each can reach on an H100 at gpuproc.fit.gpu.THREADS_PER_BLOCK threads per block.

    python benchmarks/gpu_resources.py     # -> benchmarks/results/gpu_resources.json
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import write  # noqa: E402
from nvrtc import H100, compile_for_archs, fit_kernel_names, nvrtc_module, occupancy, parse_resources  # noqa: E402

from gpuproc.backend import kernel_dir, nvrtc_options  # noqa: E402
from gpuproc.fit.gpu import THREADS_PER_BLOCK  # noqa: E402


def main() -> None:
    names = fit_kernel_names()
    compiled = compile_for_archs(kernel_dir() / "fit.cu", names)
    kernels = {}
    for arch, (lowered, _, log) in compiled.items():
        res = parse_resources(log)
        for n in names:
            r = res[lowered[n]]
            entry = asdict(r)
            if arch == "sm_90":
                entry["h100"] = occupancy(r.registers, r.shared_bytes, THREADS_PER_BLOCK)
            kernels.setdefault(n, {})[arch] = entry
    spilling = sorted(n for n, k in kernels.items() if any(a["spill_stores"] for a in k.values()))
    path = write("gpu_resources", {
        "what": "ptxas resource report per fit kernel instance, compiled by NVRTC as CuPy does",
        "nvrtc_version": list(nvrtc_module().nvrtcVersion()[1:]),
        "options": list(nvrtc_options(Path("kernels"))) + ["--gpu-architecture=<arch>", "--ptxas-options=-v"],
        "threads_per_block": THREADS_PER_BLOCK,
        "h100_sm": H100,
        "spilling_kernels": spilling,
        "kernels": kernels,
    })
    print(f"wrote {path}; {len(spilling)} of {len(names)} instances spill: {spilling}")


if __name__ == "__main__":
    main()
