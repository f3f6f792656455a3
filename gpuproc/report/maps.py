"""Publication-quality PNG maps of per-position quantities.

Every function takes plain NumPy arrays and an output path, draws on its own
:class:`matplotlib.figure.Figure` with an Agg canvas (no pyplot, no global state), writes a PNG
and returns its :class:`~pathlib.Path`. They are therefore safe to call from worker threads.

Colour maps are the perceptually uniform maps of Crameri (``cmcrameri``): ``batlow`` for
sequential quantities, ``vik`` for signed quantities centred at 0, ``romaO`` for cyclic
(orientation) quantities, ``lapaz`` for intensities. Missing values (NaN) are drawn in a
neutral grey.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import cmcrameri.cm  # noqa: F401  (registers the "cmc.*" colour maps with matplotlib)
import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.transforms import blended_transform_factory

__all__ = ["NAN_COLOR", "angle_limits", "draw_map", "nice_scale_bar_length", "pixel_extent", "plot_map", "plot_maps",
           "pretty_unit", "resolve_cmap", "weighted_rgba"]

#: neutral grey for missing (NaN) values
NAN_COLOR = "#9a9a9a"

_NICE_MANTISSAS = (1.0, 2.0, 5.0)


def resolve_cmap(cmap: str | Colormap, *, bad: str = NAN_COLOR) -> Colormap:
    """Colour map by name with NaN ("bad") values in ``bad``.

    Parameters
    ----------
    cmap : str or Colormap
        A Crameri name (``"batlow"``, ``"romaO"``, ``"vik_r"``...), a ``"cmc.*"`` name or any
        matplotlib colour map name / object.
    bad : str
        Colour for NaN / masked values.

    Returns
    -------
    Colormap
        A copy; the registered colour map is not modified.
    """
    if isinstance(cmap, Colormap):
        base = cmap
    elif f"cmc.{cmap}" in matplotlib.colormaps:
        base = matplotlib.colormaps[f"cmc.{cmap}"]
    else:
        base = matplotlib.colormaps[cmap]
    return base.with_extremes(bad=bad)


def nice_scale_bar_length(width_um: float, fraction: float = 0.2) -> float:
    """Round scale-bar length for a field of view ``width_um`` wide.

    Rule: the largest number of the form ``m * 10^k`` (m in 1, 2, 5; k any integer) that does
    not exceed ``fraction * width_um``. E.g. 37 um -> target 7.4 um -> 5 um; 100 um -> 20 um;
    3 um -> 0.5 um.

    Parameters
    ----------
    width_um : float
        Width of the map (um). Must be finite and positive.
    fraction : float
        Target bar length as a fraction of the width (0.2 by default).

    Returns
    -------
    float
        Bar length (um).
    """
    width_um = float(width_um)
    if not math.isfinite(width_um) or width_um <= 0 or not 0 < fraction <= 1:
        raise ValueError(f"need a finite positive width and 0 < fraction <= 1, got {width_um}, {fraction}")
    target = fraction * width_um
    exponent = math.floor(math.log10(target))
    best = _NICE_MANTISSAS[0] * 10.0**exponent
    for mantissa in _NICE_MANTISSAS:
        candidate = mantissa * 10.0**exponent
        if candidate <= target * (1 + 1e-12):
            best = candidate
    return float(f"{best:.12g}")  # clean binary noise, e.g. 0.5000000001 -> 0.5


def _format_length(length_um: float) -> str:
    if length_um >= 1000:
        return f"{length_um / 1000:g} mm"
    if length_um < 1:
        return f"{length_um * 1000:g} nm"
    return f"{length_um:g} \u00b5m"


def _value_limits(values: np.ndarray, vmin: float | None, vmax: float | None,
                  center: float | None, robust: bool) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        lo, hi = 0.0, 1.0
    elif robust:
        lo, hi = (float(x) for x in np.percentile(finite, [1.0, 99.0]))
    else:
        lo, hi = float(finite.min()), float(finite.max())
    if center is not None:
        half = max(abs(lo - center), abs(hi - center))
        lo, hi = center - half, center + half
    lo = lo if vmin is None else float(vmin)
    hi = hi if vmax is None else float(vmax)
    if not hi > lo:  # constant map: open a small symmetric window
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    return lo, hi


def _extend(values: np.ndarray, lo: float, hi: float) -> str:
    finite = values[np.isfinite(values)]
    below = bool(finite.size and finite.min() < lo)
    above = bool(finite.size and finite.max() > hi)
    return {(False, False): "neither", (True, False): "min", (False, True): "max"}.get((below, above), "both")


def _figure_size(width_um: float, height_um: float) -> tuple[float, float, float, float]:
    """Figure (width, height) and the map's drawn (width, height), all in inches."""
    aspect = height_um / width_um
    map_w = 4.0
    map_h = map_w * aspect
    if map_h > 5.0:
        map_h, map_w = 5.0, 5.0 / aspect
    # figure room for at least 0.8 in per side; the map itself keeps its true aspect
    room_w, room_h = max(map_w, 0.8), max(map_h, 0.8)
    if map_h >= 1.5:
        return room_w + 1.7, room_h + 1.0, map_w, map_h
    return room_w + 1.0, room_h + 1.6, map_w, map_h


def _add_scale_bar(ax, width_um: float) -> tuple[Rectangle, object]:
    """White bar with a black outline and its label in the lower-left corner of ``ax``."""
    length = nice_scale_bar_length(width_um)
    x0 = min(ax.get_xlim()) + 0.05 * width_um
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]
    bar = Rectangle((x0, 0.05), length, 0.022, transform=trans, facecolor="white",
                    edgecolor="black", linewidth=0.8, zorder=5)
    ax.add_patch(bar)
    label = ax.text(x0 + 0.5 * length, 0.085, _format_length(length), transform=trans,
                    ha="center", va="bottom", color="white", fontsize=9, fontweight="bold",
                    zorder=6, path_effects=outline)
    return bar, label


def _save(fig: Figure, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, format="png")
    fig.clear()
    return path


def pixel_extent(y_um: np.ndarray, x_um: np.ndarray, origin: str = "upper") -> tuple[float, float, float, float]:
    """imshow extent (left, right, bottom, top) in um that centres each pixel on its coordinate.

    Parameters
    ----------
    y_um, x_um : ndarray
        Equally spaced coordinates of the rows and columns (um), as stored with the results.
    origin : {"upper", "lower"}
        Row 0 at the top or at the bottom.
    """
    def edges(c: np.ndarray) -> tuple[float, float]:
        c = np.asarray(c, dtype=float)
        half = 0.5 * (c[-1] - c[0]) / (c.size - 1) if c.size > 1 else 0.5
        return float(c[0] - half), float(c[-1] + half)

    (x0, x1), (y0, y1) = edges(x_um), edges(y_um)
    if origin == "upper":
        return x0, x1, y1, y0
    if origin == "lower":
        return x0, x1, y0, y1
    raise ValueError(f"origin must be 'upper' or 'lower', got {origin!r}")


def pretty_unit(unit: str) -> str:
    """Typeset a stored unit string (gpuproc's or pint's spelling): ``A``/``angstrom`` -> Å,
    ``A^-1``/``1/angstrom`` -> Å^-1, ``um`` -> µm, ``degree`` -> deg; others unchanged."""
    table = {"A": "\u00c5", "A^-1": "\u00c5$^{-1}$", "nm^-1": "nm$^{-1}$", "um": "\u00b5m", "1": "",
             "angstrom": "\u00c5", "1/angstrom": "\u00c5$^{-1}$", "1/nm": "nm$^{-1}$", "degree": "deg",
             "micrometer": "\u00b5m", "count": "counts"}
    return table.get(unit.strip(), unit)


def weighted_rgba(values: np.ndarray, weight: np.ndarray, norm: Normalize, cmap: Colormap) -> np.ndarray:
    """RGBA of ``values`` through ``norm`` and ``cmap``, RGB scaled by ``weight`` (0..1, NaN as 0);
    NaN ``values`` transparent."""
    rgba = cmap(norm(np.ma.masked_invalid(values)))
    rgba[..., :3] *= np.clip(np.nan_to_num(weight, nan=0.0), 0.0, 1.0)[..., None]
    rgba[~np.isfinite(values)] = 0.0
    return rgba


def draw_map(fig: Figure, values: np.ndarray, step_um: tuple[float, float], *, title: str, units: str,
             cmap: str | Colormap = "batlow", vmin: float | None = None, vmax: float | None = None,
             brightness: np.ndarray | None = None, center: float | None = None, robust: bool = False,
             origin: str = "upper", colorbar_label: str | None = None, discrete: bool = False,
             coords: tuple[np.ndarray, np.ndarray] | None = None, ax=None):
    """Draw a scan map on ``fig`` (or on ``ax``); returns ``(ax, image)``. See :func:`plot_map`."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be 2D (ny, nx), got shape {values.shape}")
    dy, dx = (float(s) for s in step_um)
    if not (dy > 0 and dx > 0):
        raise ValueError(f"step_um must be positive, got {step_um}")
    ny, nx = values.shape
    y_um, x_um = coords if coords is not None else (np.arange(ny) * dy, np.arange(nx) * dx)
    extent = pixel_extent(y_um, x_um, origin)
    width_um, height_um = abs(extent[1] - extent[0]), abs(extent[3] - extent[2])
    colormap = resolve_cmap(cmap, bad="none")  # NaN transparent: the axes' neutral grey shows
    lo, hi = _value_limits(values, vmin, vmax, center, robust)
    if discrete:  # one colour per integer, ticks on the integers
        lo, hi = math.floor(lo), math.ceil(hi)
        norm = BoundaryNorm(np.arange(lo - 0.5, hi + 1.0), colormap.N)
    else:
        norm = Normalize(lo, hi)

    if brightness is not None:
        weight = np.asarray(brightness, dtype=float)
        if weight.shape != values.shape:
            raise ValueError(f"brightness shape {weight.shape} != values shape {values.shape}")
        image = weighted_rgba(values, weight, norm, colormap)
    else:
        image = np.ma.masked_invalid(values)

    if ax is None:
        ax = fig.add_subplot()
    scalar = {} if brightness is not None else {"cmap": colormap, "norm": norm}
    im = ax.imshow(image, extent=extent, origin=origin, interpolation="nearest", aspect="equal", **scalar)
    ax.set_xlabel("x (\u00b5m)")
    ax.set_ylabel("y (\u00b5m)")
    ax.set_title(title)
    ax.set_facecolor(NAN_COLOR)
    _add_scale_bar(ax, width_um)
    if brightness is None:
        mappable = ScalarMappable(norm=norm, cmap=colormap)
        extend = "neither" if discrete else _extend(values, lo, hi)
        if _figure_size(width_um, height_um)[3] >= 1.5:  # colour bar at the right, as tall as the map
            cbar = fig.colorbar(mappable, cax=ax.inset_axes((1.03, 0.0, 0.045, 1.0)), extend=extend)
        else:  # flat map: horizontal colour bar below
            map_h = _figure_size(width_um, height_um)[3]
            cbar = fig.colorbar(mappable, cax=ax.inset_axes((0.0, -0.75 / map_h, 1.0, 0.12 / map_h)),
                                orientation="horizontal", extend=extend)
        if discrete:
            cbar.set_ticks(np.arange(lo, hi + 1, max(1, (hi - lo + 1) // 8)))
        label = pretty_unit(units) if colorbar_label is None else colorbar_label
        if cbar.orientation == "vertical" and len(label) <= 4:  # a short unit, upright above the bar
            cbar.ax.set_title(label, fontsize=10, pad=8)
        else:
            cbar.set_label(label)
    return ax, im


def plot_map(values: np.ndarray, step_um: tuple[float, float], path: str | Path, *, title: str,
             units: str, cmap: str | Colormap = "batlow", vmin: float | None = None,
             vmax: float | None = None, brightness: np.ndarray | None = None, dpi: int = 150,
             center: float | None = None, robust: bool = False, origin: str = "upper",
             colorbar_label: str | None = None, discrete: bool = False,
             coords: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Write a (ny, nx) scan map as a PNG with physical axes, colour bar and scale bar.

    Parameters
    ----------
    values : ndarray, shape (ny, nx)
        The quantity per scan position; NaN (missing) pixels are transparent over a neutral grey.
    step_um : (float, float)
        Scan step (dy, dx) in um: the pixel size.
    path : str or Path
        Output PNG file (parent folders are created).
    title : str
        Figure title (e.g. ``"NC size"``).
    units : str
        Unit of ``values`` for the colour bar (stored spellings such as ``A`` are typeset, Å).
    cmap : str or Colormap
        Colour map; Crameri names (``"batlow"``, ``"vik"``, ``"romaO"``...) are resolved first.
    vmin, vmax : float, optional
        Colour limits (unit of ``values``); by default the data range (see ``robust``,
        ``center``). Values outside are clipped and the colour bar gets arrows.
    brightness : ndarray, shape (ny, nx), optional
        Values in [0, 1] (NaN counts as 0): the RGB colour of each pixel is multiplied by it.
        Drawn without a colour bar: the caller adds a two-dimensional legend
        (:func:`gpuproc.report.pl.plot_energy_maps`). NaN ``values`` stay transparent.
    dpi : int
        Resolution of the PNG (dots per inch).
    center : float, optional
        Make the default limits symmetric about this value (e.g. 0 for shifts).
    robust : bool
        Default limits from the 1st/99th percentiles instead of the min/max.
    origin : {"upper", "lower"}
        Row 0 at the top (image convention, default) or at the bottom.
    colorbar_label : str, optional
        Colour bar label; ``units`` by default.
    discrete : bool
        Integer-valued map (e.g. ``n_peaks``): one colour per integer, ticks on the integers.
    coords : (y_um, x_um), optional
        Coordinates of the rows and columns (um); each pixel is centred on its coordinate.
        By default ``arange(n) * step``.

    Returns
    -------
    Path
        The PNG written.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be 2D (ny, nx), got shape {values.shape}")
    ny, nx = values.shape
    fig_w, fig_h, map_w, map_h = _figure_size(nx * float(step_um[1]), ny * float(step_um[0]))
    fig = Figure(figsize=(fig_w, fig_h))  # fixed margins (inches): no layout pass, ~1/3 of the time
    room_w, room_h = max(map_w, 0.8), max(map_h, 0.8)
    left, bottom = (0.75, 0.55) if map_h >= 1.5 else (0.7, 1.15)
    ax = fig.add_axes(((left + (room_w - map_w) / 2) / fig_w, (bottom + (room_h - map_h) / 2) / fig_h,
                       map_w / fig_w, map_h / fig_h))
    draw_map(fig, values, step_um, title=title, units=units, cmap=cmap, vmin=vmin, vmax=vmax,
             brightness=brightness, center=center, robust=robust, origin=origin,
             colorbar_label=colorbar_label, discrete=discrete, coords=coords, ax=ax)
    return _save(fig, path, dpi)


def angle_limits(values: np.ndarray, period: float) -> tuple[np.ndarray, str, float, float]:
    """Colour map and limits for an angle map: diverging about the median when the spread is small.

    The angles are unwrapped about their circular mean into one period (the one holding their
    median as given). When the robust spread
    (2nd..98th percentile) is under half a period, the map is diverging ``vik`` centred on the
    median with a symmetric range covering that spread, so that small steps get distinct colours;
    otherwise cyclic ``romaO`` over exactly one full period (never stretched over part of one).

    Parameters
    ----------
    values : ndarray
        Angles (any unit with period ``period``); NaN ignored.
    period : float
        Period of the angle (e.g. 90 deg for a 4-fold in-plane orientation).

    Returns
    -------
    (values, cmap, vmin, vmax)
        The unwrapped values, the colour map name and the colour limits.
    """
    lo = _circular_mean(values, period) - period / 2
    raw = values[np.isfinite(values)]
    values = lo + np.mod(values - lo, period)
    finite = values[np.isfinite(values)]
    if finite.size:  # stay in the period the data were given in (174..182 deg, not -6..2)
        shift = period * np.round((np.median(raw) - np.median(finite)) / period)
        values, finite, lo = values + shift, finite + shift, lo + shift
        p_lo, med, p_hi = np.percentile(finite, [2.0, 50.0, 98.0])
        if p_hi - p_lo < period / 2:
            half = max(med - p_lo, p_hi - med, 1e-6 * period)
            return values, "vik", float(med - half), float(med + half)
    return values, "romaO", float(lo), float(lo + period)


_ORIENTATION = re.compile(r"phi|orient|azimuth|angle|rotation", re.IGNORECASE)
_SIGNED = re.compile(r"shift|delta|diff|minus|deviation|a_b|a-b|residual", re.IGNORECASE)
_INTENSITY = re.compile(r"intens|amplitude|amp\b|counts|area|height", re.IGNORECASE)


def _circular_mean(values: np.ndarray, period: float) -> float:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0
    angle = 2 * np.pi * finite / period
    return float(np.angle(np.mean(np.exp(1j * angle))) * period / (2 * np.pi))


def _filename(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "map"
    return f"{stem}.png"


def plot_maps(maps: Mapping[str, tuple[np.ndarray, str]], step_um: tuple[float, float],
              directory: str | Path, *, brightness: np.ndarray | None = None,
              titles: Mapping[str, str] | None = None, cmaps: Mapping[str, str] | None = None,
              orientation_period_deg: float = 90.0, robust: bool = True, dpi: int = 150,
              prefix: str = "", discrete: tuple[str, ...] = (),
              coords: tuple[np.ndarray, np.ndarray] | None = None) -> list[Path]:
    """Write one PNG per map with a colour map chosen from the quantity's name.

    Rules (first match, case-insensitive, on the map name):

    - orientation (``phi``, ``orient``, ``azimuth``, ``angle``): :func:`angle_limits` with
      period ``orientation_period_deg`` (90 deg by default for the 4-fold pseudocubic in-plane
      orientation; converted to radians when the unit is ``rad``): diverging ``vik`` about the
      median for a spread under half a period, else cyclic ``romaO`` over one full period;
    - signed shifts (``shift``, ``delta``, ``diff``, ``minus``, ``deviation``): diverging
      ``vik`` centred at 0;
    - intensities (``intensity``, ``amplitude``, ``counts``, ``area``): ``lapaz``;
    - anything else: ``batlow``.

    Parameters
    ----------
    maps : mapping name -> (values, units)
        ``values`` of shape (ny, nx) and the unit string for the colour bar.
    step_um : (float, float)
        Scan step (dy, dx) in um.
    directory : str or Path
        Output folder (created); files are ``<prefix><name>.png`` with unsafe characters
        replaced by ``_``.
    brightness : ndarray, shape (ny, nx), optional
        Applied to every map except intensity maps, see :func:`plot_map`.
    titles : mapping name -> str, optional
        Titles; the name by default.
    cmaps : mapping name -> str, optional
        Overrides of the colour-map rule.
    orientation_period_deg : float
        Period of orientation angles in degrees.
    robust : bool
        Limits from the 1st/99th percentiles (outliers clipped, colour bar arrows) for
        non-cyclic maps.
    dpi : int
        PNG resolution.
    prefix : str
        File-name prefix.
    discrete : tuple of str
        Names of integer maps drawn with a discrete colour bar.
    coords : (y_um, x_um), optional
        Pixel-centre coordinates (um), see :func:`plot_map`.

    Returns
    -------
    list of Path
        The PNGs written, in the order of ``maps``.
    """
    directory = Path(directory)
    titles = dict(titles or {})
    cmaps = dict(cmaps or {})
    written = []
    for name, (values, units) in maps.items():
        values = np.asarray(values, dtype=float)
        kwargs: dict = {"robust": robust}
        use_brightness = brightness
        if _ORIENTATION.search(name):
            period = orientation_period_deg
            if units.strip().lower() in ("rad", "radian", "radians"):
                period = math.radians(period)
            values, cmap, lo, hi = angle_limits(values, period)
            kwargs = {"vmin": lo, "vmax": hi}
        elif _SIGNED.search(name):
            cmap, kwargs["center"] = "vik", 0.0
        elif _INTENSITY.search(name):
            cmap, use_brightness = "lapaz", None
        else:
            cmap = "batlow"
        cmap = cmaps.get(name, cmap)
        written.append(plot_map(values, step_um, directory / f"{prefix}{_filename(name)}",
                                title=titles.get(name, name), units=units, cmap=cmap,
                                brightness=use_brightness, dpi=dpi, discrete=name in discrete,
                                coords=coords, **kwargs))
    return written
