"""PL fits per second: gpuproc versus HyperSpy ``multifit`` with the same model on the same spectra.

Model: one Gaussian + linear background in photon energy (non-uniform axis), least squares,
fitted to the energy-converted spectra of a synthetic PL map (gpuproc.synth.pl). HyperSpy fits
a subset (``--hyperspy``) from the same starting values; ours fits the whole map. HyperSpy is
not a gpuproc dependency: install it yourself to run this (``pip install hyperspy``).
Writes benchmarks/results/pl_hyperspy_cpu.json.

    python benchmarks/bench_pl_hyperspy.py [--size 100] [--hyperspy 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write  # noqa: E402

from gpuproc.fit import fit, get_model  # noqa: E402
from gpuproc.pl.spectra import to_energy  # noqa: E402
from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map  # noqa: E402


def hyperspy_rate(energy: np.ndarray, y: np.ndarray, p0: np.ndarray) -> tuple[float, np.ndarray]:
    """Spectra/s of HyperSpy multifit (Levenberg-Marquardt) and the fitted centres."""
    import hyperspy.api as hs

    s = hs.signals.Signal1D(y, axes=[{"size": len(y), "navigate": True},
                                     {"axis": energy, "navigate": False, "name": "Energy", "units": "eV"}])
    m = s.create_model()
    g = hs.model.components1D.Gaussian()
    bg = hs.model.components1D.Polynomial(order=1)
    m.extend([g, bg])
    # same starts as ours: HyperSpy's Gaussian A is the area, A_ours * sigma * sqrt(2 pi)
    g.A.map["values"] = p0[:, 0] * p0[:, 2] * np.sqrt(2 * np.pi)
    g.centre.map["values"] = p0[:, 1]
    g.sigma.map["values"] = p0[:, 2]
    for par in (g.A, g.centre, g.sigma):
        par.map["is_set"] = True
    bg.parameters[0].map["values"], bg.parameters[0].map["is_set"] = p0[:, 3], True
    bg.parameters[1].map["values"], bg.parameters[1].map["is_set"] = p0[:, 4], True
    t = time.perf_counter()
    m.multifit(optimizer="lm", show_progressbar=False, fetch_only_fixed=False, iterpath="flyback")
    rate = len(y) / (time.perf_counter() - t)
    return rate, np.asarray(g.centre.map["values"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100, help="map is size x size x 1024")
    ap.add_argument("--hyperspy", type=int, default=200, help="spectra fitted by HyperSpy")
    args = ap.parse_args()
    import hyperspy

    m = pl_map((args.size, args.size), 1024, seed=0)
    es = to_energy(m.counts.astype(np.float32) - (BIAS_COUNTS + STRAY_COUNTS), m.wavelength, "nm")
    inside = m.truth.inside.ravel()
    y = es.intensity.reshape(-1, es.energy.size)[inside].astype(np.float32)
    e = np.asarray(es.energy, dtype=np.float64)
    model = get_model("gauss1d", n_peaks=1, background="linear")
    fit(model, y[:256], e)  # warm-up
    t = time.perf_counter()
    ours = fit(model, y, e)
    ours_rate = len(y) / (time.perf_counter() - t)
    k = min(args.hyperspy, len(y))
    pick = np.linspace(0, len(y) - 1, k).astype(int)
    p0 = model.guess(e[None], y[pick], np.ones(e.size, np.float32)).astype(np.float64)
    hs_rate, hs_centre = hyperspy_rate(e, y[pick].astype(np.float64), p0)
    diff = np.abs(hs_centre - ours.params[pick, 1]) / ours.errors[pick, 1]
    print(f"ours: {ours_rate:,.0f} spectra/s ({len(y)} crystal pixels, {np.mean(ours.ok):.1%} converged)")
    print(f"HyperSpy {hyperspy.__version__} multifit: {hs_rate:,.1f} spectra/s ({k} spectra); "
          f"ratio {ours_rate / hs_rate:,.0f}x; median |centre difference| {np.median(diff):.3f} sigma")
    print("wrote", write("pl_hyperspy_cpu", {
        "benchmark": "bench_pl_hyperspy.py",
        "model": "1 Gaussian + linear background, least squares, non-uniform energy axis, 1024 channels",
        "ours": {"spectra": int(len(y)), "spectra_per_s": ours_rate, "converged_fraction": float(np.mean(ours.ok))},
        "hyperspy_multifit": {"version": hyperspy.__version__, "optimizer": "lm", "spectra": k,
                              "spectra_per_s": hs_rate},
        "speedup": ours_rate / hs_rate,
        "median_centre_difference_sigma": float(np.median(diff)),
    }))


if __name__ == "__main__":
    main()
