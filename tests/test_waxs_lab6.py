"""The LaB6 calibrant frames with their real pyFAI-calib PONI give the LaB6 lattice (SRM 660 family,
cubic a = 4.1569 A) to better than 0.05 %, through gpuproc's integrator and fit engine.

Pilatus 300KW, lambda = 0.8856 A, two detector positions of a 2theta scan: frame 0009 covers
q = 1.09-1.94 A^-1 and holds the (100) ring (q = 1.512), frame 0023 covers 2.38-3.01 A^-1 and
holds the (111) ring (q = 2.618). Each frame is caked (CakeIntegrator, pyFAI's invalid-pixel
rules, the detector's gaps), the cake is summed over azimuth into I(q) = sum signal / sum norm,
the ring is fitted with one Gaussian + linear background (gpuproc.fit gauss1d, Poisson weights
norm^2 / signal) in a +-0.06 A^-1 window around the profile's maximum, and the cubic lattice is
the weighted least squares of (q0 / 2 pi)^2 = (h^2 + k^2 + l^2) / a^2 over the two rings.
"""

import fabio
import numpy as np
import pyFAI
import pytest

from gpuproc.fit import Status, fit
from gpuproc.waxs.integrate import CakeIntegrator

pytestmark = pytest.mark.realdata
A_LAB6 = 4.1569  # A, NIST SRM 660 family (660a 4.15692, 660b 4.15689, 660c 4.15680)
FRAMES = {"0009": (1, 0, 0), "0023": (1, 1, 1)}
HALF_WINDOW = 0.06  # A^-1


def ring_q0(realdata, index: str) -> tuple[float, float]:
    """Fitted ring position q0 and its standard error (A^-1) of one LaB6 frame."""
    tiff = realdata("waxs", "lab6_tth", f"b_toney_Lab6_thtth_rightside_scan2_{index}.tif")
    ai = pyFAI.load(str(tiff.with_suffix(".poni")))
    q = ai.array_from_unit(unit="q_A^-1")[~ai.detector.mask.astype(bool)]
    ci = CakeIntegrator(ai, npt_q=400, npt_azimuth=90, q_range=(float(q.min()), float(q.max())), device="cpu")
    signal, norm = (s[0].sum(axis=0) for s in ci.integrate_sums(fabio.open(str(tiff)).data))
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = signal / norm
    peak = ci.q[np.nanargmax(profile)]
    window = (np.abs(ci.q - peak) < HALF_WINDOW) & (norm > 0)
    res = fit("gauss1d", profile[window], ci.q[window], n_peaks=1, background="linear",
              weights=norm[window] ** 2 / np.maximum(signal[window], 1), device="cpu")
    assert res.status == Status.CONVERGED
    return float(res["center1"]), float(res.error("center1"))


def test_lab6_lattice_from_two_rings(realdata):
    n, y, w = [], [], []
    for index, hkl in FRAMES.items():
        q0, err = ring_q0(realdata, index)
        n.append(sum(h * h for h in hkl))
        y.append((q0 / (2 * np.pi)) ** 2)  # 1/d^2 = N / a^2
        w.append(1 / (2 * q0 * err / (2 * np.pi) ** 2) ** 2)
        assert abs(2 * np.pi * np.sqrt(n[-1]) / q0 / A_LAB6 - 1) < 5e-4, f"frame {index}: ring ({hkl})"
    n, y, w = map(np.asarray, (n, y, w))
    a = 1 / np.sqrt(np.sum(w * n * y) / np.sum(w * n * n))
    assert abs(a / A_LAB6 - 1) < 5e-4
