"""End to end: synthetic PL files -> ingest -> run_pl -> results store, against ground truth."""

import h5py
import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from gpuproc.cli import main
from gpuproc.config import ConfigError
from gpuproc.io.results import open_results
from gpuproc.pl import pipeline
from gpuproc.pl.ingest import ingest_spectra, open_spectra
from gpuproc.pl.job import job_from_dict, load_job
from gpuproc.pl.pipeline import FLAG_NONFINITE, run_pl
from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map, pl_map_pair, pl_timeseries

DARK = BIAS_COUNTS + STRAY_COUNTS


def write_h5(path, m, step_um=(0.5, 0.5)):
    with h5py.File(path, "w") as f:
        f["data"] = m.counts
        f["axis"] = m.wavelength
        f["axis"].attrs["units"] = "nm"
        f.attrs["step_um"] = list(step_um)
    return path


def map_job(tmp, source, **sections):
    cfg = {"job": {"output": str(tmp / "out.zarr"), "device": "cpu", "batch_rows": 8},
           "input": {"source": str(source)}, "spectra": {"dark": DARK}}
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return job_from_dict(cfg)


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plmap")
    pair = pl_map_pair((24, 24), 512, seed=2)
    job = map_job(tmp, write_h5(tmp / "a.h5", pair.first), job={"figures": str(tmp / "figs")},
                  input={"second": str(write_h5(tmp / "b.h5", pair.second))})
    return pair, open_results(run_pl(job, progress=False)), tmp


def test_map_layout_units_and_provenance(mapped):
    _, ds, tmp = mapped
    assert ds.energy.dims == ("y", "x") and ds.peak_energy.dims == ("y", "x", "peak")
    assert ds.y.attrs["units"] == "um" and ds.x.attrs["units"] == "um"
    np.testing.assert_allclose(ds.x.values[:3], [0.0, 0.5, 1.0])  # step from the HDF5 attribute
    assert ds.energy.attrs["units"] == "eV" and ds.fwhm_mev.attrs["units"] == "meV"
    assert ds.shift_mev.attrs["units"] == "meV"
    assert ds.attrs["complete"] and ds.attrs["config"]["fit"]["max_peaks"] == 3 and "numpy" in ds.attrs["versions"]
    figures = {p.name for p in (tmp / "figs").iterdir()}
    assert {"energy_weighted.png", "fwhm_mev.png", "shift_mev.png", "spectra_examples.png"} <= figures


def test_map_recovers_truth(mapped):
    """Measured (seed 2): energy error median 0.11 meV; tolerances leave room for other seeds."""
    pair, ds, _ = mapped
    t = pair.first.truth
    one, two = t.inside & (t.n_peaks == 1), t.inside & (t.n_peaks == 2)
    assert np.median(1e3 * np.abs(ds.energy.values - t.energy)[one]) < 1.0
    assert np.median(np.abs(ds.fwhm_mev.values - t.fwhm_mev)[one]) < 2.0
    assert np.mean(ds.n_peaks.values[one] == 1) >= 0.95 and np.mean(ds.n_peaks.values[two] == 2) >= 0.85
    q1, med, q3 = ds.energy_quartiles.values
    assert q1 < med < q3 and abs(med - np.median(t.energy[t.inside])) < 0.01


def test_shift_map(mapped):
    """The crystal moved by (2.4, -1.7) px; the registered shift map matches the true one."""
    pair, ds, _ = mapped
    np.testing.assert_allclose(ds.attrs["registration_shift_px"], [-o for o in pair.offset], atol=0.2)
    truth = pair.shift_mev
    ok = np.isfinite(ds.shift_mev.values) & np.isfinite(truth) & (pair.first.truth.n_peaks == 1)
    assert ok.sum() > 100
    assert np.median(np.abs(ds.shift_mev.values - truth)[ok]) < 3.0  # measured ~1 meV


def test_timeseries_time_constants(tmp_path):
    ts = pl_timeseries(seed=1)
    np.savez(tmp_path / "ts.npz", data=ts.counts, axis=ts.wavelength)
    job = job_from_dict({
        "job": {"output": str(tmp_path / "ts.zarr"), "device": "cpu", "batch_rows": 128,
                "figures": str(tmp_path / "figs")},
        "input": {"source": str(tmp_path / "ts.npz"), "mode": "timeseries",
                  "events": [{"time": e.time, "label": e.label} for e in ts.events]},
        "spectra": {"dark": DARK}, "fit": {"max_peaks": 2}})
    ds = open_results(run_pl(job, progress=False))
    assert ds.energy.dims == ("time",) and ds.time.attrs["units"] == "s"
    assert ds.intensity.dims == ("time", "photon_energy") and ds.photon_energy.attrs["units"] == "eV"
    assert np.median(np.abs(ds.energy.values - ts.energy)) < 0.001
    for k, ev in enumerate(ts.events):  # measured: tau within 12 %, shifts within 0.3 meV
        assert ds.event_tau_fast.values[k] == pytest.approx(ev.tau_fast, rel=0.3)
        assert ds.event_tau_slow.values[k] == pytest.approx(ev.tau_slow, rel=0.3)
        assert ds.event_shift_fast_mev.values[k] == pytest.approx(ev.shift_fast_mev, abs=1.5)
        assert ds.event_shift_slow_mev.values[k] == pytest.approx(ev.shift_slow_mev, abs=1.5)
    assert str(ds.event_label.values[0]) == "+200 V on"
    assert {p.name for p in (tmp_path / "figs").iterdir()} == {"timeseries.png", "kymograph.png", "report.html"}


def test_cli_ingest_and_run(tmp_path):
    m = pl_map((8, 8), 256, seed=3)
    flat = m.counts.reshape(64, -1)  # a text file: axis column + one column per spectrum
    np.savetxt(tmp_path / "map.txt", np.column_stack([m.wavelength, flat.T]))
    runner = CliRunner()
    r = runner.invoke(main, ["pl", "ingest", str(tmp_path / "map.txt"), str(tmp_path / "s.zarr"),
                             "--shape", "8", "8", "--step-um", "0.2", "0.2"])
    assert r.exit_code == 0, r.output
    assert open_spectra(tmp_path / "s.zarr").spectra.shape == (8, 8, 256)
    (tmp_path / "job.toml").write_text(
        f'[job]\noutput = "res.zarr"\ndevice = "cpu"\n[input]\nsource = "s.zarr"\n[spectra]\ndark = {DARK}\n')
    r = runner.invoke(main, ["pl", "run", str(tmp_path / "job.toml"), "--no-progress"])
    assert r.exit_code == 0, r.output
    ds = open_results(tmp_path / "res.zarr")
    assert ds.energy.shape == (8, 8) and float(ds.x[1]) == pytest.approx(0.2)


def test_bad_job_and_inputs(tmp_path):
    (tmp_path / "job.toml").write_text('[job]\noutput = "o.zarr"\n[input]\nsource = "x.h5"\n[fit]\nmax_peak = 2\n')
    with pytest.raises(ConfigError, match="max_peak"):
        load_job(tmp_path / "job.toml")
    r = CliRunner().invoke(main, ["pl", "run", str(tmp_path / "job.toml")])
    assert r.exit_code != 0 and "max_peak" in r.output
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        run_pl(map_job(tmp_path, tmp_path / "missing.h5"), progress=False)
    m = pl_map((4, 4), 128, seed=0)
    np.savez(tmp_path / "short.npz", data=m.counts, axis=m.wavelength[:-3])
    with pytest.raises(ValueError, match="125 values but the spectra have 128"):
        ingest_spectra(tmp_path / "short.npz", tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="do not fill a map"):
        ingest_spectra(tmp_path / "short.npz", tmp_path / "s.zarr", axis=m.wavelength, shape=(3, 5))


def test_bad_pixels_are_flagged_not_fatal(tmp_path):
    m = pl_map((8, 8), 256, seed=4)
    m.counts[2, 3] = np.nan
    m.counts[5, 5, 10:20] = np.inf
    ds = open_results(run_pl(map_job(tmp_path, write_h5(tmp_path / "m.h5", m)), progress=False))
    flag = ds.flag.values
    assert flag[2, 3] & FLAG_NONFINITE and flag[5, 5] & FLAG_NONFINITE
    assert ds.n_peaks.values[2, 3] == 0 and np.isnan(ds.energy.values[2, 3])
    assert ds.attrs["n_nonfinite"] == 2 and np.isfinite(ds.energy_quartiles.values).all()


def test_interrupted_run_resumes_identically(tmp_path, monkeypatch):
    m = pl_map((16, 12), 256, seed=5)
    source = write_h5(tmp_path / "m.h5", m)
    reference = open_results(run_pl(map_job(tmp_path / "ref", source, job={"batch_rows": 4}), progress=False))
    job = map_job(tmp_path, source, job={"batch_rows": 4})
    real, calls = pipeline.fit_block, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "fit_block", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_pl(job, progress=False)
    group = zarr.open_group(str(job.job.output), mode="r")
    assert group.attrs["complete"] is False and list(group["run/done"][...]) == [True, True, False, False]
    monkeypatch.setattr(pipeline, "fit_block", real)
    ds = open_results(run_pl(job, progress=False))
    for name in ("energy", "fwhm_mev", "n_peaks", "peak_energy", "energy_quartiles"):
        np.testing.assert_array_equal(ds[name].values, reference[name].values)
