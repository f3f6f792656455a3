"""PL figures: the map set (via :mod:`gpuproc.report.maps`), example spectra, time series, kymograph.

Every function draws on its own Agg :class:`~matplotlib.figure.Figure` (no pyplot state), writes
a PNG and returns its path. Colour maps are Crameri's (``cmcrameri``). Energies in eV, widths
and shifts in meV, times in s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cmcrameri.cm  # noqa: F401  (registers the "cmc.*" colour maps)
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy import ndimage

from gpuproc.report.maps import _figure_size, _save, draw_map, plot_maps, resolve_cmap, weighted_rgba
from gpuproc.report.no_data import plot_no_data

EVENT_COLOR = "#d62728"


def interior_limits(values: np.ndarray, sample: np.ndarray, erode: int = 2) -> tuple[float | None, float | None]:
    """Colour limits: 2nd..98th percentile of ``values`` over the sample's interior.

    The sample mask is eroded by ``erode`` pixels first, so that an edge red-shift does not set the
    range (the edge is then drawn at the end colours, with arrows on the colour bar); a sample too
    small to erode uses all its pixels. (None, None) without a finite sample value.
    """
    inner = ndimage.binary_erosion(sample, iterations=erode) if erode else sample
    if np.isfinite(values[inner]).sum() < 10:
        inner = sample
    return _limits(values[inner])


def plot_energy_maps(energy: np.ndarray, intensity: np.ndarray, sample: np.ndarray, step_um: Sequence[float],
                     path: str | Path, *, coords: tuple[np.ndarray, np.ndarray] | None = None,
                     intensity_unit: str = "counts", dpi: int = 150) -> Path:
    """Intensity-weighted peak-energy map with a 2D legend, beside the plain energy map.

    Left: colour = peak energy (batlow), lightness = integrated intensity relative to its 99th
    percentile over the sample; a two-dimensional legend (energy along x, intensity along y, both
    labelled) shows every colour used. Right: the peak energy over the sample mask with its colour
    bar. Colour limits: :func:`interior_limits`. Pixels outside the sample (no peak, false peaks
    below the intensity threshold, NaN) are transparent over a neutral grey.

    Parameters
    ----------
    energy : (ny, nx) eV
    intensity : (ny, nx) integrated intensity (``intensity_unit``)
    sample : (ny, nx) bool
    step_um : (dy, dx) um
    path : output PNG
    coords : (y_um, x_um) pixel-centre coordinates, optional
    intensity_unit : unit of ``intensity`` for the legend
    dpi : PNG resolution
    """
    energy = np.where(sample, np.asarray(energy, dtype=float), np.nan)
    lo, hi = interior_limits(energy, sample)
    lo, hi = (0.0, 1.0) if lo is None else (lo, hi if hi > lo else lo + 1e-3)
    norm, cmap = Normalize(lo, hi), resolve_cmap("batlow", bad="none")
    area = np.where(sample, np.nan_to_num(np.asarray(intensity, dtype=float), nan=0.0), 0.0)
    top = float(np.percentile(area[sample], 99)) if sample.any() else 1.0
    top = top if top > 0 else 1.0
    ny, nx = energy.shape
    fig_w, fig_h, _, _ = _figure_size(nx * float(step_um[1]), ny * float(step_um[0]))
    fig = Figure(figsize=(2 * fig_w + 0.6, fig_h + 0.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    step = (float(step_um[0]), float(step_um[1]))
    draw_map(fig, energy, step, title="peak energy, weighted by intensity", units="eV", cmap=cmap, vmin=lo,
             vmax=hi, brightness=area / top, coords=coords, ax=left)
    draw_map(fig, energy, step, title="peak energy (sample)", units="eV", cmap=cmap, vmin=lo, vmax=hi,
             coords=coords, ax=right, colorbar_label="peak energy (eV)")
    legend = left.inset_axes((1.08, 0.1, 0.3, 0.55))
    e_grid, w_grid = np.meshgrid(np.linspace(lo, hi, 64), np.linspace(0.0, 1.0, 32))
    legend.imshow(weighted_rgba(e_grid, w_grid, norm, cmap), origin="lower", aspect="auto",
                  extent=(lo, hi, 0.0, 100.0), interpolation="nearest")
    legend.set_xlabel("peak energy (eV)", fontsize=7)
    legend.set_ylabel("intensity (% of p99)", fontsize=7)
    legend.set_title(f"p99 = {top:.3g}\n{intensity_unit}", fontsize=7)
    legend.tick_params(labelsize=6)
    legend.xaxis.set_major_locator(MaxNLocator(3))
    return _save(fig, path, dpi)


def map_figures(maps: Mapping[str, np.ndarray], sample: np.ndarray, step_um: Sequence[float], folder: str | Path,
                shift_mev: np.ndarray | None = None, coords: tuple[np.ndarray, np.ndarray] | None = None,
                intensity_unit: str = "counts") -> list[Path]:
    """The PL map set: energy maps (:func:`plot_energy_maps`), FWHM, intensity, n_peaks, shift map.

    Parameters
    ----------
    maps : mapping
        ``energy`` (eV), ``fwhm_mev`` (meV), ``total_area`` (integrated intensity), ``n_peaks``,
        each (ny, nx).
    sample : bool array, shape (ny, nx)
        Pixels counted as sample: colour limits come from them; FWHM is drawn over them.
    step_um : (dy, dx)
        Pixel size, um.
    folder : path
        Output folder.
    shift_mev : array, shape (ny, nx), optional
        Registered energy shift of a second map, meV.
    coords : (y_um, x_um), optional
        Pixel-centre coordinates, um.
    intensity_unit : str
        Unit of ``total_area``.

    Returns
    -------
    list of Path
    """
    folder = Path(folder)
    step = (float(step_um[0]), float(step_um[1]))
    if not sample.any():
        return [plot_no_data(folder / "energy_weighted.png", "PL peak energy", "no pixel fitted with a peak")]
    written = [plot_energy_maps(maps["energy"], maps["total_area"], sample, step, folder / "energy_weighted.png",
                                coords=coords, intensity_unit=intensity_unit)]
    quantities = {"fwhm_mev": (np.where(sample, maps["fwhm_mev"], np.nan), "meV"),
                  "intensity": (maps["total_area"], intensity_unit),
                  "n_peaks": (maps["n_peaks"].astype(float), "peaks")}
    if shift_mev is not None:
        quantities["shift_mev"] = (shift_mev, "meV")
    titles = {"fwhm_mev": "FWHM (sample)", "intensity": "integrated PL intensity", "n_peaks": "number of peaks (BIC)",
              "shift_mev": "peak-energy shift, second map − first"}
    return written + plot_maps(quantities, step, folder, titles=titles, discrete=("n_peaks",), coords=coords)


def _limits(values: np.ndarray) -> tuple[float | None, float | None]:
    """2nd..98th percentile of the finite values (None, None when there are none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    lo, hi = np.percentile(finite, [2, 98])
    return float(lo), float(hi)


def quartile_pixels(energy: np.ndarray, sample: np.ndarray) -> list[tuple[int, int]]:
    """The sample pixels whose peak energy is nearest the energy quartiles (Q1, median, Q3), distinct."""
    valid = sample & np.isfinite(energy)
    if not valid.any():
        return []
    idx = np.argwhere(valid)
    values = energy[valid]
    picks: list[tuple[int, int]] = []
    for q in np.quantile(values, [0.25, 0.5, 0.75]):
        p = tuple(int(v) for v in idx[int(np.argmin(np.abs(values - q)))])
        if p not in picks:
            picks.append(p)
    return picks


def peak_components(energy: np.ndarray, peak: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each finite peak of ``peak`` (``energy`` eV, ``fwhm_mev``, ``amplitude`` and, when stored,
    ``eta`` and ``asymmetry``: Gaussians without them) over ``energy`` (eV) with its fitted
    profile (:class:`gpuproc.fit.models.Peaks1D`): shape (n_peaks, n_channels)."""
    from gpuproc.fit.models import Peaks1D

    values = [np.asarray(peak[k], dtype=float) for k in ("amplitude", "energy", "fwhm_mev")]
    shape = [np.asarray(peak.get(k, np.zeros_like(values[0])), dtype=float) for k in ("eta", "asymmetry")]
    a, e0, fwhm, eta, alpha = values[0], values[1], values[2] * 1e-3, *shape
    keep = np.isfinite(a) & np.isfinite(e0) & np.isfinite(fwhm)
    params = np.stack([a, e0, fwhm, np.nan_to_num(eta), np.nan_to_num(alpha)], axis=-1)[keep]
    return Peaks1D("pvoigt", background="none").evaluate(np.asarray(energy, dtype=float)[None], params)


def plot_spectra(energy: np.ndarray, spectra: np.ndarray, peaks: Sequence[Mapping[str, np.ndarray]],
                 labels: Sequence[str], path: str | Path, *, background: str = "linear",
                 intensity_unit: str = "counts/eV", dpi: int = 150) -> Path:
    """Example spectra with the fitted model: data, fitted sum, each peak, and the residuals.

    The stored fit keeps the peaks, not the background; the background (``"linear"``,
    ``"constant"`` or ``"none"``, as fitted) is recovered by least squares of the data minus the
    peaks, so the fitted sum and residuals are those of the stored peaks.

    Parameters
    ----------
    energy : (n,) eV
    spectra : (k, n) preprocessed intensity (``intensity_unit``)
    peaks : k mappings with ``energy`` (eV), ``fwhm_mev`` (meV), ``amplitude`` and optionally
        ``eta``, ``asymmetry`` per peak (NaN unused; :func:`peak_components`)
    labels : k labels (e.g. the position in um)
    path : output PNG
    background : background model of the fit
    intensity_unit : unit of ``spectra``
    dpi : PNG resolution
    """
    energy = np.asarray(energy, dtype=float)
    k = max(len(spectra), 1)
    cols = min(k, 3)
    rows = -(-k // cols)
    fig = Figure(figsize=(3.4 * cols, 3.0 * rows), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(rows, cols, squeeze=False).ravel())
    n_bg = {"none": 0, "constant": 1, "linear": 2}[background]
    for sub, y, peak, label in zip(subfigs, spectra, peaks, labels):
        top, bottom = sub.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        comps = peak_components(energy, peak)
        rest = y - comps.sum(axis=0)
        ok = np.isfinite(rest)
        bg = np.zeros_like(energy)
        if n_bg and ok.sum() > n_bg:
            basis = np.vander(energy - energy.mean(), n_bg)
            bg = basis @ np.linalg.lstsq(basis[ok], rest[ok], rcond=None)[0]
        model = bg + comps.sum(axis=0)
        top.plot(energy, y, ".", ms=2, color="0.35", label="data")
        for i, c in enumerate(comps):
            top.plot(energy, bg + c, "--", lw=0.9, color=resolve_cmap("batlow")(0.15 + 0.6 * i / max(len(comps), 1)),
                     label="peaks" if i == 0 else None)
        top.plot(energy, model, "-", lw=1.3, color=EVENT_COLOR, label="fitted sum")
        top.set_title(label, fontsize=8)
        top.set_ylabel(f"intensity ({intensity_unit})", fontsize=8)
        top.legend(fontsize=6.5, loc="upper right")
        bottom.plot(energy, y - model, ".", ms=1.5, color="0.35")
        bottom.axhline(0.0, color=EVENT_COLOR, lw=0.8)
        bottom.set_ylabel("residual", fontsize=8)
        bottom.set_xlabel("photon energy (eV)", fontsize=8)
        for ax in (top, bottom):
            ax.tick_params(labelsize=7)
    return _save(fig, path, dpi)


def store_figures(group: Any, folder: str | Path) -> list[Path]:
    """Every PL figure a results store alone allows: the map set, or the time series and kymograph.

    Parameters
    ----------
    group : zarr.Group
        A PL results store (read only).
    folder : path
        Output folder.
    """
    folder = Path(folder)
    read = {k: np.asarray(group[k][...]) for k in ("energy", "fwhm_mev", "total_area", "n_peaks")}
    unit = group["total_area"].attrs.get("units", "")
    if group.attrs.get("mode", "map") == "map":
        shift = np.asarray(group["shift_mev"][...]) if "shift_mev" in group else None
        coords = (np.asarray(group["y"][...]), np.asarray(group["x"][...]))
        return map_figures(read, np.asarray(group["sample"][...], dtype=bool), group.attrs["step_um"], folder,
                           shift_mev=shift, coords=coords, intensity_unit=unit)
    time = np.asarray(group["time"][...])
    events = [{"time": float(t), "label": str(lab)} for t, lab in
              zip(group["event_time"][...], group["event_label"][...])] if "event_time" in group else []
    fitted = {}
    if "response_fit" in group:
        fitted = {"peak energy (eV)": (np.asarray(group["response_fit"][...]), _tau_label(group))}
    paths = [plot_timeseries(time, {"peak energy (eV)": read["energy"], "FWHM (meV)": read["fwhm_mev"],
                                    f"intensity ({unit})": read["total_area"], "n_peaks": read["n_peaks"]},
                             events, folder / "timeseries.png", fitted=fitted)]
    if "intensity" in group:
        paths.append(plot_kymograph(time, np.asarray(group["photon_energy"][...]), np.asarray(group["intensity"][...]),
                                    events, folder / "kymograph.png", peak_energy=read["energy"],
                                    unit=group["intensity"].attrs.get("units", "")))
    return paths


def _tau_label(group: Any) -> str:
    """Legend of the fitted responses: each event's time constants with their errors."""
    parts = []
    for i, label in enumerate(group["event_label"][...]):
        taus = [f"\u03c4$_{{{k}}}$ = {float(group[f'event_tau_{k}'][i]):.3g} \u00b1 "
                f"{float(group[f'event_tau_{k}_err'][i]):.2g} s"
                for k in ("fast", "slow") if np.isfinite(group[f"event_tau_{k}"][i])]
        if taus:
            parts.append(f"{label}: " + ", ".join(taus))
    return "fitted response" + ("\n" + "\n".join(parts) if parts else "")


def plot_timeseries(time: np.ndarray, quantities: Mapping[str, np.ndarray], events: Sequence[Mapping[str, Any]],
                    path: str | Path, fitted: Mapping[str, np.ndarray] | None = None) -> Path:
    """Stacked panels of fitted quantities against time, stimulus events as labelled lines.

    Parameters
    ----------
    time : (nt,) s
    quantities : mapping label -> (nt,) values (the label names the unit)
    events : ``{"time": s, "label": str}`` mappings
    path : output PNG
    fitted : mapping label -> (nt,) fitted response drawn over that quantity's points (NaN gaps), or
        -> ((nt,) response, legend text), e.g. with the time constants; the legend sits above
        the panel
    """
    fig = Figure(figsize=(7.0, 1.8 * len(quantities) + 0.6), layout="constrained")
    axes = fig.subplots(len(quantities), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, values) in zip(axes, quantities.items()):
        ax.plot(time, values, ".", ms=2.5, color=resolve_cmap("batlow")(0.2))
        if fitted and label in fitted:
            curve, text = fitted[label] if isinstance(fitted[label], tuple) else (fitted[label], "fitted response")
            ax.plot(time, curve, "-", lw=1.2, color=resolve_cmap("batlow")(0.75), label=text)
            # the legend with the time constants above the panel, clear of the data
            ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False, borderaxespad=0.2)
        if np.issubdtype(np.asarray(values).dtype, np.integer):
            finite = np.asarray(values)
            ax.set_ylim(finite.min() - 0.5, finite.max() + 0.5)
            ax.set_yticks(np.arange(finite.min(), finite.max() + 1, max(1, (finite.max() - finite.min()) // 6)))
        ax.set_ylabel(label)
        _mark_events(ax, events, vertical=True, labelled=ax is axes[0])
    axes[-1].set_xlabel("time (s)")
    return _save(fig, path, 150)


def plot_kymograph(time: np.ndarray, energy: np.ndarray, intensity: np.ndarray, events: Sequence[Mapping[str, Any]],
                   path: str | Path, peak_energy: np.ndarray | None = None, unit: str = "counts/eV") -> Path:
    """Kymograph: PL intensity over photon energy (x) and time (y), events as labelled lines.

    The energy axis is cropped to where the time-averaged signal exceeds 5 % of its peak above the
    median level, with a margin of half that width on each side.

    Parameters
    ----------
    time : (nt,) s
    energy : (n,) eV, ascending, possibly non-uniform (drawn at the true energies)
    intensity : (nt, n) intensity per eV
    events : ``{"time": s, "label": str}`` mappings
    path : output PNG
    peak_energy : (nt,) fitted peak energy, eV, overlaid when given
    unit : unit of ``intensity``
    """
    energy, intensity = np.asarray(energy, dtype=float), np.asarray(intensity, dtype=float)
    with np.errstate(all="ignore"):
        mean = np.nanmean(intensity, axis=0) if np.isfinite(intensity).any() else np.zeros_like(energy)
    level = mean - np.nanmedian(mean)
    on = np.flatnonzero(level > 0.05 * np.nanmax(level)) if np.nanmax(level) > 0 else np.arange(energy.size)
    if on.size:
        margin = max((on[-1] - on[0]) // 2, 3)
        keep = slice(max(on[0] - margin, 0), min(on[-1] + margin + 1, energy.size))
        energy, intensity = energy[keep], intensity[:, keep]
    fig = Figure(figsize=(6.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(energy, time, np.ma.masked_invalid(intensity), cmap=resolve_cmap("lajolla"),
                         shading="nearest", rasterized=True)
    fig.colorbar(mesh, ax=ax, label=f"intensity ({unit})")
    if peak_energy is not None:
        ax.plot(peak_energy, time, color="white", lw=0.8, label="fitted peak energy")
        ax.legend(fontsize=8, loc="lower right")
    _mark_events(ax, events, vertical=False, labelled=True)
    ax.set_xlabel("photon energy (eV)")
    ax.set_ylabel("time (s)")
    ax.invert_yaxis()
    return _save(fig, path, 150)


def _mark_events(ax: Any, events: Sequence[Mapping[str, Any]], vertical: bool, labelled: bool) -> None:
    """Event times as lines (vertical for a time x-axis, horizontal for a time y-axis) with labels."""
    for e in events:
        t = float(e["time"])
        if vertical:
            ax.axvline(t, color=EVENT_COLOR, lw=0.8, ls="--")
            if labelled:
                ax.annotate(e.get("label", ""), (t, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                            color=EVENT_COLOR, rotation=90, va="top", ha="right")
        else:
            ax.axhline(t, color=EVENT_COLOR, lw=0.8, ls="--")
            if labelled:
                ax.annotate(e.get("label", ""), (0.01, t), xycoords=("axes fraction", "data"), fontsize=7,
                            color=EVENT_COLOR, va="bottom")
