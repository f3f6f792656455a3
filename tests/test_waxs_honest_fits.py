"""Honest WAXS spot fits: a fit that is not a measurement is never CONVERGED, and set-up refuses
windows that cannot be measured (gpuproc.waxs.windows, gpuproc.waxs.spot_checks).

Synthetic 4 x 5 scans on a Pilatus100k (seeded); each case is compared with what a spot fit must
not report: CONVERGED fits of an empty or hidden window, of a spot narrower than a bin, of a frame
whose window pixels are invalid, and maps built from such fits.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import fabio
import numpy as np
import pytest

from gpuproc.fit import Status
from gpuproc.io.results import open_results
from gpuproc.io.store import write_scan
from gpuproc.synth.waxs import DUMMY_UINT32, TruthModel
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.job import FitSection, ReflectionSpec, load_job
from gpuproc.waxs import derive
from gpuproc.waxs.pipeline import run_waxs
from gpuproc.waxs.spot_checks import FailingFitsWarning
from gpuproc.waxs.windows import VALID_BIN_FRACTION, CoverageWarning, make_window

SHAPE = (4, 5)
#: spots narrower than 1-degree azimuth bins: FWHM_phi 0.45-1.0 deg
NARROW = TruthModel(size_center_nm=40, size_edge_nm=30, disorder_center_rad=0.002, disorder_edge_rad=0.004,
                    strain_mean=0.004, strain_std=0.0005)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("honest")
    job, scan = write_demo_job(d, SHAPE, "Pilatus100k", seed=3, figures=False)
    return job, scan


@pytest.fixture(scope="module")
def baseline(demo):
    job, _ = demo
    return open_results(run_waxs(job))


def job_with(demo, tmp_path, name):
    cfg = load_job(demo[0])
    cfg.job.output = tmp_path / f"{name}.zarr"
    return cfg


def counts(status):
    return {Status(int(s)).name: int(n) for s, n in zip(*np.unique(status, return_counts=True))}


def window_pixels(scan, spec, q_fraction=1.0):
    """Detector pixels of ``spec``'s window (central ``q_fraction`` of its q range), padded in
    azimuth so that no bin of the window keeps a whole pixel."""
    q = scan.ai.center_array(scan.frame_shape, unit="q_A^-1")
    chi = scan.ai.center_array(scan.frame_shape, unit="chi_deg")
    lo, hi = spec.q_range
    centre, half = 0.5 * (lo + hi), 0.5 * q_fraction * (hi - lo) + (0.02 if q_fraction == 1.0 else 0.0)
    a_lo, a_hi = spec.azimuth_range
    return (np.abs(q - centre) <= half) & (np.mod(chi - a_lo + 3.0, 360.0) <= a_hi - a_lo + 6.0)


def write_mask(tmp_path, mask):
    path = tmp_path / "mask.edf"
    fabio.edfimage.EdfImage(data=mask.astype(np.uint8)).write(str(path))
    return path


# ---- set-up checks of the windows -------------------------------------------------------------


def test_window_coverage_counts_sliver_bins_as_invalid():
    q, azimuth = np.linspace(1.0, 2.0, 50), np.arange(-179.5, 180.0, 1.0)
    norm = np.ones((azimuth.size, q.size), np.float32)
    spec = ReflectionSpec("100", (1, 0, 0), (1.2, 1.4), (10.0, 30.0))
    w = make_window(spec, q, azimuth, norm, min_coverage=0.5, warn_coverage=0.9)
    assert w.coverage == 1.0 and w.weight_fraction == pytest.approx(1.0)
    # a user mask over the window leaves a sliver of each bin's weight: no bin is valid
    sliver = norm.copy()
    sliver[np.ix_(w.azimuth_index, w.q_index)] = 0.5 * VALID_BIN_FRACTION
    with pytest.raises(ValueError, match=r"reflection '100': 0% of its window's bins .* are valid, 12\.5% of the "
                                         r"full weight .*min_coverage is 50%"):
        make_window(spec, q, azimuth, sliver, min_coverage=0.5, warn_coverage=0.9)
    # a gap over a fifth of the window's rows: accepted with a warning naming the reflection
    gap = norm.copy()
    gap[w.azimuth_index[:4]] = 0.0
    with pytest.warns(CoverageWarning, match=r"reflection '100': 80% of its window's bins"):
        w = make_window(spec, q, azimuth, gap, min_coverage=0.5, warn_coverage=0.9)
    assert w.azimuth_index.size == 20 and w.coverage == pytest.approx(0.8)
    valid = w.valid(w.take(gap[None])).reshape(20, -1)
    assert not valid[:4].any() and valid[4:].all()


def test_window_outside_the_q_range_is_an_error_naming_both_ranges(demo, tmp_path):
    cfg = job_with(demo, tmp_path, "clipped")
    spec = next(r for r in cfg.reflections if r.name == "200")
    cfg.integration.q_range = (cfg.integration.q_range[0], 2.2)
    assert spec.q_range[0] < 2.2 < spec.q_range[1]  # the window is clipped, not empty
    with pytest.raises(ValueError, match=r"reflection '200': q window 1\.9\d* to 2\.\d+ leaves the integration q "
                                         r"range 0\.\d+ to 2\.2\b"):
        run_waxs(cfg)


def test_user_mask_over_a_window_is_refused_naming_it(demo, tmp_path):
    cfg = job_with(demo, tmp_path, "masked")
    spec = cfg.reflections[0]
    cfg.integration.mask = write_mask(tmp_path, window_pixels(demo[1], spec))
    with pytest.raises(ValueError, match=rf"reflection '{spec.name}': 0% of its window's bins"):
        run_waxs(cfg)


def test_spot_hidden_in_a_gap(demo, tmp_path):
    """A gap across the middle of the window hides the spot: refused below min_coverage; with the
    check lowered, its fits are not CONVERGED and the other reflections are unaffected."""
    cfg = job_with(demo, tmp_path, "gap")
    spec = cfg.reflections[0]
    cfg.integration.mask = write_mask(tmp_path, window_pixels(demo[1], spec, q_fraction=0.6))
    with pytest.raises(ValueError, match=rf"reflection '{spec.name}': 4\d% of its window's bins .* valid"):
        run_waxs(cfg)
    cfg.fit.min_coverage = 0.3
    with (pytest.warns(CoverageWarning, match=rf"reflection '{spec.name}': 4\d% of its window's bins"),
          pytest.warns(FailingFitsWarning, match=rf"reflection '{spec.name}': 0 of 20 fits")):
        ds = open_results(run_waxs(cfg))
    status = ds.fit_status.values
    assert not (status[0] == Status.CONVERGED).any(), counts(status[0])
    assert np.isnan(ds.q0.values[0]).all() and np.isfinite(ds.a.values).all()  # a from the other spots
    assert (status[1:] == Status.CONVERGED).mean() > 0.95
    np.testing.assert_allclose(ds.valid_fraction.values[0], 0.44, atol=0.06)


def test_empty_window_gives_no_converged_fits_and_leaves_the_maps_alone(demo, baseline, tmp_path):
    cfg = job_with(demo, tmp_path, "empty")
    spec = cfg.reflections[0]
    lo, hi = spec.azimuth_range
    # the (1 0 0) ring 225 degrees away from the spot: background only; listed as a 00l reflection so
    # that any fit that passed would enter the lattice (c) and Williamson-Hall maps
    cfg.reflections.append(dataclasses.replace(spec, name="empty", hkl=(0, 0, 1), azimuth_range=(lo + 225, hi + 225)))
    with pytest.warns(FailingFitsWarning, match=r"reflection 'empty': 0 of 20 fits passed") as record:
        ds = open_results(run_waxs(cfg))
    assert not [w for w in record if w.category is FailingFitsWarning and "'empty'" not in str(w.message)]
    status = ds.fit_status.sel(reflection="empty").values
    assert not (status == Status.CONVERGED).any(), counts(status)
    assert (status == Status.NO_PEAK).any()
    assert "5 NO_PEAK, 6 AT_BOUND, 7 LOW_COVERAGE" in ds.fit_status.attrs["long_name"]
    by_reflection = json.loads(ds.attrs["statistics"])["fit_status_by_reflection"]
    assert by_reflection["empty"] == counts(status) and by_reflection["100"] == {"CONVERGED": 20}
    assert np.isnan(ds.amplitude.sel(reflection="empty").values).all()
    assert np.isnan(ds.c.values).all()
    for name in ("a", "b", "strain", "size", "disorder"):
        np.testing.assert_array_equal(ds[name].values, baseline[name].values, err_msg=name)


def test_widths_below_a_bin_are_flagged(tmp_path):
    job, scan = write_demo_job(tmp_path, SHAPE, "Pilatus100k", seed=3, figures=False, model=NARROW)
    assert scan.truth["fwhm_phi_deg"].max() < 1.05  # 1-degree azimuth bins (npt_azimuth 360)
    with pytest.warns(FailingFitsWarning, match=r"fits passed \(CONVERGED\)"):  # reflections with mostly AT_BOUND
        ds = open_results(run_waxs(job))
    status, fwhm, err = ds.fit_status.values, ds.fwhm_phi.values, ds.fwhm_phi_err.values
    ok = status == Status.CONVERGED
    assert (status == Status.AT_BOUND).sum() > 0.1 * status.size, counts(status)
    # no undetermined width (the start value with an error of 1e16, as before) is a measurement
    assert np.all(np.isfinite(err[ok])) and np.all(err[ok] < 10.0)  # 1-degree bins
    assert np.isnan(fwhm[~ok]).all()
    # the lattice map is the least squares over exactly the fits that passed (the others are NaN)
    lat = derive.lattice_parameters(np.moveaxis(ds.q0.values, 0, -1), ds.hkl.values,
                                    np.moveaxis(ds.q0_err.values, 0, -1))
    np.testing.assert_allclose(ds.a.values, lat.a, rtol=1e-6)
    np.testing.assert_allclose(ds.b.values, lat.b, rtol=1e-6)


def test_invalid_pixels_in_some_frames_give_low_coverage(demo, tmp_path):
    """Frames whose window pixels are all invalid (dummy 2^32-1) are LOW_COVERAGE with their
    valid fraction stored; the other frames are fitted as before."""
    job, scan = demo
    spec = load_job(job).reflections[0]
    hidden = window_pixels(scan, spec, q_fraction=0.8)
    bad_frames = {2, 7, 11}

    def frames():
        for i in range(scan.n_frames):
            f = scan.frame(i)
            if i in bad_frames:
                f[hidden] = DUMMY_UINT32
            yield f[None]

    write_scan(frames(), tmp_path / "scan.zarr", n_frames=scan.n_frames, frame_shape=scan.frame_shape,
               dtype=np.uint32, scan_shape=scan.shape, step_um=(0.3, 0.3))
    cfg = job_with(demo, tmp_path, "dummy")
    cfg.input.source = str(tmp_path / "scan.zarr")
    ds = open_results(run_waxs(cfg))
    status = ds.fit_status.values[0].ravel()
    fraction = ds.valid_fraction.values[0].ravel()
    bad = np.isin(np.arange(scan.n_frames), sorted(bad_frames))
    assert np.all(status[bad] == Status.LOW_COVERAGE) and np.all(fraction[bad] < 0.5)
    assert np.all(fraction[~bad] == 1.0) and (status[~bad] == Status.CONVERGED).all()


def test_fit_section_checks_its_keys():
    assert FitSection().min_significance == 3.0
    with pytest.raises(ValueError, match=r"\[fit\] min_coverage must lie in \[0, 1\]"):
        FitSection(min_coverage=1.5)
    with pytest.raises(ValueError, match=r"\[fit\] min_fwhm_bins must be > 0"):
        FitSection(min_fwhm_bins=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FitSection(min_coverage=0.0, warn_coverage=0.0)
