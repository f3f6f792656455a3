"""Energy axis, Jacobian, dark, crop and spike removal of gpuproc.pl.spectra."""

import numpy as np
import pytest

from gpuproc.pl.spectra import (
    HC_EV_NM,
    crop,
    jacobian_scale,
    remove_spikes,
    subtract_dark,
    to_energy,
    wavelength_to_energy,
)
from gpuproc.synth.pl import channel_counts, spectrometer_axis


def gaussian(x, mu, s):
    return np.exp(-0.5 * ((x - mu) / s) ** 2)


def test_energy_formula_vacuum_and_air():
    lam = np.array([430.0, 488.0, 560.0])
    np.testing.assert_allclose(wavelength_to_energy(lam), 1239.84198 / lam, rtol=1e-12)
    lam25 = HC_EV_NM / 2.5
    shift_mev = 1e3 * (wavelength_to_energy(lam25, "air") - 2.5)
    assert -0.8 < shift_mev < -0.6  # 2.5 eV moves by about 0.7 meV in air
    np.testing.assert_allclose(wavelength_to_energy(lam, "air", n_air=1.000277), 1239.84198 / (1.000277 * lam))
    with pytest.raises(ValueError, match="medium"):
        wavelength_to_energy(lam, "water")


def test_jacobian_matches_formula_and_conserves_integral():
    lam = spectrometer_axis(2048)
    i_lam = 1000 * gaussian(lam, 490.0, 6.0) + 50 * gaussian(lam, 520.0, 4.0)
    es = to_energy(i_lam, lam)
    assert np.all(np.diff(es.energy) > 0)  # always ascending
    np.testing.assert_allclose(es.intensity, (i_lam * lam**2 / HC_EV_NM)[::-1], rtol=1e-12)
    np.testing.assert_allclose(es.scale, jacobian_scale(lam)[::-1])
    np.testing.assert_allclose(np.trapezoid(es.intensity, es.energy), np.trapezoid(i_lam, lam), rtol=1e-4)
    off = to_energy(i_lam, lam, jacobian=False)
    np.testing.assert_allclose(off.intensity, i_lam[::-1])


def test_per_channel_counts_give_counts_per_ev():
    lam = spectrometer_axis(512)
    counts = channel_counts(lam, [(np.array(1e5), np.array(2.54), np.array(0.035))])
    es = to_energy(counts, lam, per_channel=True)
    assert np.trapezoid(es.intensity, es.energy) == pytest.approx(1e5, rel=1e-3)
    assert es.energy[np.argmax(es.intensity)] == pytest.approx(2.54, abs=1.5e-3)


def test_descending_and_ev_axes():
    lam = np.linspace(430, 560, 300)
    y = np.random.default_rng(0).random((2, 3, 300))
    up, down = to_energy(y, lam), to_energy(y[..., ::-1], lam[::-1])
    np.testing.assert_allclose(up.energy, down.energy)
    np.testing.assert_allclose(up.intensity, down.intensity)
    e = HC_EV_NM / lam  # descending eV axis: reordered, intensity untouched
    ev = to_energy(y, e, unit="eV")
    np.testing.assert_allclose(ev.energy, e[::-1])
    np.testing.assert_allclose(ev.intensity, y[..., ::-1])


def test_axis_errors():
    lam = np.linspace(430, 560, 100)
    with pytest.raises(ValueError, match="100 channels but the spectra have 99"):
        to_energy(np.ones((4, 99)), lam)
    bad = lam.copy()
    bad[50] = bad[10]
    with pytest.raises(ValueError, match="not strictly monotonic"):
        to_energy(np.ones(100), bad)
    with pytest.raises(ValueError, match="unit"):
        to_energy(np.ones(100), lam, unit="cm-1")


def test_nan_spectra_pass_through():
    lam = np.linspace(430, 560, 64)
    y = np.ones((3, 64))
    y[1] = np.nan
    es = to_energy(y, lam)
    assert np.all(np.isnan(es.intensity[1])) and np.all(np.isfinite(es.intensity[[0, 2]]))
    cleaned, spikes = remove_spikes(y)
    assert np.all(np.isnan(cleaned[1])) and not spikes.any()


def test_dark_and_crop():
    y = np.full((2, 50), 310.0)
    np.testing.assert_allclose(subtract_dark(y, np.full(50, 300.0)), 10.0)
    with pytest.raises(ValueError, match="49 channels but the spectra have 50"):
        subtract_dark(y, np.zeros(49))
    e = np.linspace(2.2, 2.9, 50)
    ec, yc = crop(e, y, 2.4, 2.6)
    assert ec.min() >= 2.4 and ec.max() <= 2.6 and yc.shape == (2, ec.size)
    with pytest.raises(ValueError, match="keeps 0 channels"):
        crop(e, y, 3.0, 3.1)


def test_spikes_removed_and_peaks_kept():
    rng = np.random.default_rng(1)
    lam = spectrometer_axis(512)
    clean = channel_counts(lam, [(np.full(200, 5e4), np.full(200, 2.54), np.full(200, 0.035))]) + 2.0
    y = rng.poisson(clean).astype(float)
    rows, cols = np.arange(0, 200, 10), rng.integers(10, 500, 20)
    y[rows, cols] += 800.0
    cleaned, spikes = remove_spikes(y)
    assert spikes[rows, cols].all()
    assert spikes.sum() <= rows.size + 2  # essentially no false detections on 102400 channels
    assert np.abs(cleaned - clean).max() < 8 * np.sqrt(clean.max())
    with pytest.raises(ValueError, match="odd"):
        remove_spikes(y, width=4)
