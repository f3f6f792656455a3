"""The figure defects of issue 12, each checked on the artist tree or the colours drawn:
orientation colours, Williamson-Hall and cake labels, discrete colour bars, transparent NaN,
pixel centres on their coordinates, the PL energy maps and example spectra, units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from skimage.color import rgb2lab

from gpuproc.report import maps as report_maps
from gpuproc.report import no_data as report_no_data
from gpuproc.report import pl as report_pl
from gpuproc.report import waxs as report_waxs
from gpuproc.report.maps import angle_limits, draw_map, pixel_extent, pretty_unit, resolve_cmap
from gpuproc.report.waxs import _draw_cake, group_label, merge_friedel

#: CIELAB distance (Delta E 1976) two orientation domains 8 deg apart must at least have; a cyclic
#: map stretched over their range gives ~0 (its ends are one colour), romaO over 90 deg ~22
MIN_DOMAIN_DELTA_E = 40.0


@pytest.fixture
def captured(monkeypatch):
    """The Figure each plot_* function saves, instead of writing the PNG."""
    figs: list[Figure] = []

    def save(fig, path, dpi):
        FigureCanvasAgg(fig)
        fig.draw_without_rendering()
        figs.append(fig)
        return Path(path)

    for module in (report_maps, report_no_data, report_pl, report_waxs):
        monkeypatch.setattr(module, "_save", save)
    return figs


def _lab(rgb) -> np.ndarray:
    return rgb2lab(np.asarray(rgb, dtype=float)[:3].reshape(1, 1, 3))[0, 0]


def _colour(image, value: float) -> np.ndarray:
    return np.asarray(image.cmap(image.norm(value)))[:3]


def test_orientation_domains_8_degrees_apart_differ_in_cielab():
    values = np.full((10, 16), 174.0)
    values[:, 8:] = 182.0  # the data's whole range: a cyclic map over it would give both one colour
    shown, cmap, lo, hi = angle_limits(values, 90.0)
    assert cmap == "vik" and np.median(shown) == pytest.approx(178.0)  # diverging, about the median
    assert (lo + hi) / 2 == pytest.approx(178.0) and hi - lo < 45.0
    _, image = draw_map(Figure(), shown, (1.0, 1.0), title="orientation", units="deg", cmap=cmap, vmin=lo, vmax=hi)
    delta_e = np.linalg.norm(_lab(_colour(image, 174.0)) - _lab(_colour(image, 182.0)))
    assert delta_e > MIN_DOMAIN_DELTA_E


def test_orientation_spread_over_a_period_gets_a_full_cyclic_period():
    values = np.random.default_rng(1).uniform(0.0, 90.0, (12, 12))
    _, cmap, lo, hi = angle_limits(values, 90.0)
    assert cmap == "romaO" and hi - lo == pytest.approx(90.0)


def test_williamson_hall_merges_friedel_mates_and_labels_do_not_overlap(captured, tmp_path):
    names = {"100": (1, 0, 0), "-100": (-1, 0, 0), "010": (0, 1, 0), "0-10": (0, -1, 0),
             "110": (1, 1, 0), "-1-10": (-1, -1, 0), "111": (1, 1, 1), "-1-1-1": (-1, -1, -1)}
    q0 = {"100": 1.07, "-100": 1.0701, "010": 1.0702, "0-10": 1.0699, "110": 1.094, "-1-10": 1.0941,
          "111": 1.118, "-1-1-1": 1.1181}  # three groups close in q0: their labels would collide
    fwhm = {k: 0.02 + 0.001 * q for k, q in q0.items()}
    rng = np.random.default_rng(2)
    per = {k: q + rng.normal(0, 1e-3, 50) for k, q in q0.items()}
    report_waxs.plot_williamson_hall(q0, fwhm, 1e-4, 3e-4, tmp_path / "wh.png", q0_all=per,
                                     fwhm_all={k: fwhm[k] + rng.normal(0, 1e-3, 50) for k in q0}, hkl=names)
    ax = captured[-1].axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["\u00b1100, \u00b1010", "\u00b1110", "\u00b1111"]
    renderer = captured[-1].canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts] + [ax.get_legend().get_window_extent(renderer)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)


def test_merge_friedel_groups_equal_q_only():
    assert merge_friedel({"100": 1.07, "-100": 1.0702, "200": 2.14}) == [["100", "-100"], ["200"]]
    assert group_label(["-100", "100"]) == "\u00b1100"
    assert group_label(["a", "b"]) == "a, b"


def test_cake_labels_inside_the_axes_and_apart():
    q = np.linspace(0.8, 2.4, 160)
    az = np.linspace(-179.5, 179.5, 360)
    cake = 5.0 + np.random.default_rng(3).random((az.size, q.size))
    windows = [dict(name=f"{h}{k}0", q_range=(2.25, 2.4), azimuth_range=(a, a + 12))  # at the right edge
               for h, k, a in ((2, 0, 0), (0, 2, 14), (-2, 0, 28), (0, -2, 90))]
    windows.append(dict(name="100", q_range=(0.8, 0.9), azimuth_range=(0, 20)))  # at the left edge
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax, _ = _draw_cake(fig, cake, q, az, windows, q_unit="A^-1", log=True, cmap="batlow")
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == len(windows)
    for i, box in enumerate(boxes):
        assert inside.x0 - 0.5 <= box.x0 and box.x1 <= inside.x1 + 0.5, ax.texts[i].get_text()
        assert inside.y0 - 0.5 <= box.y0 and box.y1 <= inside.y1 + 0.5, ax.texts[i].get_text()
        for other in boxes[i + 1:]:
            assert not box.overlaps(other)


def test_integer_map_has_a_discrete_colour_bar():
    n_peaks = np.random.default_rng(4).integers(0, 4, (8, 8)).astype(float)
    fig = Figure(figsize=(5, 4), layout="constrained")
    ax, image = draw_map(fig, n_peaks, (1.0, 1.0), title="n_peaks", units="peaks", discrete=True)
    assert isinstance(image.norm, BoundaryNorm)
    colours = {tuple(_colour(image, v)) for v in range(4)}
    assert len(colours) == 4
    assert _colour(image, 1.2).tolist() == _colour(image, 0.8).tolist()  # one colour per integer
    (cax,) = ax.child_axes  # the colour bar
    ticks = cax.get_yticks()
    assert len(ticks) >= 2 and np.allclose(ticks, np.round(ticks))


@pytest.mark.parametrize("weighted", [False, True])
def test_nan_pixels_are_transparent(weighted):
    values = np.linspace(1.0, 2.0, 36).reshape(6, 6)
    values[2:4, 2:4] = np.nan
    brightness = np.full(values.shape, 0.7) if weighted else None
    _, image = draw_map(Figure(), values, (1.0, 1.0), title="t", units="u", brightness=brightness)
    rgba = image.to_rgba(image.get_array()) if not weighted else np.asarray(image.get_array())
    alpha = np.asarray(rgba)[..., 3]
    assert np.all(alpha[2:4, 2:4] == 0)
    assert np.all(alpha[np.isfinite(values)] > 0.99)


@pytest.mark.parametrize("origin", ["upper", "lower"])
def test_pixel_centres_equal_their_coordinates(origin):
    y, x = 12.0 + 0.5 * np.arange(5), -3.0 + 0.25 * np.arange(7)
    _, image = draw_map(Figure(), np.ones((5, 7)), (0.5, 0.25), title="t", units="u", coords=(y, x), origin=origin)
    left, right, bottom, top = image.get_extent()
    centres_x = left + (np.arange(7) + 0.5) * (right - left) / 7
    first, last = (top, bottom) if origin == "upper" else (bottom, top)
    centres_y = first + (np.arange(5) + 0.5) * (last - first) / 5
    np.testing.assert_allclose(centres_x, x)
    np.testing.assert_allclose(centres_y, y)  # row 0 is y[0] either way
    assert pixel_extent(np.arange(3) * 2.0, np.arange(4) * 1.0, "lower") == (-0.5, 3.5, -1.0, 5.0)


def test_units_typeset():
    assert pretty_unit("A") == "\u00c5" and pretty_unit("A^-1") == "\u00c5$^{-1}$" and pretty_unit("um") == "\u00b5m"
    assert pretty_unit("meV") == "meV"


def _disc_sample(n: int = 40):
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - n / 2, xx - n / 2)
    sample = r < n / 2 - 3
    rng = np.random.default_rng(5)
    energy = 2.540 + 0.002 * np.sin(xx / 3.0) + rng.normal(0, 2e-4, (n, n))
    edge = sample & (r > n / 2 - 6)
    energy[edge] -= 0.030  # an edge red-shift of 30 meV around the sample
    return energy, sample, edge


def test_pl_energy_colour_range_from_the_sample_interior():
    energy, sample, edge = _disc_sample()
    lo, hi = report_pl.interior_limits(np.where(sample, energy, np.nan), sample, erode=4)
    interior = energy[sample & ~edge]
    assert hi - lo < 0.006  # the interior's +-2 meV variation fills the range, not the 30 meV edge
    assert lo >= interior.min() - 1e-4 and hi <= interior.max() + 1e-4


def test_pl_energy_maps_2d_legend_and_transparent_false_peaks(captured, tmp_path):
    energy, sample, _ = _disc_sample()
    intensity = np.where(sample, 1000.0, 3.0)
    false_peak = (0, 0)  # a peak outside the sample (below the intensity threshold)
    report_pl.plot_energy_maps(energy, intensity, sample, (0.5, 0.5), tmp_path / "e.png", intensity_unit="counts")
    fig = captured[-1]
    left, right = fig.axes[:2]
    weighted = np.asarray(left.images[0].get_array())
    assert weighted[false_peak][3] == 0 and np.all(weighted[sample][:, 3] == 1)
    plain = right.images[0]
    assert np.ma.is_masked(plain.get_array()[false_peak])
    (legend,) = [a for a in left.child_axes if a.get_xlabel() == "peak energy (eV)" and "intensity" in a.get_ylabel()]
    legend_rgb = np.asarray(legend.images[0].get_array())[..., :3]
    lightness = rgb2lab(legend_rgb)[..., 0]
    assert np.all(np.diff(lightness.mean(axis=1)) > 0)  # brighter with intensity, along y
    assert np.ptp(lightness[-1]) > 10  # and the energy colours along x


def test_pl_spectra_show_data_fit_components_residuals(captured, tmp_path):
    """A Gaussian, a Lorentzian and a split Gaussian (half widths 15 and 45 meV) drawn with their
    stored profiles: the residuals are the noise (drawn as Gaussians they would not be)."""
    energy = np.linspace(2.3, 2.7, 400)
    peaks = {"energy": np.array([2.40, 2.50, 2.60, np.nan]), "fwhm_mev": np.array([40.0, 30.0, 60.0, np.nan]),
             "amplitude": np.array([500.0, 300.0, 400.0, np.nan]), "eta": np.array([0.0, 1.0, 0.0, np.nan]),
             "asymmetry": np.array([0.0, 0.0, 0.5, np.nan])}
    half = np.where(energy < 2.60, 0.015, 0.045)
    truth = (500.0 * np.exp(-np.log(2) * ((energy - 2.40) / 0.020) ** 2)
             + 300.0 / (1 + ((energy - 2.50) / 0.015) ** 2)
             + 400.0 * np.exp(-np.log(2) * ((energy - 2.60) / half) ** 2))
    noise = np.random.default_rng(6).normal(0, 2.0, energy.size)
    data = truth + 20.0 + 30.0 * (energy - 2.5) + noise
    report_pl.plot_spectra(energy, data[None], [peaks], ["median energy: (x, y) = (1.5, 2) \u00b5m"],
                           tmp_path / "s.png")
    top, bottom = captured[-1].axes
    assert "\u00b5m" in top.get_title()
    assert {t.get_text() for t in top.get_legend().get_texts()} == {"data", "peaks", "fitted sum"}
    assert len(top.lines) == 1 + 3 + 1  # data, three components, their sum
    residual = bottom.lines[0].get_ydata()
    assert np.std(residual) < 1.5 * np.std(noise)  # profiles as stored, the linear background recovered
    gaussians = {k: v for k, v in peaks.items() if k not in ("eta", "asymmetry")}
    report_pl.plot_spectra(energy, data[None], [gaussians], ["as Gaussians"], tmp_path / "g.png")
    assert np.std(captured[-1].axes[1].lines[0].get_ydata()) > 3 * np.std(noise)


def test_quartile_pixels_pick_the_energy_quartiles():
    energy = np.arange(25, dtype=float).reshape(5, 5)
    sample = np.ones((5, 5), bool)
    assert report_pl.quartile_pixels(energy, sample) == [(1, 1), (2, 2), (3, 3)]
    assert report_pl.quartile_pixels(energy, np.zeros((5, 5), bool)) == []


def test_no_pixel_fitted_says_so(captured, tmp_path):
    maps = {"energy": np.full((6, 6), np.nan), "fwhm_mev": np.full((6, 6), np.nan),
            "total_area": np.zeros((6, 6)), "n_peaks": np.zeros((6, 6), np.int8)}
    (path,) = report_pl.map_figures(maps, np.zeros((6, 6), bool), (1.0, 1.0), tmp_path)
    texts = [t.get_text() for t in captured[-1].texts]
    assert path.name == "energy_weighted.png" and any("no pixel" in t for t in texts)


def test_resolve_cmap_bad_is_transparent_when_asked():
    assert resolve_cmap("batlow", bad="none").get_bad()[3] == 0


def _bench():
    """benchmarks/bench_figures.py as a module (its synthetic results stores)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_figures", Path(__file__).resolve().parents[1]
                                                  / "benchmarks" / "bench_figures.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_waxs_store_figures_units_and_orientation(captured, tmp_path):
    import zarr

    from gpuproc.waxs.figures import shown_units, write_figures

    group = zarr.open_group(_bench().waxs_store(tmp_path / "w.zarr", shape=(6, 8)), mode="r")
    paths = write_figures(group, tmp_path / "figs")
    figs = dict(zip((p.name for p in paths), captured))

    def unit(name):  # the colour bar's label (upright title for short units)
        (cax,) = figs[name].axes[0].child_axes
        return cax.get_title() or cax.get_ylabel()
    assert unit("map_a.png") == "\u00c5" and unit("map_strain.png") == "%" and unit("map_disorder.png") == "deg"
    orientation = figs["map_orientation.png"].axes[0].images[0]
    assert orientation.cmap.name.startswith("cmc.vik")  # 174 / 182 deg domains: diverging about 178
    assert (orientation.norm.vmin + orientation.norm.vmax) / 2 == pytest.approx(178.0, abs=0.5)
    np.testing.assert_allclose(shown_units(np.array([np.pi]), "rad")[0], [180.0])
    assert shown_units(np.array([0.02]), "1")[1] == "%" and shown_units(np.array([1.0]), "degree")[1] == "degree"


def test_waxs_store_with_no_pixel_fitted_says_so(captured, tmp_path):
    import zarr

    from gpuproc.fit import Status
    from gpuproc.io.results import consolidate
    from gpuproc.waxs.figures import MAP_STYLE, write_figures

    group = zarr.open_group(_bench().waxs_store(tmp_path / "w.zarr", shape=(6, 8)), mode="r+")
    for name in (*MAP_STYLE, "q0", "fwhm_q", "phi0", "fwhm_phi"):
        group[name][...] = np.nan
    group["fit_status"][...] = Status.SINGULAR
    consolidate(tmp_path / "w.zarr")
    paths = write_figures(zarr.open_group(tmp_path / "w.zarr", mode="r"), tmp_path / "figs")
    figs = dict(zip((p.name for p in paths), captured))
    for name in ("maps.png", "williamson_hall.png"):
        assert any(t.get_text().startswith("no ") and "fitted" in t.get_text() for t in figs[name].texts)
    assert "correlations.png" not in figs and {"mean_cake.png", "detector_image.png"} <= set(figs)


def test_timeseries_shows_the_fitted_response_and_tau(captured, tmp_path):
    t = np.arange(100.0)
    response = 2.54 - 0.02 * (1 - np.exp(-np.clip(t - 20, 0, None) / 8.0))
    n_peaks = np.ones(100, np.int8)
    report_pl.plot_timeseries(t, {"peak energy (eV)": response, "n_peaks": n_peaks}, [{"time": 20, "label": "on"}],
                              tmp_path / "ts.png",
                              fitted={"peak energy (eV)": (response, "fitted response\non: \u03c4 = 8 \u00b1 0.1 s")})
    top, bottom = captured[-1].axes
    legend = top.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["fitted response\non: \u03c4 = 8 \u00b1 0.1 s"]
    renderer = captured[-1].canvas.get_renderer()
    assert legend.get_window_extent(renderer).y0 >= top.get_window_extent(renderer).y1 - 1  # above the data
    assert list(bottom.get_yticks()) == [1.0]  # integer ticks, none at 0.95 or 1.05


def test_kymograph_cropped_to_the_signal(captured, tmp_path):
    energy = np.linspace(2.0, 3.0, 500)
    time = np.arange(40.0)
    intensity = 5.0 + 100.0 * np.exp(-0.5 * ((energy[None, :] - 2.5) / 0.01) ** 2) * np.ones((40, 1))
    report_pl.plot_kymograph(time, energy, intensity, [{"time": 10, "label": "on"}], tmp_path / "k.png")
    lo, hi = captured[-1].axes[0].get_xlim()
    assert 2.4 < lo < 2.5 < hi < 2.6  # the flat 2.0..3.0 eV background is cut away
