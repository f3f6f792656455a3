"""WAXS pipeline paths that a run can take, each checked by what it must give: snake scans,
the monitor (I0), dark / flat / mask images, saved cakes. Every variant is built so that the
right implementation reproduces a reference run (and a wrong one cannot)."""

import numpy as np
import pytest
import tomli_w

from gpuproc.fit import Status
from gpuproc.io.results import open_results
from gpuproc.io.store import scan_index, write_scan
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import run_waxs

SHAPE = (3, 4)
PARAMS = ("amplitude", "q0", "fwhm_q", "phi0", "fwhm_phi")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 3 x 4 synthetic scan, its frames in memory and its job run once (the reference)."""
    d = tmp_path_factory.mktemp("paths")
    job, scan = write_demo_job(d, SHAPE, seed=5, npt_q=200, npt_azimuth=180, figures=False,
                               job_overrides={"device": "cpu", "batch_frames": 8})
    frames = scan.stack()
    return d, job, frames, open_results(run_waxs(load_job(job)))


def variant(demo, name, frames, *, integration=None, job=None, **store):
    """The demo job on other frames (a new scan store) and/or other [integration]/[job] keys."""
    import tomllib

    d, job_file, _, _ = demo
    data = tomllib.loads(job_file.read_text())
    write_scan([frames], d / f"{name}.scan.zarr", n_frames=frames.shape[0], frame_shape=frames.shape[1:],
               dtype=frames.dtype, scan_shape=SHAPE, step_um=(0.3, 0.3), **store)
    data["input"]["source"] = f"{name}.scan.zarr"
    data["job"]["output"] = f"{name}.zarr"
    data["integration"].update(integration or {})
    data["job"].update(job or {})
    path = d / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return open_results(run_waxs(load_job(path)))


def assert_same_fits(ds, ref, tol_sigma=1e-3):
    """Every fitted parameter equal to the reference within ``tol_sigma`` of its error."""
    assert np.array_equal(ds.fit_status.values, ref.fit_status.values)
    for p in PARAMS:
        diff = np.abs(ds[p].values - ref[p].values)
        assert np.nanmax(diff / ref[p + "_err"].values) < tol_sigma, p


def assert_close_in_sigma(ds, ref, amplitude_scale=1.0):
    """Equal fits up to the weights of bins below one count (max(signal, 1) in the variance):
    at most 0.25 and typically 0.02 standard errors apart."""
    for p in PARAMS:
        scale = amplitude_scale if p == "amplitude" else 1.0
        diff = np.abs(ds[p].values - scale * ref[p].values) / (scale * ref[p + "_err"].values)
        assert np.nanmax(diff) < 0.25 and np.nanmedian(diff) < 0.02, p


def test_snake_scan_gives_the_positions_of_a_row_scan(demo):
    _, _, frames, ref = demo
    snake = scan_index(SHAPE, "snake").ravel()  # frame acquired at each position, row-major positions
    acquired = np.empty_like(frames)
    acquired[snake] = frames
    ds = variant(demo, "snake", acquired, scan_order="snake")
    assert_same_fits(ds, ref)
    for m in ("a", "b", "orientation", "size"):
        np.testing.assert_allclose(ds[m].values, ref[m].values, rtol=1e-5)


def test_monitor_divides_each_frame(demo):
    """Frames recorded with twice the flux and a monitor saying so fit to the same intensities."""
    _, _, frames, ref = demo
    k = np.tile([1, 2, 3], frames.shape[0] // 3 + 1)[: frames.shape[0]]
    ds = variant(demo, "monitor", frames * k[:, None, None].astype(frames.dtype), monitor=1000.0 * k)
    assert_close_in_sigma(ds, ref, amplitude_scale=np.mean(k))


def test_bad_monitor_invalidates_only_its_frames(demo):
    """NaN, zero and negative monitor values invalidate those frames' fits (INVALID_INPUT); every
    other frame (monitor scale 1: the mean of the usable values) fits bit for bit as without a
    monitor."""
    _, _, frames, ref = demo
    bad = {2: np.nan, 5: 0.0, 7: -40.0}
    monitor = np.full(frames.shape[0], 1000.0)
    monitor[list(bad)] = list(bad.values())
    with pytest.warns(UserWarning, match=r"3 frame\(s\) with a NaN, zero or negative monitor .*\[2, 5, 7\]"):
        ds = variant(demo, "bad_monitor", frames, monitor=monitor)
    n_refl = ds.sizes["reflection"]
    status = ds.fit_status.values.reshape(n_refl, -1)  # row scan: position index = frame index
    flagged = sorted(bad)
    others = np.setdiff1d(np.arange(status.shape[1]), flagged)
    assert np.all(status[:, flagged] == Status.INVALID_INPUT)
    assert np.any(status[:, others] == Status.CONVERGED)
    for name in ("fit_status", *PARAMS, "q0_err", "a", "size", "orientation"):
        values, expected = (v.reshape(n_refl if v.ndim == 3 else 1, -1) for v in (ds[name].values, ref[name].values))
        np.testing.assert_array_equal(values[:, others], expected[:, others], err_msg=name)
        if name in PARAMS:
            assert np.isnan(values[:, flagged]).all(), name


def test_dark_image_is_subtracted(demo):
    """Frames with a dark current and the dark image given give the clean frames' cakes."""
    import fabio

    d, _, frames, ref = demo
    dark = np.random.default_rng(1).integers(0, 20, frames.shape[1:]).astype(np.uint32)
    fabio.edfimage.EdfImage(data=dark.astype(np.float32)).write(str(d / "dark.edf"))
    ds = variant(demo, "dark", frames + dark, integration={"dark": "dark.edf"}, job={"save_cakes": True})
    clean = variant(demo, "dark_clean", frames, job={"save_cakes": True})
    np.testing.assert_allclose(ds.cake.values, clean.cake.values, rtol=1e-5, atol=1e-4)
    for p in ("q0", "phi0", "amplitude"):
        pull = (ds[p].values - ref[p].values) / ref[p + "_err"].values
        assert np.nanmax(np.abs(pull)) < 0.5, p  # only the weights may differ


def test_flat_image_divides(demo):
    import fabio

    d, _, frames, ref = demo
    flat = np.full(frames.shape[1:], 2.0, np.float32)
    fabio.edfimage.EdfImage(data=flat).write(str(d / "flat.edf"))
    ds = variant(demo, "flat", frames * 2, integration={"flat": "flat.edf"})
    assert_close_in_sigma(ds, ref)


def test_mask_image_removes_pixels(demo):
    """Hot pixels under a user mask change nothing versus the same mask on clean frames."""
    import fabio

    d, _, frames, ref = demo
    mask = np.zeros(frames.shape[1:], np.uint8)
    mask[::7, ::5] = 1
    fabio.edfimage.EdfImage(data=mask).write(str(d / "mask.edf"))
    hot = frames.copy()
    hot[:, mask.astype(bool)] = 100_000
    clean = variant(demo, "mask_clean", frames, integration={"mask": "mask.edf"})
    masked = variant(demo, "mask_hot", hot, integration={"mask": "mask.edf"})
    assert_same_fits(masked, clean)
    unmasked = variant(demo, "hot", hot, job={"allow_failed_fraction": 1.0})
    agree = np.abs(unmasked.amplitude.values - clean.amplitude.values) < 3 * clean.amplitude_err.values
    assert agree.mean() < 0.5  # without the mask the hot pixels spoil (or fail) most fits


def test_saved_cakes_are_the_fitted_intensities(demo):
    d, _, frames, ref = demo
    ds = variant(demo, "cakes", frames, job={"save_cakes": True})
    assert ds.cake.dims == ("y", "x", "azimuth", "q") and ds.cake.shape[:2] == SHAPE
    assert ds.cake.attrs["units"] and ds.q.size == 200 and ds.azimuth.size == 180
    assert_same_fits(ds, ref)
    # the cake's brightest bins lie on the fitted reflections' q0 (within a bin)
    cake = ds.cake.values[1, 2]
    q = ds.q.values
    prof = np.nanmean(cake, axis=0)
    q0 = ds.q0.values[:, 1, 2]
    near = np.min(np.abs(q[np.nanargmax(prof)] - q0[np.isfinite(q0)]))
    assert near < 3 * (q[1] - q[0])


def test_saxs_superlattice_parameter(tmp_path):
    """SAXS peaks of the superlattice (Pilatus 1M, a cake reaching q = 0.02 A^-1) give <a_SC>
    within its errors, with Friedel pairs grouped by [derive] saxs_groups."""
    import tomllib

    job, scan = write_demo_job(tmp_path, SHAPE, detector="Pilatus1M", seed=2, npt_q=1200, npt_azimuth=180,
                               figures=False, job_overrides={"device": "cpu"})
    data = tomllib.loads(job.read_text())
    assert sorted(r["name"] for r in data["reflections"] if r["kind"] == "saxs") == ["sc-10", "sc0-10", "sc01", "sc10"]
    data["derive"] = {"saxs_groups": [["sc10", "sc-10"], ["sc01", "sc0-10"]]}
    job.write_text(tomli_w.dumps(data))
    ds = open_results(run_waxs(load_job(job)))
    assert ds.a_sc.attrs["units"] == "angstrom"
    pull = (ds.a_sc.values - scan.truth["a_sc"]) / ds.a_sc_err.values
    assert np.all(np.isfinite(pull)) and np.max(np.abs(pull)) < 3.5, pull
    assert np.median(ds.a_sc_err.values) < 0.002 * np.median(scan.truth["a_sc"])
