"""PL map pipeline end to end: spectra/s for a synthetic ``size x size x channels`` map read from
Zarr, against its own stages alone and against a scipy curve_fit loop.

Contenders, all timed by benchmarks/common.py alike (set-up apart, one untimed warm-up run
each, median/min/max of ``--repeats`` alternating runs):

- ``ours``: ``run_pl`` on the ingested store (read blocks, dark, spikes, energy axis + Jacobian,
  noise-model weights, 1..3 Gaussians + linear background with BIC, write results, figures off),
  into a fresh results store each run; its stage timings (results attribute ``timings``) are
  collected per run when the pipeline records them;
- floors, each stage alone with all cores on ``--floor-rows`` map rows held in memory: ``read``
  (the store's blocks read and decoded), ``preprocess`` (the pipeline's Preprocessor) and
  ``fit`` (:func:`gpuproc.pl.peaks.fit_peaks`, the same ladder and selection), the rows spread
  evenly over the map so that they hold its mix of crystal and dark pixels;
- ``curve_fit_shortcut`` and ``curve_fit_full_ladder``: a per-spectrum scipy ``curve_fit``
  loop (analytic Jacobian, noise-model sigma) on ``--ref`` preprocessed spectra drawn (seeded)
  from the whole map (crystal and dark pixels as ours sees them), doing the same
  model selection as ours (BIC among admissible fits: converged, every peak's height and area
  >= 3 errors, centre inside the window, width between one channel and a quarter of the
  window, BIC below the background alone's). ``shortcut`` stops the ladder at the first
  inadmissible fit, as ours does (fits per spectrum reported); ``full_ladder`` always fits 1,
  2 and 3 peaks. Their time counts the fits only (preprocessing excluded, which favours them).

The synthetic store is cached under ``--data`` (rendered once per size). Writes
benchmarks/results/pl_<device>.json.

    python benchmarks/bench_pl.py [--size 200] [--channels 1024] [--ref 200] [--device cpu] [--force]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.optimize import curve_fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (Contender, Session, add_arguments, compare, ratio, read_timings,  # noqa: E402
                    stage_breakdown, timed_setup)

from gpuproc.backend import resolve_device  # noqa: E402
from gpuproc.fit import get_model  # noqa: E402
from gpuproc.pl.ingest import ingest_spectra, open_spectra  # noqa: E402
from gpuproc.pl.job import job_from_dict  # noqa: E402
from gpuproc.pl.peaks import fit_peaks  # noqa: E402
from gpuproc.pl.pipeline import preprocessor, run_pl  # noqa: E402
from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map  # noqa: E402

MAX_PEAKS = 3
MIN_SIGNIFICANCE = 3.0
BATCH_ROWS = 16
DATA = Path(tempfile.gettempdir()) / "gpuproc-bench-data"


def dataset(folder: Path, size: int, channels: int) -> tuple[Path, np.ndarray]:
    """The ingested synthetic map (rendered once into ``folder``) and its (size, size) crystal mask."""
    folder = folder / f"pl_{size}x{size}x{channels}_seed0"
    store, inside = folder / "map.zarr", folder / "inside.npy"
    if not (store.exists() and inside.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        m = pl_map((size, size), channels, seed=0)
        np.save(folder / "map.npy", m.counts)
        ingest_spectra(folder / "map.npy", store, axis=m.wavelength, axis_unit="nm", overwrite=True)
        (folder / "map.npy").unlink()
        np.save(inside, m.truth.inside)
    return store, np.load(inside)


def _bic(n: int, rss: float, k: int) -> float:
    return n * np.log(rss / n) + k * np.log(n)


def _admissible(p: np.ndarray, cov: np.ndarray, n_peaks: int, e: np.ndarray) -> bool:
    """The pipeline's admissibility rule (gpuproc.pl.peaks) for one curve_fit result."""
    err = np.sqrt(np.abs(np.diag(cov)))
    peaks, errs = p[: 3 * n_peaks].reshape(n_peaks, 3), err[: 3 * n_peaks].reshape(n_peaks, 3)
    lo, hi = float(e.min()), float(e.max())
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_area2 = (errs[:, 0] / peaks[:, 0]) ** 2 + (errs[:, 2] / peaks[:, 2]) ** 2
    ok = ((peaks[:, 0] >= MIN_SIGNIFICANCE * errs[:, 0]) & (rel_area2 * MIN_SIGNIFICANCE**2 <= 1.0)
          & (peaks[:, 1] >= lo) & (peaks[:, 1] <= hi) & (peaks[:, 2] < 0.25 * (hi - lo))
          & (peaks[:, 2] >= (hi - lo) / (e.size - 1)) & (errs[:, 0] > 0))
    return bool(np.all(ok) and np.all(np.isfinite(err)))


def ref_select(e: np.ndarray, y: np.ndarray, w: np.ndarray, shortcut: bool) -> tuple[float, int, int]:
    """One spectrum by curve_fit: 1..3 peaks, BIC among admissible fits; (dominant energy, n_peaks, fits)."""
    sigma = 1.0 / np.sqrt(np.maximum(w, 1e-30))
    x2 = e[None]
    basis = np.stack([np.ones_like(e), e], axis=1) * np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(basis, y * np.sqrt(w), rcond=None)[0]
    bic0 = _bic(e.size, float(np.sum((y * np.sqrt(w) - basis @ coef) ** 2)), 2)  # background alone
    best, p, fits = (np.inf, np.nan, 0), None, 0
    for n in range(1, MAX_PEAKS + 1):
        m = get_model("gauss1d", n_peaks=n, background="linear")
        p0 = m.guess(x2, y[None].astype(np.float32), w[None].astype(np.float32))[0] if p is None else _next(m, e, y, w, p)
        fits += 1
        try:
            p, cov = curve_fit(lambda _, *q: m.evaluate(x2, np.asarray(q)[None])[0], None, y, p0=p0, sigma=sigma,
                               jac=lambda _, *q: m.jacobian(x2, np.asarray(q)[None])[0], maxfev=2000)
        except RuntimeError:
            break
        bic = _bic(e.size, float(np.sum(w * (y - m.evaluate(x2, p[None])[0]) ** 2)), m.n_params)
        admissible = _admissible(p, cov, n, e) and bic < bic0
        if admissible and bic < best[0]:
            peaks = p[: 3 * n].reshape(n, 3)
            best = (bic, float(peaks[np.argmax(np.abs(peaks[:, 0] * peaks[:, 2])), 1]), n)
        if shortcut and not admissible:
            break
    return best[1], best[2], fits


def _next(m, e: np.ndarray, y: np.ndarray, w: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Previous parameters plus a peak at the largest smoothed weighted residual."""
    n_prev = m.n_peaks - 1
    prev = get_model("gauss1d", n_peaks=n_prev, background="linear")
    resid = y - prev.evaluate(e[None], p[None])[0]
    width = max(3, int(round(abs(p[2]) / np.mean(np.diff(e)))))
    i = int(np.argmax(ndimage.uniform_filter1d(resid * np.sqrt(w), width)))
    new = [max(ndimage.uniform_filter1d(resid, width)[i], 1e-6 * y.max()), e[i], 0.6 * abs(p[2])]
    return np.concatenate([p[: 3 * n_prev], new, p[3 * n_prev:]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--channels", type=int, default=1024)
    ap.add_argument("--ref", type=int, default=200, help="spectra fitted by the curve_fit loops")
    ap.add_argument("--floor-rows", type=int, default=32, help="map rows the stage floors process")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", type=Path, default=DATA, help="cache folder of the synthetic spectra store")
    args = add_arguments(ap).parse_args()
    device = resolve_device(args.device)
    session = Session(f"pl_{device}", force=args.force)
    store, inside = dataset(args.data, args.size, args.channels)
    out = Path(tempfile.mkdtemp(prefix="bench_pl_")) / "res.zarr"
    job = job_from_dict({"job": {"output": str(out), "device": device, "batch_rows": BATCH_ROWS, "resume": False,
                                 "overwrite": True},
                         "input": {"source": str(store)}, "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS},
                         "fit": {"max_peaks": MAX_PEAKS, "min_significance": MIN_SIGNIFICANCE}})
    n = args.size**2
    sp = open_spectra(store)
    prep, prep_setup = timed_setup(lambda: preprocessor(job, sp))
    rows = min(args.floor_rows, args.size)
    spread = np.unique(np.linspace(0, args.size - 1, rows).round().astype(int))  # the map's mix of pixels
    counts = np.asarray(sp.spectra.oindex[spread])
    y_floor, w_floor, _, _ = prep(counts.reshape(-1, counts.shape[-1]), np)

    def read() -> None:  # whole blocks, as the run reads them (the cost does not depend on the content)
        for r in range(0, len(spread), BATCH_ROWS):
            np.asarray(sp.spectra[r:r + BATCH_ROWS])

    def fit_alone() -> Any:
        return fit_peaks(y_floor, prep.energy, max_peaks=MAX_PEAKS, background="linear", weights=w_floor,
                         min_significance=MIN_SIGNIFICANCE, device=device)

    flat = np.sort(np.random.default_rng(0).choice(n, min(args.ref, n), replace=False))  # seeded, whole map
    pick = np.stack(np.unravel_index(flat, inside.shape), axis=-1)
    y_ref, w_ref, _, _ = prep(np.stack([sp.spectra[tuple(p)] for p in pick]), np)
    y_ref, w_ref = y_ref.astype(np.float64), np.broadcast_to(w_ref, y_ref.shape).astype(np.float64)

    def reference(shortcut: bool) -> list[tuple[float, int, int]]:
        return [ref_select(prep.energy, y_ref[k], w_ref[k], shortcut) for k in range(len(pick))]

    floor_items = len(spread) * args.size
    contenders = [
        Contender("ours", lambda: run_pl(job, progress=False), n, after=lambda _: read_timings(out)),
        Contender("floor_read", read, floor_items),
        Contender("floor_preprocess", lambda: prep(counts.reshape(-1, counts.shape[-1]), np), floor_items),
        Contender("floor_fit", fit_alone, floor_items),
        Contender("curve_fit_shortcut", lambda: reference(True), len(pick)),
        Contender("curve_fit_full_ladder", lambda: reference(False), len(pick)),
    ]
    timing = compare(contenders, args.repeats)
    by = {c.name: c for c in contenders}
    for name in ("floor_read", "floor_preprocess", "floor_fit"):
        timing[name]["setup_s"] = prep_setup
    timing["ours"]["setup_s"] = (stage_breakdown(timing["ours"].get("per_run", [])) or {}).get(
        "stages_s_median", {}).get("setup")
    import zarr

    res = zarr.open_group(str(out), mode="r")
    our_e = np.array([res["energy"][tuple(p)] for p in pick])
    our_n = np.array([res["n_peaks"][tuple(p)] for p in pick])
    floor_maps = by["floor_fit"].last
    our_fits = 1 + np.isfinite(np.asarray(floor_maps.bic)[..., :-1]).sum(axis=-1)  # (N+1) tried where N admissible
    agreement = {}
    for name in ("curve_fit_shortcut", "curve_fit_full_ladder"):
        ref = by[name].last
        ref_e, ref_n = np.array([r[0] for r in ref]), np.array([r[1] for r in ref])
        agreement[name] = {"median_abs_energy_diff_mev": float(np.nanmedian(np.abs(ref_e - our_e)) * 1e3),
                           "n_peaks_agree_fraction": float(np.mean(ref_n == our_n)),
                           "fits_per_spectrum": float(np.mean([r[2] for r in ref]))}
    ours = timing["ours"]
    floor_ms = {k: timing[f"floor_{k}"]["per_item_ms"]["median"] for k in ("read", "preprocess", "fit")}
    summary = {
        "speedup_vs_curve_fit_shortcut": ratio(ours, timing["curve_fit_shortcut"]),
        "speedup_vs_curve_fit_full_ladder": ratio(ours, timing["curve_fit_full_ladder"]),
        "fit_only_vs_curve_fit_shortcut": ratio(timing["floor_fit"], timing["curve_fit_shortcut"]),
        "end_to_end_fraction_of_fit_only": timing["floor_fit"]["per_item_ms"]["median"] / ours["per_item_ms"]["median"],
        "floors_per_spectrum_ms": {**floor_ms, "sum": sum(floor_ms.values())},
        "end_to_end_over_sum_of_floors": ours["per_item_ms"]["median"] / sum(floor_ms.values()),
        "our_fits_per_spectrum": float(np.mean(our_fits)),
        "crystal_fraction": {"map": float(inside.mean()), "floor_rows": float(inside[spread].mean()),
                             "reference_spectra": float(inside[tuple(pick.T)].mean())},
    }
    for name, t in timing.items():
        print(f"{name:22s} {t['items_per_s']:10.1f} spectra/s  ({t['per_item_ms']['median']:.3f} ms; "
              f"{t['per_item_ms']['min']:.3f}-{t['per_item_ms']['max']:.3f})")
    print({k: v for k, v in summary.items()})
    print(agreement)
    session.write({
        "benchmark": "bench_pl.py",
        "question": "PL map end to end from Zarr (run_pl) vs its stages alone and a curve_fit loop with the same "
                    "BIC selection (with and without the ladder shortcut)",
        "map": [args.size, args.size, args.channels], "max_peaks": MAX_PEAKS, "device": device,
        "batch_rows": BATCH_ROWS, "floor_rows": len(spread),
        "timing": timing,
        "stages": stage_breakdown(ours.get("per_run", [])),
        **summary,
        "agreement_with_ours": agreement,
        "notes": "curve_fit loops: fits only (preprocessing excluded), one thread, analytic Jacobian; floors and "
                 "ours use every CPU; ours includes set-up, reading, writing and finalize (figures off)",
    })


if __name__ == "__main__":
    main()
