"""A placeholder figure that says why there is nothing to draw (e.g. no pixel was fitted)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from gpuproc.report.maps import _save


def plot_no_data(path: str | Path, title: str, message: str, dpi: int = 100) -> Path:
    """Write a small PNG with ``title`` and ``message`` instead of a figure that has no data.

    Parameters
    ----------
    path : str or Path
        Output PNG.
    title : str
        What the figure would have shown.
    message : str
        Why it is empty, e.g. ``"no pixel fitted"``.
    dpi : int
        PNG resolution.
    """
    fig = Figure(figsize=(4.0, 2.0))
    fig.text(0.5, 0.62, title, ha="center", va="center", fontsize=11)
    fig.text(0.5, 0.38, message, ha="center", va="center", fontsize=9, color="0.35")
    return _save(fig, path, dpi)
