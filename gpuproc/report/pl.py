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
from matplotlib.figure import Figure

from gpuproc.report.maps import _save, plot_map, plot_maps, resolve_cmap

EVENT_COLOR = "#d62728"


def map_figures(maps: Mapping[str, np.ndarray], sample: np.ndarray, step_um: Sequence[float], folder: str | Path,
                shift_mev: np.ndarray | None = None) -> list[Path]:
    """The PL map set: intensity-weighted peak energy, FWHM, intensity, n_peaks and the shift map.

    Parameters
    ----------
    maps : mapping
        ``energy`` (eV), ``fwhm_mev`` (meV), ``total_area`` (integrated intensity), ``n_peaks``,
        each (ny, nx).
    sample : bool array, shape (ny, nx)
        Pixels counted as sample: colour limits come from them.
    step_um : (dy, dx)
        Pixel size, um.
    folder : path
        Output folder.
    shift_mev : array, shape (ny, nx), optional
        Registered energy shift of a second map, meV.

    Returns
    -------
    list of Path
    """
    folder = Path(folder)
    step = (float(step_um[0]), float(step_um[1]))
    energy = np.where(maps["n_peaks"] > 0, maps["energy"], np.nan)
    lo, hi = _limits(energy[sample])
    area = np.nan_to_num(maps["total_area"], nan=0.0)
    brightness = np.clip(area / max(np.percentile(area, 99), 1e-30), 0.0, 1.0)
    written = [plot_map(energy, step, folder / "energy_weighted.png", title="peak energy (brightness: intensity)",
                        units="eV", vmin=lo, vmax=hi, brightness=brightness)]
    quantities = {"fwhm_mev": (np.where(sample, maps["fwhm_mev"], np.nan), "meV"),
                  "intensity": (maps["total_area"], "counts"),
                  "n_peaks": (maps["n_peaks"].astype(float), "")}
    if shift_mev is not None:
        quantities["shift_mev"] = (shift_mev, "meV")
    return written + plot_maps(quantities, step, folder)


def _limits(values: np.ndarray) -> tuple[float | None, float | None]:
    """2nd..98th percentile of the finite values (None, None when there are none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    lo, hi = np.percentile(finite, [2, 98])
    return float(lo), float(hi)


def example_pixels(n_peaks: np.ndarray, sample: np.ndarray, n: int = 4) -> list[tuple[int, ...]]:
    """Up to ``n`` sample pixels: the brightest-index one of each n_peaks value found, then others."""
    picks: list[tuple[int, ...]] = []
    for k in np.unique(n_peaks[sample]):
        idx = np.argwhere(sample & (n_peaks == k))
        picks.append(tuple(int(v) for v in idx[len(idx) // 2]))
    rest = [tuple(int(v) for v in i) for i in np.argwhere(sample)[:: max(1, int(sample.sum()) // n)]]
    return (picks + [p for p in rest if p not in picks])[:n]


def plot_spectra(energy: np.ndarray, spectra: np.ndarray, peak_energies: Sequence[np.ndarray],
                 labels: Sequence[str], path: str | Path) -> Path:
    """Example spectra against photon energy with their fitted peak energies marked.

    Parameters
    ----------
    energy : (n,) eV
    spectra : (k, n) intensity per eV
    peak_energies : k arrays of fitted peak energies, eV (NaN ignored)
    labels : k labels
    path : output PNG
    """
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    colors = resolve_cmap("batlow")(np.linspace(0.05, 0.85, max(len(spectra), 1)))
    for y, peaks, label, c in zip(spectra, peak_energies, labels, colors):
        ax.plot(energy, y, color=c, lw=1.0, label=label)
        for e in np.asarray(peaks)[np.isfinite(peaks)]:
            ax.axvline(e, color=c, ls=":", lw=0.8)
    ax.set_xlabel("photon energy (eV)")
    ax.set_ylabel("intensity (counts/eV)")
    ax.legend(fontsize=8)
    return _save(fig, path, 150)


def plot_timeseries(time: np.ndarray, quantities: Mapping[str, np.ndarray], events: Sequence[Mapping[str, Any]],
                    path: str | Path, fitted: Mapping[str, np.ndarray] | None = None) -> Path:
    """Stacked panels of fitted quantities against time, stimulus events as labelled lines.

    Parameters
    ----------
    time : (nt,) s
    quantities : mapping label -> (nt,) values (the label names the unit)
    events : ``{"time": s, "label": str}`` mappings
    path : output PNG
    fitted : mapping label -> (nt,) fitted response drawn over that quantity's points (NaN gaps)
    """
    fig = Figure(figsize=(7.0, 1.8 * len(quantities) + 0.6), layout="constrained")
    axes = fig.subplots(len(quantities), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, values) in zip(axes, quantities.items()):
        ax.plot(time, values, ".", ms=2.5, color=resolve_cmap("batlow")(0.2))
        if fitted and label in fitted:
            ax.plot(time, fitted[label], "-", lw=1.2, color=resolve_cmap("batlow")(0.75), label="fitted response")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_ylabel(label)
        _mark_events(ax, events, vertical=True, labelled=ax is axes[0])
    axes[-1].set_xlabel("time (s)")
    return _save(fig, path, 150)


def plot_kymograph(time: np.ndarray, energy: np.ndarray, intensity: np.ndarray, events: Sequence[Mapping[str, Any]],
                   path: str | Path, peak_energy: np.ndarray | None = None) -> Path:
    """Kymograph: PL intensity over photon energy (x) and time (y), events as labelled lines.

    Parameters
    ----------
    time : (nt,) s
    energy : (n,) eV, ascending, possibly non-uniform (drawn at the true energies)
    intensity : (nt, n) intensity per eV
    events : ``{"time": s, "label": str}`` mappings
    path : output PNG
    peak_energy : (nt,) fitted peak energy, eV, overlaid when given
    """
    fig = Figure(figsize=(6.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(energy, time, np.ma.masked_invalid(intensity), cmap=resolve_cmap("lajolla"),
                         shading="nearest", rasterized=True)
    fig.colorbar(mesh, ax=ax, label="intensity (counts/eV)")
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
