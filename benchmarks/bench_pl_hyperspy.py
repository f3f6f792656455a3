"""PL fits per second: gpuproc versus HyperSpy ``multifit`` with the same model on the same spectra.

Model: one Gaussian + linear background in photon energy (non-uniform axis), least squares,
fitted to the energy-converted spectra of a synthetic PL map (gpuproc.synth.pl). HyperSpy fits
a subset (``--hyperspy``) from the starting values our automatic guess gives (computed outside
its timing); ours fits the whole map, its guess inside the timing. Both are timed by
benchmarks/common.py alike: set-up apart (ours: the first call; HyperSpy: building the signal,
model and components), one untimed warm-up run each (HyperSpy's first ``multifit`` is much
slower than later ones), then the median (min, max) of ``--repeats`` alternating runs; every
HyperSpy run restarts from the same starting values. HyperSpy is not a gpuproc dependency:
install it yourself to run this (``pip install hyperspy``).
Writes benchmarks/results/pl_hyperspy_cpu.json.

    python benchmarks/bench_pl_hyperspy.py [--size 100] [--hyperspy 200] [--repeats 5] [--force]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Contender, Session, add_arguments, compare, ratio, timed_setup  # noqa: E402

from gpuproc.fit import fit, get_model  # noqa: E402
from gpuproc.pl.spectra import to_energy  # noqa: E402
from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map  # noqa: E402


def hyperspy_model(energy: np.ndarray, y: np.ndarray) -> tuple[Any, Any, Any]:
    """HyperSpy signal model (Gaussian + order-1 polynomial) of the spectra ``y``."""
    import hyperspy.api as hs

    s = hs.signals.Signal1D(y, axes=[{"size": len(y), "navigate": True},
                                     {"axis": energy, "navigate": False, "name": "Energy", "units": "eV"}])
    m = s.create_model()
    g = hs.model.components1D.Gaussian()
    bg = hs.model.components1D.Polynomial(order=1)
    m.extend([g, bg])
    return m, g, bg


def hyperspy_run(m: Any, g: Any, bg: Any, p0: np.ndarray) -> np.ndarray:
    """One multifit (Levenberg-Marquardt) from the starts ``p0``; the fitted centres."""
    # same starts as ours: HyperSpy's Gaussian A is the area, A_ours * sigma * sqrt(2 pi)
    starts = [(g.A, p0[:, 0] * p0[:, 2] * np.sqrt(2 * np.pi)), (g.centre, p0[:, 1]), (g.sigma, p0[:, 2]),
              (bg.parameters[0], p0[:, 3]), (bg.parameters[1], p0[:, 4])]
    for par, values in starts:
        par.map["values"], par.map["is_set"] = values, True
    m.multifit(optimizer="lm", show_progressbar=False, fetch_only_fixed=False, iterpath="flyback")
    return np.asarray(g.centre.map["values"]).copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100, help="map is size x size x 1024")
    ap.add_argument("--hyperspy", type=int, default=200, help="spectra fitted by HyperSpy")
    args = add_arguments(ap).parse_args()
    session = Session("pl_hyperspy_cpu", force=args.force)
    import hyperspy

    m = pl_map((args.size, args.size), 1024, seed=0)
    es = to_energy(m.counts.astype(np.float32) - (BIAS_COUNTS + STRAY_COUNTS), m.wavelength, "nm")
    inside = m.truth.inside.ravel()
    y = es.intensity.reshape(-1, es.energy.size)[inside].astype(np.float32)
    e = np.asarray(es.energy, dtype=np.float64)
    model = get_model("gauss1d", n_peaks=1, background="linear")
    k = min(args.hyperspy, len(y))
    pick = np.linspace(0, len(y) - 1, k).astype(int)
    p0 = model.guess(e[None], y[pick], np.ones(e.size, np.float32)).astype(np.float64)
    _, ours_setup = timed_setup(lambda: fit(model, y[:256], e))
    (hm, g, bg), hs_setup = timed_setup(lambda: hyperspy_model(e, y[pick].astype(np.float64)))
    ours = Contender("ours", lambda: fit(model, y, e), len(y), ours_setup)
    ref = Contender("hyperspy_multifit", lambda: hyperspy_run(hm, g, bg, p0), k, hs_setup)
    timing = compare([ours, ref], args.repeats)
    res, hs_centre = ours.last, ref.last
    diff = np.abs(hs_centre - res.params[pick, 1]) / res.errors[pick, 1]
    speed = ratio(timing["ours"], timing["hyperspy_multifit"])
    print(f"ours: {timing['ours']['items_per_s']:,.0f} spectra/s ({len(y)} crystal pixels, "
          f"{np.mean(res.ok):.1%} converged)")
    print(f"HyperSpy {hyperspy.__version__} multifit: {timing['hyperspy_multifit']['items_per_s']:,.1f} spectra/s "
          f"({k} spectra); ratio {speed['median']:,.0f}x ({speed['low']:,.0f}-{speed['high']:,.0f}); "
          f"median |centre difference| {np.median(diff):.3f} sigma")
    session.write({
        "benchmark": "bench_pl_hyperspy.py",
        "model": "1 Gaussian + linear background, least squares, non-uniform energy axis, 1024 channels",
        "ours": {**timing["ours"], "converged_fraction": float(np.mean(res.ok))},
        "hyperspy_multifit": {**timing["hyperspy_multifit"], "version": hyperspy.__version__, "optimizer": "lm",
                              "starts": "ours' automatic guess, computed outside HyperSpy's timing",
                              "numba": "HyperSpy uses numba (if installed) only in array tools and LOWESS, not in "
                                       "model fitting: its absence does not slow multifit"},
        "speedup": speed,
        "median_centre_difference_sigma": float(np.median(diff)),
    })


if __name__ == "__main__":
    main()
