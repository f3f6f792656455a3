"""Pulls of every PL quantity the pipeline reports, through ``run_pl`` on seeded synthetic data
against the truth of :mod:`gpuproc.synth.pl`; criterion in tests/pull_check.py.

Map (32 x 32, the first map of a pair, ~370 single-peak pixels inside the crystal; the stray
light is left in the spectra, so the fitted background is not zero): energy, FWHM, amplitude and
area of the single peak (true area: the pixel's photons, counts, as ``per_channel`` spectra
integrate to; true height: area / (sigma sqrt(2 pi))). The centroid has no reported error: its
bias is tested against the standard error of its mean over the pixels. The shift map has no
reported error either: the pair is moved by whole pixels (registration then interpolates
nothing) and its error is that of the two energies, ``sqrt(err_first^2 + err_second^2)``.
Per-peak arrays: the second peak's energy in the two-peak pixels. Time series: the fast and
slow time constants and shifts of 3 events in each of 8 seeded series (24 pulls per quantity).
"""

import h5py
import numpy as np
import pytest
from pull_check import assert_calibrated, pulls

from gpuproc.io.results import open_results
from gpuproc.pl.job import job_from_dict
from gpuproc.pl.pipeline import run_pl
from gpuproc.synth.pl import BIAS_COUNTS, FWHM_PER_SIGMA, pl_map_pair, pl_timeseries

OFFSET = (2.0, -1.0)  #: whole pixels
TS_SEEDS = range(4, 12)
EVENT_QUANTITIES = ("tau_fast", "tau_slow", "shift_fast_mev", "shift_slow_mev")


def _h5(path, m):
    with h5py.File(path, "w") as f:
        f["data"], f["axis"] = m.counts, m.wavelength
    return path


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plpulls")
    pair = pl_map_pair((32, 32), 512, offset=OFFSET, seed=5)
    job = job_from_dict({"job": {"output": str(tmp / "pl.zarr"), "device": "cpu"},
                         "input": {"source": str(_h5(tmp / "a.h5", pair.first)),
                                   "second": str(_h5(tmp / "b.h5", pair.second))},
                         "spectra": {"dark": BIAS_COUNTS}})
    out = run_pl(job, progress=False)
    second = open_results(out.with_name(out.stem + "_second.zarr"))
    ds = open_results(out)
    t = pair.first.truth
    one = t.inside & (t.n_peaks == 1) & (ds.n_peaks.values == 1)
    return pair, ds, second, one


@pytest.fixture(scope="module")
def map_pulls(mapped):
    pair, ds, _, one = mapped
    t = pair.first.truth
    area = t.brightness[one]
    height = area / (t.fwhm_mev[one] / 1e3 / FWHM_PER_SIGMA * np.sqrt(2 * np.pi))
    truth = {"energy": t.energy[one], "fwhm_mev": t.fwhm_mev[one], "amplitude": height, "area": area}
    err = {"energy": "energy_err", "fwhm_mev": "fwhm_err_mev", "amplitude": "amplitude_err", "area": "area_err"}
    return {k: pulls(ds[k].values[one], ds[err[k]].values[one], v) for k, v in truth.items()}


@pytest.mark.parametrize("name", [
    "energy", "fwhm_mev", "amplitude",
    pytest.param("area", marks=pytest.mark.xfail(strict=True, reason=(
        "measured n=372: pull mean +0.02, sd 0.61-0.64: area_err neglects the (negative) "
        "amplitude-width covariance (gpuproc.pl.peaks; the engine does not return covariances)"))),
])
def test_map_pulls(map_pulls, name):
    """Measured (n=372): energy +0.02/1.01, fwhm -0.05/0.96, amplitude +0.01/0.91 (mean/sd)."""
    assert_calibrated(map_pulls[name], name, min_n=300)


def test_centroid_unbiased(mapped):
    """Measured: bias -0.004 meV, scatter 0.17 meV over 372 pixels (standard error 0.009 meV)."""
    pair, ds, _, one = mapped
    d = ds.centroid.values[one] - pair.first.truth.energy[one]
    assert d.size >= 300
    assert abs(d.mean()) <= 3.0 * d.std() / np.sqrt(d.size), (d.mean(), d.std())
    # a model-free centroid scatters more than the fitted energy, but not by more than 2x
    assert np.median(ds.energy_err.values[one]) < d.std() < 2.0 * np.median(ds.energy_err.values[one])


def test_shift_map_pulls(mapped):
    pair, ds, second, one = mapped
    np.testing.assert_allclose(ds.attrs["registration_shift_px"], [-o for o in OFFSET], atol=0.05)
    dy, dx = (int(o) for o in OFFSET)
    e2 = np.full(one.shape, np.nan)
    e2[max(0, -dy):one.shape[0] - max(0, dy), max(0, -dx):one.shape[1] - max(0, dx)] = \
        second.energy_err.values[max(0, dy):one.shape[0] + min(0, dy), max(0, dx):one.shape[1] + min(0, dx)]
    err = 1e3 * np.hypot(ds.energy_err.values, e2)
    p = pulls(ds.shift_mev.values[one], err[one], pair.shift_mev[one])
    assert_calibrated(p, "shift_mev", min_n=300)


@pytest.fixture(scope="module")
def event_pulls(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tspulls")
    out: dict[str, list[np.ndarray]] = {}
    for seed in TS_SEEDS:
        ts = pl_timeseries(seed=seed)
        np.savez(tmp / f"ts{seed}.npz", data=ts.counts, axis=ts.wavelength)
        job = job_from_dict({
            "job": {"output": str(tmp / f"ts{seed}.zarr"), "device": "cpu", "batch_rows": 128},
            "input": {"source": str(tmp / f"ts{seed}.npz"), "mode": "timeseries",
                      "events": [{"time": e.time, "label": e.label} for e in ts.events]},
            "spectra": {"dark": BIAS_COUNTS}, "fit": {"max_peaks": 2}})
        ds = open_results(run_pl(job, progress=False))
        for k in EVENT_QUANTITIES:
            truth = [getattr(e, k) for e in ts.events]
            out.setdefault(k, []).append(pulls(ds[f"event_{k}"].values, ds[f"event_{k}_err"].values, truth))
    return {k: np.concatenate(v) for k, v in out.items()}


@pytest.mark.parametrize("name", EVENT_QUANTITIES)
def test_time_constant_pulls(event_pulls, name):
    assert_calibrated(event_pulls[name], name, min_n=len(TS_SEEDS) * 3)


def test_per_peak_arrays(mapped):
    """The per-peak arrays: the dominant peak's entries are the maps' values, and in the pixels
    with two emission peaks the second peak's energy (70-100 meV from the main one, 30-40 % of
    the photons) against its truth in its own reported errors (measured: n=65, pull mean -0.18,
    sd 0.90)."""
    pair, ds, _, one = mapped
    t = pair.first.truth
    np.testing.assert_allclose(ds.peak_fwhm_mev.values[one][:, 0], ds.fwhm_mev.values[one], rtol=1e-6)
    np.testing.assert_allclose(ds.peak_energy.values[one][:, 0], ds.energy.values[one], rtol=1e-9)
    two = t.inside & (t.n_peaks == 2) & (ds.n_peaks.values == 2)
    e, err = ds.peak_energy.values[two][:, :2], ds.peak_energy_err.values[two][:, :2]
    other = np.argmin(np.abs(e - t.second_energy[two][:, None]), axis=1)[:, None]
    p = pulls(np.take_along_axis(e, other, 1), np.take_along_axis(err, other, 1), t.second_energy[two][:, None])
    assert_calibrated(p, "second peak energy", min_n=40)
