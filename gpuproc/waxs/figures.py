"""The WAXS pipeline's figures: every map with a scale bar, the Williamson-Hall plot with the
global line, the size correlations, and the scan-averaged cake with the fit windows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gpuproc.report.maps import plot_map
from gpuproc.report.waxs import plot_cake, plot_correlations, plot_williamson_hall

if TYPE_CHECKING:
    from gpuproc.io.results import ResultStore
    from gpuproc.waxs.pipeline import Context

MAP_STYLE = {  # name: (colour map, title)
    "a": ("batlow", "lattice parameter a"),
    "b": ("batlow", "lattice parameter b"),
    "c": ("batlow", "lattice parameter c"),
    "strain": ("lajolla", "microstrain"),
    "size": ("batlow", "crystallite size"),
    "orientation": ("romaO", "orientation"),
    "disorder": ("lapaz", "orientational disorder"),
    "a_sc": ("batlow", "superlattice parameter <a_SC>"),
}


def write_figures(ctx: Context, store: ResultStore, maps: dict[str, np.ndarray], mean_cake: np.ndarray,
                  gwh: Any, corr: dict[str, Any]) -> list[Path]:
    """Write the PNG figures of a finished WAXS run into ``[job] figures``; returns their paths."""
    out = Path(ctx.job.job.figures)
    out.mkdir(parents=True, exist_ok=True)
    step = tuple(store.group.attrs["step_um"])
    paths = []
    for name, (cmap, title) in MAP_STYLE.items():
        values = maps[name]
        if not np.isfinite(values).any():
            continue
        units = store.group[name].attrs["units"]
        paths.append(plot_map(values, step, out / f"map_{name}.png", title=title, units=units, cmap=cmap))
    wx = ctx.waxs
    names = [ctx.job.reflections[i].name for i in wx]
    q0 = store.read("q0")[wx].reshape(len(wx), -1)
    fw = store.read("fwhm_q")[wx].reshape(len(wx), -1)
    with np.errstate(all="ignore"):
        q_med = {n: float(np.nanmedian(v)) for n, v in zip(names, q0)}
        w_med = {n: float(np.nanmedian(v)) for n, v in zip(names, fw)}
    to_nm = 0.1 if ctx.length_unit == "A" else 1.0
    paths.append(plot_williamson_hall(q_med, w_med, float(gwh.slope), float(gwh.intercept), out / "williamson_hall.png",
                                      size_nm=float(gwh.size) * to_nm, strain=float(gwh.strain)))
    if np.isfinite(maps["size"]).sum() >= 3:
        paths.append(plot_correlations(maps["size"], maps["a"], maps["b"], out / "correlations.png",
                                       r_a=corr["a"].r, r_b=corr["b"].r))
    windows = [{"name": r.name, "q_range": r.q_range, "azimuth_range": r.azimuth_range} for r in ctx.job.reflections]
    paths.append(plot_cake(mean_cake, ctx.integrator.q, ctx.integrator.azimuth, windows, out / "mean_cake.png",
                           q_unit=ctx.q_unit))
    return paths
