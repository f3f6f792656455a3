"""The seeded synthetic runs behind the pull tests (tests/test_pulls_waxs.py, test_pulls_pl.py) and
benchmarks/pulls.py: each runs a pipeline on synthetic data with known truth and gives the pulls
(fit - truth) / reported error of every quantity it reports, by name (tests/pull_check.py).

WAXS: two 8 x 10 Pilatus 100k scans (seeds 0, 1) through ``run_waxs``; per-reflection parameters
against the per-spot truth, maps against the truth maps. The fitted ``amplitude`` is the spot's
peak height *in the cake*, whose bins broaden the spot (by ``cake_fwhm_q``, ``cake_fwhm_phi``,
stored per reflection) at constant integral, while the truth is the height on the detector in
counts; the truth is compared as ``amplitude x fwhm_q / sqrt(fwhm_q^2 + cake_fwhm_q^2) x (same in
phi)``.

PL map: a 32 x 32 pair (the second moved by whole pixels, so registration interpolates nothing)
through ``run_pl``; the single-peak pixels inside the crystal (~370; the stray light is left in
the spectra, so the fitted background is not zero): energy, FWHM, amplitude and area (true area:
the pixel's photons, counts, as ``per_channel`` spectra integrate to; true height: area / (sigma
sqrt(2 pi))); the shift map, whose error is that of the two energies, ``sqrt(err_first^2 +
err_second^2)``; in the two-peak pixels the second peak's energy (per-peak arrays). PL time
series: the fast and slow time constants and shifts of 3 events in each of 8 seeded series.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from pull_check import pulls

SEEDS = (0, 1)
SHAPE = (8, 10)
#: per-reflection result -> per-spot truth key
SPOT_TRUTH = {"q0": "q0", "fwhm_q": "fwhm_q", "phi0": "azimuth_deg", "fwhm_phi": "fwhm_phi_deg"}
#: map -> truth map
MAP_TRUTH = {"a": "a", "b": "b", "size": "size_nm", "strain": "strain", "orientation": "phi0_deg",
             "disorder": "disorder_deg"}
PERIOD = {"phi0": 360.0, "orientation": 360.0}

OFFSET = (2.0, -1.0)  #: whole pixels
TS_SEEDS = range(4, 12)
EVENT_QUANTITIES = ("tau_fast", "tau_slow", "shift_fast_mev", "shift_slow_mev")


def _cake_amplitude(ds: Any, truth: dict[str, np.ndarray], waxs: list[int]) -> np.ndarray:
    """True spot height as the cake shows it (see the module docstring), (y, x, reflection)."""
    out = truth["amplitude"][..., waxs]
    for width, cake in (("fwhm_q", "cake_fwhm_q"), ("fwhm_phi_deg", "cake_fwhm_phi")):
        w = truth[width][..., waxs]
        out = out * w / np.sqrt(w**2 + ds[cake].values ** 2)
    return out


def waxs_pulls(work: Path, seeds: tuple[int, ...] = SEEDS) -> dict[str, np.ndarray]:
    """Pulls of every WAXS quantity, pooled over the seeded scans (one run each, under ``work``)."""
    from gpuproc.io.results import open_results
    from gpuproc.waxs.demo_data import write_demo_job
    from gpuproc.waxs.job import load_job
    from gpuproc.waxs.pipeline import run_waxs

    out: dict[str, list[np.ndarray]] = {}
    for seed in seeds:
        job, scan = write_demo_job(work / f"pulls{seed}", SHAPE, seed=seed, figures=False,
                                   job_overrides={"device": "cpu"})
        ds = open_results(run_waxs(load_job(job)))
        t = scan.truth
        waxs = [i for i, r in enumerate(scan.reflections) if r.kind == "waxs"]
        names = [scan.reflections[i].name for i in waxs]
        if list(ds.reflection.values) != names:
            raise AssertionError(f"reflections {list(ds.reflection.values)} are not the synthetic scan's {names}")

        def spot(name: str) -> tuple[np.ndarray, np.ndarray]:
            return np.moveaxis(ds[name].values, 0, -1), np.moveaxis(ds[name + "_err"].values, 0, -1)

        for name, key in SPOT_TRUTH.items():
            out.setdefault(name, []).append(pulls(*spot(name), t[key][..., waxs], PERIOD.get(name)))
        out.setdefault("amplitude", []).append(pulls(*spot("amplitude"), _cake_amplitude(ds, t, waxs)))
        for name, key in MAP_TRUTH.items():
            out.setdefault(name, []).append(pulls(ds[name].values, ds[name + "_err"].values, t[key],
                                                  PERIOD.get(name)))
    return {k: np.concatenate(v) for k, v in out.items()}


def _h5(path: Path, m: Any) -> Path:
    with h5py.File(path, "w") as f:
        f["data"], f["axis"] = m.counts, m.wavelength
    return path


@dataclass
class PLMapRun:
    """A PL map pair run through ``run_pl``: the synthetic pair, both results and the pixels that
    count (inside the crystal, one true peak, one fitted)."""

    pair: Any
    ds: Any
    second: Any
    one: np.ndarray


def pl_map_run(work: Path) -> PLMapRun:
    """The 32 x 32 pair of the module docstring, fitted under ``work``."""
    from gpuproc.io.results import open_results
    from gpuproc.pl.job import job_from_dict
    from gpuproc.pl.pipeline import run_pl
    from gpuproc.synth.pl import BIAS_COUNTS, pl_map_pair

    pair = pl_map_pair((32, 32), 512, offset=OFFSET, seed=5)
    job = job_from_dict({"job": {"output": str(work / "pl.zarr"), "device": "cpu"},
                         "input": {"source": str(_h5(work / "a.h5", pair.first)),
                                   "second": str(_h5(work / "b.h5", pair.second))},
                         "spectra": {"dark": BIAS_COUNTS}})
    out = run_pl(job, progress=False)
    ds = open_results(out)
    t = pair.first.truth
    return PLMapRun(pair, ds, open_results(out.with_name(out.stem + "_second.zarr")),
                    t.inside & (t.n_peaks == 1) & (ds.n_peaks.values == 1))


def pl_map_pulls(run: PLMapRun) -> dict[str, np.ndarray]:
    """Pulls of the map quantities (module docstring): energy, fwhm_mev, amplitude, area,
    shift_mev and second_energy."""
    from gpuproc.synth.pl import FWHM_PER_SIGMA

    ds, one, t = run.ds, run.one, run.pair.first.truth
    area = t.brightness[one]
    height = area / (t.fwhm_mev[one] / 1e3 / FWHM_PER_SIGMA * np.sqrt(2 * np.pi))
    truth = {"energy": t.energy[one], "fwhm_mev": t.fwhm_mev[one], "amplitude": height, "area": area}
    err = {"energy": "energy_err", "fwhm_mev": "fwhm_err_mev", "amplitude": "amplitude_err", "area": "area_err"}
    out = {k: pulls(ds[k].values[one], ds[err[k]].values[one], v) for k, v in truth.items()}
    # shift: the second map's energy errors moved onto the first map's pixels
    dy, dx = (int(o) for o in OFFSET)
    e2 = np.full(one.shape, np.nan)
    e2[max(0, -dy):one.shape[0] - max(0, dy), max(0, -dx):one.shape[1] - max(0, dx)] = \
        run.second.energy_err.values[max(0, dy):one.shape[0] + min(0, dy), max(0, dx):one.shape[1] + min(0, dx)]
    err_shift = 1e3 * np.hypot(ds.energy_err.values, e2)
    out["shift_mev"] = pulls(ds.shift_mev.values[one], err_shift[one], run.pair.shift_mev[one])
    # the second peak of the two-peak pixels: the fitted peak nearest its true energy
    two = t.inside & (t.n_peaks == 2) & (ds.n_peaks.values == 2)
    e, de = ds.peak_energy.values[two][:, :2], ds.peak_energy_err.values[two][:, :2]
    other = np.argmin(np.abs(e - t.second_energy[two][:, None]), axis=1)[:, None]
    out["second_energy"] = pulls(np.take_along_axis(e, other, 1), np.take_along_axis(de, other, 1),
                                 t.second_energy[two][:, None])
    return out


def pl_event_pulls(work: Path) -> dict[str, np.ndarray]:
    """Pulls of the time constants and shifts of every event (:data:`EVENT_QUANTITIES`) in the
    :data:`TS_SEEDS` time series, fitted under ``work``."""
    from gpuproc.io.results import open_results
    from gpuproc.pl.job import job_from_dict
    from gpuproc.pl.pipeline import run_pl
    from gpuproc.synth.pl import BIAS_COUNTS, pl_timeseries

    out: dict[str, list[np.ndarray]] = {}
    for seed in TS_SEEDS:
        ts = pl_timeseries(seed=seed)
        np.savez(work / f"ts{seed}.npz", data=ts.counts, axis=ts.wavelength)
        job = job_from_dict({
            "job": {"output": str(work / f"ts{seed}.zarr"), "device": "cpu", "batch_rows": 128},
            "input": {"source": str(work / f"ts{seed}.npz"), "mode": "timeseries",
                      "events": [{"time": e.time, "label": e.label} for e in ts.events]},
            "spectra": {"dark": BIAS_COUNTS}, "fit": {"max_peaks": 2}})
        ds = open_results(run_pl(job, progress=False))
        for k in EVENT_QUANTITIES:
            truth = [getattr(e, k) for e in ts.events]
            out.setdefault(k, []).append(pulls(ds[f"event_{k}"].values, ds[f"event_{k}_err"].values, truth))
    return {k: np.concatenate(v) for k, v in out.items()}
