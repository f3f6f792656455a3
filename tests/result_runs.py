"""Small finished runs of both pipelines (tests/test_nexus.py, tests/test_units.py): a (6, 8)
synthetic WAXS scan, an (8, 10) PL map and a 120 s PL time series with one event, each also
written as NeXus by ``[job] nexus``."""

from pathlib import Path

import numpy as np
from run_helpers import demo_job, job_with_output

from gpuproc.pl.job import job_from_dict
from gpuproc.pl.pipeline import run_pl
from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map, pl_timeseries
from gpuproc.waxs.pipeline import run_waxs


def waxs_run(tmp: Path) -> tuple[Path, Path]:
    """(results store, NeXus file) of the synthetic WAXS scan."""
    job = job_with_output(demo_job(tmp), tmp / "w.zarr", nexus=tmp / "w.nxs")
    return run_waxs(job), tmp / "w.nxs"


def _pl(tmp: Path, counts: np.ndarray, axis: np.ndarray, **input_keys) -> tuple[Path, Path]:
    np.savez(tmp / "s.npz", data=counts, axis=axis)
    job = job_from_dict({"job": {"output": str(tmp / "p.zarr"), "device": "cpu", "batch_rows": 64,
                                 "nexus": str(tmp / "p.nxs")},
                         "input": {"source": str(tmp / "s.npz"), **input_keys},
                         "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS}, "fit": {"max_peaks": 2}})
    return run_pl(job, progress=False), tmp / "p.nxs"


def pl_map_run(tmp: Path) -> tuple[Path, Path]:
    """(results store, NeXus file) of an (8, 10) PL map with steps (0.5, 0.25) um."""
    m = pl_map((8, 10), 128, seed=3)
    return _pl(tmp, m.counts, m.wavelength, step_um=[0.5, 0.25])


def pl_series_run(tmp: Path) -> tuple[Path, Path]:
    """(results store, NeXus file) of a 120 s PL time series with its first stimulus event."""
    ts = pl_timeseries(120.0, 128, events=pl_timeseries().events[:1], seed=1)
    return _pl(tmp, ts.counts, ts.wavelength, mode="timeseries",
               events=[{"time": e.time, "label": e.label} for e in ts.events])
