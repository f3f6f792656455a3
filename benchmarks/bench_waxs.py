"""End-to-end WAXS throughput at scale: frames/s from a Zarr scan store (in the page cache) to
maps, against the pipeline's own stages alone and against a pyFAI + curve_fit script.

The job is the one ``gpuproc waxs synth DIR --detector Pilatus1M`` writes (16 reflections,
300 q x 360 azimuth bins), on ``--frames`` frames (rows of 40 positions; the default 2,000), with
figures off. Contenders, all timed by benchmarks/common.py alike (one-off set-up apart, one
untimed warm-up run each, median/min/max of ``--repeats`` alternating runs):

- ``ours``: ``run_waxs`` of the whole job into a fresh results store each run (set-up with the
  integration matrix, reading, integration, fits, derived maps, writing, finalize); the run's
  stage timings (results attribute ``timings``) are collected per run; ``setup_s`` is building
  the run's context (integration matrix, windows) cold, once, in an empty matrix cache: the
  timed runs load that matrix from the cache, as a repeated run does (their ``setup`` stage);
- floors, each stage alone with all cores on ``--floor-frames`` frames: ``decode`` (the store's
  chunks read and decompressed by a thread per CPU), ``integrate`` (the pipeline's integrator
  on decoded frames in memory, blocks of ``batch_frames``) and ``fit`` (the pipeline's
  ``fit_reflections`` of all 16 windows on the integrated sums);
- ``reference``: what a user would script, on ``--reference-frames`` frames (whole store
  chunks spread over the scan, each chunk read once, as ours reads them): pyFAI
  ``integrate2d`` per frame (same geometry, bins, splitting, corrections; its first call,
  which builds its sparse matrix, is its set-up) and ``scipy.optimize.curve_fit`` of every one
  of the 16 spots (analytic Jacobian, our starting guess).

The rendered scan is cached under ``--data`` (rendering 2,000 frames takes minutes) and read
once before timing, so that it is in the page cache. Writes benchmarks/results/waxs_<device>.json.

    python benchmarks/bench_waxs.py [--frames 2000] [--reference-frames 16] [--floor-frames 128] [--force]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import curve_fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (Contender, Session, add_arguments, compare, cpus, fresh_cache, ratio,  # noqa: E402
                    read_timings, stage_breakdown, timed_setup)

from gpuproc.backend import resolve_device  # noqa: E402
from gpuproc.io.store import FRAME_CODEC  # noqa: E402
from gpuproc.fit import get_model  # noqa: E402
from gpuproc.waxs.demo_data import write_demo_job  # noqa: E402
from gpuproc.waxs.integrate import load_geometry  # noqa: E402
from gpuproc.waxs.job import load_job  # noqa: E402
from gpuproc.waxs.pipeline import fit_reflections, make_context, open_source, run_waxs  # noqa: E402

ROW = 40  #: scan positions per row
DATA = Path(tempfile.gettempdir()) / "gpuproc-bench-data"


def dataset(folder: Path, n_frames: int, detector: str) -> Path:
    """job.toml of the synthetic scan ``waxs synth`` writes, rendered once into ``folder`` (a
    folder per size and store codec: a new default codec renders anew)."""
    codec = "".join(str(v) for v in FRAME_CODEC.values())
    folder = folder / f"waxs_{detector}_{n_frames}_seed0_{codec}"
    job = folder / "job.toml"
    if not job.exists():
        shutil.rmtree(folder, ignore_errors=True)
        partial = folder.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write_demo_job(partial, (n_frames // ROW, ROW), detector, seed=0)  # the job `gpuproc waxs synth` writes
        partial.rename(folder)
    return job


def warm_page_cache(folder: Path) -> int:
    """Read every file under ``folder`` once; returns the bytes read."""
    total = 0
    for p in folder.rglob("*"):
        if p.is_file():
            total += len(p.read_bytes())
    return total


def chunk_ranges(n_frames: int, chunk: int, n_wanted: int) -> list[tuple[int, int]]:
    """Whole chunks, evenly spread over the scan, holding at least ``n_wanted`` frames."""
    n_chunks = -(-n_frames // chunk)
    take = min(n_chunks, max(1, -(-n_wanted // chunk)))
    picks = np.unique(np.linspace(0, n_chunks - 1, take).round().astype(int))
    return [(int(c) * chunk, min((int(c) + 1) * chunk, n_frames)) for c in picks]


class Reference:
    """pyFAI integrate2d + curve_fit of every spot, frame by frame, on whole chunks of the store."""

    def __init__(self, job, ctx, frames, ranges: list[tuple[int, int]]) -> None:
        integ = job.integration
        self.ai = load_geometry(integ.poni)
        self.kw = dict(npt_rad=integ.npt_q, npt_azim=integ.npt_azimuth, radial_range=integ.q_range, unit=integ.unit,
                       method=(integ.split, "csr", "cython"), polarization_factor=integ.polarization_factor,
                       correctSolidAngle=integ.solid_angle, dummy=float(np.float32(2**32 - 1)), delta_dummy=0.5)
        self.windows, self.frames, self.ranges = ctx.windows, frames, ranges
        self.model = get_model("gauss2d_polar")

    def setup(self) -> None:
        """pyFAI's first integrate2d builds and caches its CSR matrix."""
        self.ai.integrate2d(np.zeros(self.frames.shape[1:], np.float32), **self.kw)

    def run(self) -> int:
        """Every frame of the chunks; returns the number of spot fits that failed."""
        failed = 0
        for a, b in self.ranges:
            for frame in self.frames[a:b]:
                res = self.ai.integrate2d(frame.astype(np.float32), **self.kw)
                cake = np.where(res.sum_normalization > 0, res.intensity, np.nan)
                failed += sum(not self.fit_spot(w, cake) for w in self.windows)
        return failed

    def fit_spot(self, w, cake: np.ndarray) -> bool:
        y = w.take(cake[None])[0]
        ok = np.isfinite(y)
        x = np.stack([w.q, w.phi])[:, ok].astype(np.float64)
        m = self.model
        p0 = m.guess(x, y[ok][None].astype(np.float32), np.ones(ok.sum(), np.float32))[0].astype(np.float64)
        try:
            curve_fit(lambda _, *p: m.evaluate(x, np.asarray(p)[None])[0], None, y[ok].astype(np.float64), p0=p0,
                      jac=lambda _, *p: m.jacobian(x, np.asarray(p)[None])[0], maxfev=2000)
        except RuntimeError:
            return False
        return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2000, help=f"scan frames (rounded down to rows of {ROW})")
    ap.add_argument("--detector", default="Pilatus1M")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--reference-frames", type=int, default=16)
    ap.add_argument("--floor-frames", type=int, default=128)
    ap.add_argument("--data", type=Path, default=DATA, help="cache folder of the rendered scan")
    args = add_arguments(ap).parse_args()
    n_frames = max(ROW, args.frames // ROW * ROW)
    device = resolve_device(args.device)
    session = Session(f"waxs_{device}", force=args.force)
    job_path = dataset(args.data, n_frames, args.detector)
    cached = warm_page_cache(job_path.parent / "scan.zarr")
    job = load_job(job_path)
    out = Path(tempfile.mkdtemp(prefix="bench_waxs_")) / "results.zarr"
    job.job.output, job.job.figures, job.job.device = out, None, device
    job.job.resume, job.job.overwrite = False, True  # each timed run starts afresh
    scan = open_source(job)
    fresh_cache()  # the first set-up builds the integration matrix; the runs load it, as repeated runs do
    ctx, setup_s = timed_setup(lambda: make_context(job, scan))
    zframes = zarr_frames(job_path.parent / "scan.zarr")
    chunk = zframes.chunks[0]
    floor = chunk_ranges(n_frames, chunk, args.floor_frames)
    n_floor = sum(b - a for a, b in floor)
    batch = job.job.batch_frames

    def decode() -> list[np.ndarray]:
        with ThreadPoolExecutor(cpus()) as pool:
            return list(pool.map(lambda r: zframes[r[0]:r[1]], floor))

    held = np.concatenate(decode())

    def integrate() -> list[tuple[Any, Any]]:
        return [ctx.integrator.integrate_sums(held[k:k + batch]) for k in range(0, n_floor, batch)]

    sums = integrate()

    def fit_alone() -> list[dict[str, Any]]:
        return [fit_reflections(ctx, signal, norm, None) for signal, norm in sums]

    ref = Reference(job, ctx, zframes, chunk_ranges(n_frames, chunk, args.reference_frames))
    _, ref_setup = timed_setup(ref.setup)
    n_ref = sum(b - a for a, b in ref.ranges)
    contenders = [
        Contender("ours", lambda: run_waxs(job), n_frames, setup_s, after=lambda _: read_timings(out)),
        Contender("floor_decode", decode, n_floor),
        Contender("floor_integrate", integrate, n_floor, setup_s),
        Contender("floor_fit", fit_alone, n_floor),
        Contender("reference", ref.run, n_ref, ref_setup),
    ]
    timing = compare(contenders, args.repeats)
    ours = timing["ours"]
    floors = {k: timing[f"floor_{k}"]["per_item_ms"]["median"] for k in ("decode", "integrate", "fit")}
    floor_sum = sum(floors.values())
    summary = {
        "speedup_vs_reference": ratio(ours, timing["reference"]),
        "floors_per_frame_ms": {**floors, "sum": floor_sum},
        "end_to_end_over_sum_of_floors": ours["per_item_ms"]["median"] / floor_sum,
        "reference_over_sum_of_floors": timing["reference"]["per_item_ms"]["median"] / floor_sum,
        "reference_failed_spot_fits": contenders[-1].last,
    }
    for name, t in timing.items():
        print(f"{name:16s} {t['items_per_s']:8.1f} frames/s  {t['per_item_ms']['median']:8.2f} ms/frame "
              f"({t['per_item_ms']['min']:.2f}-{t['per_item_ms']['max']:.2f})  set-up {t['setup_s'] or 0:.2f} s")
    sp = summary["speedup_vs_reference"]
    print(f"ours vs reference {sp['median']:.2f}x ({sp['low']:.2f}-{sp['high']:.2f}); end to end / sum of floors "
          f"{summary['end_to_end_over_sum_of_floors']:.2f} (floors {floors})")
    stages = stage_breakdown(ours.get("per_run", []))
    if stages:
        print("stages per frame (ms):", {k: round(v, 2) for k, v in stages.get("per_item_ms_median", {}).items()})
    session.write({
        "benchmark": "bench_waxs.py",
        "question": "end-to-end frames/s from a Zarr store in the page cache: the 16-reflection job of `gpuproc waxs "
                    "synth`, against the stages alone and pyFAI integrate2d + curve_fit per spot",
        "detector": args.detector, "frame_shape": list(scan.frames.shape[1:]), "n_frames": n_frames,
        "scan_shape": [n_frames // ROW, ROW], "chunk_frames": chunk, "batch_frames": batch,
        "bins": [job.integration.npt_azimuth, job.integration.npt_q],
        "reflections": [r.name for r in job.reflections], "device": device,
        "store_bytes_read_into_page_cache": cached,
        "store_codec": [c.to_dict() for c in zframes.compressors],
        "floor_frames": n_floor, "reference_frames": n_ref,
        "timing": timing,
        "stages": stages,
        **summary,
        "notes": "figures off; ours includes set-up (with the run's own matrix handling), reading, writing and "
                 "finalize; floors and ours use every CPU; the reference is one Python thread (pyFAI's CSR "
                 "integration uses OpenMP threads)",
    })


def zarr_frames(store: Path) -> Any:
    """The scan's frames as the zarr array (read by whole chunks, decoded by its codec)."""
    import zarr

    return zarr.open_array(str(store / "frames"), mode="r")


if __name__ == "__main__":
    main()
