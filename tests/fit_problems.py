"""Seeded random fitting problems with ground truth, shared by the engine tests."""

from __future__ import annotations

import numpy as np


def pl_problem(rng: np.random.Generator, n: int, n_points: int = 512, n_peaks: int = 1, counts: float = 2000.0,
               background: float = 40.0, slope: float = 0.0):
    """Gaussian peaks in photon energy on a non-uniform, descending axis (as from a wavelength
    grid); Poisson counts. Returns x (n_points,), y (n, n_points), true params (n, 3N+2)."""
    lam = np.linspace(450.0, 530.0, n_points)
    x = (1239.84198 / lam).astype(np.float32)  # descending, non-uniform eV axis
    truth = []
    for k in range(n_peaks):
        a = counts * rng.uniform(0.5, 1.5, n) / (k + 1)
        mu = rng.uniform(2.45, 2.62, n) if k == 0 else truth[1] + rng.choice([-1, 1], n) * rng.uniform(0.06, 0.1, n)
        s = rng.uniform(0.012, 0.03, n)
        truth += [a, mu, s]
    truth += [np.full(n, background), np.full(n, slope)]
    p = np.stack(truth, axis=-1)
    f = np.full((n, n_points), 0.0)
    for k in range(n_peaks):
        a, mu, s = p[:, 3 * k, None], p[:, 3 * k + 1, None], p[:, 3 * k + 2, None]
        f += a * np.exp(-0.5 * ((x - mu) / s) ** 2)
    f += p[:, -2, None] + p[:, -1, None] * x
    return x, rng.poisson(f).astype(np.float32), p


def bragg_problem(rng: np.random.Generator, n: int, npt_q: int = 40, npt_phi: int = 60, amplitude: float = 300.0,
                  phi_center: float = 0.0, phi_half_width: float = 30.0, counts_bg: float = 8.0):
    """Bragg spots in a (q, azimuth) window around q = 1.07 A^-1; the azimuth window is centred on
    ``phi_center`` and wrapped into [0, 360). Returns (q, phi) flat coordinates, y, true params."""
    qg, pg = np.meshgrid(np.linspace(0.99, 1.15, npt_q), np.linspace(-phi_half_width, phi_half_width, npt_phi),
                         indexing="ij")
    q = qg.ravel().astype(np.float32)
    phi = np.mod(pg.ravel() + phi_center, 360.0).astype(np.float32)
    a = amplitude * rng.uniform(0.6, 1.4, n)
    q0 = 1.07 + rng.normal(0, 0.005, n)
    sq = rng.uniform(0.008, 0.014, n)
    phi0 = np.mod(phi_center + rng.normal(0, 4.0, n), 360.0)
    sp = rng.uniform(3.0, 7.0, n)
    b0 = np.full(n, counts_bg)
    b1 = rng.uniform(-3.0, 3.0, n)
    p = np.stack([a, q0, sq, phi0, sp, b0, b1], axis=-1)
    dphi = phi - phi0[:, None]
    dphi -= 360.0 * np.floor(dphi / 360.0 + 0.5)
    f = a[:, None] * np.exp(-0.5 * ((q - q0[:, None]) / sq[:, None]) ** 2 - 0.5 * (dphi / sp[:, None]) ** 2)
    f += b0[:, None] + b1[:, None] * q
    return (q, phi), rng.poisson(f).astype(np.float32), p


def shaped_peaks_problem(rng: np.random.Generator, n: int, shapes: tuple[str, ...], n_points: int = 512,
                         counts: float = 2000.0, background: float = 40.0):
    """Peaks of the given peaks1d ``shapes`` on the non-uniform eV axis of :func:`pl_problem`, 0.08
    to 0.12 eV apart, with a linear background; Poisson counts. Returns the model, x (n_points,),
    y (n, n_points) and the true params (n, 5N+2) (held parameters at their shape's values)."""
    from gpuproc.fit.models import Peaks1D

    model = Peaks1D(shapes, "linear")
    x = (1239.84198 / np.linspace(450.0, 530.0, n_points)).astype(np.float32)
    truth = []
    for k in range(len(shapes)):
        mu = rng.uniform(2.45, 2.5, n) + k * rng.uniform(0.08, 0.12, n)
        truth += [counts * rng.uniform(0.5, 1.5, n) / (k + 1), mu, rng.uniform(0.03, 0.06, n),
                  rng.uniform(0.2, 0.8, n), rng.uniform(-0.4, 0.4, n)]
    truth += [np.full(n, background), rng.uniform(-2.0, 2.0, n)]
    p = np.stack(truth, axis=-1)
    for i, v in model.held.items():
        p[:, i] = v
    return model, x, rng.poisson(model.evaluate(x[None].astype(np.float64), p)).astype(np.float32), p


def pvoigt_bragg_problem(rng: np.random.Generator, n: int, phi_center: float = 0.0, amplitude: float = 300.0):
    """pvoigt2d_polar spots in the window of :func:`bragg_problem` (same q0, widths as FWHM,
    eta_q 0.2..0.8); Poisson counts. Returns (q, phi), y, true params (n, 8)."""
    from gpuproc.fit.models import PVoigt2DPolar

    (q, phi), _, g = bragg_problem(rng, n, phi_center=phi_center, amplitude=amplitude)
    fwhm = 2.0 * np.sqrt(2.0 * np.log(2.0))
    p = np.stack([g[:, 0], g[:, 1], fwhm * g[:, 2], rng.uniform(0.2, 0.8, n), g[:, 3], fwhm * g[:, 4],
                  g[:, 5], g[:, 6]], axis=-1)
    f = PVoigt2DPolar().evaluate(np.stack([q, phi]).astype(np.float64), p)
    return (q, phi), rng.poisson(f).astype(np.float32), p
