"""Stage timings (gpuproc.run.timings): every run of both pipelines records where its time went,
per block with the done marks, summed at finalize into the results' ``timings`` attribute and
printed by the CLI."""

import time

import numpy as np
import pytest
import tomli_w
import zarr
from click.testing import CliRunner
from run_helpers import demo_job, job_with_output, variant

from gpuproc.cli import main
from gpuproc.pl.ingest import ingest_spectra
from gpuproc.pl.pipeline import run_pl
from gpuproc.run import timings
from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map_pair
from gpuproc.waxs.pipeline import run_waxs

KEYS = {"stages_s", "wall_s", "blocks", "items", "unit"}


def _check(t: dict, stages: set[str], blocks: int, items: int) -> None:
    assert KEYS <= set(t) and t["unit"] == "s"
    assert t["blocks"] == blocks and t["items"] == items
    s = t["stages_s"]
    assert stages <= set(s), set(s)
    assert all(v >= 0 for v in s.values()) and all(s[k] > 0 for k in stages), s
    assert sum(s.values()) <= t["wall_s"], (sum(s.values()), t["wall_s"])


@pytest.fixture(scope="module")
def waxs_job(tmp_path_factory):
    return demo_job(tmp_path_factory.mktemp("timings"), figures="figures")


def test_waxs_run_records_stage_timings(waxs_job):
    started = time.perf_counter()
    out = run_waxs(job_with_output(waxs_job, waxs_job.with_name("t.zarr")))
    elapsed = time.perf_counter() - started
    t = zarr.open_group(out, mode="r").attrs["timings"]
    _check(t, {"setup", "read", "integrate", "fit", "derive", "write", "finalize", "figures"}, blocks=6, items=48)
    assert t["wall_s"] <= elapsed
    assert out.timings == timings.read(out)
    # per block, with the done marks, in the run/ bookkeeping
    rows = zarr.open_group(out, mode="r")[timings.ARRAY][...]
    assert rows.shape == (6, len(timings.BLOCK_FIELDS)) and np.isfinite(rows).all()
    assert (rows[:, timings.BLOCK_FIELDS.index("items")] == 8).all()
    # the run's own report shows every stage but the drawing of the report itself
    page = (waxs_job.parent / "figures" / "report.html").read_text(encoding="utf-8")
    table = page.split("<h2>Timings</h2>", 1)[1].split("<h2>", 1)[0]
    assert "not recorded" not in table and ">fit</td>" in table and ">figures</td>" not in table
    assert "figures: drawing this report" in table


def test_resumed_run_counts_only_its_own_blocks(waxs_job):
    job = job_with_output(waxs_job, waxs_job.with_name("resumed.zarr"))
    run_waxs(job)
    again = run_waxs(job)  # complete: nothing left to compute, finalize again
    assert again.timings.blocks == 0 and again.timings.items == 0
    assert again.timings.stages_s["read"] == 0 and again.timings.stages_s["finalize"] > 0


def test_cli_prints_the_breakdown(waxs_job):
    path = variant(waxs_job, "cli", batch_frames=16)
    result = CliRunner().invoke(main, ["waxs", "run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("time:"))
    assert "48 items in 3 blocks" in line and "integrate" in line and "fit" in line


def test_pl_run_records_stage_timings(tmp_path):
    m = pl_map_pair((4, 6), 128, seed=1).first
    np.savez(tmp_path / "map.npz", data=m.counts, axis=m.wavelength)
    store = ingest_spectra(tmp_path / "map.npz", tmp_path / "map.spectra.zarr")
    job = tmp_path / "pl.toml"
    job.write_text(tomli_w.dumps({"job": {"output": "pl.zarr", "device": "cpu", "batch_rows": 2},
                                  "input": {"source": str(store)},
                                  "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS}}))
    out = run_pl(job, progress=False)
    t = zarr.open_group(out, mode="r").attrs["timings"]
    _check(t, {"setup", "read", "preprocess", "fit", "write", "finalize"}, blocks=2, items=24)
    assert t["stages_s"]["integrate"] == 0 and t["stages_s"]["figures"] == 0  # no figures asked


def test_stopwatch_counts_nested_stages_exclusively():
    watch = timings.Stopwatch()
    with timings.measuring(watch):
        with timings.stage("finalize"):
            time.sleep(0.02)
            with timings.stage("figures"):
                time.sleep(0.03)
    assert 0.02 <= watch.seconds["finalize"] < 0.03 + 0.02
    assert watch.seconds["figures"] >= 0.03
    with timings.stage("fit"):  # no stopwatch active: nothing recorded, no error
        pass
    assert "fit" not in watch.seconds
