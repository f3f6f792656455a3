"""Readers of spectra files: every reader returns ``(data, axis, axis_unit, metadata)``.

``data`` has shape ``(..., n_channels)`` (spectral axis last): (ny, nx, n) for a map (a line scan
is 1 x n, a single spectrum 1 x 1), (n_spectra, n) for a time series or a flat list. ``axis`` is
(n_channels,) in ``axis_unit`` "nm" or "eV": axes in um, Angstrom, meV or Raman shift (cm^-1,
with the file's laser line or ``laser_nm``) are converted (:mod:`gpuproc.io.axis_units`).
``metadata`` holds what the file says in gpuproc's names -- ``step_um`` [dy, dx],
``time_step_s``, ``mode`` ("timeseries" for a time series), ``laser_nm``, ``exposure_s``,
``axis_source_unit`` -- and the file's own under ``vendor`` (HDF5/Zarr attributes at top level).

A source is ``file`` or ``file::name`` (the data array inside an HDF5, NPZ or Zarr container,
like ``[input] data_path``).

========================  ==================  =================================================
format                    library             metadata used
========================  ==================  =================================================
HDF5 (.h5 .hdf5 .nxs)     h5py                ``data_path``/``axis_path`` datasets, axis
                                              ``units``; attributes ``step_um``,
                                              ``time_step_s``, ``events``, ``laser_nm``;
                                              HyperSpy-written files via rosettasciio
NumPy (.npz / .npy)       numpy               arrays ``data_path``, ``axis_path``,
                                              ``axis_unit``; .npy: the axis from the caller
Zarr (.zarr)              zarr                as HDF5
text (.txt .csv .tsv      own                 header units, row/column orientation, preamble
.dat .asc)                (text_spectra)      and footer ``Key: value`` (laser, exposure)
Andor SIF (.sif)          sif_parser          calibration polynomial, FrameAxis, CycleTime,
                                              RamanExWavelength (:mod:`gpuproc.io.sif`)
Princeton SPE v2/v3       own (spe)           v2 header polynomial + laser; v3 XML wavelength
                                              mapping, frame rate, laser (:mod:`gpuproc.io.spe`)
WDF, LabSpec XML, hspy,   rosettasciio        axes' navigate flag, units, name, offset/scale or
zspy, DM3/4, .sur, .tvf,  (rsciio_spectra)    axis arrays; laser wavelength
.img, .msa, ...
========================  ==================  =================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gpuproc.io.axis_units import absolute_axis
from gpuproc.io.rsciio_spectra import PLUGINS, read_rsciio
from gpuproc.io.sif import read_sif
from gpuproc.io.spe import read_spe
from gpuproc.io.text_spectra import read_text

Spectra = tuple[Any, np.ndarray, str, dict[str, Any]]

DEFAULT_DATA = "data"
DEFAULT_AXIS = "axis"
SEPARATOR = "::"
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")


def split_source(source: str | Path) -> tuple[Path, str | None]:
    """``"file.h5::/entry/data"`` -> (Path("file.h5"), "/entry/data"); a plain path -> (path, None)."""
    text = str(source)
    if SEPARATOR in text:
        path, name = text.split(SEPARATOR, 1)
        return Path(path), name
    return Path(text), None


def read_spectra(path: str | Path, **options: Any) -> Spectra:
    """Read spectra and their spectral axis from a file into memory: :func:`open_source` with
    ``data`` as a NumPy array (same keyword options)."""
    with open_source(path, **options) as (data, ax, unit, meta):
        return np.asarray(data), ax, unit, meta


@contextlib.contextmanager
def open_source(
    path: str | Path,
    *,
    data_path: str = DEFAULT_DATA,
    axis_path: str = DEFAULT_AXIS,
    axis: Any = None,
    axis_unit: str | None = None,
    laser_nm: float | None = None,
    need_axis: bool = True,
) -> Iterator[Spectra]:
    """Open spectra and their spectral axis; the format follows the extension.

    Parameters
    ----------
    path : str or Path
        The file (or a ``.zarr`` directory), optionally ``file::data_path``.
    data_path, axis_path : str
        Names of the data and axis arrays inside HDF5, NPZ and Zarr containers.
    axis : array or path, optional
        The spectral axis (values, or a ``.npy``/text file of them), for formats that hold none
        (``.npy``); overrides the file's axis.
    axis_unit : str, optional
        Unit of the axis ("nm", "eV", "cm-1", ...), overriding the file's.
    laser_nm : float, optional
        Excitation wavelength for Raman-shift axes, overriding the file's.
    need_axis : bool
        False: a file without an axis gives ``axis`` None (darks) instead of an error.

    Yields
    ------
    data, axis, axis_unit, metadata
        ``data`` lazy (sliceable) for HDF5, Zarr and ``.npy`` while the context is open, else a
        NumPy array; ``axis_unit`` "nm" or "eV".

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, empty, corrupt or unknown file, missing arrays, a group given as an array, axis
        and data lengths that differ (each message names the file).
    ImportError
        rosettasciio formats without rosettasciio.
    """
    p, inner = split_source(path)
    data_path = inner if inner is not None else data_path
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    reader = _reader_for(p)
    if p.is_file() and p.stat().st_size == 0:
        raise ValueError(f"{p}: the file is empty")
    with reader(p, data_path, axis_path) as (data, ax, unit, meta):
        if axis is not None:
            ax = axis_values(axis)
        if axis_unit is not None:
            unit = axis_unit
        if ax is None:
            if need_axis:
                raise ValueError(f"{p}: the file holds no spectral axis; give one ([input] axis, axis=)")
            yield _shaped(p, data, None), None, unit or "nm", meta
            return
        meta = {"axis_source_unit": unit or "nm", **meta}
        laser = laser_nm if laser_nm is not None else meta.get("laser_nm")
        ax, unit = absolute_axis(ax, unit, laser, str(p))
        if laser is not None and meta["axis_source_unit"] in ("cm-1", "cm^-1", "1/cm"):
            meta["laser_nm"] = float(laser)
        yield _shaped(p, data, ax), ax, unit, meta


def axis_values(axis: Any) -> np.ndarray:
    """A spectral axis given as values or as a file (``.npy``, or text with one value a line)."""
    if isinstance(axis, (str, Path)):
        p = Path(axis)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such axis file")
        values = np.load(p, allow_pickle=False) if p.suffix.lower() == ".npy" else np.loadtxt(p, ndmin=1)
        return np.asarray(values, dtype=np.float64).ravel()
    return np.asarray(axis, dtype=np.float64).ravel()


def _shaped(p: Path, data: Any, axis: np.ndarray | None) -> Any:
    """Data checked against the axis; one spectrum becomes a 1 x 1 map."""
    if data.ndim == 1:
        data = np.asarray(data).reshape(1, 1, -1)
    if data.size == 0:
        raise ValueError(f"{p}: holds no spectra (data shape {tuple(data.shape)})")
    if axis is not None and data.shape[-1] != axis.shape[0]:
        raise ValueError(
            f"{p}: the spectral axis has {axis.shape[0]} values but the spectra have {data.shape[-1]} "
            f"channels (data shape {tuple(data.shape)}, spectral axis last)"
        )
    return data


Reader = Callable[[Path, str, str], contextlib.AbstractContextManager]


def _reader_for(p: Path) -> Reader:
    suffix = p.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        return _hdf5
    if suffix == ".zarr":
        return _zarr
    for suffixes, reader in _WHOLE:
        if suffix in suffixes:
            return _whole(reader)
    if suffix in PLUGINS:
        return _whole(read_rsciio)
    known = sorted({*HDF5_SUFFIXES, ".zarr", *(s for suffixes, _ in _WHOLE for s in suffixes), *PLUGINS})
    raise ValueError(f"{p}: unknown spectra format {suffix or '(no extension)'!r}; known: {', '.join(known)}")


def _whole(reader: Callable[[Path, str, str], Spectra]) -> Reader:
    @contextlib.contextmanager
    def opened(p: Path, data_path: str, axis_path: str) -> Iterator[Spectra]:
        yield reader(p, data_path, axis_path)

    return opened


def _plain(attrs: Any) -> dict[str, Any]:
    """Attributes as a dict of Python / NumPy values (bytes decoded)."""
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in dict(attrs).items()}


def _unit_attr(attrs: Any) -> str | None:
    for key in ("units", "unit"):
        if key in attrs:
            v = attrs[key]
            return v.decode() if isinstance(v, bytes) else str(v)
    return None


def _missing(p: Path, name: str, what: str, available: Any) -> ValueError:
    return ValueError(f"{p}: no {what} {name!r}; available: {sorted(available)}")


@contextlib.contextmanager
def _hdf5(p: Path, data_path: str, axis_path: str) -> Iterator[Spectra]:
    """HDF5: ``data_path`` and ``axis_path`` datasets, kept open (lazy) while the context is."""
    import h5py

    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ValueError(f"{p}: not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
    with f:
        if data_path not in f and str(f.attrs.get("file_format", "")) == "HyperSpy":
            yield read_rsciio(p, plugin="hspy")
            return
        datasets = _h5_datasets(f)
        data = _h5_dataset(p, f, data_path, "data dataset", datasets)
        ax = None
        if axis_path in f:
            ax = np.asarray(_h5_dataset(p, f, axis_path, "axis dataset", datasets)[()], dtype=np.float64).ravel()
        meta = {**_plain(f.attrs), **_plain(data.attrs)}
        yield data, ax, _unit_attr(f[axis_path].attrs) if ax is not None else None, meta


def _h5_dataset(p: Path, f: Any, name: str, what: str, datasets: list[str]) -> Any:
    import h5py

    if name not in f:
        raise _missing(p, name, what, datasets)
    obj = f[name]
    if not isinstance(obj, h5py.Dataset):
        inside = [d for d in datasets if d.startswith(obj.name.strip("/") + "/")]
        raise ValueError(f"{p}: {name!r} is a group, not a {what}; datasets in it: {inside}")
    return obj


def _h5_datasets(f: Any) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
    return names


@contextlib.contextmanager
def _zarr(p: Path, data_path: str, axis_path: str) -> Iterator[Spectra]:
    """Zarr v3 group with ``data_path`` and ``axis_path`` arrays (lazy)."""
    import zarr

    try:
        g = zarr.open_group(str(p), mode="r")
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise ValueError(f"{p}: not a readable Zarr group ({exc})") from None
    names = [k for k, _ in g.arrays()]
    if data_path not in names:
        raise _missing(p, data_path, "data array", names)
    data = g[data_path]
    ax = np.asarray(g[axis_path][...], dtype=np.float64).ravel() if axis_path in names else None
    unit = _unit_attr(g[axis_path].attrs) if ax is not None else None
    yield data, ax, unit, {**dict(g.attrs), **dict(data.attrs)}


def read_npz(p: Path, data_path: str = DEFAULT_DATA, axis_path: str = DEFAULT_AXIS) -> Spectra:
    """NumPy .npz: arrays ``data_path``, ``axis_path`` (optional) and ``axis_unit``."""
    try:
        z = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{p}: not a readable .npz file ({exc})") from None
    with z:
        if data_path not in z.files:
            raise _missing(p, data_path, "data array", z.files)
        unit = str(z["axis_unit"]) if "axis_unit" in z.files else None
        ax = z[axis_path] if axis_path in z.files else None
        return z[data_path], ax, unit, {}


def read_npy(p: Path, data_path: str = DEFAULT_DATA, axis_path: str = DEFAULT_AXIS) -> Spectra:
    """NumPy .npy: the data only, memory-mapped (the axis comes from the caller)."""
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False), None, None, {}
    except (ValueError, OSError) as exc:
        raise ValueError(f"{p}: not a readable .npy file ({exc})") from None


_WHOLE: tuple[tuple[tuple[str, ...], Callable[[Path, str, str], Spectra]], ...] = (
    ((".npz",), read_npz),
    ((".npy",), read_npy),
    ((".txt", ".csv", ".tsv", ".dat", ".asc"), read_text),
    ((".sif",), read_sif),
    ((".spe",), read_spe),
)
