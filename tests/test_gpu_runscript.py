"""benchmarks/gpu/run.sh, the one command for a GPU machine, parses and runs its --dry-run here."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu" / "run.sh"


@pytest.fixture(scope="module")
def bash():
    path = shutil.which("bash")
    if path is None:
        pytest.skip("no bash")
    return path


def test_run_sh_parses(bash):
    proc = subprocess.run([bash, "-n", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_dry_run_writes_the_plan(bash, tmp_path):
    env = os.environ | {"OUT": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run([bash, str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "[dry-run]" in proc.stdout and "pytest" in proc.stdout and "test_fit_gpu.py" in proc.stdout
    plan = json.loads((tmp_path / "gpu_benchmarks.json").read_text())
    assert plan["dry_run"] is True
    assert set(plan["goals"]) == {"fit_pl", "fit_bragg", "cakes", "waxs_end_to_end", "pl_end_to_end"}
    assert set(plan["goals"]) <= set(plan["floors"])
