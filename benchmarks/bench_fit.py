"""Fits per second of the batched engine versus a scipy curve_fit loop, on the same data.

Problems (Poisson noise, seeded):
  PL-like    : 1024 channels, one Gaussian + constant (4 parameters), non-uniform energy axis
  Bragg-like : 40 x 60 (q, azimuth) window, gauss2d_polar (7 parameters)
  PL-pV, Bragg-pV: the same problems with pseudo-Voigt lines (eta 0.5) fitted by peaks1d
               ("pvoigt", 5 free of 6 parameters) and pvoigt2d_polar (8): the cost of the new models
The reference is scipy.optimize.curve_fit called once per fit with the analytic Jacobian, from
the same starting values our automatic guess produces (so both solve the same problems).
Ours runs on every CPU this process may use, and on the GPU when CuPy sees one (data already on
the device). Both sides are timed by benchmarks/common.py the same way: one-off set-up apart
(our first call: library load or kernel build; the reference's first curve_fit), one untimed
warm-up run each, then the median (min, max) of ``--repeats`` alternating runs; the reference
fits a subset, so the ratio is per fit. Writes benchmarks/results/fit_<device>.json.

    python benchmarks/bench_fit.py [--quick] [--repeats 5] [--force]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import curve_fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import Contender, add_arguments, compare, device_sessions, ratio, timed_setup  # noqa: E402
from fit_problems import bragg_problem, pl_problem  # noqa: E402

from gpuproc.fit import fit, get_model  # noqa: E402


def curve_fit_loop(model, x: np.ndarray, y: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """Per-fit scipy loop from the starts ``p0`` over the parameters the model does not hold; the
    fitted parameters (NaN where it failed)."""
    xs = x.astype(np.float64)
    free = np.array([i not in model.held for i in range(model.n_params)])
    full = np.zeros(model.n_params)
    full[list(model.held)] = list(model.held.values())

    def params(p):
        out = full.copy()
        out[free] = p
        return out[None]

    def f(_, *p):
        return model.evaluate(xs, params(p))[0]

    def jac(_, *p):
        return model.jacobian(xs, params(p))[0][:, free]

    out = np.tile(full, (len(y), 1))
    for i in range(len(y)):
        try:
            out[i, free], _ = curve_fit(f, None, y[i].astype(np.float64), p0=p0[i, free].astype(np.float64),
                                        jac=jac, maxfev=2000)
        except RuntimeError:
            out[i] = np.nan
    return out


def as_pvoigt(model, x: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts of ``model`` (peaks1d or pvoigt2d_polar) with the Gaussian problem's
    heights, positions and FWHM (``truth`` of pl_problem / bragg_problem) and eta 0.5."""
    fw = 2.0 * np.sqrt(2.0 * np.log(2.0))
    if model.name == "peaks1d":  # pl_problem: A, mu, sigma, c0, c1 -> A, mu, FWHM, eta, alpha, c0
        p = np.stack([truth[:, 0], truth[:, 1], fw * truth[:, 2], np.full(len(truth), 0.5),
                      np.zeros(len(truth)), truth[:, 3]], axis=-1)
    else:  # bragg_problem: A, q0, sq, phi0, sphi, b0, b1
        p = np.stack([truth[:, 0], truth[:, 1], fw * truth[:, 2], np.full(len(truth), 0.5), truth[:, 3],
                      fw * truth[:, 4], truth[:, 5], truth[:, 6]], axis=-1)
    xs = x if x.ndim == 2 else x[None]
    return rng.poisson(model.evaluate(xs.astype(np.float64), p)).astype(np.float32)


def bench(name: str, model, x: np.ndarray, y: np.ndarray, n_ref: int, device: str, repeats: int) -> dict[str, Any]:
    """Ours on all of ``y`` and the curve_fit loop on its first ``n_ref`` rows, timed alike."""
    xs = x if x.ndim == 2 else x[None]
    p0 = model.guess(xs, y[:n_ref], np.ones(y.shape[1], np.float32))
    sync = None
    if device == "gpu":
        import cupy

        y_in, x_in = cupy.asarray(y), cupy.asarray(x)
        sync = cupy.cuda.Device().synchronize
    else:
        y_in, x_in = y, x
    _, ours_setup = timed_setup(lambda: fit(model, y_in[: min(len(y), 256)], x_in, device=device))
    _, ref_setup = timed_setup(lambda: curve_fit_loop(model, xs, y[:1], p0[:1]))
    ours = Contender("ours", lambda: fit(model, y_in, x_in, device=device), len(y), ours_setup, sync)
    ref = Contender("curve_fit_loop", lambda: curve_fit_loop(model, xs, y[:n_ref], p0), n_ref, ref_setup)
    timing = compare([ours, ref], repeats)
    res, ref_p = ours.last.get(), ref.last
    ok = np.isfinite(ref_p).all(axis=1) & res.ok[:n_ref]
    dev_sigma = np.abs(res.params[:n_ref][ok] - ref_p[ok]) / np.where(res.errors[:n_ref][ok] > 0,
                                                                      res.errors[:n_ref][ok], 1)
    speed = ratio(timing["ours"], timing["curve_fit_loop"])
    row = {
        "problem": name,
        "device": device,
        "n_points": int(y.shape[1]),
        "n_params": model.n_params,
        "ours": timing["ours"],
        "curve_fit_loop": timing["curve_fit_loop"],
        "fits_per_s": timing["ours"]["items_per_s"],
        "converged_fraction": float(np.mean(res.ok)),
        "median_iterations": float(np.median(res.n_iter)),
        "speedup_vs_curve_fit": speed,
        "max_param_difference_vs_curve_fit_in_sigma": float(np.nanmax(dev_sigma)) if ok.any() else None,
    }
    print(f"{name:8s} {device}: {timing['ours']['items_per_s']:12.0f} fits/s   curve_fit loop: "
          f"{timing['curve_fit_loop']['items_per_s']:8.0f} fits/s   ratio {speed['median']:6.1f}x "
          f"({speed['low']:.1f}-{speed['high']:.1f})   max |diff| {row['max_param_difference_vs_curve_fit_in_sigma']:.3f}"
          " sigma", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = add_arguments(ap).parse_args()
    sessions = device_sessions("fit", args.force, args.quick)
    rng = np.random.default_rng(2026)
    scale = 0.05 if args.quick else 1.0
    for device, session in sessions.items():
        n_pl = int((2_000_000 if device == "gpu" else 40_000) * scale)
        n_br = int((500_000 if device == "gpu" else 10_000) * scale)
        x, y, truth = pl_problem(rng, n_pl, n_points=1024)
        rows = [bench("PL", get_model("gauss1d"), x, y, max(int(400 * scale), 20), device, args.repeats)]
        pv = get_model("peaks1d", shapes="pvoigt", background="constant")
        rows.append(bench("PL-pV", pv, x, as_pvoigt(pv, x, truth, rng), max(int(400 * scale), 20), device,
                          args.repeats))
        (q, phi), y, truth = bragg_problem(rng, n_br, phi_center=0.0)
        xq = np.stack([q, phi])
        rows.append(bench("Bragg", get_model("gauss2d_polar"), xq, y, max(int(150 * scale), 10), device,
                          args.repeats))
        pv = get_model("pvoigt2d_polar")
        rows.append(bench("Bragg-pV", pv, xq, as_pvoigt(pv, xq, truth, rng), max(int(150 * scale), 10), device,
                          args.repeats))
        session.write({"benchmark": "bench_fit.py", "results": rows})


if __name__ == "__main__":
    main()
