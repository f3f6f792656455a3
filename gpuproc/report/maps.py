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
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.transforms import blended_transform_factory

__all__ = ["NAN_COLOR", "nice_scale_bar_length", "plot_map", "plot_maps", "resolve_cmap"]

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


def plot_map(values: np.ndarray, step_um: tuple[float, float], path: str | Path, *, title: str,
             units: str, cmap: str | Colormap = "batlow", vmin: float | None = None,
             vmax: float | None = None, brightness: np.ndarray | None = None, dpi: int = 150,
             center: float | None = None, robust: bool = False, origin: str = "upper",
             colorbar_label: str | None = None) -> Path:
    """Write a (ny, nx) scan map as a PNG with physical axes, colour bar and scale bar.

    Parameters
    ----------
    values : ndarray, shape (ny, nx)
        The quantity per scan position; NaN (missing) is drawn in neutral grey.
    step_um : (float, float)
        Scan step (dy, dx) in um: the pixel size. Axes run from 0 to ``ny*dy`` / ``nx*dx`` um.
    path : str or Path
        Output PNG file (parent folders are created).
    title : str
        Figure title (e.g. ``"NC size"``).
    units : str
        Unit of ``values``; the colour bar label (e.g. ``"nm"``, ``"\u00c5"``, ``"deg"``).
    cmap : str or Colormap
        Colour map; Crameri names (``"batlow"``, ``"vik"``, ``"romaO"``...) are resolved first.
    vmin, vmax : float, optional
        Colour limits (unit of ``values``); by default the data range (see ``robust``,
        ``center``). Values outside are clipped and the colour bar gets arrows.
    brightness : ndarray, shape (ny, nx), optional
        Values in [0, 1] (NaN counts as 0): the RGB colour of each pixel is multiplied by it,
        so that colour encodes ``values`` and brightness encodes e.g. intensity. The colour bar
        still shows the value scale. NaN ``values`` stay grey.
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

    Returns
    -------
    Path
        The PNG written.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be 2D (ny, nx), got shape {values.shape}")
    dy, dx = (float(s) for s in step_um)
    if not (dy > 0 and dx > 0):
        raise ValueError(f"step_um must be positive, got {step_um}")
    ny, nx = values.shape
    width_um, height_um = nx * dx, ny * dy
    colormap = resolve_cmap(cmap)
    lo, hi = _value_limits(values, vmin, vmax, center, robust)
    norm = Normalize(lo, hi)

    if origin == "upper":
        extent = (0.0, width_um, height_um, 0.0)
    elif origin == "lower":
        extent = (0.0, width_um, 0.0, height_um)
    else:
        raise ValueError(f"origin must be 'upper' or 'lower', got {origin!r}")

    if brightness is not None:
        weight = np.asarray(brightness, dtype=float)
        if weight.shape != values.shape:
            raise ValueError(f"brightness shape {weight.shape} != values shape {values.shape}")
        weight = np.clip(np.nan_to_num(weight, nan=0.0), 0.0, 1.0)
        rgba = colormap(norm(np.ma.masked_invalid(values)))
        finite = np.isfinite(values)
        rgba[..., :3] = np.where(finite[..., None], rgba[..., :3] * weight[..., None], rgba[..., :3])
        image = rgba
    else:
        image = np.ma.masked_invalid(values)

    fig_w, fig_h, map_w, map_h = _figure_size(width_um, height_um)
    fig = Figure(figsize=(fig_w, fig_h), layout="constrained")
    ax = fig.add_subplot()
    scalar = {} if brightness is not None else {"cmap": colormap, "norm": norm}
    ax.imshow(image, extent=extent, origin=origin, interpolation="nearest", aspect="equal", **scalar)
    ax.set_xlabel("x (\u00b5m)")
    ax.set_ylabel("y (\u00b5m)")
    ax.set_title(title)
    ax.set_facecolor(NAN_COLOR)
    _add_scale_bar(ax, width_um)
    mappable = ScalarMappable(norm=norm, cmap=colormap)
    if map_h >= 1.5:  # colour bar at the right, as tall as the map
        cax = ax.inset_axes((1.0 + 0.12 / map_w, 0.0, 0.16 / map_w, 1.0))
        orientation = "vertical"
    else:  # flat map: horizontal colour bar below
        cax = ax.inset_axes((0.0, -0.75 / map_h, 1.0, 0.12 / map_h))
        orientation = "horizontal"
    cbar = fig.colorbar(mappable, cax=cax, orientation=orientation, extend=_extend(values, lo, hi))
    cbar.set_label(units if colorbar_label is None else colorbar_label)
    if brightness is not None:
        ax.text(0.99, 0.01, "brightness: intensity", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=7, color="white",
                path_effects=[patheffects.withStroke(linewidth=1.5, foreground="black")])
    return _save(fig, path, dpi)


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
              prefix: str = "") -> list[Path]:
    """Write one PNG per map with a colour map chosen from the quantity's name.

    Rules (first match, case-insensitive, on the map name):

    - orientation (``phi``, ``orient``, ``azimuth``, ``angle``): cyclic ``romaO`` spanning one
      full period (``orientation_period_deg``, 90 deg by default for the 4-fold pseudocubic
      in-plane orientation; converted to radians when the unit is ``rad``) centred on the
      circular mean, so the mean orientation is mid-scale and the colours wrap like the angle;
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
            mid = _circular_mean(values, period)
            cmap = "romaO"
            # wrap the values into the displayed period so colours are continuous
            lo = mid - period / 2
            values = lo + np.mod(values - lo, period)
            kwargs = {"vmin": lo, "vmax": lo + period}
        elif _SIGNED.search(name):
            cmap, kwargs["center"] = "vik", 0.0
        elif _INTENSITY.search(name):
            cmap, use_brightness = "lapaz", None
        else:
            cmap = "batlow"
        cmap = cmaps.get(name, cmap)
        written.append(plot_map(values, step_um, directory / f"{prefix}{_filename(name)}",
                                title=titles.get(name, name), units=units, cmap=cmap,
                                brightness=use_brightness, dpi=dpi, **kwargs))
    return written
