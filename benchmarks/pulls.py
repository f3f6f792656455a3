"""Pulls (fit - truth) / error of every quantity the pipelines report, on seeded synthetic data.

A pull mean near 0 means unbiased, a pull sd near 1 means the reported errors are calibrated.
Writes ``benchmarks/results/pulls.json`` under a label (e.g. ``before`` / ``after`` a change), so
that one file holds the comparison::

    python benchmarks/pulls.py --label after
    PYTHONPATH=/path/to/old/checkout python benchmarks/pulls.py --label before   # an older tree

The runs are the pull tests' own (tests/pull_cases.py, also run by tests/test_pulls_waxs.py and
test_pulls_pl.py): WAXS scans of 8 x 10 positions (Pilatus 100k, two seeds) through ``run_waxs``,
per-reflection parameters (with the cake height ``amplitude``) against the per-spot truth, maps
against the truth maps; PL a 32 x 32 map pair through ``run_pl`` (energy, FWHM, amplitude, area
of the single-peak pixels, the shift map, the second peak's energy in two-peak pixels) and 8
seeded time series (time constants and shifts of 3 events each). Runs before 'after-area-
covariance' had another PL map (24 x 24, energy and FWHM only) and a ``median_error`` column.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import pull_cases  # noqa: E402  (tests/pull_cases.py: the pull tests' own runs)
from common import RESULTS, machine  # noqa: E402


def pull_stats(p: np.ndarray) -> dict[str, float]:
    """Number, mean and sd of finite pulls."""
    return {"n": int(p.size), "pull_mean": round(float(np.mean(p)), 3), "pull_sd": round(float(np.std(p)), 3)}


def pl_pulls(work: Path) -> dict[str, dict[str, float]]:
    """Every PL quantity with an error: map (energy, FWHM, amplitude, area, shift, second peak's
    energy) and time series (time constants and shifts of the events)."""
    (work / "map").mkdir()
    (work / "ts").mkdir()
    pulls = pull_cases.pl_map_pulls(pull_cases.pl_map_run(work / "map"))
    pulls.update(pull_cases.pl_event_pulls(work / "ts"))
    return {k: pull_stats(v) for k, v in pulls.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", required=True, help="name of this measurement in pulls.json (e.g. before, after)")
    ap.add_argument("--against", default="before", help="the run to print this one against (default: before)")
    args = ap.parse_args()
    import gpuproc

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "waxs").mkdir()
        (work / "pl").mkdir()
        result = {"gpuproc_source": str(Path(gpuproc.__file__).parent),
                  "waxs": {k: pull_stats(v) for k, v in pull_cases.waxs_pulls(work / "waxs").items()},
                  "pl": pl_pulls(work / "pl")}
    path = RESULTS / "pulls.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("runs", {})[args.label] = {"machine": machine(), **result}
    path.write_text(json.dumps(data, indent=2) + "\n")
    before = data["runs"].get(args.against, {})
    print(f"{'':5s}{'quantity':15s} {'n':>5s}  {'mean':>6s} {'sd':>5s}   {args.against}: {'mean':>6s} {'sd':>5s}")
    for family in ("waxs", "pl"):
        for name, s in result[family].items():
            b = before.get(family, {}).get(name)
            was = f"{b['pull_mean']:+6.2f} {b['pull_sd']:5.2f}" if b else "     -     -"
            print(f"{family:5s}{name:15s} {s['n']:5d}  {s['pull_mean']:+6.2f} {s['pull_sd']:5.2f}   {args.against}: {was}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
