"""The scan-averaged detector image: the pixels as the integration uses them (frame - dark, NaN
where masked or invalid in a frame), their per-pixel mean, the beam centre, and the figure
(log colour scale, NaN transparent, pixel centres at half-integers, beam centre marked)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import LogNorm
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from test_figures_defects import captured  # noqa: F401  (the fixture)
from test_waxs_integrate import NPT_AZ, NPT_Q, Q_RANGE, SHAPE, make_ai, make_frames

from gpuproc.report.waxs import plot_detector_image
from gpuproc.waxs.integrate import CakeIntegrator
from gpuproc.waxs.mean_frame import MeanFrame, beam_centre_px


def test_mean_frame_over_the_valid_pixels_of_each_frame():
    rng = np.random.default_rng(3)
    frames = make_frames(4, rng)
    mask = np.zeros(SHAPE, np.int8)
    mask[120:126, :] = 1  # a gap
    dark = rng.uniform(0.0, 3.0, SHAPE).astype(np.float32)
    bad = np.zeros(frames.shape, bool)
    bad[1, 40:50, 60:70] = True  # flagged in one frame only
    bad[:, 7, 9] = True  # flagged in every frame
    frames[bad] = np.iinfo(np.uint32).max
    frames[2, 30, 40], bad[2, 30, 40] = 10**7, True  # saturated
    ci = CakeIntegrator(make_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask, dark=dark,
                        saturation=10**6)
    pixels = ci.pixel_signal(frames)
    assert pixels.shape == frames.shape and pixels.dtype == np.float32
    invalid = bad | mask.astype(bool)[None]
    np.testing.assert_array_equal(np.isnan(pixels), invalid)
    np.testing.assert_allclose(pixels[~invalid], (frames - dark[None])[~invalid], rtol=1e-6)

    mean = MeanFrame()
    mean.add(pixels[:3])  # in two batches, as the pipeline reads them
    mean.add(pixels[3:])
    expected = np.ma.masked_array(frames - dark[None], invalid).mean(axis=0).filled(np.nan)
    np.testing.assert_allclose(mean.mean, expected, rtol=1e-6)
    assert np.isnan(mean.mean[7, 9]) and np.isnan(mean.mean[122]).all()
    assert np.isfinite(mean.mean[45, 65])  # the mean of the three frames where it is valid
    # frame by frame (as the pipeline adds them), the batches' float64 nansums bit for bit
    by_frame = MeanFrame()
    by_frame.add(ci.pixel_signal(f)[0] for f in frames[:3])
    by_frame.add(ci.pixel_signal(f)[0] for f in frames[3:])
    total = sum(np.nansum(pixels[b], axis=0, dtype=np.float64) for b in (slice(0, 3), slice(3, None)))
    count = np.isfinite(pixels).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_array_equal(by_frame.mean, np.where(count > 0, total / count, np.nan).astype(np.float32))


def test_beam_centre_in_pixels_row_column():
    ai = AzimuthalIntegrator(dist=0.1, poni1=0.01, poni2=0.02, pixel1=1e-4, pixel2=1e-4, wavelength=1e-10)
    assert beam_centre_px(ai) == pytest.approx([100.0, 200.0])
    tilted = AzimuthalIntegrator(dist=0.1, poni1=0.01, poni2=0.02, pixel1=1e-4, pixel2=1e-4, rot1=0.05,
                                 wavelength=1e-10)
    row, col = beam_centre_px(tilted)
    assert row == pytest.approx(100.0) and col == pytest.approx(200.0 - 1e3 * np.tan(0.05), rel=1e-3)


def test_detector_image_figure(captured, tmp_path):  # noqa: F811
    h, w = 60, 80
    yy, xx = np.mgrid[:h, :w]
    image = 1e3 * np.exp(-np.hypot(yy + 0.5 - 20.0, xx + 0.5 - 30.0) / 15.0)
    image[30:33, :] = np.nan  # a gap
    image[5, 5] = 1e9  # a hot pixel
    image[50, 70] = -3.0  # dark-subtracted noise below zero
    plot_detector_image(image, tmp_path / "d.png", beam_centre_px=(20.0, 30.0))
    ax = captured[-1].axes[0]
    (shown,) = ax.images
    assert isinstance(shown.norm, LogNorm) and shown.norm.vmax < 1e4  # a hot pixel does not set the top
    assert shown.cmap.get_bad()[3] == 0  # the gap is transparent
    data = shown.get_array()
    assert data.mask[30:33].all() and not data.mask[:30].any()
    assert data[50, 70] == pytest.approx(shown.norm.vmin)  # not NaN: the lowest colour
    assert shown.get_extent() == [0, w, h, 0]  # pixel (r, c) centred at (c + 0.5, r + 0.5)
    (marker,) = ax.lines
    assert list(marker.get_xdata()) == [30.0] and list(marker.get_ydata()) == [20.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["beam centre"]
    assert "(log)" in captured[-1].axes[1].get_ylabel()


def test_detector_image_rejects_a_stack(tmp_path):
    with pytest.raises(ValueError, match=r"2-D \(H, W\), got shape \(2, 3, 4\)"):
        plot_detector_image(np.ones((2, 3, 4)), tmp_path / "d.png")
