"""Frames per second of caking a 1 Mpixel detector: batched CSR product vs pyFAI per frame.

Both sides use the same method (bbox splitting, CSR), corrections (solid angle, polarisation,
dark, flat, mask) and bins; the CSR set-up time is reported separately and not counted in the
rates. Writes ``benchmarks/results/integrate_cpu.json``.

Both are timed by benchmarks/common.py alike: set-up apart, one untimed warm-up run each, then
``--repeats`` alternating runs on the same frames; median (min, max) wall time and the median
CPU time (getrusage, all threads) are reported, with the load record (no results on a busy
machine; ``--force`` writes a development run to a scratch folder). Also records the floor:
matrix non-zeros, bytes per frame and a bare scipy product on prepared data.

Usage: ``python benchmarks/bench_integrate.py [--frames 64] [--batch 16] [--threads N] [--repeats 5] [--force]``
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyFAI.detectors
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Contender, Session, add_arguments, compare, fresh_cache, measure, ratio, timed_setup  # noqa: E402

from gpuproc.waxs.integrate import CakeIntegrator  # noqa: E402

SHAPE = (1024, 1024)
NPT_Q, NPT_AZ = 500, 360
Q_RANGE = (0.5, 3.0)  # A^-1


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


def with_cpu(fn) -> Callable[[], float]:
    """``fn`` as a contender's run that returns the CPU seconds it used (all threads)."""

    def run() -> float:
        c = _cpu_s()
        fn()
        return _cpu_s() - c

    return run


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
    product = measure(lambda: m @ x, n, repeats)
    return {
        "nnz": int(m.nnz),
        "nnz_per_pixel": m.nnz / m.shape[1],
        "frame_bytes": int(frames[0].nbytes),
        "matrix_bytes": int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes),
        "bare_scipy_product_ms_per_frame": product["per_item_ms"],
        "bare_scipy_product_block": n,
    }


def run(ai, mask, dark, flat, frames, batch: int, threads: int | None, repeats: int) -> dict:
    """Ours and pyFAI timed alike (common.compare): set-up apart, one warm-up run each, then
    ``repeats`` alternating runs on the same frames; wall and CPU seconds per run."""
    ci, ours_setup = make_ours(ai, mask, dark, flat, batch, threads)
    kw = pyfai_kwargs(mask, dark, flat)
    _, pyfai_setup = timed_setup(lambda: ai.integrate2d(frames[0], NPT_Q, NPT_AZ, **kw))  # builds its CSR matrix
    n = len(frames)
    ours = Contender("ours", with_cpu(lambda: ci.integrate(frames)), n, ours_setup, after=float)
    ref = Contender("pyfai", with_cpu(lambda: [ai.integrate2d(f, NPT_Q, NPT_AZ, **kw) for f in frames]), n,
                    pyfai_setup, after=float)
    timing = compare([ours, ref], repeats)
    for row in timing.values():
        cpu = row.pop("per_run")
        row["cpu_s_per_run"] = cpu
        row["median_cpu_ms_per_frame"] = 1e3 * float(np.median(cpu)) / n
    from gpuproc.waxs.integrate import _kernels

    timing["ours"].update(batch=batch, threads=ci.threads, compiled_kernels=_kernels() is not None)
    return {**timing, "floor": floor(ci, frames, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    args = add_arguments(parser).parse_args()
    session = Session("integrate_cpu", force=args.force)
    fresh_cache()  # our set-up builds the CSR matrix, as pyFAI's first call does
    ai, mask, dark, flat, frames = make_setup(args.frames)
    res = run(ai, mask, dark, flat, frames, args.batch, args.threads, args.repeats)
    ours, ref = res["ours"], res["pyfai"]
    result = {
        "question": "CPU frames/s caking 1024x1024 uint32 frames, 500 q x 360 azimuth bins, bbox CSR",
        "n_frames": args.frames,
        "detector_shape": SHAPE,
        "bins": [NPT_AZ, NPT_Q],
        "ours_batched_csr": ours,
        "pyfai_integrate2d_per_frame": ref,
        "speedup": ratio(ours, ref),
        "cpu_time_ratio": ref["median_cpu_ms_per_frame"] / ours["median_cpu_ms_per_frame"],
        "floor": res["floor"],
    }
    for name, r in (("ours ", ours), ("pyFAI", ref)):
        print(f"{name}: {r['items_per_s']:.1f} frames/s median ({r['per_item_ms']['min']:.2f}-"
              f"{r['per_item_ms']['max']:.2f} ms); {r['per_item_ms']['median']:.2f} ms wall, "
              f"{r['median_cpu_ms_per_frame']:.2f} ms CPU per frame; set-up {r['setup_s']:.2f} s")
    sp = result["speedup"]
    print(f"ratio: {sp['median']:.2f}x median ({sp['low']:.2f}-{sp['high']:.2f}), "
          f"{result['cpu_time_ratio']:.2f}x CPU time")
    session.write(result)


if __name__ == "__main__":
    main()
