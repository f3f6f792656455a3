"""Peak fits with BIC model selection (gpuproc.pl.peaks) against synthetic ground truth."""

import numpy as np
import pytest

from gpuproc.pl.peaks import PeakMaps, fit_peaks
from gpuproc.pl.spectra import poisson_weights, remove_spikes, subtract_dark, to_energy
from gpuproc.synth.pl import FWHM_PER_SIGMA, channel_counts, pl_map, spectrometer_axis

SIGMA = 0.082 / FWHM_PER_SIGMA


def prepare(counts, wavelength, dark):
    """Dark, spikes, energy axis (counts per eV) and Poisson weights: the standard pipeline."""
    c, _ = remove_spikes(subtract_dark(counts, dark))
    es = to_energy(c, wavelength, per_channel=True)
    return es.intensity, es.energy, poisson_weights(c[..., ::-1], es.scale)


def batch(n, peaks, seed):
    """n spectra (counts per channel, no bias) of Gaussians (photons, centre, sigma) + 2 stray counts."""
    rng = np.random.default_rng(seed)
    lam = spectrometer_axis(512)
    expected = channel_counts(lam, [(np.full(n, a), c + rng.normal(0, 0.003, n), np.full(n, s)) for a, c, s in peaks])
    return rng.poisson(expected + 2.0).astype(float), lam


@pytest.fixture(scope="module")
def mapped():
    m = pl_map(seed=1)
    y, e, w = prepare(m.counts, m.wavelength, m.dark)
    return m, fit_peaks(y, e, weights=w, max_peaks=3)


def test_bic_false_positive_rate_single_peak():
    """Seeded batch of 300 single-peak spectra at realistic counts: <= 2 % get a second peak
    (measured: 1 of 300)."""
    counts, lam = batch(300, [(5e4, 2.54, SIGMA)], seed=10)
    y, e, w = prepare(counts, lam, np.full(lam.size, 2.0))
    r = fit_peaks(y, e, weights=w, max_peaks=3)
    assert np.mean(r.n_peaks != 1) <= 0.02
    assert np.median(np.abs(r.energy - 2.54)) < 0.004  # scatter of the truth is 3 meV


def test_bic_finds_shoulder():
    """A 30 % shoulder 70 meV below the main peak: >= 95 % of the spectra get 2 peaks."""
    counts, lam = batch(200, [(3.5e4, 2.54, SIGMA), (1.5e4, 2.47, SIGMA)], seed=11)
    y, e, w = prepare(counts, lam, np.full(lam.size, 2.0))
    r = fit_peaks(y, e, weights=w, max_peaks=3)
    assert np.mean(r.n_peaks == 2) >= 0.95
    two = r.n_peaks == 2
    assert np.median(np.abs(r.peak_energy[two, 0] - 2.47)) < 0.01
    assert np.median(np.abs(r.peak_energy[two, 1] - 2.54)) < 0.006


def test_map_recovers_truth(mapped):
    m, r = mapped
    t = m.truth
    one, two = t.inside & (t.n_peaks == 1), t.inside & (t.n_peaks == 2)
    assert np.mean(r.n_peaks[one] == 1) >= 0.98
    assert np.mean(r.n_peaks[two] == 2) >= 0.9
    err_mev = 1e3 * np.abs(r.energy - t.energy)
    assert np.median(err_mev[one]) < 1.0  # measured ~0.13 meV
    assert np.median(err_mev[two]) < 5.0  # overlapping shoulder: larger, correlated errors
    assert np.median(np.abs(r.fwhm_mev - t.fwhm_mev)[one]) < 2.0
    assert np.median(np.abs(r.centroid - t.energy)[one]) < 0.002
    assert np.all(r.status[one] == 0)
    pull = (r.energy - t.energy)[one] / r.energy_err[one]
    assert 0.5 < np.std(pull) < 2.0  # errors of the right size
    dark = t.brightness < 1e-3 * t.brightness.max()
    assert np.all(r.n_peaks[dark] == 0) and np.all(np.isnan(r.energy[dark]))


def test_outputs_shapes_and_consistency(mapped):
    m, r = mapped
    assert isinstance(r, PeakMaps)
    assert r.energy.shape == (24, 24) and r.peak_energy.shape == (24, 24, 3) and r.bic.shape == (24, 24, 3)
    k = r.n_peaks
    assert np.all(np.isfinite(r.peak_energy).sum(axis=-1) == k)
    pe = r.peak_energy[k == 2]
    assert np.all(pe[:, 0] < pe[:, 1])  # sorted by energy
    ok = k > 0
    np.testing.assert_allclose(r.area[ok], np.nanmax(r.peak_area[ok], axis=-1))
    np.testing.assert_allclose(r.area[ok], (r.amplitude * r.fwhm_mev / 1e3 / FWHM_PER_SIGMA * np.sqrt(2 * np.pi))[ok],
                               rtol=1e-5)
    assert set(r.as_dict()) >= {"energy", "fwhm_mev", "n_peaks", "status", "chi2", "peak_area"}


def test_nan_spectra_are_flagged_not_errors():
    counts, lam = batch(4, [(5e4, 2.54, SIGMA)], seed=3)
    counts[1] = np.nan
    y, e, w = prepare(counts, lam, np.zeros(lam.size))
    r = fit_peaks(y, e, weights=w, max_peaks=2)
    assert r.n_peaks[1] == 0 and np.isnan(r.energy[1]) and r.status[1] != 0
    assert np.all(r.n_peaks[[0, 2, 3]] == 1)


def test_poisson_estimator_on_counts():
    """Counts per channel fitted directly (Poisson likelihood, deviance BIC)."""
    counts, lam = batch(100, [(5e4, 2.54, SIGMA)], seed=4)
    es = to_energy(counts, lam, jacobian=False)
    r = fit_peaks(es.intensity, es.energy, estimator="poisson", max_peaks=2, background="constant")
    assert np.mean(r.n_peaks == 1) >= 0.98
    assert np.median(np.abs(r.energy - 2.54)) < 0.004


def test_bad_arguments():
    e = np.linspace(2.2, 2.9, 100)
    with pytest.raises(ValueError, match="max_peaks"):
        fit_peaks(np.ones((2, 100)), e, max_peaks=5)
    with pytest.raises(ValueError, match="background"):
        fit_peaks(np.ones((2, 100)), e, background="cubic")
    with pytest.raises(ValueError, match="100 channels but the spectra have 90"):
        fit_peaks(np.ones((2, 90)), e)
