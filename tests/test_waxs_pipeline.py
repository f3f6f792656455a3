"""The WAXS pipeline end to end on a synthetic scan with ground truth.

Tolerances (median over positions of |recovered - true|), stated for a 6 x 8 scan on a
Pilatus100k at ~300 counts per spot maximum:
  a, b          0.003 A      (the truth is ~5.87 A; recovered a/b are ~0.001 A high, see README)
  size          15 %         (instrumental pixel broadening is not subtracted here)
  strain        0.003        (truth ~0.018)
  orientation   0.2 deg
  disorder      0.57 degree  (truth 1.1-2.9 degree)
"""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gpuproc.cli import main
from gpuproc.config import ConfigError
from gpuproc.io.results import open_results
from gpuproc.io.store import ingest_frames
from gpuproc.waxs import pipeline
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import run_waxs


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("waxs")
    job, scan = write_demo_job(d, (6, 8), "Pilatus100k", seed=3, figures=False)
    return job, scan


@pytest.fixture(scope="module")
def results(demo):
    job, scan = demo
    return open_results(run_waxs(job)), scan


def test_recovers_ground_truth(results):
    ds, scan = results
    t = scan.truth
    assert (ds.fit_status.values == 0).mean() > 0.98
    med = lambda k, tk: float(np.nanmedian(np.abs(ds[k].values - t[tk])))  # noqa: E731
    assert med("a", "a") < 0.003 and med("b", "b") < 0.003
    assert float(np.nanmedian(np.abs(ds["size"].values / t["size_nm"] - 1))) < 0.15
    assert med("strain", "strain") < 0.003
    d = ds["orientation"].values - t["phi0_deg"]
    assert np.nanmedian(np.abs(d - 360 * np.round(d / 360))) < 0.2
    assert med("disorder", "disorder_deg") < np.degrees(0.01)
    # the orientation domains and the size gradient are resolved: maps correlate with the truth
    assert np.corrcoef(ds["size"].values.ravel(), t["size_nm"].ravel())[0, 1] > 0.7


def test_results_are_self_describing(results, demo):
    ds, _ = results
    assert ds["q0"].dims == ("reflection", "y", "x") and ds["a"].dims == ("y", "x")
    assert ds["y"].attrs["units"] == "um" and ds["q0"].attrs["units"] == "1/angstrom"
    assert ds["size"].attrs["units"] == "nm" and ds["disorder"].attrs["units"] == "degree"
    np.testing.assert_allclose(ds["x"].values[:3], [0, 0.3, 0.6])
    assert ds.attrs["config"]["integration"]["npt_q"] == 300
    assert "pyfai" in ds.attrs["versions"] and ds.attrs["complete"]
    assert list(ds["statistic"].values) == ["mean", "q1", "median", "q3", "n"]
    assert ds["mean_cake"].dims == ("cake_azimuth", "cake_q")


def test_hdf5_source_gives_identical_results(demo, results, tmp_path):
    job, scan = demo
    scan.write_hdf5(tmp_path / "scan.h5")
    cfg = load_job(job)
    cfg.input.source = f"{tmp_path / 'scan.h5'}::/entry/data/data"
    cfg.input.scan_shape = scan.shape
    cfg.input.step_um = (0.3, 0.3)
    cfg.job.output = tmp_path / "from_h5.zarr"
    ds_h5 = open_results(run_waxs(cfg))
    ds, _ = results
    for name in ("q0", "fwhm_phi", "a", "size", "orientation"):
        np.testing.assert_array_equal(ds_h5[name].values, ds[name].values)


def test_fabio_frames_give_identical_results(demo, results, tmp_path):
    job, scan = demo
    scan.write_frames(tmp_path / "edf", fmt="edf")
    ingest_frames(str(tmp_path / "edf" / "*.edf"), tmp_path / "edf.zarr", scan_shape=scan.shape, step_um=(0.3, 0.3))
    cfg = load_job(job)
    cfg.input.source = str(tmp_path / "edf.zarr")
    cfg.job.output = tmp_path / "from_edf.zarr"
    ds_edf = open_results(run_waxs(cfg))
    ds, _ = results
    np.testing.assert_array_equal(ds_edf["q0"].values, ds["q0"].values)


def test_interrupted_run_resumes_to_identical_results(demo, results, tmp_path, monkeypatch):
    job, _ = demo
    cfg = load_job(job)
    cfg.job.output = tmp_path / "resumed.zarr"
    cfg.job.batch_frames = 16  # 3 blocks of 2 rows
    real = pipeline.process_block
    calls = {"n": 0}

    def dies_on_second_block(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "process_block", dies_on_second_block)
    with pytest.raises(KeyboardInterrupt):
        run_waxs(cfg)
    with pytest.raises(ValueError, match="has not finished"):
        open_results(cfg.job.output)
    monkeypatch.setattr(pipeline, "process_block", real)
    ds = open_results(run_waxs(cfg))
    ref, _ = results
    for name in ("q0", "a", "strain", "fit_status"):
        np.testing.assert_array_equal(ds[name].values, ref[name].values)


def test_bad_job_files_name_the_problem(demo, tmp_path):
    job, scan = demo
    text = Path(job).read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("npt_q = 300", "npt_q = 300\nnpt_qq = 3"))
    with pytest.raises(ConfigError, match=r"bad.toml integration: unknown key\(s\) \['npt_qq'\]"):
        load_job(bad)
    bad.write_text(text.replace("npt_q = 300", 'npt_q = "many"'))
    with pytest.raises(ConfigError, match="integration npt_q: expected int, got 'many'"):
        load_job(bad)
    cfg = load_job(job)
    cfg.integration.poni = tmp_path / "missing.poni"
    with pytest.raises(FileNotFoundError, match="missing.poni"):
        run_waxs(cfg)
    cfg = load_job(job)
    cfg.reflections[0].q_range = (3.0, 3.2)
    with pytest.raises(ValueError, match="reflection '100': q window"):
        run_waxs(cfg)


def test_all_masked_window_is_rejected(demo, tmp_path):
    job, scan = demo
    cfg = load_job(job)
    spec = cfg.reflections[0]
    q = scan.ai.qArray(scan.frame_shape) / 10.0  # nm^-1 -> A^-1
    chi = np.degrees(scan.ai.chiArray(scan.frame_shape))
    in_q = (q >= spec.q_range[0] - 0.02) & (q <= spec.q_range[1] + 0.02)
    in_phi = np.mod(chi - spec.azimuth_range[0] + 2, 360.0) <= spec.azimuth_range[1] - spec.azimuth_range[0] + 4
    mask = (in_q & in_phi).astype(np.uint8)  # the whole window of reflection '100', nothing else
    import fabio

    fabio.edfimage.EdfImage(data=mask).write(str(tmp_path / "mask.edf"))
    cfg.integration.mask = tmp_path / "mask.edf"
    cfg.job.output = tmp_path / "masked.zarr"
    with pytest.raises(ValueError, match="reflection '100': 0% of its window's bins"):
        run_waxs(cfg)


def test_cli_synth_and_run(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["waxs", "synth", str(tmp_path / "d"), "--shape", "2", "3"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["waxs", "run", str(tmp_path / "d" / "job.toml"), "--no-progress"])
    assert r.exit_code == 0, r.output
    ds = open_results(tmp_path / "d" / "results.zarr")
    assert ds["a"].shape == (2, 3)
    assert sorted(p.name for p in (tmp_path / "d" / "figures").glob("*.png"))


@pytest.mark.gpu
def test_gpu_pipeline_equals_cpu(demo, results, tmp_path):
    job, _ = demo
    cfg = load_job(job)
    cfg.job.device = "gpu"
    cfg.job.output = tmp_path / "gpu.zarr"
    ds_gpu = open_results(run_waxs(cfg))
    ds, _ = results
    np.testing.assert_array_equal(ds_gpu["fit_status"].values, ds["fit_status"].values)
    ok = ds["fit_status"].values == 0
    for name in ("q0", "fwhm_q", "phi0", "fwhm_phi"):
        d = np.abs(ds_gpu[name].values - ds[name].values)[ok] / ds[name + "_err"].values[ok]
        assert np.nanmax(d) < 0.05, name


def test_example_job_file_parses():
    job = load_job(Path(__file__).resolve().parents[1] / "examples" / "waxs_scan.toml")
    assert [r.name for r in job.reflections] == ["100", "010", "110", "200"]
    assert job.integration.poni.name == "geometry.poni" and job.integration.poni.is_absolute()
