"""Pulls (fit - truth) / error of every quantity the pipelines report, on seeded synthetic data.

A pull mean near 0 means unbiased, a pull sd near 1 means the reported errors are calibrated.
Writes ``benchmarks/results/pulls.json`` under a label (e.g. ``before`` / ``after`` a change), so
that one file holds the comparison::

    python benchmarks/pulls.py --label after
    PYTHONPATH=/path/to/old/checkout python benchmarks/pulls.py --label before   # an older tree

WAXS: scans of 8 x 10 positions (Pilatus 100k, two seeds) through ``run_waxs``; per-reflection
parameters against the per-spot truth, maps against the truth maps. PL: a 24 x 24 map through
``run_pl`` (energy and FWHM of single-peak pixels inside the crystal).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine  # noqa: E402

WAXS_PARAMS = {"q0": "q0", "fwhm_q": "fwhm_q", "phi0": "azimuth_deg", "fwhm_phi": "fwhm_phi_deg"}
WAXS_MAPS = {"a": "a", "b": "b", "size": "size_nm", "strain": "strain", "orientation": "phi0_deg",
             "disorder": "disorder_deg"}


def pull_stats(fit: np.ndarray, err: np.ndarray, truth: np.ndarray, period: float | None = None) -> dict[str, float]:
    d = np.asarray(fit, float) - np.asarray(truth, float)
    if period:
        d -= period * np.round(d / period)
    p = d / np.asarray(err, float)
    p = p[np.isfinite(p)]
    return {"n": int(p.size), "pull_mean": round(float(np.mean(p)), 3), "pull_sd": round(float(np.std(p)), 3),
            "median_error": float(f"{np.nanmedian(err):.4g}")}


def waxs_pulls(work: Path, seeds: tuple[int, ...] = (0, 1)) -> dict[str, dict[str, float]]:
    from gpuproc.io.results import open_results
    from gpuproc.waxs.demo_data import write_demo_job
    from gpuproc.waxs.job import load_job
    from gpuproc.waxs.pipeline import run_waxs

    fits: dict[str, list] = {}
    for seed in seeds:
        job, scan = write_demo_job(work / f"waxs{seed}", (8, 10), seed=seed, figures=False,
                                   job_overrides={"device": "cpu"})
        ds = open_results(run_waxs(load_job(job)))
        t = scan.truth
        waxs = [i for i, r in enumerate(scan.reflections) if r.kind == "waxs"]
        for name, key in WAXS_PARAMS.items():
            f = np.moveaxis(ds[name].values, 0, -1)[..., waxs]
            e = np.moveaxis(ds[name + "_err"].values, 0, -1)[..., waxs]
            fits.setdefault(name, []).append((f, e, t[key][..., waxs]))
        for name, key in WAXS_MAPS.items():
            fits.setdefault(name, []).append((ds[name].values, ds[name + "_err"].values, t[key]))
    periods = {"phi0": 360.0, "orientation": 360.0}
    return {name: pull_stats(*(np.concatenate([np.ravel(a) for a in parts]) for parts in zip(*runs)),
                             period=periods.get(name))
            for name, runs in fits.items()}


def pl_pulls(work: Path) -> dict[str, dict[str, float]]:
    import h5py

    from gpuproc.io.results import open_results
    from gpuproc.pl.job import job_from_dict
    from gpuproc.pl.pipeline import run_pl
    from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map

    m = pl_map((24, 24), 512, seed=3)
    with h5py.File(work / "map.h5", "w") as f:
        f["data"], f["axis"] = m.counts, m.wavelength
    job = job_from_dict({"job": {"output": str(work / "pl.zarr"), "device": "cpu"},
                         "input": {"source": str(work / "map.h5")},
                         "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS}})
    ds = open_results(run_pl(job, progress=False))
    one = m.truth.inside & (m.truth.n_peaks == 1) & (ds.n_peaks.values == 1)
    return {"energy": pull_stats(ds.energy.values[one], ds.energy_err.values[one], m.truth.energy[one]),
            "fwhm_mev": pull_stats(ds.fwhm_mev.values[one], ds.fwhm_err_mev.values[one], m.truth.fwhm_mev[one])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", required=True, help="name of this measurement in pulls.json (e.g. before, after)")
    args = ap.parse_args()
    import gpuproc

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = {"gpuproc_source": str(Path(gpuproc.__file__).parent), "waxs": waxs_pulls(work),
                  "pl": pl_pulls(work)}
    path = RESULTS / "pulls.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("runs", {})[args.label] = {"machine": machine(), **result}
    path.write_text(json.dumps(data, indent=2) + "\n")
    before = data["runs"].get("before", {})
    print(f"{'':5s}{'quantity':12s} {'n':>5s}  {'mean':>6s} {'sd':>5s}   before: {'mean':>6s} {'sd':>5s}")
    for family in ("waxs", "pl"):
        for name, s in result[family].items():
            b = before.get(family, {}).get(name)
            was = f"{b['pull_mean']:+6.2f} {b['pull_sd']:5.2f}" if b else "     -     -"
            print(f"{family:5s}{name:12s} {s['n']:5d}  {s['pull_mean']:+6.2f} {s['pull_sd']:5.2f}   before: {was}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
