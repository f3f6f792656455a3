"""Publication-quality PNG figures of the WAXS analysis: Williamson-Hall plot, lattice parameter
versus crystallite size correlations, the scan-averaged detector image and the scan-averaged
cake with its fit windows.

Each function draws on its own :class:`matplotlib.figure.Figure` with an Agg canvas (no pyplot,
thread-safe), writes a PNG and returns its :class:`~pathlib.Path`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, NullFormatter

from gpuproc.report.maps import _save, pretty_unit, resolve_cmap
from gpuproc.waxs.derive import DEFAULT_SHAPE_FACTOR

__all__ = ["azimuth_pieces", "group_label", "log_limits", "merge_friedel", "plot_cake", "plot_correlations",
           "plot_detector_image", "plot_williamson_hall"]

# two well-separated colours from batlow (dark blue / orange) for a and b
_COLOR_A = "#1f5f8b"
_COLOR_B = "#d9822b"
_OUTLINE = [patheffects.withStroke(linewidth=2.2, foreground="black")]


def _power_of_ten(values: np.ndarray) -> int:
    finite = np.abs(values[np.isfinite(values)])
    finite = finite[finite > 0]
    return int(math.floor(math.log10(finite.max()))) if finite.size else 0


def merge_friedel(q0_median: Mapping[str, float], rel_tol: float = 0.005) -> list[list[str]]:
    """Group reflection names whose median q0 agree within ``rel_tol`` (Friedel mates, equivalents).

    Parameters
    ----------
    q0_median : mapping name -> float
        Median q0 per reflection (any q unit); non-finite values form no group.
    rel_tol : float
        Relative tolerance on q0.

    Returns
    -------
    list of list of str
        Groups in increasing q0, names in their given order.
    """
    finite = sorted((float(q), n) for n, q in q0_median.items() if np.isfinite(q))
    groups: list[list[str]] = []
    last = -math.inf
    for q, name in finite:
        if groups and q - last <= rel_tol * q:
            groups[-1].append(name)
        else:
            groups.append([name])
        last = q
    order = list(q0_median)
    return [sorted(g, key=order.index) for g in groups]


def group_label(names: Sequence[str], hkl: Mapping[str, Sequence[int]] | None = None) -> str:
    """One label for reflections at the same q: Friedel mates as one ``±`` entry.

    Parameters
    ----------
    names : sequence of str
        Reflection names of the group.
    hkl : mapping name -> (h, k, l), optional
        Miller indices: a name whose ``-hkl`` is also in the group is written once as
        ``±name`` (the name of the mate whose first non-zero index is positive). Without
        ``hkl``, names ``x`` and ``-x`` pair up.

    Returns
    -------
    str
        E.g. ``"±100, ±010"``.
    """
    names = list(names)

    def key(n: str) -> tuple:
        return tuple(int(v) for v in hkl[n]) if hkl is not None and n in hkl else (n.lstrip("-"), n.startswith("-"))

    def mate(n: str) -> tuple:
        if hkl is not None and n in hkl:
            return tuple(-int(v) for v in hkl[n])
        return (n.lstrip("-"), not n.startswith("-"))

    def positive(n: str) -> bool:
        k = key(n)
        if hkl is not None and n in hkl:
            return next((v > 0 for v in k if v != 0), True)
        return not n.startswith("-")

    by_key = {key(n): n for n in names}
    parts, done = [], set()
    for n in names:
        if n in done:
            continue
        partner = by_key.get(mate(n))
        if partner is not None and partner != n:
            done.update((n, partner))
            parts.append("\u00b1" + (n if positive(n) else partner))
        else:
            done.add(n)
            parts.append(n)
    return ", ".join(parts)


def _declutter(fig: Figure, texts: list[Any]) -> None:
    """Move annotations up (in steps of their height) until no two bounding boxes overlap."""
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    for text in sorted(texts, key=lambda t: t.xy[0]):
        for _ in range(20):
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
            x, y = text.get_position()
            text.set_position((x, y + box.height * 72.0 / fig.dpi + 1.0))
        placed.append(text.get_window_extent(renderer))


def plot_williamson_hall(q0_median: Mapping[str, float], fwhm_median: Mapping[str, float], slope: float,
                         intercept: float, path: str | Path, *, size_nm: float | None = None,
                         strain: float | None = None, shape_factor: float = DEFAULT_SHAPE_FACTOR,
                         q_unit: str = "\u00c5$^{-1}$", dpi: int = 150,
                         q0_all: Mapping[str, np.ndarray] | None = None,
                         fwhm_all: Mapping[str, np.ndarray] | None = None,
                         hkl: Mapping[str, Sequence[int]] | None = None) -> Path:
    """Williamson-Hall plot: FWHM_q^2 against q0^2, every position, the medians and the global line.

    The line ``dq^2 = eps^2 q^2 + dq0^2`` (``slope = eps^2``, ``intercept = dq0^2``) is drawn from
    q^2 = 0, so its intercept (the size broadening) is visible. Reflections with the same median
    q0 (Friedel mates) are merged: their positions pooled, one marker and one label (``±100``).
    Labels are moved apart so that no two overlap.

    Parameters
    ----------
    q0_median : mapping reflection name -> float
        Median radial peak position per reflection (A^-1), e.g. ``{"100": 1.07, "110": 1.51}``.
    fwhm_median : mapping reflection name -> float
        Median radial FWHM per reflection (A^-1). Reflections present in both mappings with
        finite values are plotted.
    slope : float
        WH slope eps^2 (dimensionless).
    intercept : float
        WH intercept dq0^2 (A^-2).
    path : str or Path
        Output PNG.
    size_nm : float, optional
        Crystallite size (nm) for the legend; by default ``2 pi K / sqrt(intercept) / 10``.
    strain : float, optional
        Microstrain eps as a fraction (shown in %); by default ``sqrt(slope)``.
    shape_factor : float
        Scherrer constant K for the default size.
    q_unit : str
        Unit label of q (mathtext allowed).
    dpi : int
        PNG resolution.
    q0_all, fwhm_all : mapping reflection name -> ndarray, optional
        q0 and FWHM at every position (NaN where the fit failed): drawn as faint points, and the
        medians get error bars from their quartiles (Q1..Q3).
    hkl : mapping reflection name -> (h, k, l), optional
        Miller indices, to write Friedel mates as one ``±`` label (:func:`group_label`).

    Returns
    -------
    Path
        The PNG written.
    """
    names = [n for n in q0_median if n in fwhm_median
             and np.isfinite(q0_median[n]) and np.isfinite(fwhm_median[n])]
    groups = merge_friedel({n: q0_median[n] for n in names})
    pooled = {}
    for g in groups:
        if q0_all is not None and fwhm_all is not None:
            q = np.concatenate([np.asarray(q0_all[n], dtype=float).ravel() for n in g])
            w = np.concatenate([np.asarray(fwhm_all[n], dtype=float).ravel() for n in g])
            keep = np.isfinite(q) & np.isfinite(w)
            pooled[group_label(g, hkl)] = (q[keep] ** 2, w[keep] ** 2)
    x = np.array([float(np.median([q0_median[n] for n in g])) ** 2 for g in groups])
    y = np.array([float(np.median([fwhm_median[n] for n in g])) ** 2 for g in groups])
    labels = [group_label(g, hkl) for g in groups]
    slope, intercept = float(slope), float(intercept)
    if strain is None and np.isfinite(slope) and slope >= 0:
        strain = math.sqrt(slope)
    if size_nm is None and np.isfinite(intercept) and intercept > 0:
        size_nm = 2 * math.pi * shape_factor / math.sqrt(intercept) / 10.0
    x_max = 1.12 * (x.max() if x.size else 1.0)
    line_x = np.linspace(0.0, x_max, 50)
    line_y = slope * line_x + intercept
    line_ok = bool(np.all(np.isfinite(line_y)))
    exponent = _power_of_ten(np.concatenate([y, line_y]) if line_ok else y)
    scale = 10.0**exponent

    fig = Figure(figsize=(4.8, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    parts = []
    if size_nm is not None and np.isfinite(size_nm):
        parts.append(f"$s$ = {size_nm:.1f} nm")
    if strain is not None and np.isfinite(strain):
        parts.append(f"$\\varepsilon$ = {100 * strain:.2f} %")
    label = "WH fit of the medians" + (": " + ", ".join(parts) if parts else "")
    if line_ok:
        ax.plot(line_x, line_y / scale, color="0.25", lw=1.4, zorder=2, label=label)
    colors = resolve_cmap("batlow")(np.linspace(0.1, 0.8, max(len(groups), 1)))
    y_top = [y / scale] if y.size else []
    for (name, (px, py)), c in zip(pooled.items(), colors):
        ax.scatter(px, py / scale, s=3, color=c, alpha=0.25, linewidth=0, rasterized=True, zorder=1)
        if py.size:
            y_top.append(np.percentile(py / scale, [99]))
    err = None
    if pooled:
        err = np.array([[yi - np.percentile(pooled[n][1], 25), np.percentile(pooled[n][1], 75) - yi]
                        if pooled[n][1].size else [0.0, 0.0] for n, yi in zip(labels, y)]).T / scale
    ax.errorbar(x, y / scale, yerr=err, fmt="o", ms=6, color=_COLOR_A, mec="black", mew=0.6, ecolor="black",
                elinewidth=0.8, capsize=2, zorder=3,
                label="median per reflection" + (" (bars: Q1\u2013Q3)" if pooled else ""))
    texts = [ax.annotate(name, (xi, yi / scale), xytext=(7, -4), textcoords="offset points", fontsize=8, va="top")
             for name, xi, yi in zip(labels, x, y)]
    ax.set_xlim(0.0, x_max)
    top = max([float(np.nanmax(v)) for v in y_top if np.size(v)] + [1.0 if not y.size else 0.0]
              + ([float(np.nanmax(line_y / scale))] if line_ok else []))
    ax.set_ylim(bottom=0.0, top=1.25 * top)
    ax.set_xlabel(f"$q_0^2$ ({_squared(q_unit)})")
    power = "" if exponent == 0 else f"10$^{{{exponent}}}$ "
    ax.set_ylabel(f"FWHM$_q^2$ ({power}{_squared(q_unit)})")
    ax.set_title("Williamson\u2013Hall")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    fig.draw_without_rendering()  # final layout first, then the labels are moved apart
    _declutter(fig, texts)
    fig.set_layout_engine("none")
    return _save(fig, path, dpi)


def _squared(unit: str) -> str:
    if unit in ("A^-1", "\u00c5^-1", "1/A", "\u00c5$^{-1}$", "1/angstrom"):
        return "\u00c5$^{-2}$"
    if unit in ("nm^-1", "1/nm", "nm$^{-1}$"):
        return "nm$^{-2}$"
    return f"({unit})$^2$"


def _binned_arrays(binned: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    if isinstance(binned, Mapping):
        centers = binned["centers"]
        med_a, med_b = binned.get("a"), binned.get("b")
    else:
        centers, med_a, med_b = binned
    as_arr = (lambda v: None if v is None else np.asarray(getattr(v, "medians", v), dtype=float))
    return np.asarray(centers, dtype=float), as_arr(med_a), as_arr(med_b)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.std(x[keep]) == 0 or np.std(y[keep]) == 0:
        return float("nan")
    return float(np.corrcoef(x[keep], y[keep])[0, 1])


def plot_correlations(size_nm: np.ndarray, a: np.ndarray, b: np.ndarray, path: str | Path, *,
                      binned: Any = None, power_law: Any = None, r_a: float | None = None,
                      r_b: float | None = None, max_scatter: int = 5000, dpi: int = 150) -> Path:
    """Lattice parameters a and b against crystallite size s, one panel each (shared a/b axis).

    Parameters
    ----------
    size_nm : ndarray
        WH crystallite size per position (nm); any shape, flattened. NaN positions are left out.
    a, b : ndarray, same shape
        Lattice parameters per position (A).
    path : str or Path
        Output PNG.
    binned : (centers, medians_a, medians_b) or mapping with keys centers, a, b, optional
        Medians in size bins (e.g. 0.5 nm): centres (nm) and medians (A); a
        :class:`~gpuproc.waxs.stats.BinnedMedians` is accepted for the medians. Drawn as
        markers joined by lines; the other parameter's medians are repeated faintly in each
        panel for comparison.
    power_law : (a0, C, alpha) or mapping {"a": (...), "b": (...)}, optional
        Fitted ``a - a0 = C s^-alpha`` (A, A nm^alpha, dimensionless); a bare tuple (or a
        :class:`~gpuproc.waxs.stats.PowerLaw`) applies to a.
    r_a, r_b : float, optional
        Pearson r of (a, s) and (b, s) for the legend; computed from the data when omitted.
    max_scatter : int
        Above this many valid points a 2D histogram replaces the scatter.
    dpi : int
        PNG resolution.

    Returns
    -------
    Path
        The PNG written.
    """
    s = np.asarray(size_nm, dtype=float).ravel()
    values = {"a": np.asarray(a, dtype=float).ravel(), "b": np.asarray(b, dtype=float).ravel()}
    r = {"a": _pearson(s, values["a"]) if r_a is None else float(r_a),
         "b": _pearson(s, values["b"]) if r_b is None else float(r_b)}
    colors = {"a": _COLOR_A, "b": _COLOR_B}
    cmaps = {"a": "devon_r", "b": "lajolla_r"}  # white (few points) -> saturated (many)
    laws: dict[str, tuple[float, float, float]] = {}
    if power_law is not None:
        items = power_law.items() if isinstance(power_law, Mapping) else [("a", power_law)]
        laws = {k: tuple(float(v) for v in tuple(law)[:3]) for k, law in items if law is not None}
    centers, med = None, {"a": None, "b": None}
    if binned is not None:
        centers, med["a"], med["b"] = _binned_arrays(binned)

    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    finite_s = s[np.isfinite(s)]
    s_lo, s_hi = (float(finite_s.min()), float(finite_s.max())) if finite_s.size else (1.0, 2.0)
    for ax, key in zip(axes, ("a", "b")):
        v = values[key]
        keep = np.isfinite(s) & np.isfinite(v)
        label = f"{key}, $r$ = {r[key]:+.2f}" if np.isfinite(r[key]) else key
        if keep.sum() > max_scatter:
            ax.hist2d(s[keep], v[keep], bins=(80, 80), cmap=resolve_cmap(cmaps[key], bad="none"),
                      cmin=1, rasterized=True)
            ax.plot([], [], "s", color=colors[key], label=label)
        else:
            ax.scatter(s[keep], v[keep], s=8, color=colors[key], alpha=0.45, linewidth=0,
                       rasterized=True, label=label)
        if centers is not None:
            other = "b" if key == "a" else "a"
            if med[key] is not None:
                ax.plot(centers, med[key], "o-", color="black", mfc=colors[key], ms=5, lw=1.2,
                        label=f"{key}, median per bin", zorder=4)
            if med[other] is not None:
                ax.plot(centers, med[other], "--", color=colors[other], lw=1.0, alpha=0.8,
                        label=f"{other}, median per bin", zorder=3)
        if key in laws:
            a0, c, alpha = laws[key]
            grid = np.linspace(max(s_lo, 1e-3), s_hi, 200)
            ax.plot(grid, a0 + c * grid ** (-alpha), color="black", lw=1.6, zorder=5,
                    path_effects=[patheffects.withStroke(linewidth=3, foreground="white")],
                    label=f"${key}_0 + C s^{{-\\alpha}}$: ${key}_0$ = {a0:.4f} \u00c5, "
                          f"$\\alpha$ = {alpha:.2f}")
        ax.set_xlabel("crystallite size $s$ (nm)")
        ax.set_title(f"lattice parameter {key}")
        ax.legend(loc="best", fontsize=7, frameon=True, framealpha=0.8)
        ax.grid(alpha=0.25, lw=0.5)
    axes[0].set_ylabel("lattice parameter (\u00c5)")
    return _save(fig, path, dpi)


def azimuth_pieces(lo: float, hi: float, az_min: float, az_max: float,
                   period: float = 360.0) -> list[tuple[float, float]]:
    """Split an azimuthal interval into the pieces visible on an axis ``[az_min, az_max]``.

    The interval runs from ``lo`` anticlockwise to ``hi`` (degrees); ``hi < lo`` means it
    wraps through the seam (e.g. ``(170, -170)`` is 20 deg wide). It is placed in the periodic
    range starting at ``az_min``; a part running past ``az_min + period`` continues at
    ``az_min``. Pieces outside ``[az_min, az_max]`` are clipped away.

    Parameters
    ----------
    lo, hi : float
        Interval ends (deg).
    az_min, az_max : float
        Displayed azimuth range (deg), ``az_max - az_min <= period``.
    period : float
        Azimuth period (deg).

    Returns
    -------
    list of (float, float)
        One piece, two across the seam, or none if entirely outside the displayed range.
    """
    width = hi - lo
    if width > period or math.isclose(width, period):
        width = period
    else:
        width = width % period
    start = az_min + (lo - az_min) % period
    raw = [(start, start + width)]
    if start + width > az_min + period:
        raw = [(start, az_min + period), (az_min, start + width - period)]
    pieces = []
    for p_lo, p_hi in raw:
        p_lo, p_hi = max(p_lo, az_min), min(p_hi, az_max)
        if p_hi > p_lo:
            pieces.append((p_lo, p_hi))
    return pieces


def _edges(centers: np.ndarray) -> np.ndarray:
    c = np.asarray(centers, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def _draw_windows(ax: Axes, windows: Sequence[Mapping[str, Any]], az_min: float, az_max: float,
                  period: float = 360.0) -> tuple[list[Rectangle], list[Any], list[tuple[float, float]]]:
    """Draw each fit window as labelled rectangle(s) on ``ax``; returns the rectangles, the labels
    and each label's window corner (q_lo, top azimuth)."""
    rectangles, labels, spans = [], [], []
    for window in windows:
        q_lo, q_hi = (float(v) for v in window["q_range"])
        a_lo, a_hi = (float(v) for v in window["azimuth_range"])
        pieces = azimuth_pieces(a_lo, a_hi, az_min, az_max, period)
        for p_lo, p_hi in pieces:
            rect = Rectangle((q_lo, p_lo), q_hi - q_lo, p_hi - p_lo, fill=False, edgecolor="white",
                             linewidth=1.3, zorder=4, path_effects=_OUTLINE)
            ax.add_patch(rect)
            rectangles.append(rect)
        if pieces:
            p_lo, p_hi = max(pieces, key=lambda p: p[1] - p[0])
            labels.append(ax.text(q_hi, p_hi, f" {window.get('name', '')}", ha="left", va="top", fontsize=7,
                                  color="white", zorder=5, path_effects=_OUTLINE))
            spans.append((q_lo, p_hi))
    return rectangles, labels, spans


def _keep_inside(ax: Axes, labels: list[Any], spans: list[tuple[float, float]]) -> None:
    """Put each window label right of its window, else left of it, else inside; then no overlaps."""
    fig = ax.figure
    if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    for text, (q_lo, p_hi) in zip(labels, spans):
        for ha, x in (("left", None), ("right", q_lo), ("left", q_lo)):
            if x is not None:
                text.set_position((x, p_hi))
                text.set_text(text.get_text().strip() + " " if ha == "right" else " " + text.get_text().strip())
            text.set_ha(ha)
            box = text.get_window_extent(renderer)
            if box.x0 >= inside.x0 and box.x1 <= inside.x1:
                break
    placed: list[Any] = []
    for text in labels:
        for _ in range(20):
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(o) for o in placed) and box.y0 >= inside.y0:
                break
            x, y = text.get_position()
            step = box.height / max(inside.height, 1.0) * abs(np.diff(ax.get_ylim())[0]) * 1.1
            text.set_position((x, y - step if y - step > min(ax.get_ylim()) else y + 3 * step))
        placed.append(text.get_window_extent(renderer))


def _draw_cake(fig: Figure, cake: np.ndarray, q: np.ndarray, azimuth_deg: np.ndarray,
               windows: Sequence[Mapping[str, Any]], *, q_unit: str, log: bool, cmap: str,
               period: float = 360.0, marked: Mapping[str, Any] | None = None) -> tuple[Axes, list[Rectangle]]:
    cake = np.asarray(cake, dtype=float)
    q, az = np.asarray(q, dtype=float), np.asarray(azimuth_deg, dtype=float)
    if cake.shape != (az.size, q.size):
        raise ValueError(f"cake shape {cake.shape} != (n_azimuth, n_q) = ({az.size}, {q.size})")
    finite = cake[np.isfinite(cake)]
    data = np.where(np.isfinite(cake), cake, np.nan)
    if log:
        norm = log_limits(finite)
        data = np.where(np.isfinite(data), np.maximum(data, norm.vmin), np.nan)  # only NaN stays grey
    else:
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        norm = Normalize(lo, hi if hi > lo else lo + 1.0)
    q_edges, az_edges = _edges(q), _edges(az)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(q_edges, az_edges, np.ma.masked_invalid(data), cmap=resolve_cmap(cmap),
                         norm=norm, shading="flat", rasterized=True)
    ax.set_facecolor(resolve_cmap(cmap).get_bad())
    az_min, az_max = float(az_edges.min()), float(az_edges.max())
    ax.set_xlim(q_edges.min(), q_edges.max())
    ax.set_ylim(az_min, az_max)
    rectangles, labels, spans = _draw_windows(ax, windows, az_min, az_max, period)
    unit = pretty_unit(q_unit)
    ax.set_xlabel(f"$q$ ({unit})")
    ax.set_ylabel("azimuth $\\varphi$ (deg)")
    if az_max - az_min >= 180:
        ax.set_yticks(np.arange(math.ceil(az_min / 90) * 90, az_max + 1e-9, 90))
    cbar = fig.colorbar(mesh, ax=ax, pad=0.02)
    cbar.set_label("intensity (a.u., log scale)" if log else "intensity (a.u.)")
    if log:
        _plain_log_ticks(cbar, norm)
    ax.set_title("scan-averaged cake and fit windows")
    if marked is not None:
        _mark_reflection(ax, marked, q_unit=unit)
    if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # final layout, then the labels are placed inside the axes
    _keep_inside(ax, labels, spans)
    fig.set_layout_engine("none")  # keep that layout: saving does not run it again
    return ax, rectangles


def log_limits(values: np.ndarray, top: float = 100.0) -> LogNorm:
    """Logarithmic colour scale from the 1st percentile of the positive finite ``values`` to
    their ``top`` percentile (100: the maximum; a decade above the minimum when that is not
    larger); 1..10 without positive values."""
    values = np.asarray(values, dtype=float)
    positive = values[np.isfinite(values) & (values > 0)]
    if not positive.size:
        return LogNorm(1.0, 10.0)
    vmin, vmax = (float(v) for v in np.percentile(positive, [1.0, top]))
    return LogNorm(vmin, vmax if vmax > vmin else vmin * 10.0)


def _plain_log_ticks(cbar: Any, norm: LogNorm) -> None:
    """Plain numbers on a log colour bar's major ticks (not 4x10^1) and, under two decades, on
    its minor ticks at 2 and 5 times a power of ten."""
    cbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    two_five = FuncFormatter(lambda v, _: f"{v:g}" if round(v / 10 ** math.floor(math.log10(v)), 6) in (2, 5) else "")
    cbar.ax.yaxis.set_minor_formatter(two_five if norm.vmax / norm.vmin < 100 else NullFormatter())


def plot_detector_image(image: np.ndarray, path: str | Path, *, beam_centre_px: Sequence[float] | None = None,
                        cmap: str = "batlow", dpi: int = 150) -> Path:
    """The scan-averaged detector image on a logarithmic colour scale, the beam centre marked.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Mean counts per pixel (frame - dark); NaN at gaps, masked and flagged pixels, drawn
        transparent. Values at or below the scale's minimum (1st percentile of the positive
        values) take the lowest colour; the top is the 99.9th percentile, so that a few hot
        pixels do not set it.
    path : str or Path
        Output PNG.
    beam_centre_px : (row, column), optional
        Direct-beam position in pixel coordinates with integers at pixel edges (pixel ``i``
        spans ``i .. i + 1``), e.g. pyFAI's FIT2D centre; drawn as a cross. May lie outside
        the detector.
    cmap : str
        Colour map name.
    dpi : int
        PNG resolution.

    Returns
    -------
    Path
        The PNG written.
    """
    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"detector image must be 2-D (H, W), got shape {image.shape}")
    h, w = image.shape
    norm = log_limits(image, top=99.9)
    data = np.ma.masked_invalid(np.where(np.isfinite(image), np.maximum(image, norm.vmin), np.nan))
    fig = Figure(figsize=(5.6, 0.6 + 4.4 * min(max(h / w, 0.55), 1.6)), layout="constrained")
    ax = fig.add_subplot()
    shown = ax.imshow(data, cmap=resolve_cmap(cmap, bad="none"), norm=norm, extent=(0, w, h, 0),
                      interpolation="antialiased", rasterized=True)
    shown.set_in_layout(False)  # inside the axes anyway: the layout pass need not resample it
    cbar = fig.colorbar(shown, ax=ax, pad=0.02, shrink=0.85, extend="both")
    cbar.set_label("counts per frame (log)")
    _plain_log_ticks(cbar, norm)
    if beam_centre_px is not None:
        row, col = (float(v) for v in beam_centre_px)
        ax.plot([col], [row], "+", ms=14, mew=1.6, color="white", path_effects=_OUTLINE, label="beam centre",
                clip_on=False)
        ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xlabel("detector x (pixel)")
    ax.set_ylabel("detector y (pixel)")
    ax.set_title("scan-averaged detector image")
    return _save(fig, path, dpi)


def _mark_reflection(ax: Axes, m: Mapping[str, Any], q_unit: str) -> None:
    """q0 and phi0 of one reflection as a cross whose arms are its FWHM dq and dphi, with a legend."""
    q0, dq, phi0, dphi = (float(m[k]) for k in ("q0", "fwhm_q", "phi0", "fwhm_phi"))
    if not all(np.isfinite(v) for v in (q0, dq, phi0, dphi)):
        return
    ax.errorbar([q0], [phi0], xerr=[[dq / 2], [dq / 2]], yerr=[[dphi / 2], [dphi / 2]], fmt="+", color="#ff4d4d",
                ms=8, mew=1.2, elinewidth=1.2, capsize=3, zorder=6,
                label=f"{m.get('name', '')}: $q_0$ = {q0:.4f} {q_unit}, $\\Delta q$ = {dq:.4f} {q_unit},\n"
                      f"$\\varphi_0$ = {phi0:.1f}\u00b0, $\\Delta\\varphi$ = {dphi:.1f}\u00b0 (FWHM, medians)")
    ax.legend(loc="lower left", fontsize=6.5, framealpha=0.85)


def plot_cake(cake: np.ndarray, q: np.ndarray, azimuth_deg: np.ndarray,
              windows: Sequence[Mapping[str, Any]], path: str | Path, *, q_unit: str = "A^-1",
              log: bool = True, cmap: str = "batlow", dpi: int = 150,
              marked: Mapping[str, Any] | None = None) -> Path:
    """Scan-averaged cake (azimuth vs q) with every fit window drawn as a labelled rectangle.

    Parameters
    ----------
    cake : ndarray, shape (n_azimuth, n_q)
        Mean regrouped intensity (arbitrary units); NaN (masked bins) drawn grey.
    q : ndarray, shape (n_q,)
        Bin centres in q (``q_unit``), increasing.
    azimuth_deg : ndarray, shape (n_azimuth,)
        Bin centres in azimuth (deg), increasing, e.g. -180..180 or 0..360.
    windows : sequence of mappings
        Each with ``name`` (str), ``q_range`` (lo, hi) in ``q_unit`` and ``azimuth_range``
        (lo, hi) in deg. ``hi < lo``, or ranges past the displayed seam (e.g. 350..370 on a
        0..360 axis), are drawn in two pieces, see :func:`azimuth_pieces`.
    path : str or Path
        Output PNG.
    q_unit : str
        Unit of q: ``"A^-1"`` or ``"nm^-1"`` are typeset; anything else used verbatim.
    log : bool
        Logarithmic colour scale from the 1st percentile of the positive values to the maximum
        (values below are drawn at the lowest colour; NaN grey).
    cmap : str
        Colour map name.
    dpi : int
        PNG resolution.
    marked : mapping, optional
        One reflection's ``name``, ``q0``, ``fwhm_q`` (``q_unit``), ``phi0``, ``fwhm_phi`` (deg),
        e.g. its medians over the scan: drawn as a cross with FWHM arms and given in the legend.

    Returns
    -------
    Path
        The PNG written.
    """
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    _draw_cake(fig, cake, q, azimuth_deg, windows, q_unit=q_unit, log=log, cmap=cmap, marked=marked)
    return _save(fig, path, dpi)
