"""Registration and shift maps (gpuproc.pl.register)."""

import numpy as np
import pytest

from gpuproc.pl.peaks import fit_peaks
from gpuproc.pl.register import register_shift, shift_image, shift_map
from gpuproc.pl.spectra import poisson_weights, remove_spikes, subtract_dark, to_energy
from gpuproc.synth.pl import pl_map_pair


def fitted(m):
    c, _ = remove_spikes(subtract_dark(m.counts, m.dark))
    es = to_energy(c, m.wavelength, per_channel=True)
    return fit_peaks(es.intensity, es.energy, weights=poisson_weights(c[..., ::-1], es.scale), max_peaks=2)


def test_shift_map_recovered_after_registration():
    pair = pl_map_pair(offset=(2.4, -1.7), seed=3)
    a, b = fitted(pair.first), fitted(pair.second)
    s = shift_map(a.energy, a.total_area, b.energy, b.total_area)
    np.testing.assert_allclose(s.shift, [-2.4, 1.7], atol=0.1)  # moves the second map back
    one = pair.first.truth.n_peaks == 1
    d = (s.shift_mev - pair.shift_mev)[one]
    assert np.isfinite(d).sum() > 0.8 * one.sum()
    assert np.nanmedian(np.abs(d)) < 2.0  # meV; measured ~1.1 (fit + bilinear resampling)
    assert np.nanmin(s.shift_mev) < -50  # the red-shifted edges are seen
    assert np.all(np.isnan(s.shift_mev[~pair.first.truth.inside & (a.n_peaks == 0)]))


def test_shift_image_marks_uncovered_and_nan_pixels():
    img = np.arange(100.0).reshape(10, 10)
    img[5, 5] = np.nan
    out = shift_image(img, np.array([2.0, 0.0]))
    assert np.all(np.isnan(out[:2])) and np.isnan(out[7, 5])
    np.testing.assert_allclose(out[2:7, 0], img[0:5, 0])


def test_register_shift_errors():
    with pytest.raises(ValueError, match="equal shape"):
        register_shift(np.ones((4, 4)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="differ in shape"):
        shift_map(np.ones((4, 4)), np.ones((4, 4)), np.ones((5, 4)), np.ones((5, 4)))
