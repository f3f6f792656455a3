"""How many WAXS spot fits say CONVERGED without being a measurement (issue 10, honest fits).

Seeded synthetic scans (Pilatus 100k, 8 x 10 positions) through ``run_waxs``, one case per way a
fit can converge on nothing: a window whose middle a mask hides (a spot in a gap), an empty
window, a user mask exactly over a window, a window clipped by the cake's q range, spots
narrower than an azimuth bin; and the plain scan, to show what passes is unchanged. Per case:
the fits' status counts, how many are CONVERGED, and for those the error against the truth; or
the set-up error that refused the job. Writes ``benchmarks/results/honest_fits.json`` under a
label, so one file holds the comparison::

    python benchmarks/honest_fits.py --label after
    PYTHONPATH=/path/to/old/checkout python benchmarks/honest_fits.py --label before
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine  # noqa: E402

SHAPE = (8, 10)
SEED = 3


def status_counts(status: np.ndarray) -> dict[str, int]:
    from gpuproc.fit import Status

    return {Status(int(s)).name: int(n) for s, n in zip(*np.unique(status, return_counts=True))}


def run_case(job: Any, reflection: str, truth_q0: np.ndarray | None = None) -> dict[str, Any]:
    """Run ``job``; status counts of ``reflection`` and the q0 error of its CONVERGED fits."""
    from gpuproc.io.results import open_results
    from gpuproc.waxs.pipeline import run_waxs

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = open_results(run_waxs(job))
    except ValueError as exc:
        return {"refused": str(exc)}
    status = ds.fit_status.sel(reflection=reflection).values
    out: dict[str, Any] = {"status": status_counts(status), "converged": int((status == 0).sum()),
                           "n": int(status.size),
                           "warnings": sorted({str(w.message)[:160] for w in caught if "reflection" in str(w.message)})}
    if truth_q0 is not None and out["converged"]:
        d = np.abs(ds.q0.sel(reflection=reflection).values - truth_q0)[status == 0]
        out["converged_median_abs_q0_error"] = round(float(np.median(d)), 5)
    return out


def mask_file(work: Path, scan: Any, spec: Any, q_fraction: float) -> Path:
    """EDF mask (pyFAI convention, 1 = masked) over the central ``q_fraction`` of the window's q
    range and its full azimuth range."""
    import fabio

    q = scan.ai.center_array(scan.frame_shape, unit="q_A^-1")
    chi = scan.ai.center_array(scan.frame_shape, unit="chi_deg")
    lo, hi = spec.q_range
    a_lo, a_hi = spec.azimuth_range
    band = (np.abs(q - 0.5 * (lo + hi)) <= 0.5 * q_fraction * (hi - lo)) & (np.mod(chi - a_lo, 360.0) <= a_hi - a_lo)
    path = work / f"mask_{q_fraction}.edf"
    fabio.edfimage.EdfImage(data=band.astype(np.uint8)).write(str(path))
    return path


def measure(work: Path) -> dict[str, Any]:
    from gpuproc.io.results import open_results
    from gpuproc.synth.waxs import TruthModel
    from gpuproc.waxs.demo_data import write_demo_job
    from gpuproc.waxs.job import load_job
    from gpuproc.waxs.pipeline import run_waxs

    job, scan = write_demo_job(work / "scan", SHAPE, seed=SEED, figures=False, job_overrides={"device": "cpu"})
    t = scan.truth
    names = [r.name for r in scan.reflections]

    def cfg(name: str, **fit: Any) -> Any:
        c = load_job(job)
        c.job.output = work / f"{name}.zarr"
        for key, value in fit.items():  # keys an older tree may not have are simply not used there
            setattr(c.fit, key, value)
        return c

    out: dict[str, Any] = {}
    ds = open_results(run_waxs(cfg("plain")))
    out["plain"] = {"status": status_counts(ds.fit_status.values),
                    "median_abs_a_error": round(float(np.nanmedian(np.abs(ds.a.values - t["a"]))), 5),
                    "median_abs_b_error": round(float(np.nanmedian(np.abs(ds.b.values - t["b"]))), 5),
                    "median_rel_size_error": round(float(np.nanmedian(np.abs(ds["size"].values / t["size_nm"] - 1))), 4)}
    spec = scan.reflections[0]
    q0_100 = t["q0"][..., 0]
    for fraction in (0.4, 0.6):
        c = cfg(f"gap{fraction}")
        c.integration.mask = mask_file(work, scan, spec, fraction)
        out[f"gap_{fraction}_default"] = run_case(c, spec.name, q0_100)
        c = cfg(f"gap{fraction}_low", min_coverage=0.1)
        c.integration.mask = mask_file(work, scan, spec, fraction)
        out[f"gap_{fraction}_min_coverage_0.1"] = run_case(c, spec.name, q0_100)
    c = cfg("masked")
    c.integration.mask = mask_file(work, scan, spec, 1.0)
    out["user_mask_over_window"] = run_case(c, spec.name)
    c = cfg("empty")
    lo, hi = spec.azimuth_range
    c.reflections.append(dataclasses.replace(c.reflections[0], name="empty", azimuth_range=(lo + 225, hi + 225)))
    out["empty_window"] = run_case(c, "empty")
    c = cfg("clipped")
    c.integration.q_range = (c.integration.q_range[0], 2.2)
    out["window_clipped_by_q_range"] = run_case(c, "200", t["q0"][..., names.index("200")])

    narrow = TruthModel(size_center_nm=40, size_edge_nm=30, disorder_center_rad=0.002, disorder_edge_rad=0.004,
                        strain_mean=0.004, strain_std=0.0005)
    job_n, scan_n = write_demo_job(work / "narrow", SHAPE, seed=SEED, figures=False, model=narrow,
                                   job_overrides={"device": "cpu"})
    c = load_job(job_n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = open_results(run_waxs(c))
    status, fwhm, err = ds.fit_status.values, ds.fwhm_phi.values, ds.fwhm_phi_err.values
    ok = status == 0
    bin_deg = 360.0 / c.integration.npt_azimuth
    out["sub_bin_azimuthal_width"] = {
        "truth_fwhm_phi_deg": [round(float(scan_n.truth["fwhm_phi_deg"].min()), 3),
                               round(float(scan_n.truth["fwhm_phi_deg"].max()), 3)],
        "bin_deg": bin_deg, "status": status_counts(status), "converged": int(ok.sum()),
        "converged_below_one_bin": int((fwhm[ok] < bin_deg).sum()),
        "converged_error_not_below_value": int((~(err[ok] < fwhm[ok])).sum()),
        "converged_fwhm_phi_deg_min_median_max": [round(float(v), 4) for v in np.percentile(fwhm[ok], [0, 50, 100])],
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True, help="name of this measurement in honest_fits.json (before, after)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp))
    print(json.dumps(result, indent=2))
    path = RESULTS / "honest_fits.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("runs", {})[args.label] = {"machine": machine(), **result}
    path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
