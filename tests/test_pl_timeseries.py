"""Event responses of a PL time series (gpuproc.pl.timeseries)."""

import numpy as np
import pytest

from gpuproc.pl.peaks import fit_peaks
from gpuproc.pl.spectra import poisson_weights, subtract_dark, to_energy
from gpuproc.pl.timeseries import event_responses, single_exp
from gpuproc.synth.pl import pl_timeseries


def test_fast_and_slow_time_constants_recovered():
    ts = pl_timeseries(seed=2)
    c = subtract_dark(ts.counts, ts.dark)
    es = to_energy(c, ts.wavelength, per_channel=True)
    r = fit_peaks(es.intensity, es.energy, weights=poisson_weights(c[..., ::-1], es.scale), max_peaks=1)
    res = event_responses(ts.time, r.energy, [e.time for e in ts.events], [e.label for e in ts.events],
                          errors=r.energy_err)
    assert [x.label for x in res] == ["+200 V on", "0 V (off)", "-200 V on"]
    for got, true in zip(res, ts.events):
        assert got.tau_fast == pytest.approx(true.tau_fast, rel=0.2)
        assert got.tau_slow == pytest.approx(true.tau_slow, rel=0.2)
        assert got.shift_fast_mev == pytest.approx(true.shift_fast_mev, rel=0.1)
        assert got.shift_slow_mev == pytest.approx(true.shift_slow_mev, rel=0.1)
        assert got.total_shift_mev == pytest.approx(true.shift_fast_mev + true.shift_slow_mev, abs=1.0)
        assert 0 < got.errors["tau_fast"] < 1.0 and got.chi2 < 2.0


def test_single_exponential_and_nan_points():
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 200.0)
    e = 2.54 + np.where(t >= 50, single_exp(np.clip(t - 50, 0, None), 0.0, -0.01, 8.0), 0.0)
    e = e + rng.normal(0, 2e-4, t.size)
    e[60] = np.nan
    (res,) = event_responses(t, e, [50.0], model="single")
    assert res.tau_fast == pytest.approx(8.0, rel=0.1)
    assert res.shift_fast_mev == pytest.approx(-10.0, rel=0.05)
    assert np.isnan(res.shift_slow_mev) and res.n_points == 149


def test_bad_inputs():
    t = np.arange(10.0)
    with pytest.raises(ValueError, match="equal length"):
        event_responses(t, np.ones(9), [1.0])
    with pytest.raises(ValueError, match="ascending"):
        event_responses(t, np.ones(10), [5.0, 2.0])
    with pytest.raises(ValueError, match="labels"):
        event_responses(t, np.ones(10), [5.0], ["a", "b"])
    (res,) = event_responses(t, np.ones(10), [8.0])  # too few points: reported, not raised
    assert np.isnan(res.tau_fast) and "valid points" in res.message
