"""The WAXS figures of a results store: every map with a scale bar (strain in %, disorder in
degrees, lengths in Å), the Williamson-Hall plot of every position with the medians and the
global line, the size correlations, the scan-averaged detector image with the beam centre, and
the scan-averaged cake with the fit windows and one reflection's q0, dq, phi0, dphi marked.
Drawn from the store alone, so ``gpuproc report`` can redraw them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gpuproc.report.maps import angle_limits, plot_map, pretty_unit
from gpuproc.report.no_data import plot_no_data
from gpuproc.report.waxs import plot_cake, plot_correlations, plot_detector_image, plot_williamson_hall

MAP_STYLE = {  # name: (colour map, title); units from the store, see shown_units
    "a": ("batlow", "lattice parameter a"),
    "b": ("batlow", "lattice parameter b"),
    "c": ("batlow", "lattice parameter c"),
    "strain": ("lajolla", "microstrain \u03b5"),
    "size": ("batlow", "crystallite size"),
    "orientation": ("romaO", "orientation \u03c6\u2080"),
    "disorder": ("lapaz", "orientational disorder"),
    "a_sc": ("batlow", "superlattice parameter \u27e8a$_{SC}$\u27e9"),
}
ORIENTATION_PERIOD_DEG = 90.0  #: 4-fold in-plane orientation


def write_figures(group: Any, out: str | Path) -> list[Path]:
    """Write the PNG figures of a finished WAXS results store into ``out``; returns their paths.

    Parameters
    ----------
    group : zarr.Group
        The results store (read only): maps, ``q0``/``fwhm_q``/``phi0``/``fwhm_phi`` per
        reflection, ``mean_cake``, the ``statistics`` and ``config`` attributes.
    out : path
        Output folder (created).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    coords = (np.asarray(group["y"][...]), np.asarray(group["x"][...]))
    step = tuple(float(v) for v in group.attrs["step_um"])
    paths = []
    for name, (cmap, title) in MAP_STYLE.items():
        values, units = shown_units(np.asarray(group[name][...], dtype=float), group[name].attrs["units"])
        if not np.isfinite(values).any():
            continue
        limits: dict[str, Any] = {"robust": True}
        if name == "orientation":
            values, cmap, lo, hi = angle_limits(values, ORIENTATION_PERIOD_DEG)
            limits = {"vmin": lo, "vmax": hi}
        paths.append(plot_map(values, step, out / f"map_{name}.png", title=title, units=units, cmap=cmap,
                              coords=coords, **limits))
    if not paths:
        paths.append(plot_no_data(out / "maps.png", "WAXS maps", "no pixel fitted"))
    stats = json.loads(group.attrs.get("statistics", "{}"))
    config = json.loads(group.attrs["config"])
    refl = config["reflections"]
    wx = [i for i, r in enumerate(refl) if r.get("kind", "waxs") == "waxs"]
    names = [refl[i]["name"] for i in wx]
    per = {k: np.asarray(group[k][...], dtype=float)[wx].reshape(len(wx), -1) for k in ("q0", "fwhm_q", "phi0",
                                                                                        "fwhm_phi")}
    with np.errstate(all="ignore"), warnings.catch_warnings():  # never-fitted reflections: all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        med = {k: {n: float(np.nanmedian(v)) for n, v in zip(names, arr)} for k, arr in per.items()}
    q_unit = group["q0"].attrs["units"]
    gwh = stats.get("global_williamson_hall", {})
    if any(np.isfinite(v) for v in med["q0"].values()):
        paths.append(plot_williamson_hall(
            med["q0"], med["fwhm_q"], gwh.get("slope", np.nan), gwh.get("intercept", np.nan),
            out / "williamson_hall.png", size_nm=gwh.get("size_nm"), strain=gwh.get("strain"),
            q_unit=pretty_unit(q_unit),
            q0_all=dict(zip(names, per["q0"])), fwhm_all=dict(zip(names, per["fwhm_q"])),
            hkl={n: tuple(group["hkl"][i]) for n, i in zip(names, wx)}))
    else:
        paths.append(plot_no_data(out / "williamson_hall.png", "Williamson\u2013Hall", "no reflection fitted"))
    size = np.asarray(group["size"][...], dtype=float)
    if np.isfinite(size).sum() >= 3:
        pearson = stats.get("pearson", {})
        binned = None
        if "size_bin" in group:
            binned = (group["size_bin"][...], group["a_binned_median"][...], group["b_binned_median"][...])
        laws = {k: (v["a0"], v["C"], v["alpha"]) for k, v in stats.get("power_law", {}).items() if "a0" in v}
        paths.append(plot_correlations(size, group["a"][...], group["b"][...], out / "correlations.png",
                                       binned=binned, power_law=laws or None, r_a=pearson.get("a", {}).get("r"),
                                       r_b=pearson.get("b", {}).get("r")))
    if "mean_frame" in group:
        frame = group["mean_frame"]
        paths.append(plot_detector_image(frame[...], out / "detector_image.png",
                                         beam_centre_px=frame.attrs.get("beam_centre_px")))
    if "mean_cake" in group:
        windows = [{"name": r["name"], "q_range": r["q_range"], "azimuth_range": r["azimuth_range"]} for r in refl]
        marked = None
        if names and np.isfinite(med["q0"][names[0]]):
            marked = {"name": names[0], **{k: med[k][names[0]] for k in med}}
        paths.append(plot_cake(group["mean_cake"][...], group["cake_q"][...], group["cake_azimuth"][...], windows,
                               out / "mean_cake.png", q_unit=q_unit, marked=marked))
    return paths


def shown_units(values: np.ndarray, unit: str) -> tuple[np.ndarray, str]:
    """Values in the unit a figure shows: radians as degrees, dimensionless (strain) as %."""
    u = unit.strip().lower()
    if u in ("rad", "radian", "radians"):
        return np.degrees(values), "deg"
    if u in ("1", "", "dimensionless"):
        return 100.0 * values, "%"
    return values, unit
