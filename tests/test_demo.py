"""``gpuproc demo`` (the README's first command): runs from the CLI, twice into the same folder,
and what it prints is what it claims (recovered vs true within the printed errors)."""

import re

import numpy as np
from click.testing import CliRunner

from gpuproc.cli import main
from gpuproc.io.results import open_results


def pull_sds(output: str) -> list[float]:
    """The 'pull sd' column of the engine tables."""
    rows = re.findall(r"^  (\w+)\s+\S+ (?:\S+ )?\s*\S+ (?:\S+ )?\s+(\d+\.\d\d)$", output, flags=re.M)
    return [float(sd) for _, sd in rows]


def test_demo_runs_twice_and_recovers_the_truth(tmp_path):
    out = tmp_path / "demo"
    for _ in range(2):  # a second run into the same folder replaces the demo's own results
        r = CliRunner().invoke(main, ["demo", "--device", "cpu", "--n-fits", "2000", "-o", str(out)])
        assert r.exit_code == 0, r.output
    sds = pull_sds(r.output)
    assert len(sds) == 9 and all(0.85 < sd < 1.15 for sd in sds), sds  # honest engine errors
    assert len(re.findall(r"100\.0% converged", r.output)) == 2
    waxs = open_results(out / "waxs" / "results.zarr")
    assert float((waxs.fit_status.values == 0).mean()) > 0.95
    assert {"a", "b", "size", "orientation"} <= set(waxs.data_vars)
    # the printed medians are within a few printed errors
    for name in ("a", "b", "orientation"):
        line = re.search(rf"^  {name}\s+.*$", r.output, flags=re.M).group(0).split()
        assert float(line[-3]) < 3 * float(line[-1]), line
    pl = open_results(out / "pl" / "results.zarr")
    assert np.isfinite(pl.energy.values).mean() > 0.5 and "shift_mev" in pl
    match = re.search(r"n_peaks right: ([\d.]+)% of one-peak, ([\d.]+)% of two-peak", r.output)
    assert float(match.group(1)) > 97 and float(match.group(2)) > 90
    assert sorted(p.name for p in (out / "waxs" / "figures").iterdir())
