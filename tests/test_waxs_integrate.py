"""CakeIntegrator against pyFAI's own integrate2d (same CSR method and corrections)."""

import numpy as np
import pyFAI.detectors
import pytest
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

from gpuproc.waxs.integrate import CakeIntegrator, load_geometry

SHAPE = (256, 256)
NPT_Q, NPT_AZ = 60, 72
Q_RANGE = (0.5, 3.5)  # A^-1


def make_ai() -> AzimuthalIntegrator:
    det = pyFAI.detectors.Detector(172e-6, 172e-6, max_shape=SHAPE)
    return AzimuthalIntegrator(
        dist=0.05, poni1=0.021, poni2=0.018, rot1=0.03, rot2=-0.02, detector=det, wavelength=1.0e-10
    )


def make_frames(n: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson frames with a ring and a few spots, uint32 counts."""
    ai = make_ai()
    q = ai.qArray(SHAPE) / 10.0  # A^-1
    chi = np.degrees(ai.chiArray(SHAPE))
    frames = []
    for k in range(n):
        ring = 500 * np.exp(-0.5 * ((q - 1.07) / 0.02) ** 2)
        spots = 2000 * np.exp(-0.5 * ((q - 2.14) / 0.02) ** 2 - 0.5 * ((chi - 10 * k) / 5.0) ** 2)
        frames.append(rng.poisson(20 + ring + spots))
    return np.asarray(frames, dtype=np.uint32)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(1)
    mask = np.zeros(SHAPE, np.int8)
    mask[120:126, :] = 1  # a horizontal gap
    mask[:, 200:203] = 1
    dark = rng.uniform(0.0, 3.0, SHAPE).astype(np.float32)
    flat = rng.uniform(0.9, 1.1, SHAPE).astype(np.float32)
    return make_frames(3, rng), mask, dark, flat


def reference(ai, frame, *, split, mask, dark=None, flat=None, pol=None, solid=True, unit="q_A^-1", q_range=Q_RANGE):
    return ai.integrate2d(
        frame, NPT_Q, NPT_AZ, unit=unit, radial_range=q_range, azimuth_range=(-180, 180),
        method=(split, "csr", "cython"), mask=mask, dark=dark, flat=flat,
        polarization_factor=pol, correctSolidAngle=solid,
    )


def assert_same(ours: np.ndarray, res) -> None:
    empty = res.count == 0
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(ours), empty)
    np.testing.assert_allclose(ours[~empty], res.intensity[~empty], rtol=1e-5)


@pytest.mark.parametrize("split", ["bbox", "no"])
@pytest.mark.parametrize(
    "corrections",
    [dict(pol=None, solid=False, use_dark=False), dict(pol=0.95, solid=True, use_dark=True)],
)
def test_matches_pyfai(setup, split, corrections):
    frames, mask, dark, flat = setup
    use = corrections["use_dark"]
    ai = make_ai()
    ci = CakeIntegrator(
        ai, npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, split=split,
        dark=dark if use else None, flat=flat if use else None,
        polarization_factor=corrections["pol"], solid_angle=corrections["solid"],
    )
    cakes = ci.integrate(frames)
    assert cakes.shape == (len(frames), NPT_AZ, NPT_Q)
    for k, frame in enumerate(frames):
        res = reference(
            make_ai(), frame, split=split, mask=mask, dark=dark if use else None,
            flat=flat if use else None, pol=corrections["pol"], solid=corrections["solid"],
        )
        assert_same(cakes[k], res)
        np.testing.assert_allclose(ci.q, res.radial, rtol=1e-6)
        np.testing.assert_allclose(ci.azimuth, res.azimuthal, rtol=1e-6)


def test_q_nm_unit(setup):
    frames, mask, _, _ = setup
    q_nm = tuple(10 * q for q in Q_RANGE)
    ci = CakeIntegrator(make_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=q_nm, unit="q_nm^-1", mask=mask)
    res = reference(make_ai(), frames[0], split="bbox", mask=mask, unit="q_nm^-1", q_range=q_nm)
    assert_same(ci.integrate(frames[0])[0], res)
    np.testing.assert_allclose(ci.q, res.radial, rtol=1e-6)


def test_per_frame_invalid_pixels(setup):
    frames, mask, dark, flat = setup
    frames = frames.copy()
    rng = np.random.default_rng(7)
    bad = np.zeros(frames.shape, bool)
    bad[1, rng.integers(0, 256, 400), rng.integers(0, 256, 400)] = True
    bad[1, 60:70, 60:70] = True  # a whole block, emptying some bins of that frame only
    frames[1][bad[1]] = np.iinfo(np.uint32).max  # detector dummy value
    frames[2, 30, 40] = 10**7  # above saturation
    bad[2, 30, 40] = True
    ci = CakeIntegrator(
        make_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, dark=dark,
        flat=flat, polarization_factor=0.9, saturation=10**6,
    )
    cakes = ci.integrate(frames)
    for k in range(len(frames)):
        frame_mask = (mask.astype(bool) | bad[k]).astype(np.int8)
        res = reference(make_ai(), frames[k], split="bbox", mask=frame_mask, dark=dark, flat=flat, pol=0.9)
        assert_same(cakes[k], res)


def test_shared_dead_pixels_and_one_extra(setup):
    frames, mask, _, _ = setup
    frames = np.concatenate([frames, frames]).astype(np.uint16)
    frames[:, 50, 50:60] = np.iinfo(np.uint16).max  # dead in every frame, not in the mask
    frames[4, 200:210, 30] = np.iinfo(np.uint16).max
    ci = CakeIntegrator(make_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, block_frames=4)
    cakes = ci.integrate(frames)
    for k, frame in enumerate(frames):
        frame_mask = (mask.astype(bool) | (frame == np.iinfo(np.uint16).max)).astype(np.int8)
        assert_same(cakes[k], reference(make_ai(), frame, split="bbox", mask=frame_mask))


def test_nan_pixels_in_float_frames(setup):
    frames, mask, _, _ = setup
    frame = frames[0].astype(np.float32)
    frame[10:20, 100:140] = np.nan
    ci = CakeIntegrator(make_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask)
    nan_mask = (mask.astype(bool) | np.isnan(frame)).astype(np.int8)
    res = reference(make_ai(), np.nan_to_num(frame), split="bbox", mask=nan_mask)
    assert_same(ci.integrate(frame)[0], res)


def test_sums_and_static_count(setup):
    frames, mask, _, _ = setup
    ci = CakeIntegrator(make_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, block_frames=2)
    signal, norm = ci.integrate_sums(frames)
    res = reference(make_ai(), frames[2], split="bbox", mask=mask)
    np.testing.assert_allclose(signal[2], res.sum_signal, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(norm[2], ci.norm, rtol=1e-6)
    np.testing.assert_allclose(ci.count, res.count, rtol=1e-5, atol=1e-5)


def test_blocks_split_evenly_and_change_no_bit(setup):
    """Any split of a batch into sparse products gives the same sums bit for bit; with threads the
    products are as many as a multiple of the threads, within one frame of each other in size."""
    frames, mask, dark, _ = setup
    frames = np.concatenate([frames] * 4)  # 12 frames
    frames[5, 30:34, 60] = np.iinfo(np.uint32).max  # one frame with its own invalid pixels
    kw = dict(npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, dark=dark, device="cpu")
    one = CakeIntegrator(make_ai(), block_frames=12, threads=1, **kw)
    assert one._frame_blocks(12) == [(0, 12)]
    expected = one.integrate_sums(frames)
    for block_frames, threads, sizes in ((4, 2, [3, 3, 3, 3]), (5, 2, [3, 3, 3, 3]), (7, 2, [6, 6]), (12, 3, [4, 4, 4])):
        ci = CakeIntegrator(make_ai(), block_frames=block_frames, threads=threads, **kw)
        blocks = ci._frame_blocks(len(frames))
        assert [b - a for a, b in blocks] == sizes and blocks[0][0] == 0 and blocks[-1][1] == len(frames)
        for ours, theirs in zip(ci.integrate_sums(frames), expected):
            np.testing.assert_array_equal(ours, theirs)
        ci.integrate_sums(frames[:5])  # a smaller batch reuses the threads' larger work buffers
        for ours, theirs in zip(ci.integrate_sums(frames), expected):
            np.testing.assert_array_equal(ours, theirs)


def test_poni_file(tmp_path, setup):
    frames, mask, _, _ = setup
    ai = make_ai()
    poni = tmp_path / "geom.poni"
    ai.save(str(poni))
    ci = CakeIntegrator(poni, npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask)
    assert_same(ci.integrate(frames[0])[0], reference(make_ai(), frames[0], split="bbox", mask=mask))


def test_missing_poni(tmp_path):
    path = tmp_path / "nope.poni"
    with pytest.raises(FileNotFoundError, match="nope.poni"):
        load_geometry(path)


def test_malformed_poni(tmp_path):
    path = tmp_path / "bad.poni"
    path.write_text("this is not\na geometry\n")
    with pytest.raises(ValueError, match=r"bad\.poni.*distance"):
        load_geometry(path)


def test_frame_shape_mismatch_names_frame(setup):
    frames, _, _, _ = setup
    ci = CakeIntegrator(make_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE)
    batch = [frames[0], frames[1], frames[2][:200]]
    with pytest.raises(ValueError, match=r"frame 2 has shape \(200, 256\).*\(256, 256\)"):
        ci.integrate(batch)
    with pytest.raises(ValueError, match=r"frame 0 has shape \(2, 128, 128\)|frame 0 has shape \(128, 128\)"):
        ci.integrate(np.zeros((2, 128, 128)))


def test_bad_unit():
    with pytest.raises(ValueError, match="unit"):
        CakeIntegrator(make_ai(), npt_q=10, npt_azimuth=10, q_range=Q_RANGE, unit="2th_deg")


@pytest.mark.gpu
def test_gpu_matches_cpu(setup):
    frames, mask, dark, flat = setup
    kw = dict(npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, dark=dark, flat=flat, polarization_factor=0.9)
    cpu = CakeIntegrator(make_ai(), device="cpu", **kw).integrate(frames)
    gpu = CakeIntegrator(make_ai(), device="gpu", **kw).integrate(frames).get()
    np.testing.assert_allclose(gpu, cpu, rtol=1e-5)


@pytest.mark.parametrize("azimuth_range", [(-45.0, 45.0), (0.0, 360.0), (90.0, 270.0)])
def test_azimuth_ranges(setup, azimuth_range):
    frames, mask, _, _ = setup
    ci = CakeIntegrator(
        make_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, azimuth_range=azimuth_range
    )
    res = make_ai().integrate2d(
        frames[0], NPT_Q, NPT_AZ, unit="q_A^-1", radial_range=Q_RANGE, azimuth_range=azimuth_range,
        method=("bbox", "csr", "cython"), mask=mask,
    )
    assert_same(ci.integrate(frames[0])[0], res)
    np.testing.assert_allclose(ci.azimuth, res.azimuthal, rtol=1e-6)
    assert azimuth_range[0] <= ci.azimuth[0] < ci.azimuth[-1] <= azimuth_range[1]


@pytest.mark.parametrize("dtype", [np.uint32, np.uint16, np.int32, np.float32, np.float64])
def test_compiled_and_numpy_paths_agree(setup, monkeypatch, dtype):
    """The compiled CPU kernels (when built) and the NumPy/scipy fallback give the same cakes."""
    import gpuproc.waxs.integrate as integrate

    frames, mask, dark, flat = setup
    frames = frames.astype(dtype)
    frames[0, 5:9, 7] = 2000  # above saturation
    if np.issubdtype(dtype, np.floating):
        frames[1, 40:44, 3] = np.nan
        frames[2, 41, 90] = np.inf
    else:
        frames[1, 40:44, 3] = np.iinfo(dtype).max  # dummy
    kw = dict(npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, dark=dark, flat=flat,
              saturation=1500, device="cpu", block_frames=2, threads=2)
    compiled = integrate.CakeIntegrator(make_ai(), **kw).integrate_sums(frames)
    compiled_pixels = integrate.CakeIntegrator(make_ai(), **kw).pixel_signal(frames)
    monkeypatch.setattr(integrate, "_kernels", lambda: None)
    fallback = integrate.CakeIntegrator(make_ai(), **kw).integrate_sums(frames)
    np.testing.assert_array_equal(compiled_pixels, integrate.CakeIntegrator(make_ai(), **kw).pixel_signal(frames))
    assert np.isnan(compiled_pixels[0, 5:9, 7]).all() and np.isnan(compiled_pixels[:, mask.astype(bool)]).all()
    for a, b in zip(compiled, fallback):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-3)
    for k in range(len(frames)):
        frame = frames[k].astype(np.float64)
        bad = ~np.isfinite(frame) | (frame > 1500)
        if not np.issubdtype(dtype, np.floating):
            bad |= frames[k] == np.iinfo(dtype).max
        res = reference(make_ai(), np.where(bad, 0, frame), split="bbox", mask=(mask.astype(bool) | bad).astype(np.int8),
                        dark=dark, flat=flat)
        with np.errstate(invalid="ignore", divide="ignore"):
            ours = np.where(compiled[1][k] > 0, compiled[0][k] / compiled[1][k], np.nan).astype(np.float32)
        assert_same(ours, res)


def flagged_ai(dummy=-2.0, delta_dummy=1.5) -> AzimuthalIntegrator:
    """make_ai() with a detector that carries a dummy, as pyFAI's Pilatus/Eiger definitions do."""
    ai = make_ai()
    ai.detector.dummy, ai.detector.delta_dummy = dummy, delta_dummy
    return ai


def defaults_reference(ai, frame, **kw):
    """integrate2d with pyFAI's defaults for invalid pixels (detector mask and dummies)."""
    return ai.integrate2d(frame, NPT_Q, NPT_AZ, unit="q_A^-1", radial_range=Q_RANGE, azimuth_range=(-180, 180),
                          method=("bbox", "csr", "cython"), **kw)


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.float64, np.uint16, np.uint32])
def test_detector_dummies_as_integrate2d(setup, dtype):
    """Dectris flags (-1 gaps, -2 bad; 2**32-2 .. -1 and 2**16-3 .. -1 in unsigned frames) drop out of
    signal and normalisation exactly where pyFAI's detector dummy (-2 +- 1.5) drops them."""
    frames, _, dark, flat = setup
    rng = np.random.default_rng(3)
    frames = frames.astype(dtype)
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.unsignedinteger) else None
    for k in range(len(frames)):
        gaps, bad = rng.random(SHAPE) < 0.05, rng.random(SHAPE) < 0.06
        if top is None:
            frames[k][gaps], frames[k][bad] = -1, -2
            frames[k, 7, :20] = -3 if np.issubdtype(dtype, np.signedinteger) else -0.4  # -3 is invalid, -0.4 is not
        else:
            frames[k][gaps], frames[k][bad] = top, top - 1
            frames[k, 7, :20] = top - 2 if dtype == np.uint16 else top - 127  # both round to the dummy
            frames[k, 8, :20] = top - 3 if dtype == np.uint16 else top - 300  # neither does
    kw = dict(npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, dark=dark, flat=flat, device="cpu")
    cakes = CakeIntegrator(flagged_ai(), **kw).integrate(frames)
    ignored = CakeIntegrator(flagged_ai(), dummy=None, **kw).integrate(frames)
    for k, frame in enumerate(frames):
        res = defaults_reference(flagged_ai(), frame, dark=dark, flat=flat)
        assert_same(cakes[k], res)
        assert np.nanmax(np.abs(ignored[k] - res.intensity)) > 0.01 * np.nanmax(res.intensity)  # flags matter


@pytest.mark.parametrize("dummy, delta_dummy", [(0.0, None), (5.0, 2.0), (-1.0, None)])
def test_explicit_dummy_as_integrate2d(setup, dummy, delta_dummy):
    """[integration] dummy / delta_dummy: pyFAI's integrate2d(dummy=..., delta_dummy=...), None = exact."""
    frames, mask, _, _ = setup
    frames = frames.astype(np.float32)
    rng = np.random.default_rng(5)
    for frame in frames:  # exactly the dummy, and just inside / outside its tolerance
        for offset in (0.0, 0.9 * (delta_dummy or 0), 1.1 * (delta_dummy or 0) + 0.5):
            frame[rng.random(SHAPE) < 0.03] = dummy + offset
    ci = CakeIntegrator(flagged_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask,
                        dummy=dummy, delta_dummy=delta_dummy)
    cakes = ci.integrate(frames)
    for k, frame in enumerate(frames):
        res = defaults_reference(flagged_ai(), frame, mask=mask, dummy=dummy, delta_dummy=delta_dummy)
        assert_same(cakes[k], res)


def test_flat_meeting_the_dummy_is_invalid(setup):
    """pyFAI also applies the dummy test to the flat field: those pixels are invalid in every frame."""
    frames, _, _, flat = setup
    flat = flat.copy()
    flat[100:110, 30:200] = -1.0  # within -2 +- 1.5
    frames = frames.astype(np.int32)
    ci = CakeIntegrator(flagged_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, flat=flat)
    for k, cake in enumerate(ci.integrate(frames)):
        assert_same(cake, defaults_reference(flagged_ai(), frames[k], flat=flat))


def test_delta_dummy_needs_numeric_dummy():
    with pytest.raises(ValueError, match="delta_dummy needs a numeric dummy"):
        CakeIntegrator(flagged_ai(), npt_q=10, npt_azimuth=10, q_range=Q_RANGE, delta_dummy=1.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("dummy, delta", [(-2.0, 1.5), (7.0, 0.3), (100.0, 0.0), (65534.0, 1.5)])
def test_intervals_are_pyfai_rule_on_every_value(dtype, dummy, delta):
    """invalid_intervals equals |float32(v) - dummy| <= delta (or ==) over a dtype's whole range."""
    from gpuproc.waxs.invalid_pixels import DummyRule, invalid_intervals

    values = np.arange(np.iinfo(dtype).min, np.iinfo(dtype).max + 1).astype(dtype)
    rule = DummyRule(np.float32(dummy), np.float32(delta))
    v32 = values.astype(np.float32)
    expected = (v32 == rule.dummy) if delta == 0 else (np.abs(v32 - rule.dummy) <= rule.delta)
    if np.issubdtype(dtype, np.unsignedinteger):
        expected |= values == np.iinfo(dtype).max
    got = np.zeros(values.shape, bool)
    for lo, hi in invalid_intervals(np.dtype(dtype), rule):
        got |= (values >= lo) & (values <= hi)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.float32])
def test_gpu_flags_match_cpu(setup, dtype):
    """pyFAI's dummy rule, the flat rule and the unsigned maximum on the GPU path (CuPy)."""
    frames, mask, dark, flat = setup
    rng = np.random.default_rng(9)
    frames = frames.astype(dtype)
    flagged = rng.random(frames.shape) < 0.1
    frames[flagged] = np.iinfo(dtype).max if dtype == np.uint32 else -2
    flat = flat.copy()
    flat[3, :50] = -1.5
    kw = dict(npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, dark=dark, flat=flat)
    cpu = CakeIntegrator(flagged_ai(), device="cpu", **kw).integrate(frames)
    gpu = CakeIntegrator(flagged_ai(), device="gpu", **kw).integrate(frames).get()
    np.testing.assert_array_equal(np.isnan(gpu), np.isnan(cpu))
    np.testing.assert_allclose(gpu, cpu, rtol=1e-5)


def test_shared_flags_as_static_mask_for_setup(setup):
    """Flags every frame carries (shared_invalid) give the set-up statistics of those pixels masked."""
    frames, mask, _, _ = setup
    frames = frames.astype(np.int32)
    flagged = np.random.default_rng(2).random(SHAPE) < 1 / 9
    flags = frames.copy()
    flags[:, flagged] = -2
    flags[1, 5, 5] = -1  # in one frame only: not shared
    ci = CakeIntegrator(flagged_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask)
    masked = CakeIntegrator(flagged_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask | flagged)
    invalid = ci.shared_invalid(flags)
    np.testing.assert_array_equal(invalid, np.flatnonzero(flagged & ~mask.astype(bool)))
    np.testing.assert_allclose(ci.typical_norm(invalid), masked.norm, rtol=1e-6)
    assert not np.allclose(ci.norm, masked.norm, rtol=1e-3)
    np.testing.assert_allclose(ci.integrate(flags[[0, 2]]), masked.integrate(frames[[0, 2]]), rtol=1e-6)
