"""Helpers shared by the benchmarks: machine/version facts and JSON output."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


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
    """Where and with what a benchmark ran."""
    pkgs = {}
    for name in ("gpuproc", "numpy", "scipy", "pyfai", "zarr", "dask", "cupy-cuda12x"):
        try:
            pkgs[name] = version(name)
        except PackageNotFoundError:
            pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus_available": cpus,
        "python": platform.python_version(),
        "packages": pkgs,
        "gpu": _gpu(),
        "git_commit": commit,
    }


def write(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine facts added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path
