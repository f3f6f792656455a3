"""Scale-out: WAXS throughput against the number of dask workers, and the overhead of the
distributed route against local threads, for the same job (synthetic Pilatus100k scan).

Routes, each a full ``run_waxs`` (store creation, blocks, finalize) into a fresh store:

- ``threads``: blocks in this process (the integrator's own threads);
- ``local-cluster`` with 1 and 2 workers: wall time including starting the cluster;
- ``scheduler`` with 1 and 2 workers of an already running LocalCluster: without the cluster
  start (timed once as the route's set-up; each worker still builds its integration context).

All routes are timed by benchmarks/common.py alike: one untimed warm-up run each, then the
median (min, max) of ``--repeats`` alternating runs. Writes benchmarks/results/scaleout_cpu.json
(refused on a busy machine; ``--force`` writes a development run to a scratch folder).

    python benchmarks/bench_scaleout.py [--shape NY NX] [--batch-frames N] [--workers 1 2] [--repeats 5] [--force]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Contender, Session, add_arguments, compare, timed_setup  # noqa: E402

from gpuproc.waxs.demo_data import write_demo_job  # noqa: E402
from gpuproc.waxs.job import load_job  # noqa: E402
from gpuproc.waxs.pipeline import run_waxs  # noqa: E402


def make_run(job_file: Path, name: str, executor: str, n_workers: int | None = None):
    """One full run of the job under ``executor`` into ``<name>.zarr`` (replaced each time)."""
    job = load_job(job_file)
    job.job.output = job_file.with_name(f"{name}.zarr")
    job.job.executor, job.job.n_workers, job.job.resume, job.job.overwrite = executor, n_workers, False, True
    return lambda: run_waxs(job)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", nargs=2, type=int, default=(16, 16), metavar=("NY", "NX"))
    p.add_argument("--batch-frames", type=int, default=16)
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    a = add_arguments(p).parse_args()
    session = Session("scaleout_cpu", force=a.force)
    from distributed import Client, LocalCluster

    n_frames = a.shape[0] * a.shape[1]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        job, _ = write_demo_job(tmp, tuple(a.shape), "Pilatus100k", seed=0, figures=False,
                                job_overrides={"batch_frames": a.batch_frames})
        routes = [Contender("threads", make_run(job, "threads", "threads"), n_frames)]
        routes += [Contender(f"local-cluster_{n}", make_run(job, f"lc{n}", "local-cluster", n), n_frames)
                   for n in a.workers]
        for n in a.workers:
            def start(n: int = n) -> Any:
                cluster = stack.enter_context(LocalCluster(n_workers=n, threads_per_worker=1,
                                                           dashboard_address=None))
                stack.enter_context(Client(cluster)).wait_for_workers(n)
                return cluster

            cluster, start_s = timed_setup(start)
            routes.append(Contender(f"scheduler_{n}", make_run(job, f"sched{n}", f"scheduler:{cluster.scheduler_address}"),
                                    n_frames, setup_s=start_s))
        timing = compare(routes, a.repeats)
    for name, t in timing.items():
        print(f"{name:16s} {t['median_s']:6.2f} s ({t['min_s']:.2f}-{t['max_s']:.2f})  {t['items_per_s']:6.1f} frames/s"
              + (f"  cluster start {t['setup_s']:.2f} s" if t["setup_s"] else ""))
    threads = timing["threads"]["median_s"]
    overhead = {f"{k}_minus_threads_s": round(t["median_s"] - threads, 3) for k, t in timing.items() if k != "threads"}
    session.write({
        "benchmark": "bench_scaleout.py",
        "job": {"scan_shape": list(a.shape), "frames": n_frames, "detector": "Pilatus100k",
                "batch_frames": a.batch_frames, "blocks": -(-a.shape[0] // max(1, a.batch_frames // a.shape[1])),
                "npt_q": 300, "npt_azimuth": 360},
        "timing": timing,
        "overhead_vs_threads_median": overhead,
        "note": "each run is a full run_waxs (store creation, blocks, finalize) into a fresh store; "
                "local-cluster includes starting the cluster, scheduler uses one already running (its start is "
                "the route's setup_s)",
    })


if __name__ == "__main__":
    main()
