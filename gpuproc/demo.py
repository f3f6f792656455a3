"""``gpuproc demo``: synthetic data with known answers, analysed, recovered versus true.

Until the WAXS and PL pipelines land, the demo exercises the fitting engine on the two problems
they are built from: PL spectra (one Gaussian in photon energy on a non-uniform axis) and Bragg
spots in a (q, azimuth) cake window straddling the 0/360 degree seam, all with Poisson noise.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from gpuproc.fit import FitResult, fit

HC_EV_NM = 1239.84198  # h c in eV nm


def pl_spectra(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """PL spectra recorded on a 1024-channel wavelength grid (450-530 nm), fitted in energy."""
    energy = (HC_EV_NM / np.linspace(450.0, 530.0, 1024)).astype(np.float32)
    truth = {
        "center1": rng.normal(2.54, 0.003, n) - 0.13 * (rng.random(n) < 0.1),  # a few red-shifted edge pixels
        "sigma1": rng.uniform(0.03, 0.045, n) / 2.3548,
        "amplitude1": rng.uniform(300.0, 3000.0, n),
        "c0": np.full(n, 20.0),
    }
    mean = truth["amplitude1"][:, None] * np.exp(
        -0.5 * ((energy - truth["center1"][:, None]) / truth["sigma1"][:, None]) ** 2) + truth["c0"][:, None]
    return energy, rng.poisson(mean).astype(np.float32), truth


def bragg_spots(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """100-reflection spots (q ~ 1.07 A^-1) in a 40 x 60 cake window across the azimuth seam."""
    qg, pg = np.meshgrid(np.linspace(0.99, 1.15, 40), np.linspace(-30.0, 30.0, 60), indexing="ij")
    x = np.stack([qg.ravel(), np.mod(pg.ravel(), 360.0)]).astype(np.float32)
    truth = {
        "q0": 2 * np.pi / rng.normal(5.87, 0.01, n),
        "sigma_q": rng.uniform(0.008, 0.012, n),
        "phi0": np.mod(rng.normal(0.0, 5.0, n), 360.0),  # orientation domains of +-5 degrees
        "sigma_phi": rng.uniform(3.0, 6.0, n),
        "amplitude": rng.uniform(100.0, 400.0, n),
    }
    dphi = x[1] - truth["phi0"][:, None]
    dphi -= 360.0 * np.floor(dphi / 360.0 + 0.5)
    mean = truth["amplitude"][:, None] * np.exp(
        -0.5 * ((x[0] - truth["q0"][:, None]) / truth["sigma_q"][:, None]) ** 2
        - 0.5 * (dphi / truth["sigma_phi"][:, None]) ** 2) + 10.0
    return x, rng.poisson(mean).astype(np.float32), truth


def _report(title: str, res: FitResult, truth: dict[str, np.ndarray], seconds: float, unit: dict[str, str],
            periodic: tuple[str, ...] = ()) -> None:
    res = res.get()
    ok = res.ok
    print(f"\n{title}: {ok.size} fits in {seconds:.2f} s ({ok.size / seconds:,.0f} fits/s on {res.device}), "
          f"{ok.mean():.1%} converged")
    print(f"  {'parameter':<12}{'median |fit - true|':>22}{'median error':>16}{'pull sd':>10}")
    for name, true in truth.items():
        d = res[name][ok].astype(np.float64) - true[ok]
        if name in periodic:
            d -= 360.0 * np.round(d / 360.0)
        err = res.error(name)[ok]
        u = unit.get(name, "")
        print(f"  {name:<12}{np.median(np.abs(d)):>16.3g} {u:<5}{np.median(err):>10.3g} {u:<5}{np.std(d / err):>8.2f}")


def run(device: str = "auto", n: int = 20000, seed: int = 0, echo: Callable[[str], None] = print) -> None:
    """Generate, fit and print recovered versus true (pull sd ~ 1 means errors are honest)."""
    rng = np.random.default_rng(seed)
    energy, spectra, truth = pl_spectra(rng, n)
    t = time.perf_counter()
    res = fit("gauss1d", spectra, energy, estimator="poisson", device=device)
    _report("PL spectra, gauss1d + constant, Poisson likelihood", res, truth, time.perf_counter() - t,
            {"center1": "eV", "sigma1": "eV"})
    x, cakes, truth = bragg_spots(rng, max(n // 4, 1))
    t = time.perf_counter()
    res = fit("gauss2d_polar", cakes, x, estimator="poisson", device=device)
    _report("Bragg spots, gauss2d_polar across the 0/360 seam, Poisson likelihood", res, truth,
            time.perf_counter() - t, {"q0": "A^-1", "sigma_q": "A^-1", "phi0": "deg", "sigma_phi": "deg"},
            periodic=("phi0",))
