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


def _trace(events, noise_mev=0.3, seed=0, duration=300.0):
    """A peak-energy trace (eV, 1 s sampling) with the synthetic generator's event responses."""
    from gpuproc.synth.pl import event_response

    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration)
    err = np.full(t.size, noise_mev * 1e-3)
    return t, 2.40 + event_response(t, events) + rng.normal(0.0, err), err


def test_auto_choice_rejects_a_degenerate_double_for_a_single_recovery():
    """A bias-off recovery that is one exponential (+116.7 meV, tau 20 s): "double" is degenerate
    (equal time constants or cancelling components), "auto" reports the single exponential."""
    from gpuproc.synth.pl import StimulusEvent

    events = [StimulusEvent(30.0, "off", 116.7, 20.0, 0.0, 200.0)]
    t, e, err = _trace(events, seed=3)
    (auto,) = event_responses(t, e, [30.0], errors=err)
    assert auto.model == "single" and "double rejected" in auto.flag
    assert auto.tau_fast == pytest.approx(20.0, rel=0.1)
    assert auto.shift_fast_mev == pytest.approx(116.7, rel=0.05)
    assert auto.bic["double"] == np.inf and np.isfinite(auto.bic["single"])
    (forced,) = event_responses(t, e, [30.0], errors=err, model="double")
    assert forced.model == "double" and "double rejected" in forced.flag  # reported as asked, flagged


def test_auto_choice_keeps_double_and_none_where_true():
    """Two-component responses stay double under "auto"; a segment without response is "none"."""
    from gpuproc.synth.pl import StimulusEvent

    events = [StimulusEvent(20.0, "on", -10.0, 3.0, -8.0, 30.0), StimulusEvent(160.0, "nothing", 0.0, 1.0, 0.0, 1.0)]
    t, e, err = _trace(events, seed=5)
    on, nothing = event_responses(t, e, [20.0, 160.0], ["on", "nothing"], errors=err)
    assert on.model == "double" and on.flag == ""
    assert on.tau_fast == pytest.approx(3.0, rel=0.2) and on.tau_slow == pytest.approx(30.0, rel=0.2)
    assert nothing.model == "none" and nothing.total_shift_mev == 0.0 and np.isnan(nothing.tau_fast)
    assert nothing.e0 == pytest.approx(2.40 - 0.018, abs=1e-4)
    # per-event models, and the stored curve reproduces the model inside each segment only
    single, none = event_responses(t, e, [20.0, 160.0], errors=err, model=["single", "none"])
    assert (single.model, none.model) == ("single", "none")
    from gpuproc.pl.timeseries import response_curve

    curve = response_curve([on, nothing], t)
    assert np.all(np.isnan(curve[t < 20.0])) and np.all(np.isfinite(curve[t >= 20.0]))
    resid = (e - curve)[t >= 20.0] / err[t >= 20.0]
    assert abs(resid.mean()) < 0.2 and 0.8 < resid.std() < 1.2
    with pytest.raises(ValueError, match="response models for 2 events"):
        event_responses(t, e, [20.0, 160.0], model=["single"])


def test_pipeline_stores_models_curves_and_draws_them(tmp_path):
    """Through run_pl: per-event model, chi2, flag and the fitted curve are stored, and the curve
    follows the fitted peak energies; the trace figure is drawn."""
    from gpuproc.io.results import open_results
    from gpuproc.pl.job import job_from_dict
    from gpuproc.pl.pipeline import run_pl
    from gpuproc.synth.pl import StimulusEvent

    events = [StimulusEvent(20.0, "+200 V on", -10.0, 3.0, -8.0, 30.0),
              StimulusEvent(140.0, "0 V (off)", 18.0, 10.0, 0.0, 100.0)]
    ts = pl_timeseries(duration=240.0, n_channels=256, events=events, seed=6)
    np.savez(tmp_path / "ts.npz", data=ts.counts, axis=ts.wavelength)
    job = job_from_dict({
        "job": {"output": str(tmp_path / "ts.zarr"), "device": "cpu", "figures": str(tmp_path / "figs")},
        "input": {"source": str(tmp_path / "ts.npz"), "mode": "timeseries",
                  "events": [{"time": e.time, "label": e.label} for e in events]},
        "spectra": {"dark": float(ts.dark[0])}, "fit": {"max_peaks": 1}})
    ds = open_results(run_pl(job, progress=False))
    assert [str(m) for m in ds.event_model.values] == ["double", "single"]
    assert ds.event_tau_fast.values[1] == pytest.approx(10.0, rel=0.15)
    assert np.all(ds.event_chi2.values < 2.0)
    fit = ds.response_fit.values
    assert ds.response_fit.dims == ("time",) and np.all(np.isnan(fit[ds.time.values < 20.0]))
    after = ds.time.values >= 20.0
    pull = (ds.energy.values - fit)[after] / ds.energy_err.values[after]
    assert abs(np.nanmean(pull)) < 0.3
    assert (tmp_path / "figs" / "timeseries.png").stat().st_size > 10_000
