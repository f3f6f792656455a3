"""PNG figures of gpuproc.report: files are readable, non-trivial, correctly shaped; scale-bar
rule; intensity-weighted brightness; fit windows across the azimuth seam."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from gpuproc.report import (
    azimuth_pieces,
    nice_scale_bar_length,
    plot_cake,
    plot_correlations,
    plot_map,
    plot_maps,
    plot_williamson_hall,
)
from gpuproc.report.waxs import _draw_cake

RNG = np.random.default_rng(7)


def _read_png(path: Path) -> np.ndarray:
    assert isinstance(path, Path) and path.suffix == ".png" and path.is_file()
    image = imread(path)
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] in (3, 4)
    return image[..., :3]


def _assert_nontrivial(image: np.ndarray) -> None:
    rgb = np.round(image.reshape(-1, 3) * 255).astype(np.uint32)
    colours = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2])
    assert len(colours) > 20, "image is (nearly) a single colour"
    assert image.std() > 0.05


def _luminance(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _size_map(ny: int = 24, nx: int = 36) -> np.ndarray:
    y, x = np.mgrid[:ny, :nx]
    r = np.hypot((x - nx / 2) / nx, (y - ny / 2) / ny)
    size = 16.0 - 15.0 * r**2
    size[r > 0.45] = np.nan
    return size


# --- scale bar -----------------------------------------------------------------------------

@pytest.mark.parametrize(("width", "expected"), [
    (37.0, 5.0), (100.0, 20.0), (50.0, 10.0), (10.0, 2.0), (24.9, 2.0), (25.0, 5.0),
    (3.0, 0.5), (0.7, 0.1), (1.0e4, 2000.0), (7.3, 1.0),
])
def test_scale_bar_rule(width, expected):
    # rule: largest {1, 2, 5} x 10^k not exceeding width / 5
    assert nice_scale_bar_length(width) == pytest.approx(expected)


def test_scale_bar_always_round_and_about_a_fifth():
    for width in np.geomspace(0.05, 5.0e4, 97):
        length = nice_scale_bar_length(width)
        mantissa = length / 10.0 ** math.floor(math.log10(length) + 1e-9)
        assert any(math.isclose(mantissa, m, rel_tol=1e-9) for m in (1.0, 2.0, 5.0))
        assert width / 5 / 2.5 < length <= width / 5 * (1 + 1e-12)


@pytest.mark.parametrize("width", [0.0, -3.0, float("nan"), float("inf")])
def test_scale_bar_rejects_bad_width(width):
    with pytest.raises(ValueError):
        nice_scale_bar_length(width)


# --- maps --------------------------------------------------------------------------------

def test_plot_map_writes_png(tmp_path):
    out = plot_map(_size_map(), (0.3, 0.3), tmp_path / "sub" / "size.png", title="NC size", units="nm")
    assert out == tmp_path / "sub" / "size.png"
    image = _read_png(out)
    _assert_nontrivial(image)
    # NaN shown as neutral grey: some pixels are grey (r == g == b, mid luminance)
    grey = (np.ptp(image, axis=-1) < 0.01) & (np.abs(image[..., 0] - 0x9A / 255) < 0.02)
    assert grey.sum() > 100


@pytest.mark.parametrize(("shape", "step", "wide"), [
    ((10, 40), (1.0, 1.0), True),   # wide map
    ((10, 10), (4.0, 1.0), False),  # square in pixels but 10 um wide x 40 um tall
])
def test_plot_map_aspect_follows_physical_extent(tmp_path, shape, step, wide):
    image = _read_png(plot_map(RNG.random(shape), step, tmp_path / "m.png", title="t", units="a.u.",
                               dpi=60))
    height, width = image.shape[:2]
    assert (width > 1.2 * height) if wide else (height > 1.2 * width)


def test_brightness_darkens_low_intensity_pixels(tmp_path):
    values = np.full((12, 12), 0.8)  # bright end of batlow
    values[0, 0] = 0.0  # give the colour scale a range
    bright = plot_map(values, (1.0, 1.0), tmp_path / "b1.png", title="t", units="u",
                      brightness=np.ones_like(values), dpi=80)
    half = np.ones_like(values)
    half[:, :6] = 0.1  # left half dim
    dim = plot_map(values, (1.0, 1.0), tmp_path / "b01.png", title="t", units="u", brightness=half,
                   dpi=80)
    img1, img2 = _read_png(bright), _read_png(dim)
    assert img1.shape == img2.shape
    changed = np.abs(img1 - img2).max(axis=-1) > 0.05
    # only the dimmed half of the map changes, i.e. a sizeable block, not the colour bar
    assert changed.sum() > 1000
    rows, cols = np.nonzero(changed)
    lum1, lum2 = _luminance(img1)[changed].mean(), _luminance(img2)[changed].mean()
    assert lum2 < 0.2 * lum1
    # the right half (brightness 1) is unchanged: just right of the changed block
    right = img2[rows.min():rows.max(), cols.max() + 5:cols.max() + 20]
    right_ref = img1[rows.min():rows.max(), cols.max() + 5:cols.max() + 20]
    assert np.allclose(right, right_ref, atol=0.02)


def test_brightness_keeps_nan_grey(tmp_path):
    values = np.full((8, 8), np.nan)
    values[:, :4] = 1.0
    values[0, 0] = 0.0
    image = _read_png(plot_map(values, (1.0, 1.0), tmp_path / "n.png", title="t", units="u",
                               brightness=np.zeros_like(values), dpi=80))
    grey = (np.ptp(image, axis=-1) < 0.01) & (np.abs(image[..., 0] - 0x9A / 255) < 0.02)
    black = _luminance(image) < 0.02
    assert grey.sum() > 1000 and black.sum() > 1000


def test_plot_map_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        plot_map(np.zeros(5), (1.0, 1.0), tmp_path / "x.png", title="t", units="u")
    with pytest.raises(ValueError):
        plot_map(np.zeros((3, 3)), (1.0, 1.0), tmp_path / "x.png", title="t", units="u",
                 brightness=np.ones((2, 2)))


def test_plot_maps_one_png_per_map(tmp_path):
    size = _size_map()
    phi = 37.0 + 5.0 * np.sign(RNG.standard_normal(size.shape))
    maps = {"size": (size, "nm"), "phi0 (100)": (phi, "deg"), "a_minus_b": (size - 12.0, "\u00c5"),
            "intensity": (np.nan_to_num(size), "counts")}
    paths = plot_maps(maps, (0.3, 0.3), tmp_path / "maps", brightness=np.clip(size / 16, 0, 1),
                      dpi=60)
    assert [p.name for p in paths] == ["size.png", "phi0_100.png", "a_minus_b.png", "intensity.png"]
    for p in paths:
        _assert_nontrivial(_read_png(p))


def test_plot_map_thread_safe(tmp_path):
    size = _size_map()
    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = list(pool.map(lambda i: plot_map(size + i, (0.3, 0.3), tmp_path / f"t{i}.png",
                                                 title=f"map {i}", units="nm", dpi=60), range(3)))
    shapes = {_read_png(p).shape for p in paths}
    assert len(shapes) == 1


# --- WAXS figures ------------------------------------------------------------------------

def test_plot_williamson_hall(tmp_path):
    q0 = {"100": 1.070, "110": 1.514, "200": 2.141}
    eps, dq0 = 0.018, 2 * np.pi * 0.85 / 126.0
    fwhm = {k: math.sqrt(eps**2 * q**2 + dq0**2) for k, q in q0.items()}
    out = plot_williamson_hall(q0, fwhm, eps**2, dq0**2, tmp_path / "wh.png", dpi=60)  # s, eps derived
    _assert_nontrivial(_read_png(out))
    out = plot_williamson_hall(q0, fwhm, eps**2, dq0**2, tmp_path / "wh2.png", size_nm=12.6, strain=0.018,
                               dpi=60)
    _assert_nontrivial(_read_png(out))


@pytest.mark.parametrize("max_scatter", [5000, 100])  # scatter and 2D histogram
def test_plot_correlations(tmp_path, max_scatter):
    n = 600
    s = RNG.uniform(8.5, 17.0, n)
    a = 5.80 + 0.9 * s**-1.2 + RNG.normal(0, 0.006, n)
    b = 5.85 - 0.002 * s + RNG.normal(0, 0.006, n)
    a[:5] = np.nan
    centers = np.arange(8.75, 17.0, 0.5)
    med_a = 5.80 + 0.9 * centers**-1.2
    med_b = 5.85 - 0.002 * centers
    out = plot_correlations(s, a, b, tmp_path / "c.png", binned=(centers, med_a, med_b),
                            power_law=(5.80, 0.9, 1.2), r_a=-0.61, r_b=0.59, max_scatter=max_scatter,
                            dpi=60)
    _assert_nontrivial(_read_png(out))
    if max_scatter == 100:
        out = plot_correlations(s, a, b, tmp_path / "c2.png", dpi=60)  # minimal call, r computed
        _assert_nontrivial(_read_png(out))


def test_azimuth_pieces():
    assert azimuth_pieces(0, 20, -180, 180) == [(0, 20)]
    assert azimuth_pieces(170, -170, -180, 180) == [(170, 180), (-180, -170)]
    assert azimuth_pieces(170, 190, -180, 180) == [(170, 180), (-180, -170)]
    assert azimuth_pieces(350, 370, -180, 180) == [(-10, 10)]
    assert azimuth_pieces(-10, 10, 0, 360) == [(350, 360), (0, 10)]
    assert azimuth_pieces(0, 360, 0, 360) == [(0, 360)]
    assert azimuth_pieces(200, 220, 0, 180) == []  # outside a half-range cake


def _cake():
    q = np.linspace(0.8, 2.4, 160)
    az = np.linspace(-179.5, 179.5, 360)
    qq, aa = np.meshgrid(q, az)
    cake = 5.0 + 50.0 * np.exp(-((qq - 1.07) ** 2) / 2e-4) * np.exp(-(((aa - 10 + 180) % 360 - 180) ** 2) / 50)
    cake[:, 80:84] = np.nan
    return cake, q, az


def test_cake_windows_across_seam_drawn_in_pieces():
    cake, q, az = _cake()
    windows = [dict(name="100", q_range=(1.0, 1.14), azimuth_range=(0, 20)),
               dict(name="100'", q_range=(1.0, 1.14), azimuth_range=(170, -170)),
               dict(name="010", q_range=(1.0, 1.14), azimuth_range=(350, 370))]
    ax, rects = _draw_cake(Figure(), cake, q, az, windows, q_unit="A^-1", log=True, cmap="batlow")
    assert len(rects) == 4
    spans = sorted((r.get_y(), r.get_y() + r.get_height()) for r in rects)
    assert spans == [pytest.approx((-180, -170)), pytest.approx((-10, 10)), pytest.approx((0, 20)),
                     pytest.approx((170, 180))]
    assert all(r.axes is ax for r in rects)


@pytest.mark.parametrize("log", [True, False])
def test_plot_cake(tmp_path, log):
    cake, q, az = _cake()
    windows = [dict(name="100'", q_range=(1.0, 1.14), azimuth_range=(170, -170))]
    out = plot_cake(cake, q, az, windows, tmp_path / "cake.png", log=log, dpi=60)
    _assert_nontrivial(_read_png(out))
    with pytest.raises(ValueError):
        plot_cake(cake[:, :-1], q, az, windows, tmp_path / "bad.png")
