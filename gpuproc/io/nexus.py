"""A finished results store as one NeXus/HDF5 file: what silx view, PyMca and DAWN open.

Layout (NeXus conventions only, written with h5py)::

    /                       @default = "entry"
    entry       NXentry     @default = the main map ("orientation" for WAXS, "energy" for PL)
      process   NXprocess   program, version, date (of the export), NXnote job (the results
                            configuration, JSON), inputs (input-file fingerprints), versions,
                            attributes (every other attribute of the store)
      <name>    NXdata      one per result variable: @signal = name, @axes = its dimensions
                            (y, x in um; reflection, peak, time, photon_energy, ...),
                            <name>_errors (its standard error, when it has one), @units
      labels    NXcollection text variables (event labels, models, flags)
      mean_cake NXsubentry  definition = NXazint2d: the scan-averaged cake (WAXS)

A dimension whose coordinate is text (``reflection``, ``quantity``) gets an integer index axis
and the text as ``<dim>_label`` beside it. Values are copied unchanged (same dtype), so each
NXdata equals its Zarr variable bit for bit; booleans are stored as uint8.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import zarr

from gpuproc import __version__

#: the NXdata that silx view opens first, per pipeline
DEFAULT_SIGNAL = {"waxs": "orientation", "pl": "energy"}
#: attributes of the store recorded as their own NXnote (the rest go into ``attributes``)
NOTES = ("config", "inputs", "versions")
AZINT_REFERENCE = "gpuproc.waxs.integrate: pixel-splitting CSR cake matching pyFAI integrate2d (Kieffer et al., J. Synchrotron Rad. 27, 2020)"


def export_nexus(results: str | Path, out: str | Path) -> Path:
    """Write the finished results store ``results`` as the NeXus file ``out`` (replaced if present).

    Parameters
    ----------
    results : path
        A complete gpuproc results store (Zarr).
    out : path
        The ``.nxs`` / ``.h5`` file to write.

    Returns
    -------
    Path
        ``out``.
    """
    results, out = Path(results), Path(out)
    group = _open_finished(results)
    attrs = dict(group.attrs)
    arrays = dict(group.arrays())
    dims = {name: tuple(a.metadata.dimension_names or ()) for name, a in arrays.items()}
    coords = {name for name, d in dims.items() if d == (name,)}
    errors = {_error_name(name, arrays) for name in arrays} - {None}
    tmp = out.with_name(out.name + ".part")
    with h5py.File(tmp, "w") as f:
        f.attrs.update({"creator": f"gpuproc {__version__}", "file_name": out.name,
                        "file_time": _now(), "NX_class": "NXroot", "default": "entry"})
        entry = _group(f, "entry", "NXentry")
        _process(entry, attrs)
        labels = None
        for name, a in arrays.items():
            if name in coords or name in errors or name == "mean_cake" or not dims[name]:
                continue
            values = np.asarray(a[...])
            if values.dtype.kind in "OUST":
                labels = labels or _group(entry, "labels", "NXcollection")
                _field(labels, name, values, a.attrs)
                continue
            err = _error_name(name, arrays)
            _nxdata(entry, name, values, a.attrs, dims[name], arrays,
                    None if err is None else np.asarray(arrays[err][...]))
        if "mean_cake" in arrays:
            _azint2d(entry, arrays, attrs)
        main = DEFAULT_SIGNAL.get(attrs["gpuproc_results"], "")
        entry.attrs["default"] = main if main in entry else next(
            k for k in entry if entry[k].attrs.get("NX_class") == "NXdata")
    tmp.replace(out)
    return out


def _open_finished(path: Path) -> zarr.Group:
    try:
        group = zarr.open_group(path, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise FileNotFoundError(f"{path}: no gpuproc results store ({exc})") from None
    if "gpuproc_results" not in group.attrs:
        raise ValueError(f"{path}: not a gpuproc results store (no gpuproc_results attribute)")
    if not group.attrs.get("complete", False):
        raise ValueError(f"{path}: the run that writes this store has not finished (complete = False)")
    return group


def _error_name(name: str, arrays: dict[str, Any]) -> str | None:
    """The variable holding the standard error of ``name`` (``x_err``; ``x_err_mev`` of ``x_mev``)."""
    stem, unit = (name[:-4], "_mev") if name.endswith("_mev") else (name, "")
    for candidate in (f"{name}_err", f"{stem}_err{unit}"):
        if candidate in arrays and candidate != name:
            return candidate
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _group(parent: h5py.Group, name: str, nx_class: str) -> h5py.Group:
    g = parent.create_group(name)
    g.attrs["NX_class"] = nx_class
    return g


def _field(parent: h5py.Group, name: str, values: np.ndarray, attrs: Any) -> h5py.Dataset:
    """A dataset with the variable's ``units`` and ``long_name``; text as UTF-8 strings."""
    if values.dtype.kind in "OUST":
        values = np.asarray(values, dtype=object).astype(str).astype(h5py.string_dtype())
    elif values.dtype == bool:
        values = values.astype(np.uint8)
    d = parent.create_dataset(name, data=values)
    for key in ("units", "long_name"):
        if attrs.get(key):
            d.attrs[key] = attrs[key]
    return d


def _nxdata(entry: h5py.Group, name: str, values: np.ndarray, attrs: Any, dims: tuple[str, ...],
            arrays: dict[str, Any], errors: np.ndarray | None) -> None:
    """One NXdata: the signal, its ``_errors`` and an axis per dimension."""
    g = _group(entry, name, "NXdata")
    _field(g, name, values, attrs)
    if errors is not None:
        _field(g, f"{name}_errors", errors, attrs)
    axes = []
    for d in dims:
        if d not in arrays:
            axes.append(".")
            continue
        coord = np.asarray(arrays[d][...])
        if d not in g:
            if coord.dtype.kind in "OUST":  # text labels: an index axis, the labels beside it
                _field(g, d, np.arange(coord.size), {"long_name": f"index of {d} (labels in {d}_label)"})
                _field(g, f"{d}_label", coord, arrays[d].attrs)
            else:
                _field(g, d, coord, arrays[d].attrs)
        axes.append(d)
    g.attrs.update({"signal": name, "axes": axes})
    for i, d in enumerate(dims):
        if axes[i] != ".":
            g.attrs[f"{d}_indices"] = i
    if len(dims) == 2:
        g.attrs["interpretation"] = "image"


def _process(entry: h5py.Group, attrs: dict[str, Any]) -> None:
    """NXprocess: program, version, date, and the store's configuration, inputs and attributes."""
    p = _group(entry, "process", "NXprocess")
    p["program"] = "gpuproc"
    p["version"] = attrs.get("versions", {}).get("gpuproc", __version__)
    p["date"] = _now()
    p["sequence_index"] = 1
    rest = {k: v for k, v in attrs.items() if k not in NOTES}
    for name, value in [*((k, attrs.get(k)) for k in NOTES), ("attributes", rest)]:
        note = _group(p, {"config": "job"}.get(name, name), "NXnote")
        note["type"] = "application/json"
        note["data"] = value if isinstance(value, str) else json.dumps(value, default=str)


def _azint2d(entry: h5py.Group, arrays: dict[str, Any], attrs: dict[str, Any]) -> None:
    """The scan-averaged cake as an NXazint2d subentry (one integrated image)."""
    integration = json.loads(attrs.get("config") or "{}").get("integration", {})
    sub = _group(entry, "mean_cake", "NXsubentry")
    sub["definition"] = "NXazint2d"
    sub["solid_angle_applied"] = bool(integration.get("solid_angle", True))
    sub["polarization_applied"] = integration.get("polarization_factor") is not None
    sub["normalization_applied"] = True
    instrument = _group(sub, "instrument", "NXinstrument")
    instrument["name"] = "unknown"
    reduction = _group(sub, "reduction", "NXprocess")
    reduction["program"] = "gpuproc"
    reduction["version"] = __version__
    reduction["date"] = _now()
    reduction["reference"] = AZINT_REFERENCE
    parameters = _group(reduction, "input", "NXparameters")
    for key, value in integration.items():
        if value is not None:
            parameters[key] = value if isinstance(value, (bool, int, float)) else json.dumps(value)
    data = _group(sub, "data", "NXdata")
    cake = arrays["mean_cake"]
    _field(data, "I", np.asarray(cake[...])[None], {"units": "arbitrary units", "long_name": "intensity"})
    _field(data, "radial_axis", np.asarray(arrays["cake_q"][...]), {"units": arrays["cake_q"].attrs.get("units"),
                                                                    "long_name": "q"})
    _field(data, "azimuthal_axis", np.asarray(arrays["cake_azimuth"][...]),
           {"units": arrays["cake_azimuth"].attrs.get("units"), "long_name": "azimuthal bin center"})
    data.attrs.update({"signal": "I", "axes": [".", "azimuthal_axis", "radial_axis"], "interpretation": "image"})
    sub.attrs["default"] = "data"
