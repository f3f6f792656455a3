"""Publication-quality PNG figures: scan maps (:mod:`.maps`) and WAXS analysis plots (:mod:`.waxs`).

All figure functions take plain NumPy arrays and an output path, draw on a private
:class:`matplotlib.figure.Figure` with the Agg canvas (thread-safe, no pyplot state) and return
the :class:`~pathlib.Path` of the PNG written.
"""

from gpuproc.report.maps import nice_scale_bar_length, plot_map, plot_maps, resolve_cmap
from gpuproc.report.waxs import azimuth_pieces, plot_cake, plot_correlations, plot_williamson_hall

__all__ = [
    "azimuth_pieces",
    "nice_scale_bar_length",
    "plot_cake",
    "plot_correlations",
    "plot_map",
    "plot_maps",
    "plot_williamson_hall",
    "resolve_cmap",
]
