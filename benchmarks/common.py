"""The fair timing harness every benchmark uses, and where its results go.

Rules (issue 16), the same for ours and for every reference:

- **Set-up apart**: what a contender pays once (matrix build, kernel compilation, cluster start,
  pyFAI's first ``integrate2d``) is timed once by :func:`timed_setup` and reported as
  ``setup_s``, never inside the per-item time.
- **Same warm-up**: :func:`compare` runs each contender ``warmup`` times untimed before timing.
- **Same statistic**: the median of ``repeats`` (>= 5 by default) timed runs, with min and max,
  per run and per item; contenders alternate run by run, so a change of load hits all alike.
- **Load**: a :class:`Session` records the load average at start and end and, every
  :data:`LOAD_SAMPLE_S`, measures the CPUs that *other* processes keep busy: the machine's busy
  CPU-seconds (``/proc/stat``) minus this benchmark's own (process and children), per second
  of wall time, averaged over one minute as the kernel averages its load. The load average
  cannot tell our use from theirs, since it counts runnable threads: 8 threads on 2 cores read
  as a load of ~8 while using 2 CPUs. It refuses (exit status 3) when the 1-minute load
  average at start exceeds the CPU count, or when the others' 1-minute average exceeded
  :data:`OTHERS_MAX_CPUS` during the run; otherwise the results go to
  ``benchmarks/results/<name>.json``. ``--force`` (development) writes to :data:`SCRATCH`
  instead, whatever the load, and never to ``benchmarks/results/``.
- Every JSON carries the machine, package versions, git commit, date, command and load record.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
#: where ``--force`` runs write (never benchmarks/results/); GPUPROC_BENCH_SCRATCH overrides
SCRATCH = Path(os.environ.get("GPUPROC_BENCH_SCRATCH", Path(tempfile.gettempdir()) / "gpuproc-bench"))
REPEATS = 5  #: timed runs per contender, at least
LOAD_SAMPLE_S = 2.0  #: seconds between load samples during a session
LOAD_WINDOW_S = 60.0  #: time constant of the 1-minute load average (the kernel's)
#: most CPUs other processes may keep busy (1-minute average) for results to be written. A quiet
#: machine's daemons use a few hundredths of a CPU; one other busy process uses 1 CPU, whose
#: 1-minute average passes 0.5 after 42 s (1 - exp(-42/60)) and reaches 0.63 after a minute.
#: 0.5 is a quarter of our 2-core VM: a quiet machine passes, one competitor is refused.
OTHERS_MAX_CPUS = 0.5
PROC_STAT = Path("/proc/stat")
PACKAGES = ("gpuproc", "numpy", "scipy", "pyfai", "zarr", "numcodecs", "dask", "distributed", "hyperspy", "numba",
            "cupy-cuda12x")


def cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gpu() -> dict[str, Any] | None:
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        return {
            "name": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
            "driver": cupy.cuda.runtime.driverGetVersion(),
            "runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "cupy": cupy.__version__,
        }
    except Exception:
        return None


def machine() -> dict[str, Any]:
    """Where and with what a benchmark ran: date, platform, CPU, versions, git commit."""
    pkgs = {}
    for name in PACKAGES:
        try:
            pkgs[name] = version(name)
        except PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).parent).stdout.strip() != ""
    except OSError:
        commit, dirty = "", False
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus_available": cpus(),
        "python": platform.python_version(),
        "packages": pkgs,
        "gpu": _gpu(),
        "git_commit": commit,
        "git_dirty": dirty,
    }


def add_arguments(parser: argparse.ArgumentParser, repeats: int = REPEATS) -> argparse.ArgumentParser:
    """Add the harness options every benchmark takes: ``--repeats`` and ``--force``."""
    parser.add_argument("--repeats", type=int, default=repeats,
                        help=f"timed runs per contender (median, min, max; default {repeats})")
    parser.add_argument("--force", action="store_true",
                        help=f"development run: ignore the load and write to {SCRATCH}, not benchmarks/results/")
    return parser


def _own_cpu_s() -> float:
    """CPU seconds (user + system) of this process and all its live and reaped children.

    Descendants are read before their parents, so that a child reaped in between is counted
    twice (which only hides others' use for one sample) rather than missed (which would
    show as others' use).
    """
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [*reversed(me.children(recursive=True)), me]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
    return total


def busy_jiffies(stat_text: str) -> int:
    """Busy clock ticks of all CPUs together, from the text of ``/proc/stat``.

    Parameters
    ----------
    stat_text : str
        The file's text; its ``cpu`` line (all CPUs) is read.

    Returns
    -------
    int
        user + nice + system + irq + softirq + steal ticks (not idle nor iowait; guest time is
        already inside user and nice), in units of ``os.sysconf("SC_CLK_TCK")`` per second.
    """
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
            return user + nice + system + irq + softirq + steal
    raise ValueError("no aggregate 'cpu' line in the /proc/stat text")


def machine_busy_cpu_s(path: str | Path = PROC_STAT) -> float:
    """Busy CPU-seconds of the whole machine since boot (all processes, all CPUs), from ``path``."""
    return busy_jiffies(Path(path).read_text()) / os.sysconf("SC_CLK_TCK")


def reading() -> tuple[float, float, float]:
    """One load reading: (wall clock s, ``time.perf_counter``; machine busy CPU-s; own CPU-s)."""
    return time.perf_counter(), machine_busy_cpu_s(), _own_cpu_s()


class Session:
    """One benchmark run: load record, refusal on a busy machine, where the results go.

    Created at the start of ``main``: refuses at once (exit status 3) when the 1-minute load
    average already exceeds the CPU count, unless ``force``. While it lives a daemon thread
    calls :meth:`sample` every :data:`LOAD_SAMPLE_S` with a fresh :func:`reading`, which keeps
    the exponential 1-minute average (:data:`LOAD_WINDOW_S`) of the CPUs other processes keep
    busy, and its maximum; :meth:`write` refuses when that maximum exceeds :data:`OTHERS_MAX_CPUS`.

    Parameters
    ----------
    name : str
        Results file stem: ``benchmarks/results/<name>.json``.
    force : bool
        Development run: write to :data:`SCRATCH` whatever the load.
    """

    def __init__(self, name: str, force: bool = False) -> None:
        self.name, self.force, self.cpus = name, force, cpus()
        self.command = " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])
        self.load_start = list(os.getloadavg())
        if self.load_start[0] > self.cpus and not force:
            self.refuse(f"load average {self.load_start[0]:.2f} exceeds the {self.cpus} CPUs at start")
        self._first = self._last = reading()
        self.others_1min = 0.0  #: exponential 1-minute average of others' busy CPUs
        self.others_max_1min = 0.0  #: its highest value so far
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(LOAD_SAMPLE_S):
            self.sample(*reading())

    def sample(self, now: float, machine_cpu_s: float, own_cpu_s: float) -> float:
        """Add one reading (as :func:`reading` returns) to the average of others' busy CPUs.

        Parameters
        ----------
        now : float
            Wall clock, s (``time.perf_counter``).
        machine_cpu_s, own_cpu_s : float
            Busy CPU-seconds of the whole machine and of this benchmark (cumulative).

        Returns
        -------
        float
            CPUs the other processes kept busy since the previous reading,
            (delta machine - delta own) / delta wall, at least 0; 0 when no time passed.
        """
        t, machine, own = self._last
        dt = now - t
        if dt <= 0:
            return 0.0
        others = max(0.0, ((machine_cpu_s - machine) - (own_cpu_s - own)) / dt)
        decay = math.exp(-dt / LOAD_WINDOW_S)
        self.others_1min = decay * self.others_1min + (1 - decay) * others
        self.others_max_1min = max(self.others_max_1min, self.others_1min)
        self._last = (now, machine_cpu_s, own_cpu_s)
        return others

    def refuse(self, why: str) -> None:
        """Print why no results are written and exit with status 3."""
        print(f"{self.name}: not writing results: {why} (machine busy; wait for a quiet machine, or pass "
              f"--force for a development run written to {SCRATCH})", file=sys.stderr)
        raise SystemExit(3)

    def load(self) -> dict[str, Any]:
        """The load record, from the first to the last reading: load averages at start and end,
        others' busy CPUs (highest 1-minute average, session mean) and own mean busy CPUs."""
        (t0, machine0, own0), (t1, machine1, own1) = self._first, self._last
        wall = max(t1 - t0, 1e-6)
        return {
            "cpus": self.cpus,
            "start_1_5_15": [round(v, 2) for v in self.load_start],
            "end_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "others_busy_cpus_max_1min": round(self.others_max_1min, 2),
            "others_busy_cpus_mean": round(max(0.0, ((machine1 - machine0) - (own1 - own0)) / wall), 2),
            "own_mean_busy_cpus": round((own1 - own0) / wall, 2),
            "session_wall_s": round(t1 - t0, 1),
            "rule": f"refused when the 1-minute load average at start exceeds cpus, or when the CPUs other "
                    f"processes kept busy (machine busy CPU time from /proc/stat minus this benchmark's own, "
                    f"1-minute average) exceeded {OTHERS_MAX_CPUS} during the run",
        }

    def write(self, payload: dict[str, Any]) -> Path:
        """Write the results JSON (machine and load added); refuses (exit 3) on a busy machine.

        Returns the path written: ``benchmarks/results/<name>.json``, or under :data:`SCRATCH`
        with ``--force``.
        """
        self._stop.set()
        self._sampler.join()
        self.sample(*reading())
        load = self.load()
        if self.others_max_1min > OTHERS_MAX_CPUS and not self.force:
            print(json.dumps(load), file=sys.stderr)
            self.refuse(f"other processes kept {self.others_max_1min:.2f} CPUs busy (1-minute average; at most "
                        f"{OTHERS_MAX_CPUS} allowed) on {self.cpus} CPUs during the run")
        folder = SCRATCH if self.force else RESULTS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.json"
        record = {"machine": machine(), "command": self.command, "load": load, "forced": self.force, **payload}
        path.write_text(json.dumps(record, indent=2, default=_json_default) + "\n")
        print(f"wrote {path}" + (" (--force: development run, not a result)" if self.force else ""))
        return path


def device_sessions(stem: str, force: bool, quick: bool = False) -> dict[str, Session]:
    """A :class:`Session` per device to measure: ``"cpu"``, and ``"gpu"`` when CuPy sees one.

    Results are ``<stem>_<device>.json`` (``_quick`` added for a smoke run, which is always
    written as a forced, development run).
    """
    from gpuproc.backend import gpu_available

    devices = ["cpu"] + (["gpu"] if gpu_available() else [])
    return {d: Session(f"{stem}_{d}" + ("_quick" if quick else ""), force=force or quick) for d in devices}


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine facts added, without a load
    check: for reports that time nothing (e.g. gpu_resources.py's register counts)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=_json_default) + "\n")
    return path


def fresh_cache() -> Path:
    """Point gpuproc's disk cache (integration matrices, compiled models: ``GPUPROC_CACHE_DIR``)
    at a new empty folder, so that a benchmark's first set-up is a cold build and its later
    runs find what that build cached, as a repeated run would."""
    import atexit
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="gpuproc-bench-cache-"))
    os.environ["GPUPROC_CACHE_DIR"] = str(folder)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def timed_setup(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run a contender's one-off set-up; returns (its result, wall seconds)."""
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


@dataclass
class Contender:
    """One side of a comparison.

    Attributes
    ----------
    name : str
        Key in the results.
    run : callable
        One timed run over ``items`` items (frames, fits, spectra); its return value is kept
        from the last run (``Contender.last``) for agreement checks.
    items : int
        Items one run processes; per-item times divide by it.
    setup_s : float or None
        One-off set-up seconds measured before (see :func:`timed_setup`); reported apart.
    sync : callable, optional
        Called inside the timing after ``run`` (e.g. a GPU synchronise).
    after : callable, optional
        Called after each timed run, outside the timing, with its return value (e.g. to read
        the run's stage timings); what it returns is collected in ``per_run``.
    """

    name: str
    run: Callable[[], Any]
    items: float
    setup_s: float | None = None
    sync: Callable[[], None] | None = None
    after: Callable[[Any], Any] | None = None
    last: Any = None


def summarize(times: list[float], items: float) -> dict[str, Any]:
    """Median, min and max of run times (s) and per-item times (ms), and items/s at the median."""
    med = statistics.median(times)
    return {
        "items": items,
        "repeats": len(times),
        "times_s": [round(t, 6) for t in times],
        "median_s": med, "min_s": min(times), "max_s": max(times),
        "per_item_ms": {"median": 1e3 * med / items, "min": 1e3 * min(times) / items,
                        "max": 1e3 * max(times) / items},
        "items_per_s": items / med,
    }


def measure(fn: Callable[[], Any], items: float, repeats: int = REPEATS, warmup: int = 1) -> dict[str, Any]:
    """One contender alone: ``warmup`` untimed calls, then :func:`summarize` of ``repeats`` timed ones."""
    row = compare([Contender("one", fn, items)], repeats, warmup)["one"]
    del row["setup_s"]
    return row


def compare(contenders: list[Contender], repeats: int = REPEATS, warmup: int = 1) -> dict[str, dict[str, Any]]:
    """Time every contender the same way: ``warmup`` untimed runs each, then ``repeats`` rounds
    in which each runs once (alternating), timed with ``time.perf_counter``.

    Returns ``{name: summarize(...) + setup_s + warmup_runs (+ per_run)}``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for c in contenders:
        for _ in range(warmup):
            c.last = c.run()
            if c.sync:
                c.sync()
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    extra: dict[str, list[Any]] = {c.name: [] for c in contenders}
    for _ in range(repeats):
        for c in contenders:
            t = time.perf_counter()
            c.last = c.run()
            if c.sync:
                c.sync()
            times[c.name].append(time.perf_counter() - t)
            if c.after:
                extra[c.name].append(c.after(c.last))
    out = {}
    for c in contenders:
        row = {"setup_s": c.setup_s, "warmup_runs": warmup, **summarize(times[c.name], c.items)}
        if extra[c.name]:
            row["per_run"] = extra[c.name]
        out[c.name] = row
    return out


def ratio(ours: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """How many times faster per item ``ours`` is than ``reference`` (two :func:`summarize`
    rows): at the medians, and the range from the worst pairing (ours' max vs the reference's
    min) to the best."""
    o, r = ours["per_item_ms"], reference["per_item_ms"]
    return {"median": r["median"] / o["median"], "low": r["min"] / o["max"], "high": r["max"] / o["min"]}


def stage_breakdown(per_run: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Median over runs of the stage timings a run stores (results root attrs ``timings``:
    ``stages_s``, ``wall_s``, ``items``); None when the runs recorded none (older code)."""
    runs = [t for t in per_run if t]
    if not runs:
        return None
    stages = sorted({k for t in runs for k in t.get("stages_s", {})})
    med = {k: statistics.median(t["stages_s"].get(k, 0.0) for t in runs) for k in stages}
    wall = statistics.median(t["wall_s"] for t in runs) if all("wall_s" in t for t in runs) else None
    items = runs[0].get("items")
    out: dict[str, Any] = {"stages_s_median": med, "wall_s_median": wall, "runs": len(runs)}
    if items:
        out["per_item_ms_median"] = {k: 1e3 * v / items for k, v in med.items()}
    return out


def read_timings(results_path: str | Path) -> dict[str, Any] | None:
    """The ``timings`` attribute of a results store (dict, or JSON text), None when absent."""
    import zarr

    value = zarr.open_group(str(results_path), mode="r").attrs.get("timings")
    if isinstance(value, str):
        value = json.loads(value)
    return value or None
