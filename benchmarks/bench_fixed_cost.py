"""The fixed cost of a run: what a run pays whatever its size (issue 16 goal: <= 2 s on 2 cores).

Fixed cost = imports + set-up with a cached integration matrix + finalize without figures: the
wall time of a whole ``gpuproc <pipeline> run`` of a tiny job in a fresh process, less its one
block's work. Contenders, each a fresh subprocess, timed by benchmarks/common.py alike (one
untimed warm-up each, median/min/max of ``--repeats`` alternating runs):

- ``help``: ``gpuproc --help``;
- ``import_waxs`` / ``import_pl``: ``python -c "import gpuproc.waxs.pipeline"`` (``pl``);
- ``waxs_run``: ``gpuproc waxs run`` of ``--frames`` Pilatus 1M frames (the job ``gpuproc waxs
  synth --detector Pilatus1M`` writes: 300 q x 360 azimuth bins, its reflections) in one block,
  figures off; its integration matrix was cached by the warm-up (a repeated run);
- ``pl_run``: ``gpuproc pl run`` of a 4 x 4 x 512 synthetic map in one block, figures off.

Each run writes a new results store (job copies with outputs of their own, removed after the
run, outside the timing), as a new run of a set-up whose matrix is cached does. For the runs the
stage timings the run stores (results root attribute ``timings``) split the
wall time into ``outside_run`` (interpreter start, imports, job file, CLI output: the process's
wall less the run's own ``wall_s``), ``setup``, ``block`` (read, integrate, preprocess, fit,
derive, write of the one block) and ``finalize``; ``fixed_s`` = process wall less ``block``.
One more run of each under ``python -X importtime`` lists the packages that dominate the
imports (the self times of each package's modules summed; one run: a guide, not a statistic)
and which heavy packages a run loads at all.

    python benchmarks/bench_fixed_cost.py [--frames 8] [--repeats 5] [--force]

Writes benchmarks/results/fixed_cost_cpu.json.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Contender, Session, add_arguments, compare, fresh_cache, read_timings  # noqa: E402

GOAL_S = 2.0  #: issue 16: fixed cost of a run on this 2-core machine
BLOCK_STAGES = ("read", "integrate", "preprocess", "fit", "derive", "write")
#: packages whose import time the report lists (top-level names as ``-X importtime`` prints them)
PACKAGES = ("numpy", "scipy", "pyFAI", "fabio", "zarr", "numcodecs", "dask", "distributed", "xarray", "pandas",
            "matplotlib", "h5py", "click", "gpuproc")
#: heavy modules whose presence in a run's process is reported (loaded or not)
HEAVY = ("dask.array", "distributed", "xarray", "pandas", "matplotlib", "scipy.optimize", "scipy.stats",
         "scipy.signal", "h5py", "pyFAI.integrator.azimuthal")
GPUPROC = Path(sys.executable).with_name("gpuproc")


def waxs_job(folder: Path, frames: int) -> Path:
    """A Pilatus 1M WAXS job of ``frames`` frames (one block, figures off)."""
    from gpuproc.waxs.demo_data import write_demo_job

    job, _ = write_demo_job(folder, (1, frames), "Pilatus1M", seed=0, figures=False,
                            job_overrides={"batch_frames": frames})
    return job


def pl_job(folder: Path, shape: tuple[int, int] = (4, 4), channels: int = 512) -> Path:
    """A PL map job of ``shape`` x ``channels`` (one block, figures off)."""
    import numpy as np
    import tomli_w

    from gpuproc.pl.ingest import ingest_spectra
    from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map

    folder.mkdir(parents=True, exist_ok=True)
    m = pl_map(shape, channels, seed=0)
    np.save(folder / "map.npy", m.counts)
    ingest_spectra(folder / "map.npy", folder / "map.zarr", axis=m.wavelength, axis_unit="nm", overwrite=True)
    job = folder / "job.toml"
    job.write_text(tomli_w.dumps({
        "job": {"output": str(folder / "results.zarr"), "batch_rows": shape[0]},
        "input": {"source": str(folder / "map.zarr")}, "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS}}))
    return job


class FreshRuns:
    """``gpuproc <pipeline> run`` of copies of a job file, each with its own new output."""

    def __init__(self, pipeline: str, job: Path) -> None:
        import tomllib

        self.pipeline, self.job, self.count = pipeline, job, 0
        self.spec = tomllib.loads(job.read_text())
        self.output: Path | None = None

    def argv(self, job: Path | None = None) -> list[str]:
        return [str(GPUPROC), self.pipeline, "run", str(job or self.job), "--no-progress"]

    def __call__(self) -> str:
        import tomli_w

        self.count += 1
        self.output = self.job.parent / f"fresh_{self.count}.zarr"
        copy = self.job.with_name(f"fresh_{self.count}.toml")
        copy.write_text(tomli_w.dumps({**self.spec, "job": {**self.spec["job"], "output": str(self.output)}}))
        return _run(self.argv(copy))

    def timings(self, _: Any) -> dict[str, Any] | None:
        """The last run's stored timings; its output and job copy are removed."""
        found = read_timings(self.output)
        shutil.rmtree(self.output)
        self.output.with_suffix(".toml").unlink()
        return found


def _run(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def split_run(timings: dict[str, Any] | None, process_s: float) -> dict[str, float] | None:
    """The process's wall time split by the run's stored stage timings (see the module docstring)."""
    if not timings:
        return None
    stages = timings["stages_s"]
    block = sum(stages.get(s, 0.0) for s in BLOCK_STAGES)
    return {"process_s": process_s, "outside_run_s": process_s - timings["wall_s"], "setup_s": stages["setup"],
            "block_s": block, "finalize_s": stages["finalize"], "figures_s": stages.get("figures", 0.0),
            "fixed_s": process_s - block}


def import_profile(argv: list[str], cwd: Path | None = None) -> dict[str, Any]:
    """One run under ``-X importtime``: import seconds per package of :data:`PACKAGES` (the self
    times of its modules summed; the rest as ``other``), and which of :data:`HEAVY` the process loaded."""
    code = ("import runpy, sys, atexit; "
            f"atexit.register(lambda: print('LOADED', *[m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)); "
            f"sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=cwd, capture_output=True, text=True)
    top: dict[str, float] = {}
    loaded: list[str] = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:  # a module's own (self) time counts for its top-level package
            name = m.group(2).split(".")[0]
            name = name if name in PACKAGES else "other"
            top[name] = top.get(name, 0.0) + int(m.group(1)) * 1e-6
        elif line.startswith("LOADED"):
            loaded = line.split()[1:]
    return {"import_s_by_package": dict(sorted(top.items(), key=lambda kv: -kv[1])),
            "heavy_loaded": loaded, "heavy_not_loaded": [m for m in HEAVY if m not in loaded]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8, help="Pilatus 1M frames of the tiny WAXS run")
    args = add_arguments(ap).parse_args()
    session = Session("fixed_cost_cpu", force=args.force)
    fresh_cache()  # the warm-up run builds the matrix into it; the timed runs load it
    work = Path(tempfile.mkdtemp(prefix="bench_fixed_cost_"))
    waxs, pl = waxs_job(work / "waxs", args.frames), pl_job(work / "pl")
    runs = {"waxs_run": FreshRuns("waxs", waxs), "pl_run": FreshRuns("pl", pl)}
    commands = {
        "help": [str(GPUPROC), "--help"],
        "import_waxs": [sys.executable, "-c", "import gpuproc.waxs.pipeline"],
        "import_pl": [sys.executable, "-c", "import gpuproc.pl.pipeline"],
        **{name: run.argv() for name, run in runs.items()},
    }
    contenders = [Contender(name, (lambda argv=argv: _run(argv)), 1) for name, argv in commands.items()
                  if name not in runs]
    contenders += [Contender(name, run, 1, after=run.timings) for name, run in runs.items()]
    rows = compare(contenders, args.repeats)
    splits = {}
    for name in runs:
        per_run = [split_run(t, s) for t, s in zip(rows[name].pop("per_run"), rows[name]["times_s"])]
        per_run = [r for r in per_run if r]
        splits[name] = {k: statistics.median(r[k] for r in per_run) for k in per_run[0]} if per_run else None
        rows[name]["split_median_s"] = splits[name]
        rows[name]["split_per_run"] = per_run
    profiles = {name: import_profile(commands[name]) for name in ("help", "waxs_run", "pl_run")}
    shutil.rmtree(work, ignore_errors=True)
    goals = {name: {"fixed_s_median": s["fixed_s"], "goal_s": GOAL_S, "met": s["fixed_s"] <= GOAL_S}
             for name, s in splits.items() if s}
    for name, row in rows.items():
        extra = "" if name not in splits or not splits[name] else "  " + ", ".join(
            f"{k} {v:.2f}" for k, v in splits[name].items())
        print(f"{name:12s} {row['median_s']:.2f} s (min {row['min_s']:.2f}, max {row['max_s']:.2f}){extra}")
    session.write({
        "benchmark": "fixed cost of a run: imports, set-up with a cached matrix, finalize without figures",
        "frames": args.frames, "detector": "Pilatus1M", "pl_map": [4, 4, 512], "goal_s": GOAL_S,
        "commands": {k: " ".join(v) for k, v in commands.items()},
        "results": rows, "goals": goals, "import_profile": profiles,
    })


if __name__ == "__main__":
    main()
