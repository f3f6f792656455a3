"""The job files in examples/ load, and run on synthetic data of the names they use."""

import shutil
from pathlib import Path

import h5py
import numpy as np
from click.testing import CliRunner

from gpuproc.cli import main
from gpuproc.io.results import open_results

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_every_example_loads():
    from gpuproc.pl.job import load_job as load_pl
    from gpuproc.waxs.job import load_job as load_waxs

    files = sorted(EXAMPLES.glob("*.toml"))
    assert [f.name for f in files] == ["pl_map.toml", "pl_timeseries.toml", "waxs_scan.toml"]
    for f in files:
        job = (load_pl if f.name.startswith("pl_") else load_waxs)(f)
        assert job.job.output.parent == EXAMPLES  # relative paths: relative to the job file


def test_waxs_example_runs_on_synth_data(tmp_path):
    r = CliRunner().invoke(main, ["waxs", "synth", str(tmp_path), "--shape", "3", "4", "--seed", "3"])
    assert r.exit_code == 0, r.output
    shutil.copy(EXAMPLES / "waxs_scan.toml", tmp_path)
    r = CliRunner().invoke(main, ["waxs", "run", str(tmp_path / "waxs_scan.toml"), "--no-progress"])
    assert r.exit_code == 0, r.output
    ds = open_results(tmp_path / "results.zarr")
    truth = np.load(tmp_path / "truth.npz")
    for name in ("a", "b"):
        pull = (ds[name].values - truth[name]) / ds[name + "_err"].values
        assert np.all(np.abs(pull) < 4), (name, pull)
    assert {p.suffix for p in (tmp_path / "figures").iterdir()} == {".png", ".html"}  # figures + report.html


def test_pl_map_example_runs_on_synth_data(tmp_path):
    from gpuproc.synth.pl import pl_map_pair

    pair = pl_map_pair((12, 12), 256, seed=1)
    for name, m in (("map_pristine", pair.first), ("map_field", pair.second)):
        with h5py.File(tmp_path / f"{name}.h5", "w") as f:
            f["data"], f["axis"] = m.counts, m.wavelength
    shutil.copy(EXAMPLES / "pl_map.toml", tmp_path)
    r = CliRunner().invoke(main, ["pl", "run", str(tmp_path / "pl_map.toml")])
    assert r.exit_code == 0, r.output
    ds = open_results(tmp_path / "pl_map.zarr")
    one = pair.first.truth.inside & (pair.first.truth.n_peaks == 1)
    assert np.median(np.abs(ds.energy.values - pair.first.truth.energy)[one]) < 3 * np.median(ds.energy_err.values[one])
    assert "shift_mev" in ds and ds.attrs["step_um"] == [0.25, 0.25]  # the job's step (the files have none)
