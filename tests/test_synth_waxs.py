"""Synthetic nanodiffraction scans (gpuproc.synth.waxs): reproducibility, ground-truth consistency,
detector gaps and file output."""

from __future__ import annotations

import math
import types

import fabio
import h5py
import numpy as np
import pyFAI
import pytest
from scipy import ndimage

from gpuproc.fit.models.gauss2d_polar import wrap_deg
from gpuproc.synth.waxs import DUMMY_UINT32, TruthModel, lattice_from_size, make_waxs_scan
from gpuproc.waxs import derive


@pytest.fixture(scope="module")
def scan():
    """A small scan on a detector with module gaps (odd shape: the centre is a scan point)."""
    return make_waxs_scan((5, 7), "Pilatus300k", seed=3)


def test_seeded_reproducibility(scan):
    again = make_waxs_scan((5, 7), "Pilatus300k", seed=3)
    other = make_waxs_scan((5, 7), "Pilatus300k", seed=4)
    for key, value in scan.truth.items():
        np.testing.assert_array_equal(value, again.truth[key])
    np.testing.assert_array_equal(scan.frame(4), again.frame(4))
    assert not np.array_equal(scan.frame(4), other.frame(4))
    assert not np.array_equal(scan.truth["strain"], other.truth["strain"])


def test_frames_are_lazy_and_random_access(scan):
    frames = scan.frames()
    assert isinstance(frames, types.GeneratorType)
    first, second = next(frames), next(frames)
    np.testing.assert_array_equal(second, scan.frame(1))
    assert first.dtype == np.uint32 and first.shape == scan.frame_shape == (619, 487)
    with pytest.raises(IndexError):
        scan.frame(scan.n_frames)


def test_gaps_carry_dummy_value(scan):
    frame = scan.frame(0)
    gaps = scan.ai.detector.mask.astype(bool)
    assert gaps.sum() > 10000
    assert np.all(frame[gaps] == DUMMY_UINT32)
    assert np.all(frame[~gaps] < DUMMY_UINT32)


def test_truth_maps_have_stated_ranges(scan):
    t = scan.truth
    assert t["size_nm"].min() == pytest.approx(8.5) and t["size_nm"].max() == pytest.approx(16.0)
    assert t["strain"].mean() == pytest.approx(0.018, abs=5e-4) and t["strain"].std() > 1e-3
    assert np.all(np.abs(t["phi0_deg"] - TruthModel().orientation_deg) <= 5.0)
    centre, corner = (2, 3), (0, 0)
    assert t["disorder_rad"][centre] < t["disorder_rad"][corner]
    assert np.corrcoef(t["a"].ravel(), t["size_nm"].ravel())[0, 1] < -0.3
    assert np.corrcoef(t["b"].ravel(), t["size_nm"].ravel())[0, 1] > 0.3
    a, b = lattice_from_size(np.array([8.5, 13.0]))
    np.testing.assert_allclose(a - b, [0.035, 0.0], atol=1e-12)
    assert t["q0"].shape == (5, 7, len(scan.reflections))


def test_spot_widths_follow_williamson_hall_and_disorder_formula(scan):
    t = scan.truth
    waxs = [j for j, r in enumerate(scan.reflections) if r.kind == "waxs"]
    q0, fwhm_q = t["q0"][..., waxs], t["fwhm_q"][..., waxs]
    wh = derive.williamson_hall(q0, fwhm_q)
    np.testing.assert_allclose(wh.strain, t["strain"], rtol=1e-6)
    np.testing.assert_allclose(wh.size / 10.0, t["size_nm"], rtol=1e-6)
    hkl = [scan.reflections[j].hkl for j in waxs]
    lat = derive.lattice_parameters(q0, hkl)
    np.testing.assert_allclose([lat.a, lat.b], [t["a"], t["b"]], rtol=1e-10)
    do = derive.orientational_disorder(t["fwhm_phi_deg"][..., waxs], q0, wh.dq_size[..., None], wh.strain[..., None])
    np.testing.assert_allclose(do.value, np.broadcast_to(t["disorder_rad"][..., None], q0.shape), rtol=1e-6)


def brightest_in_window(image, q, chi, refl):
    """(q, chi) of the brightest pixel inside a reflection's window."""
    (q_lo, q_hi), (a_lo, a_hi) = refl.q_range, refl.azimuth_range
    inside = (q > q_lo) & (q < q_hi) & (np.abs(wrap_deg(chi - 0.5 * (a_lo + a_hi))) < 0.5 * (a_hi - a_lo))
    k = np.argmax(np.where(inside, image, -1.0))
    return q.flat[k], chi.flat[k]


def test_brightest_pixel_of_a_spot_is_at_its_truth(scan):
    q = scan.ai.center_array(unit="q_A^-1")
    chi = scan.ai.center_array(unit="chi_deg")
    i = 17
    iy, ix = divmod(i, scan.shape[1])
    expected = scan.expected(i)
    gaps = scan.ai.detector.mask.astype(bool)
    np.testing.assert_array_equal(expected[gaps], 0.0)
    near_gap = ndimage.binary_dilation(gaps, iterations=4)
    pixel_q = np.abs(np.diff(q, axis=1)).max()  # largest q step between neighbouring pixels
    visible = []
    for j in range(len(scan.reflections)):
        centre = np.argmin(((q - scan.truth["q0"][iy, ix, j]) / pixel_q) ** 2
                           + wrap_deg(chi - scan.truth["azimuth_deg"][iy, ix, j]) ** 2)
        if not near_gap.flat[centre]:  # else the detector does not see the top of the spot
            visible.append(j)
    assert len(visible) >= 8
    for j in visible:
        q_max, chi_max = brightest_in_window(expected, q, chi, scan.reflections[j])
        assert abs(q_max - scan.truth["q0"][iy, ix, j]) < pixel_q
        assert abs(wrap_deg(chi_max - scan.truth["azimuth_deg"][iy, ix, j])) < 1.0
    # with Poisson noise the brightest pixel still lies within the spot's FWHM
    frame = np.where(scan.frame(i) < DUMMY_UINT32, scan.frame(i), 0).astype(float)
    for j in visible:
        q_max, chi_max = brightest_in_window(frame, q, chi, scan.reflections[j])
        assert abs(q_max - scan.truth["q0"][iy, ix, j]) < scan.truth["fwhm_q"][iy, ix, j]
        assert abs(wrap_deg(chi_max - scan.truth["azimuth_deg"][iy, ix, j])) < scan.truth["fwhm_phi_deg"][iy, ix, j]


def test_reflection_geometry(scan):
    by_name = {r.name: r for r in scan.reflections}
    centre = {n: 0.5 * sum(r.azimuth_range) for n, r in by_name.items()}
    assert wrap_deg(centre["010"] - centre["100"]) == pytest.approx(90.0, abs=1.0)
    assert abs(wrap_deg(centre["-100"] - centre["100"])) == pytest.approx(180.0, abs=1.0)
    assert wrap_deg(centre["110"] - centre["100"]) == pytest.approx(45.0, abs=1.0)
    assert 1.0 < 0.5 * sum(by_name["100"].q_range) < 1.14 and 2.08 < 0.5 * sum(by_name["200"].q_range) < 2.2
    assert by_name["110"].to_dict()["hkl"] == [1, 1, 0]


def test_saxs_on_a_large_detector_and_skipped_on_a_small_one():
    small = make_waxs_scan((1, 2), "Pilatus100k", seed=0)
    assert all(r.kind == "waxs" for r in small.reflections)
    with pytest.raises(ValueError, match="SAXS"):
        make_waxs_scan((1, 2), "Pilatus100k", saxs=True)
    big = make_waxs_scan((1, 2), "Eiger1M", seed=0)
    saxs = [j for j, r in enumerate(big.reflections) if r.kind == "saxs"]
    assert len(saxs) == 4
    sl = derive.superlattice(big.truth["q0"][..., saxs], groups=((0, 2), (1, 3)))
    np.testing.assert_allclose(sl.a_mean, big.truth["a_sc"])
    q = big.ai.center_array(unit="q_A^-1")
    frame = big.frame(0).astype(np.int64)
    near = (q < 0.07) & (frame < DUMMY_UINT32)
    k = np.argmax(np.where(near, frame, -1))
    assert abs(q.flat[k] - 2 * math.pi / big.truth["a_sc"][0, 0]) < 0.008


def test_write_edf_hdf5_poni_truth(tmp_path):
    small = make_waxs_scan((2, 2), "Pilatus100k", seed=5)
    paths = small.write_frames(tmp_path / "edf")
    assert len(paths) == 4
    np.testing.assert_array_equal(fabio.open(str(paths[2])).data, small.frame(2))
    cbf = small.write_frames(tmp_path / "cbf", fmt="cbf")
    np.testing.assert_array_equal(fabio.open(str(cbf[1])).data, small.frame(1))
    h5 = small.write_hdf5(tmp_path / "scan.h5")
    with h5py.File(h5) as f:
        data = f["entry/data/data"]
        assert data.shape == (4, 195, 487) and data.dtype == np.uint32
        np.testing.assert_array_equal(data[3], small.frame(3))
    ai = pyFAI.load(str(small.write_poni(tmp_path / "geometry.poni")))
    assert ai.dist == pytest.approx(small.ai.dist) and ai.wavelength == pytest.approx(1e-10)
    truth = np.load(small.write_truth(tmp_path / "truth.npz"))
    np.testing.assert_array_equal(truth["size_nm"], small.truth["size_nm"])


def test_signed_dectris_flags_and_bad_pixels():
    """int32 frames with -1 on the module gaps and -2 on a fixed random 1 % of bad pixels; every
    other pixel holds the counts of the default uint32 frame."""
    plain = make_waxs_scan((1, 2), "Pilatus300k", seed=3)
    flagged = make_waxs_scan((1, 2), "Pilatus300k", seed=3, signed=True, bad_pixels=0.01)
    frame = flagged.frame(1)
    assert frame.dtype == np.int32 and plain.frame(1).dtype == np.uint32 and not plain.bad.any()
    assert (frame == -1).sum() == flagged.gaps.sum() > 0
    assert 0.008 < (frame == -2).sum() / (~flagged.gaps).sum() < 0.012
    np.testing.assert_array_equal(frame == -2, flagged.frame(0) == -2)
    counted = frame >= 0
    np.testing.assert_array_equal(frame[counted], plain.frame(1)[counted])
    unsigned = make_waxs_scan((1, 2), "Pilatus300k", seed=3, bad_pixels=0.01).frame(1)
    np.testing.assert_array_equal(unsigned == DUMMY_UINT32, ~counted)
