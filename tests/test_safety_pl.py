"""PL runs and their spectra store (issue 9): a replaced source is refused on resume and
re-ingested with overwrite, never reused stale; a fresh run with a second map computes it once."""

import os
import time

import numpy as np
import pytest
import tomli_w
from run_helpers import assert_same_results

from gpuproc.io.results import open_results
from gpuproc.pl.ingest import open_spectra
from gpuproc.pl.pipeline import run_pl
from gpuproc.run.outputs import OutputRefused
from gpuproc.synth.pl import pl_map, pl_map_pair


def _pl_job(directory, seed: int):
    m = pl_map((12, 12), 128, seed=seed)  # seeds 0 and 1 (some small maps make NaN intensities)
    np.savez(directory / "map.npz", data=m.counts, axis=m.wavelength)
    job = directory / "pl.toml"
    job.write_text(tomli_w.dumps({"job": {"output": "pl.zarr", "device": "cpu", "batch_rows": 4},
                                  "input": {"source": "map.npz"}, "fit": {"max_peaks": 1}}))
    return job


def test_replaced_pl_source_is_reingested_not_reused(tmp_path):
    job = _pl_job(tmp_path, seed=0)
    first = open_results(run_pl(job, progress=False))["energy"].values
    spectra = tmp_path / "pl.spectra.zarr"
    first_id = open_spectra(spectra).attrs["store_id"]
    time.sleep(0.01)
    _pl_job(tmp_path, seed=1)  # the source replaced under the same name
    with pytest.raises(OutputRefused, match=r"input input.source changed \(sha256:\w+ \(\d+ B\) -> sha256:"):
        run_pl(job, progress=False)
    text = job.read_text()
    job.write_text(text.replace("batch_rows = 4", "batch_rows = 4\nresume = false\noverwrite = true"))
    second = open_results(run_pl(job, progress=False))["energy"].values
    assert open_spectra(spectra).attrs["store_id"] != first_id  # re-ingested
    assert not np.array_equal(second, first, equal_nan=True)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    os.rename(tmp_path / "map.npz", fresh / "map.npz")
    (fresh / "pl.toml").write_text(text)
    assert_same_results(run_pl(fresh / "pl.toml", progress=False), tmp_path / "pl.zarr", attrs=())


def test_pl_fresh_run_with_a_second_map(tmp_path):
    """resume = false computes both maps once; running it again needs overwrite."""
    pair = pl_map_pair((8, 8), 256, seed=3)
    for name, m in (("first", pair.first), ("second", pair.second)):
        np.savez(tmp_path / f"{name}.npz", data=m.counts, axis=m.wavelength)
    job = tmp_path / "shift.toml"
    keys = {"output": "shift.zarr", "device": "cpu", "batch_rows": 4, "resume": False}
    job.write_text(tomli_w.dumps({"job": keys, "input": {"source": "first.npz", "second": "second.npz"},
                                  "fit": {"max_peaks": 1}}))
    assert "shift_mev" in open_results(run_pl(job, progress=False))
    with pytest.raises(OutputRefused, match=r"shift_second.zarr: a gpuproc pl results store exists and \[job\] "
                                            r"resume = false"):
        run_pl(job, progress=False)
    text = job.read_text()
    job.write_text(text.replace("resume = false", "resume = false\noverwrite = true"))
    assert "shift_mev" in open_results(run_pl(job, progress=False))
