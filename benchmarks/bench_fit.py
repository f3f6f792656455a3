"""Fits per second of the batched engine versus a scipy curve_fit loop, on the same data.

Problems (Poisson noise, seeded):
  PL-like    : 1024 channels, one Gaussian + constant (4 parameters), non-uniform energy axis
  Bragg-like : 40 x 60 (q, azimuth) window, gauss2d_polar (7 parameters)
The reference is scipy.optimize.curve_fit called once per fit with the analytic Jacobian, from
the same starting values our automatic guess produces (so both solve the same problems).
Ours runs on every CPU this process may use, and on the GPU when CuPy sees one (data already on
the device, timed after a warm-up call). Writes benchmarks/results/fit_<device>.json.

    python benchmarks/bench_fit.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import write  # noqa: E402
from fit_problems import bragg_problem, pl_problem  # noqa: E402

from gpuproc.backend import gpu_available  # noqa: E402
from gpuproc.fit import fit, get_model  # noqa: E402


def curve_fit_loop(model, x, y, p0):
    """Per-fit scipy loop; returns fits/s and the parameters."""
    xs = x.astype(np.float64)

    def f(_, *p):
        return model.evaluate(xs, np.asarray(p)[None])[0]

    def jac(_, *p):
        return model.jacobian(xs, np.asarray(p)[None])[0]

    out = np.empty((len(y), model.n_params))
    t = time.perf_counter()
    for i in range(len(y)):
        try:
            out[i], _ = curve_fit(f, None, y[i].astype(np.float64), p0=p0[i].astype(np.float64), jac=jac,
                                  maxfev=2000)
        except RuntimeError:
            out[i] = np.nan
    return len(y) / (time.perf_counter() - t), out


def timed_fit(model, y, x, device, repeats=3, **kw):
    fit(model, y[: min(len(y), 256)], x, device=device, **kw)  # warm-up (kernel build on GPU)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        res = fit(model, y, x, device=device, **kw)
        if device == "gpu":
            import cupy

            cupy.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - t)
    return len(y) / best, res


def bench(name, model, x, y, n_ref, device):
    xs = x if x.ndim == 2 else x[None]
    p0 = model.guess(xs, y[:n_ref], np.ones(y.shape[1], np.float32))
    ref_rate, ref_p = curve_fit_loop(model, xs, y[:n_ref], p0)
    if device == "gpu":
        import cupy

        y_dev, x_dev = cupy.asarray(y), cupy.asarray(x)
        rate, res = timed_fit(model, y_dev, x_dev, "gpu")
        res = res.get()
    else:
        rate, res = timed_fit(model, y, x, "cpu")
    ok = np.isfinite(ref_p).all(axis=1) & res.ok[:n_ref]
    dev_sigma = np.abs(res.params[:n_ref][ok] - ref_p[ok]) / np.where(res.errors[:n_ref][ok] > 0,
                                                                      res.errors[:n_ref][ok], 1)
    row = {
        "problem": name,
        "device": device,
        "n_fits": int(len(y)),
        "n_points": int(y.shape[1]),
        "n_params": model.n_params,
        "fits_per_s": rate,
        "converged_fraction": float(np.mean(res.ok)),
        "median_iterations": float(np.median(res.n_iter)),
        "curve_fit_loop": {"n_fits": n_ref, "fits_per_s": ref_rate},
        "speedup_vs_curve_fit": rate / ref_rate,
        "max_param_difference_vs_curve_fit_in_sigma": float(np.nanmax(dev_sigma)) if ok.any() else None,
    }
    print(f"{name:6s} {device}: {rate:12.0f} fits/s   curve_fit loop: {ref_rate:8.0f} fits/s   "
          f"ratio {rate / ref_rate:8.1f}x   (max |diff| {row['max_param_difference_vs_curve_fit_in_sigma']:.3f} sigma)")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = ap.parse_args()
    rng = np.random.default_rng(2026)
    devices = ["cpu"] + (["gpu"] if gpu_available() else [])
    scale = 0.05 if args.quick else 1.0
    rows = []
    for device in devices:
        n_pl = int((2_000_000 if device == "gpu" else 40_000) * scale)
        n_br = int((500_000 if device == "gpu" else 10_000) * scale)
        x, y, _ = pl_problem(rng, n_pl, n_points=1024)
        rows.append(bench("PL", get_model("gauss1d"), x, y, max(int(400 * scale), 20), device))
        (q, phi), y, _ = bragg_problem(rng, n_br, phi_center=0.0)
        rows.append(bench("Bragg", get_model("gauss2d_polar"), np.stack([q, phi]), y, max(int(150 * scale), 10),
                          device))
        if not args.quick:
            print("wrote", write(f"fit_{device}", {"benchmark": "bench_fit.py", "results": rows[-2:]}))


if __name__ == "__main__":
    main()
