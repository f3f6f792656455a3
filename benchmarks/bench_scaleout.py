"""Scale-out: WAXS throughput against the number of dask workers, and the overhead of the
distributed route against local threads, for the same job (synthetic Pilatus100k scan).

Routes, each a full ``run_waxs`` (store creation, blocks, finalize) into a fresh store:

- ``threads``: blocks in this process (the integrator's own threads);
- ``local-cluster`` with 1 and 2 workers: wall time including starting the cluster;
- ``scheduler`` with 1 and 2 workers of an already running LocalCluster: without the cluster
  start (each worker still builds its integration context once).

Writes benchmarks/results/scaleout_cpu.json.

    python benchmarks/bench_scaleout.py [--shape NY NX] [--batch-frames N] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write  # noqa: E402

from gpuproc.waxs.demo_data import write_demo_job  # noqa: E402
from gpuproc.waxs.job import load_job  # noqa: E402
from gpuproc.waxs.pipeline import run_waxs  # noqa: E402


def timed_run(job_file: Path, name: str, executor: str, n_workers: int | None = None) -> float:
    """Wall seconds of one full run of the job under ``executor`` into ``<name>.zarr``."""
    job = load_job(job_file)
    job.job.output = job_file.with_name(f"{name}.zarr")
    job.job.executor, job.job.n_workers, job.job.resume, job.job.overwrite = executor, n_workers, False, True
    t0 = time.perf_counter()
    run_waxs(job)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", nargs=2, type=int, default=(16, 16), metavar=("NY", "NX"))
    p.add_argument("--batch-frames", type=int, default=16)
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    a = p.parse_args()
    from distributed import Client, LocalCluster

    n_frames = a.shape[0] * a.shape[1]
    rows: list[dict[str, Any]] = []

    def record(route: str, workers: int | None, seconds: float, **extra: Any) -> None:
        rows.append({"route": route, "workers": workers, "wall_s": round(seconds, 3),
                     "frames_per_s": round(n_frames / seconds, 2), **extra})
        print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        job, _ = write_demo_job(tmp, tuple(a.shape), "Pilatus100k", seed=0, figures=False,
                                job_overrides={"batch_frames": a.batch_frames})
        timed_run(job, "warmup", "threads")  # imports, pyFAI caches, page cache of the scan
        record("threads", None, timed_run(job, "threads", "threads"))
        for n in a.workers:
            record("local-cluster", n, timed_run(job, f"lc{n}", "local-cluster", n))
        for n in a.workers:
            t0 = time.perf_counter()
            with LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                client.wait_for_workers(n)
                start = time.perf_counter() - t0
                record("scheduler", n, timed_run(job, f"sched{n}", f"scheduler:{cluster.scheduler_address}"),
                       cluster_start_s=round(start, 3))
    threads = rows[0]["wall_s"]
    overhead = {f"{r['route']}_{r['workers']}_minus_threads_s": round(r["wall_s"] - threads, 3)
                for r in rows[1:]}
    path = write("scaleout_cpu", {
        "benchmark": "bench_scaleout.py",
        "job": {"scan_shape": list(a.shape), "frames": n_frames, "detector": "Pilatus100k",
                "batch_frames": a.batch_frames, "blocks": -(-a.shape[0] // max(1, a.batch_frames // a.shape[1])),
                "npt_q": 300, "npt_azimuth": 360},
        "runs": rows,
        "overhead_vs_threads": overhead,
        "note": "each run is a full run_waxs (store creation, blocks, finalize) into a fresh store; "
                "local-cluster includes starting the cluster, scheduler uses one already running",
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
