"""Readers of spectra files: every reader returns ``(data, axis, axis_unit, metadata)``.

``data`` has shape ``(..., n_channels)`` (spectral axis last), ``axis`` shape ``(n_channels,)``,
``axis_unit`` a string such as ``"nm"``, ``"eV"`` or ``"pixel"`` and ``metadata`` a dict.

========================  ==============================================================
format                    layout
========================  ==============================================================
HDF5 (.h5 .hdf5 .nxs)     datasets ``data_path`` and ``axis_path``; unit from the axis
                          dataset's ``units``/``unit`` attribute
NumPy (.npz)              arrays ``data_path`` and ``axis_path`` (+ optional ``axis_unit``)
NumPy (.npy)              the data only; pass ``axis=``
text (.txt .csv .tsv      first column the axis, one column per spectrum; an optional header
.dat .asc)                row (names in ``metadata["columns"]``); ``#`` comments skipped
Zarr (.zarr)              v3 group with arrays ``data_path`` and ``axis_path``; unit from
                          the axis array's ``units``/``unit`` attribute
Andor SIF (.sif)          via ``sif_parser``; frames x rows x channels, the wavelength
                          calibration polynomial as axis (``"pixel"`` without one)
Renishaw (.wdf),          via rosettasciio, an optional extra (``pip install gpuproc[vendor]``)
Horiba (.xml)
========================  ==============================================================

``axis_unit`` passed by the caller overrides the unit found in the file (default ``"nm"`` when
the file names none).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

Spectra = tuple[np.ndarray, np.ndarray, str, dict[str, Any]]

DEFAULT_DATA = "data"
DEFAULT_AXIS = "axis"


def read_spectra(
    path: str | Path,
    *,
    data_path: str = DEFAULT_DATA,
    axis_path: str = DEFAULT_AXIS,
    axis: Any = None,
    axis_unit: str | None = None,
) -> Spectra:
    """Read spectra and their spectral axis from a file; the format follows the extension.

    Parameters
    ----------
    path : str or Path
        The file (or a ``.zarr`` directory).
    data_path, axis_path : str
        Names of the data and axis arrays inside HDF5, NPZ and Zarr containers.
    axis : array, optional
        The spectral axis, for formats that hold none (``.npy``); overrides the file's axis.
    axis_unit : str, optional
        Unit of the axis, overriding the file's.

    Returns
    -------
    data, axis, axis_unit, metadata

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or empty file, unknown extension, missing arrays, axis and data lengths that
        differ (the message names the file and both lengths).
    ImportError
        Vendor formats without rosettasciio.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    reader = _reader_for(p)
    if p.is_file() and p.stat().st_size == 0:
        raise ValueError(f"{p}: the file is empty")
    data, ax, unit, meta = reader(p, data_path, axis_path)
    if axis is not None:
        ax = np.asarray(axis)
    if ax is None:
        raise ValueError(f"{p}: the file holds no spectral axis; pass axis=")
    if axis_unit is not None:
        unit = axis_unit
    return _checked(p, np.asarray(data), np.asarray(ax, dtype=np.float64).ravel(), unit or "nm", meta)


def _reader_for(p: Path) -> Callable[[Path, str, str], Spectra]:
    suffix = p.suffix.lower()
    for suffixes, reader in _READERS:
        if suffix in suffixes:
            return reader
    known = sorted(s for suffixes, _ in _READERS for s in suffixes)
    raise ValueError(f"{p}: unknown spectra format {suffix or '(no extension)'!r}; known: {', '.join(known)}")


def _checked(p: Path, data: np.ndarray, axis: np.ndarray, unit: str, meta: dict[str, Any]) -> Spectra:
    if data.size == 0:
        raise ValueError(f"{p}: holds no spectra (data shape {data.shape})")
    if data.shape[-1] != axis.shape[0]:
        raise ValueError(
            f"{p}: the spectral axis has {axis.shape[0]} values but the spectra have {data.shape[-1]} "
            f"channels (data shape {data.shape}, spectral axis last)"
        )
    return data, axis, unit, meta


def _unit_attr(attrs: Any) -> str | None:
    for key in ("units", "unit"):
        if key in attrs:
            v = attrs[key]
            return v.decode() if isinstance(v, bytes) else str(v)
    return None


def _plain(attrs: Any) -> dict[str, Any]:
    """Attributes as a dict of Python / NumPy values (bytes decoded)."""
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in dict(attrs).items()}


def _missing(p: Path, name: str, what: str, available: Any) -> ValueError:
    return ValueError(f"{p}: no {what} {name!r}; available: {sorted(available)}")


def read_hdf5(p: Path, data_path: str = DEFAULT_DATA, axis_path: str = DEFAULT_AXIS) -> Spectra:
    """HDF5: ``data_path`` and ``axis_path`` datasets (see the module docstring)."""
    import h5py

    with h5py.File(p, "r") as f:
        for name, what in ((data_path, "data dataset"), (axis_path, "axis dataset")):
            if name not in f:
                raise _missing(p, name, what, _h5_datasets(f))
        meta = {**_plain(f.attrs), **_plain(f[data_path].attrs)}
        return f[data_path][()], f[axis_path][()], _unit_attr(f[axis_path].attrs), meta


def _h5_datasets(f: Any) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
    return names


def read_npz(p: Path, data_path: str = DEFAULT_DATA, axis_path: str = DEFAULT_AXIS) -> Spectra:
    """NumPy .npz: arrays ``data_path``, ``axis_path`` and optionally ``axis_unit``."""
    with np.load(p, allow_pickle=False) as z:
        for name, what in ((data_path, "data array"), (axis_path, "axis array")):
            if name not in z.files:
                raise _missing(p, name, what, z.files)
        unit = str(z["axis_unit"]) if "axis_unit" in z.files else None
        return z[data_path], z[axis_path], unit, {}


def read_npy(p: Path, data_path: str = DEFAULT_DATA, axis_path: str = DEFAULT_AXIS) -> Spectra:
    """NumPy .npy: the data only (the axis comes from the caller)."""
    return np.load(p, allow_pickle=False), None, None, {}


def read_text(p: Path, data_path: str = DEFAULT_DATA, axis_path: str = DEFAULT_AXIS) -> Spectra:
    """Delimited text: axis column first, one column per spectrum, optional header row."""
    lines = [ln.strip() for ln in p.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise ValueError(f"{p}: no data rows")
    delimiter = _delimiter(p, lines[0])
    meta: dict[str, Any] = {}
    if not _is_numeric_row(lines[0], delimiter):
        meta["columns"] = [c.strip() for c in lines[0].split(delimiter)]
        lines = lines[1:]
    try:
        table = np.loadtxt(lines, delimiter=delimiter, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{p}: not a numeric table ({exc})") from None
    if table.shape[1] < 2:
        raise ValueError(f"{p}: needs an axis column and at least one spectrum column, found {table.shape[1]}")
    return table[:, 1:].T, table[:, 0], None, meta


def _delimiter(p: Path, first: str) -> str | None:
    if p.suffix.lower() == ".csv" or "," in first:
        return ","
    if "\t" in first:
        return "\t"
    return None  # whitespace


def _is_numeric_row(line: str, delimiter: str | None) -> bool:
    try:
        [float(c) for c in line.split(delimiter)]
    except ValueError:
        return False
    return True


def read_zarr(p: Path, data_path: str = DEFAULT_DATA, axis_path: str = DEFAULT_AXIS) -> Spectra:
    """Zarr v3 group with ``data_path`` and ``axis_path`` arrays."""
    import zarr

    g = zarr.open_group(str(p), mode="r")
    names = [k for k, _ in g.arrays()]
    for name, what in ((data_path, "data array"), (axis_path, "axis array")):
        if name not in names:
            raise _missing(p, name, what, names)
    data, ax = g[data_path], g[axis_path]
    return data[...], ax[...], _unit_attr(ax.attrs), {**dict(g.attrs), **dict(data.attrs)}


def read_sif(p: Path, data_path: str = DEFAULT_DATA, axis_path: str = DEFAULT_AXIS) -> Spectra:
    """Andor SIF through ``sif_parser.np_open``: (frames, rows, channels), rows of 1 squeezed."""
    import sif_parser
    from sif_parser.utils import extract_calibration

    try:
        data, info = sif_parser.np_open(str(p))
    except (SyntaxError, ValueError, EOFError) as exc:
        raise ValueError(f"{p}: not a readable Andor SIF file ({exc})") from None
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[1] == 1:
        data = data[:, 0, :]
    calib = extract_calibration(info)
    meta = {k: v for k, v in info.items() if k not in ("tile",)}
    if calib is None:
        return data, np.arange(1, data.shape[-1] + 1, dtype=float), "pixel", meta
    calib = np.asarray(calib)
    return data, (calib if calib.ndim == 1 else calib[0]), "nm", meta


def read_vendor(p: Path, data_path: str = DEFAULT_DATA, axis_path: str = DEFAULT_AXIS) -> Spectra:
    """Renishaw WDF or Horiba (Jobin Yvon) XML through rosettasciio (optional extra)."""
    module = {".wdf": "rsciio.renishaw", ".xml": "rsciio.jobinyvon"}[p.suffix.lower()]
    try:
        rsciio = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{p}: reading {p.suffix} files needs rosettasciio ({exc}); install it with "
            "`pip install gpuproc[vendor]`"
        ) from None
    signal = rsciio.file_reader(str(p))[0]
    spectral = signal["axes"][-1]
    ax = spectral.get("axis")
    if ax is None:
        ax = spectral["offset"] + spectral["scale"] * np.arange(spectral["size"])
    meta = {"metadata": signal.get("metadata", {}), "original_metadata": signal.get("original_metadata", {})}
    return np.asarray(signal["data"]), np.asarray(ax), spectral.get("units") or None, meta


_READERS: tuple[tuple[tuple[str, ...], Callable[[Path, str, str], Spectra]], ...] = (
    ((".h5", ".hdf5", ".hdf", ".nxs"), read_hdf5),
    ((".npz",), read_npz),
    ((".npy",), read_npy),
    ((".txt", ".csv", ".tsv", ".dat", ".asc"), read_text),
    ((".zarr",), read_zarr),
    ((".sif",), read_sif),
    ((".wdf", ".xml"), read_vendor),
)
