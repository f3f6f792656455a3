"""Frames per second of caking a 1 Mpixel detector: batched CSR product vs pyFAI per frame.

Both sides use the same method (bbox splitting, CSR), corrections (solid angle, polarisation,
dark, flat, mask) and bins; the CSR set-up time is reported separately and not counted in the
rates. Writes ``benchmarks/results/integrate_cpu.json``.

Usage: ``python benchmarks/bench_integrate.py [--frames 64] [--batch 16]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pyFAI
import pyFAI.detectors
import scipy
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

from gpuproc.waxs.integrate import CakeIntegrator

SHAPE = (1024, 1024)
NPT_Q, NPT_AZ = 500, 360
Q_RANGE = (0.5, 3.0)  # A^-1
RESULT = Path(__file__).parent / "results" / "integrate_cpu.json"


def make_setup(n_frames: int, seed: int = 0):
    """Geometry (75 um pixels, 1024x1024, 12.4 keV), mask, dark, flat and uint32 frames."""
    det = pyFAI.detectors.Detector(75e-6, 75e-6, max_shape=SHAPE)
    ai = AzimuthalIntegrator(dist=0.12, poni1=0.0384, poni2=0.0384, detector=det, wavelength=1.0e-10)
    rng = np.random.default_rng(seed)
    mask = np.zeros(SHAPE, np.int8)
    mask[510:520, :] = 1  # module gap
    dark = rng.uniform(0.0, 2.0, SHAPE).astype(np.float32)
    flat = rng.uniform(0.95, 1.05, SHAPE).astype(np.float32)
    frames = rng.poisson(30.0, (n_frames, *SHAPE)).astype(np.uint32)
    frames[:, 100, 100] = np.iinfo(np.uint32).max  # a dead pixel (dummy) in every frame
    return ai, mask, dark, flat, frames


def bench_ours(ai, mask, dark, flat, frames, batch: int) -> dict:
    t0 = time.perf_counter()
    ci = CakeIntegrator(
        ai, npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, dark=dark, flat=flat,
        polarization_factor=0.99, device="cpu", block_frames=batch,
    )
    setup_s = time.perf_counter() - t0
    ci.integrate(frames[:batch])  # warm-up
    t0 = time.perf_counter()
    ci.integrate(frames)
    run_s = time.perf_counter() - t0
    return {"setup_s": setup_s, "run_s": run_s, "frames_per_s": len(frames) / run_s, "batch": batch}


def bench_pyfai(ai, mask, dark, flat, frames) -> dict:
    mask_dead = mask.copy()
    mask_dead[100, 100] = 1  # pyFAI needs the dead pixel in its mask (the same in every frame here)
    kw = dict(
        unit="q_A^-1", radial_range=Q_RANGE, azimuth_range=(-180, 180), method=("bbox", "csr", "cython"),
        mask=mask_dead, dark=dark, flat=flat, polarization_factor=0.99, correctSolidAngle=True,
    )
    t0 = time.perf_counter()
    ai.integrate2d(frames[0], NPT_Q, NPT_AZ, **kw)  # builds and caches the CSR matrix
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for frame in frames:
        ai.integrate2d(frame, NPT_Q, NPT_AZ, **kw)
    run_s = time.perf_counter() - t0
    return {"setup_s": setup_s, "run_s": run_s, "frames_per_s": len(frames) / run_s}


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pyFAI": pyFAI.version,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    ai, mask, dark, flat, frames = make_setup(args.frames)
    ours = bench_ours(ai, mask, dark, flat, frames, args.batch)
    ref = bench_pyfai(ai, mask, dark, flat, frames)
    ratio = ours["frames_per_s"] / ref["frames_per_s"]
    result = {
        "question": "CPU frames/s caking 1024x1024 uint32 frames, 500 q x 360 azimuth bins, bbox CSR",
        "n_frames": args.frames,
        "detector_shape": SHAPE,
        "bins": [NPT_AZ, NPT_Q],
        "ours_batched_csr": ours,
        "pyfai_integrate2d_per_frame": ref,
        "speedup": ratio,
        "machine": machine_info(),
    }
    print(f"ours  : {ours['frames_per_s']:.1f} frames/s (batch {args.batch}, set-up {ours['setup_s']:.1f} s)")
    print(f"pyFAI : {ref['frames_per_s']:.1f} frames/s (set-up {ref['setup_s']:.1f} s)")
    print(f"ratio : {ratio:.2f}x")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
