"""Ingest PL spectra into a chunked Zarr v3 store, and open such a store lazily.

Layout of a spectra store (a Zarr v3 group, readable with ``xarray.open_zarr``)::

    <store>/spectra   map: (y, x, channel); time series: (time, channel); counts in the
                      source's integer dtype (up to 32 bits: a CCD's uint16, kept exact and
                      uploaded to a GPU as stored), other sources as float32,
                      chunks of whole rows (about 16 MB), Blosc zstd + bitshuffle
    <store>/axis      (channel,) float64 spectral axis, attribute ``units`` "nm" or "eV"
    <store>/y, x      map: (y,), (x,) float64 positions in um
    <store>/time      time series: (time,) float64 acquisition times in s

Group attributes: ``kind`` ("pl_spectra"), ``mode`` ("map" or "timeseries"), ``axis_unit``,
``step_um`` [dy, dx], ``time_step_s``, ``events`` [{"time": s, "label": str}], ``sources``,
``gpuproc_version`` and ``complete`` (True, written last). As for the WAXS frame store, the
ingest writes ``<store>.partial`` and renames it only when complete.

Step sizes, time step, events and the mode come from the call, else from the file's metadata
(what :mod:`gpuproc.io.spectra` reads: WDF/LabSpec/HyperSpy axes, SIF ``CycleTime``, SPE frame
rate, HDF5 / Zarr attributes ``step_um``, ``time_step_s``, ``events``), else the defaults (1 um,
1 s, none). Also recorded when the file has them: ``laser_nm``, ``exposure_s`` and
``axis_source_unit`` (e.g. "cm-1" for a Raman-shift axis converted to nm). HDF5, Zarr and
``.npy`` sources are copied a chunk at a time (bounded memory); the other formats are read whole
first. Everything is checked before the store is begun, and a failed write removes it: a failed
ingest leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from gpuproc.io import staging
from gpuproc.io.spectra import open_source, split_source
from gpuproc.pl.spectra import check_axis
from gpuproc.run.validate import positive_axis

KIND = "pl_spectra"
MODES = ("map", "timeseries")
TARGET_CHUNK_BYTES = 16 * 2**20


@dataclass
class SpectraStore:
    """An ingested spectra store, opened lazily.

    Attributes
    ----------
    spectra : zarr.Array
        (ny, nx, n_channels) or (nt, n_channels) counts; slice it to read rows.
    axis : numpy.ndarray
        (n_channels,) spectral axis in ``attrs["axis_unit"]``.
    attrs : dict
        Group attributes (see the module docstring).
    path : Path
    """

    spectra: zarr.Array
    axis: np.ndarray
    attrs: dict[str, Any]
    path: Path

    @property
    def mode(self) -> str:
        """``"map"`` or ``"timeseries"``."""
        return self.attrs["mode"]

    @property
    def n_rows(self) -> int:
        """Map rows (y) or time points: the dimension processed in blocks."""
        return int(self.spectra.shape[0])

    def coords(self) -> dict[str, np.ndarray]:
        """Position (um) or time (s) coordinates by dimension name."""
        g = zarr.open_group(str(self.path), mode="r")
        names = ("y", "x") if self.mode == "map" else ("time",)
        return {n: np.asarray(g[n][...]) for n in names}


def ingest_spectra(
    source: str | Path,
    store_path: str | Path,
    *,
    data_path: str = "data",
    axis_path: str = "axis",
    axis: Any = None,
    axis_unit: str | None = None,
    laser_nm: float | None = None,
    mode: str | None = None,
    shape: tuple[int, int] | None = None,
    step_um: tuple[float, float] | None = None,
    time_step_s: float | None = None,
    events: Sequence[dict[str, Any]] | None = None,
    chunk_rows: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Copy spectra from a file into a chunked spectra store.

    Parameters
    ----------
    source
        Spectra file in any format of :mod:`gpuproc.io.spectra`.
    store_path
        Target directory of the Zarr v3 store.
    data_path, axis_path, axis, axis_unit, laser_nm
        As in :func:`gpuproc.io.spectra.read_spectra` (``source`` may be ``file::data_path``;
        ``axis`` values or a file of them; ``laser_nm`` for Raman-shift axes).
    mode
        ``"map"`` or ``"timeseries"``; default: the file's (a time series for SIF kinetic
        series, WDF time series, ...), else 3D (and single spectra, line scans) a map and 2D a
        time series.
    shape
        (ny, nx) of a map stored as a flat list of spectra (row by row).
    step_um
        (dy, dx) map step, um.
    time_step_s
        Time between spectra of a time series, s.
    events
        Stimulus events ``{"time": s, "label": str}`` of a time series.
    chunk_rows
        Map rows (or spectra of a time series) per chunk; default about 16 MB per chunk.
    overwrite
        Replace an existing store.

    Returns
    -------
    pathlib.Path
        The completed store.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, empty or unknown source; axis and data lengths that differ; a non-monotonic
        axis; data whose dimensions do not fit ``mode`` / ``shape``.
    FileExistsError
        The store exists and ``overwrite`` is False.
    """
    final = Path(store_path)
    if final.exists() and not overwrite:
        raise FileExistsError(f"spectra store already exists: {final} (pass overwrite=True)")
    with open_source(source, data_path=data_path, axis_path=axis_path, axis=axis, axis_unit=axis_unit,
                     laser_nm=laser_nm) as (data, ax, unit, meta):
        check_axis(ax, data.shape[-1], f"{source}: spectral axis")
        positive_axis(ax, unit, f"{source}: spectral axis")
        mode, grid = _layout(Path(source), data.shape, mode or meta.get("mode"), shape)
        attrs = _attrs(meta, mode, unit, step_um, time_step_s, events, [str(source)])
        with staging.staged(final, kind=KIND, inputs=[split_source(source)[0]], overwrite=overwrite) as group:
            _write_spectra(group, data, grid, chunk_rows)
            _write_coords(group, ax, unit, grid, attrs)
            group.attrs.update(attrs)
    return final


def open_spectra(store_path: str | Path) -> SpectraStore:
    """Open a completed spectra store lazily.

    Raises
    ------
    FileNotFoundError
        No store at ``store_path``.
    ValueError
        Not a spectra store, or an incomplete one (interrupted ingest).
    """
    path = Path(store_path)
    group = staging.open_complete(path, "spectra store")
    attrs = dict(group.attrs)
    if attrs.get("kind") != KIND:
        raise ValueError(f"{path}: not a PL spectra store (run `gpuproc pl ingest` first)")
    return SpectraStore(group["spectra"], np.asarray(group["axis"][...]), attrs, path)


def is_spectra_store(path: str | Path) -> bool:
    """True if ``path`` is a Zarr group written by :func:`ingest_spectra`."""
    p = Path(path)
    if not (p / "zarr.json").is_file():
        return False
    return zarr.open_group(str(p), mode="r").attrs.get("kind") == KIND


def _layout(p: Path, data_shape: tuple[int, ...], mode: str | None,
            shape: tuple[int, int] | None) -> tuple[str, tuple[int, ...]]:
    """Mode and the stored shape without channels: (ny, nx) for a map, (nt,) for a time series."""
    n_spectra = int(np.prod(data_shape[:-1]))
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    mode = mode or ("map" if len(data_shape) == 3 or shape is not None else "timeseries")
    if mode == "timeseries":
        if len(data_shape) != 2:
            raise ValueError(f"{p}: a time series needs data (time, channel), got shape {tuple(data_shape)}")
        return mode, (n_spectra,)
    grid = tuple(shape) if shape is not None else tuple(data_shape[:-1])
    if len(grid) == 1:
        raise ValueError(f"{p}: a list of {n_spectra} spectra (data shape {tuple(data_shape)}): a time series "
                         "([input] mode = 'timeseries') or a map of [input] shape = [ny, nx]")
    if len(grid) != 2 or grid[0] * grid[1] != n_spectra:
        raise ValueError(f"{p}: {n_spectra} spectra (data shape {tuple(data_shape)}) do not fill a map of "
                         f"shape {grid}; give [input] shape = [ny, nx]")
    return mode, grid


def _attrs(meta: dict[str, Any], mode: str, unit: str, step_um: Any, time_step_s: Any, events: Any,
           sources: list[str]) -> dict[str, Any]:
    """Store attributes: the caller's values, else the file's, else defaults."""
    from gpuproc import __version__

    file_events = meta.get("events", [])
    if isinstance(file_events, str):
        file_events = json.loads(file_events)
    events = file_events if events is None else events
    file_step = _positive(meta.get("step_um"), (1.0, 1.0))
    file_time = _positive(meta.get("time_step_s"), 1.0)
    recorded = {k: (str(meta[k]) if k == "axis_source_unit" else float(meta[k]))
                for k in ("laser_nm", "exposure_s", "axis_source_unit") if k in meta}
    return {
        "kind": KIND,
        "mode": mode,
        "axis_unit": unit,
        "step_um": [float(s) for s in (step_um if step_um is not None else file_step)],
        "time_step_s": float(time_step_s if time_step_s is not None else file_time),
        "events": [{"time": float(e["time"]), "label": str(e.get("label", ""))} for e in events],
        "sources": sources,
        "units": {"spectra": "counts", "axis": unit, "y": "um", "x": "um", "time": "s"},
        "gpuproc_version": __version__,
        **{k: v for k, v in recorded.items() if not isinstance(v, float) or np.isfinite(v)},
    }


def _positive(value: Any, default: Any) -> Any:
    """A file's step (number or list) when every entry is finite and > 0, else ``default``."""
    if value is None:
        return default
    v = np.atleast_1d(np.asarray(value, dtype=np.float64))
    return value if v.size and np.all(np.isfinite(v) & (v > 0)) else default


def stored_dtype(source: Any) -> np.dtype:
    """The store's dtype for spectra of dtype ``source``: integers of up to 32 bits as they are
    (exact; float32 holds integers only up to 2**24), everything else float32."""
    source = np.dtype(source)
    return source if source.kind in "iu" and source.itemsize <= 4 else np.dtype(np.float32)


def _write_spectra(group: zarr.Group, data: Any, grid: tuple[int, ...], chunk_rows: int | None) -> None:
    """Copy ``data`` into ``spectra`` one chunk of rows at a time."""
    n_ch = int(data.shape[-1])
    row = int(np.prod(grid[1:])) * n_ch
    dtype = stored_dtype(getattr(data, "dtype", np.float32))
    rows = chunk_rows or max(1, min(grid[0], TARGET_CHUNK_BYTES // (dtype.itemsize * row)))
    dims = ("y", "x", "channel") if len(grid) == 2 else ("time", "channel")
    out = group.create_array(
        "spectra", shape=(*grid, n_ch), chunks=(rows, *grid[1:], n_ch), dtype=dtype,
        compressors=[BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")],
        dimension_names=dims, fill_value=np.nan if dtype.kind == "f" else 0,
    )
    out.attrs.update({"units": "counts", "long_name": "detector counts per channel"})
    per_row = row // n_ch
    for r0 in range(0, grid[0], rows):
        r1 = min(r0 + rows, grid[0])
        block = data[r0 * per_row:r1 * per_row] if data.ndim == 2 else data[r0:r1]
        out[r0:r1] = np.asarray(block, dtype=dtype).reshape((r1 - r0, *grid[1:], n_ch))


def _write_coords(group: zarr.Group, axis: np.ndarray, unit: str, grid: tuple[int, ...],
                  attrs: dict[str, Any]) -> None:
    """Spectral axis and the position or time coordinates."""
    _small(group, "axis", axis, ("channel",), unit, "spectral axis")
    if len(grid) == 2:
        dy, dx = attrs["step_um"]
        _small(group, "y", dy * np.arange(grid[0]), ("y",), "um", "position y")
        _small(group, "x", dx * np.arange(grid[1]), ("x",), "um", "position x")
    else:
        _small(group, "time", attrs["time_step_s"] * np.arange(grid[0]), ("time",), "s", "time")


def _small(group: zarr.Group, name: str, values: np.ndarray, dims: tuple[str, ...], units: str,
           long_name: str) -> None:
    a = group.create_array(name, shape=values.shape, dtype=np.float64, dimension_names=dims)
    a[...] = values
    a.attrs.update({"units": units, "long_name": long_name})
