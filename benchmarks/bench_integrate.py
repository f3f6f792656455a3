"""Frames per second of caking a 1 Mpixel detector: batched CSR product vs pyFAI per frame.

Both sides use the same method (bbox splitting, CSR), corrections (solid angle, polarisation,
dark, flat, mask) and bins; the CSR set-up time is reported separately and not counted in the
rates. Writes ``benchmarks/results/integrate_cpu.json``.

Each side runs ``--repeats`` times, alternating, on the same frames after a warm-up; medians of
wall and CPU time (getrusage, all threads) are reported, with the load average before and after
(the machine may be shared). Also records the floor: matrix non-zeros, bytes per frame and a bare
scipy product on prepared data.

Usage: ``python benchmarks/bench_integrate.py [--frames 64] [--batch 16] [--threads N] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
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


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads (pyFAI's OpenMP ones included)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), _cpu_s()
    fn()
    return time.perf_counter() - w, _cpu_s() - c


def make_ours(ai, mask, dark, flat, batch: int, threads: int | None) -> tuple[CakeIntegrator, float]:
    t0 = time.perf_counter()
    ci = CakeIntegrator(
        ai, npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, dark=dark, flat=flat,
        polarization_factor=0.99, device="cpu", block_frames=batch, threads=threads,
    )
    return ci, time.perf_counter() - t0


def pyfai_kwargs(mask, dark, flat) -> dict:
    mask_dead = mask.copy()
    mask_dead[100, 100] = 1  # pyFAI needs the dead pixel in its mask (the same in every frame here)
    return dict(
        unit="q_A^-1", radial_range=Q_RANGE, azimuth_range=(-180, 180), method=("bbox", "csr", "cython"),
        mask=mask_dead, dark=dark, flat=flat, polarization_factor=0.99,
        correctSolidAngle=True,
    )


def floor(ci: CakeIntegrator, frames, repeats: int) -> dict:
    """What one frame costs at least: bytes read, non-zeros, a bare scipy product on prepared data."""
    m = ci._host
    n = ci.block_frames
    x = np.random.default_rng(0).random((m.shape[1], n), dtype=np.float32)
    walls = [_timed(lambda: m @ x)[0] for _ in range(repeats)]
    return {
        "nnz": int(m.nnz),
        "nnz_per_pixel": m.nnz / m.shape[1],
        "frame_bytes": int(frames[0].nbytes),
        "matrix_bytes": int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes),
        "bare_scipy_product_ms_per_frame": 1e3 * float(np.median(walls)) / n,
        "bare_scipy_product_block": n,
    }


def run(ai, mask, dark, flat, frames, batch: int, threads: int | None, repeats: int) -> dict:
    """Alternate ours and pyFAI ``repeats`` times on the same frames (fair under varying load)."""
    ci, ours_setup = make_ours(ai, mask, dark, flat, batch, threads)
    kw = pyfai_kwargs(mask, dark, flat)
    t0 = time.perf_counter()
    ai.integrate2d(frames[0], NPT_Q, NPT_AZ, **kw)  # builds and caches pyFAI's CSR matrix
    pyfai_setup = time.perf_counter() - t0
    ci.integrate(frames[: 2 * batch])  # warm-up: thread pool, work buffers, pattern cache
    for frame in frames[:3]:
        ai.integrate2d(frame, NPT_Q, NPT_AZ, **kw)  # warm-up
    ours, ref = [], []
    for _ in range(repeats):
        ours.append(_timed(lambda: ci.integrate(frames)))
        ref.append(_timed(lambda: [ai.integrate2d(f, NPT_Q, NPT_AZ, **kw) for f in frames]))
    n = len(frames)

    def summary(times, setup_s, **extra) -> dict:
        wall = np.array([t[0] for t in times])
        cpu = np.array([t[1] for t in times])
        return {
            "setup_s": setup_s,
            "wall_s_per_run": wall.tolist(),
            "cpu_s_per_run": cpu.tolist(),
            "median_wall_ms_per_frame": 1e3 * float(np.median(wall)) / n,
            "median_cpu_ms_per_frame": 1e3 * float(np.median(cpu)) / n,
            "frames_per_s": n / float(np.median(wall)),
            "best_frames_per_s": n / float(wall.min()),
            **extra,
        }

    from gpuproc.waxs.integrate import _kernels

    return {
        "ours": summary(ours, ours_setup, batch=batch, threads=ci.threads, compiled_kernels=_kernels() is not None),
        "pyfai": summary(ref, pyfai_setup),
        "floor": floor(ci, frames, repeats),
    }


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
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
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ai, mask, dark, flat, frames = make_setup(args.frames)
    load_before = os.getloadavg()
    res = run(ai, mask, dark, flat, frames, args.batch, args.threads, args.repeats)
    ours, ref = res["ours"], res["pyfai"]
    result = {
        "question": "CPU frames/s caking 1024x1024 uint32 frames, 500 q x 360 azimuth bins, bbox CSR",
        "command": "python benchmarks/bench_integrate.py " + " ".join(
            f"--{k} {v}" for k, v in vars(args).items() if v is not None),
        "n_frames": args.frames,
        "detector_shape": SHAPE,
        "bins": [NPT_AZ, NPT_Q],
        "ours_batched_csr": ours,
        "pyfai_integrate2d_per_frame": ref,
        "speedup_median_wall": ours["frames_per_s"] / ref["frames_per_s"],
        "speedup_best_wall": ours["best_frames_per_s"] / ref["best_frames_per_s"],
        "cpu_time_ratio": ref["median_cpu_ms_per_frame"] / ours["median_cpu_ms_per_frame"],
        "floor": res["floor"],
        "machine": {**machine_info(), "load_average_at_start": load_before},
    }
    for name, r in (("ours ", ours), ("pyFAI", ref)):
        print(f"{name}: {r['frames_per_s']:.1f} frames/s median (best {r['best_frames_per_s']:.1f}); "
              f"{r['median_wall_ms_per_frame']:.2f} ms wall, {r['median_cpu_ms_per_frame']:.2f} ms CPU per frame")
    print(f"ratio: {result['speedup_median_wall']:.2f}x median wall, {result['speedup_best_wall']:.2f}x best wall, "
          f"{result['cpu_time_ratio']:.2f}x CPU time")
    print(f"load average: start {load_before}, end {os.getloadavg()}")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
