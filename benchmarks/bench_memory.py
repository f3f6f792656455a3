"""Peak memory of a WAXS run with ``batch_frames = 8`` on Eiger 4M-sized frames, for scans of
different lengths (issue 16 goal: under 1.5 GB whatever the scan size).

Frames: the synthetic scan of ``gpuproc waxs synth`` rendered on pyFAI's Eiger2 4M (2162 x 2068
pixels, uint32, module gaps at 2^32 - 1), its first ``--distinct`` frames repeated over the scan
(the content does not change what a run holds; rendering every frame would take minutes). Scans of
``--frames`` lengths (rows of 32 positions: blocks of 8 frames are quarter rows), figures off.

Each run is a fresh ``gpuproc waxs run`` process. The parent reads its ``/proc/<pid>/status``
every ``--sample-ms`` ms: ``VmHWM``, the kernel's high-water mark of its resident set since it
started (so a peak between two samples counts too), is the peak, the last read before it exits;
``VmRSS`` gives a timeline that places the peak in the run (``peak_at_s`` from the process start;
the run's own stage timings are stored beside). (rusage ``ru_maxrss`` of the child is not used:
it counts the parent's resident set at the fork.) First a cold run on the shortest scan
builds the integration matrix into an empty cache (reported apart: a one-off set-up), then every
scan is run ``--repeats`` times with the cached matrix, as repeated runs are. ``imports_only``
is a process that imports the pipeline and exits (the interpreter and libraries' share).

A memory figure is not a timing: it is written whatever the load (common.write, with the machine
and the load average at start and end). The rendered scans are deleted afterwards unless
``--keep``.

    python benchmarks/bench_memory.py [--frames 64 256] [--repeats 2] [--keep]

Writes benchmarks/results/memory_cpu.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_cache, read_timings, write  # noqa: E402

GOAL_MB = 1500.0  #: issue 16: peak with batch_frames = 8 on Eiger 4M-sized frames
DETECTOR = "Eiger2_4M"  #: pyFAI's Eiger2 4M: 2162 x 2068 pixels
ROW = 32  #: scan positions per row
BATCH = 8
GPUPROC = Path(sys.executable).with_name("gpuproc")
DATA = Path(tempfile.gettempdir()) / "gpuproc-bench-data"


def dataset(folder: Path, n_frames: int, distinct: int) -> Path:
    """job.toml of an Eiger 4M scan of ``n_frames`` frames, rendered once into ``folder``."""
    from gpuproc.waxs.demo_data import write_demo_job

    folder = folder / f"memory_{DETECTOR}_{n_frames}_{distinct}"
    job = folder / "job.toml"
    if not job.exists():
        shutil.rmtree(folder, ignore_errors=True)
        write_demo_job(folder, (n_frames // ROW, ROW), DETECTOR, seed=0, figures=False, distinct_frames=distinct,
                       job_overrides={"batch_frames": BATCH, "resume": False, "overwrite": True})
    return job


def peak_of(argv: list[str], sample_s: float) -> dict[str, Any]:
    """Run ``argv``; its peak RSS (``VmHWM``, MB), when the RSS peaked and a timeline (MB every ~0.25 s)."""
    start = time.perf_counter()
    hwm, samples = 0.0, []
    with tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        status = Path(f"/proc/{child.pid}/status")
        while child.poll() is None:
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
                hwm = max(hwm, int(fields["VmHWM"].split()[0]) / 1024)
                samples.append((time.perf_counter() - start, int(fields["VmRSS"].split()[0]) / 1024))
            except (OSError, KeyError, ValueError):  # exiting: its memory is gone from /proc
                pass
            time.sleep(sample_s)
        if child.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)} failed ({child.returncode}):\n{err.read()[-2000:]}")
    t_peak, _ = max(samples, key=lambda s: s[1]) if samples else (float("nan"), 0.0)
    timeline, last = [], -1.0
    for t, mb in samples:
        if t - last >= 0.25:
            timeline.append([round(t, 2), round(mb, 1)])
            last = t
    return {"peak_rss_mb": round(hwm, 1), "peak_at_s": round(t_peak, 2),
            "wall_s": round(time.perf_counter() - start, 2), "timeline_s_mb": timeline}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[64, 256], help="scan lengths (multiples of 32)")
    ap.add_argument("--distinct", type=int, default=8, help="frames rendered, repeated over the scan")
    ap.add_argument("--repeats", type=int, default=2, help="runs per scan with the cached matrix")
    ap.add_argument("--sample-ms", type=float, default=10.0)
    ap.add_argument("--data", type=Path, default=DATA, help="folder of the rendered scans")
    ap.add_argument("--keep", action="store_true", help="keep the rendered scans for the next run")
    args = ap.parse_args()
    if any(n % ROW for n in args.frames):
        ap.error(f"--frames must be multiples of {ROW}")
    load_start = list(os.getloadavg())
    fresh_cache()
    jobs = {n: dataset(args.data, n, args.distinct) for n in sorted(args.frames)}
    sample = args.sample_ms / 1e3
    try:
        runs: dict[str, Any] = {"imports_only": peak_of([sys.executable, "-c", "import gpuproc.waxs.pipeline"], sample)}
        shortest = min(jobs)
        runs["cold_matrix_build"] = {"frames": shortest, **peak_of(_run(jobs[shortest]), sample)}
        for n, job in jobs.items():
            rows = []
            for _ in range(args.repeats):
                row = peak_of(_run(job), sample)
                row["stages_s"] = (read_timings(job.parent / "results.zarr") or {}).get("stages_s")
                rows.append(row)
            runs[f"frames_{n}"] = {"frames": n, "peak_rss_mb_max": max(r["peak_rss_mb"] for r in rows), "runs": rows}
            print(f"{n:5d} frames: peak RSS {runs[f'frames_{n}']['peak_rss_mb_max']:.0f} MB "
                  f"(runs {[r['peak_rss_mb'] for r in rows]}, at {[r['peak_at_s'] for r in rows]} s)")
        print(f"cold run (matrix build): {runs['cold_matrix_build']['peak_rss_mb']:.0f} MB; imports alone "
              f"{runs['imports_only']['peak_rss_mb']:.0f} MB")
        peaks = [runs[f"frames_{n}"]["peak_rss_mb_max"] for n in jobs]
        frame = _frame_facts(jobs[shortest])
    finally:
        if not args.keep:
            for job in jobs.values():
                shutil.rmtree(job.parent, ignore_errors=True)
    path = write("memory_cpu", {
        "benchmark": f"peak RSS of gpuproc waxs run, batch_frames = {BATCH}, {DETECTOR} frames",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "load": {"start_1_5_15": [round(v, 2) for v in load_start],
                 "end_1_5_15": [round(v, 2) for v in os.getloadavg()],
                 "note": "memory, not a timing: measured whatever the load"},
        "detector": DETECTOR, "batch_frames": BATCH, "row": ROW, "distinct_frames": args.distinct, **frame,
        "goal_mb": GOAL_MB, "runs": runs,
        "goal": {"peak_mb_by_frames": dict(zip(jobs, peaks)), "met": max(peaks) <= GOAL_MB,
                 "grows_with_scan_mb": peaks[-1] - peaks[0]},
    })
    print(f"wrote {path}")


def _run(job: Path) -> list[str]:
    return [str(GPUPROC), "waxs", "run", str(job), "--no-progress"]


def _frame_facts(job: Path) -> dict[str, Any]:
    """Frame and block sizes of the scan, the cached matrix's size on disk."""
    import numpy as np

    from gpuproc.io.store import open_scan
    from gpuproc.waxs.matrix_cache import cache_dir

    scan = open_scan(job.parent / "scan.zarr")
    frame_mb = scan.dtype.itemsize * int(np.prod(scan.shape[1:])) / 2**20
    (matrix,) = [p for p in cache_dir().glob("*.npz") if "indptr" in np.load(p).files]
    return {"frame_shape": list(scan.shape[1:]), "dtype": str(scan.dtype), "frame_mb": round(frame_mb, 1),
            "block_mb": round(BATCH * frame_mb, 1), "matrix_entry_mb": round(matrix.stat().st_size / 2**20, 1)}


if __name__ == "__main__":
    main()
