"""Every spectral format rosettasciio reads, through one adapter (``pip install gpuproc[vendor]``).

rosettasciio returns signals as dicts ``{"data", "axes", "metadata", "original_metadata"}``.
The adapter takes the first signal with exactly one signal axis (``navigate`` False; the white-
light images that Renishaw files carry are skipped) and uses the axes' metadata, not their
position in the array:

- spectral axis: the signal axis, moved last; its values from ``axis`` (non-uniform) or
  ``offset + scale * index``; its unit from ``units`` (nm, um, eV, cm^-1 ...), or from ``name``
  ("Wavelength", "Energy", "Raman Shift") when it has none;
- navigation axes with a time unit (or named time): a time series, ``time_step_s`` from their
  scale; with length units: a map (two axes, in array order: rows then columns, ``step_um``
  from their scales) or a line scan (one axis: a 1 x n map); none: one spectrum, a 1 x 1 map;
- laser line: ``metadata.Acquisition_instrument.Laser.wavelength`` (nm), for Raman shifts;
- LabSpec eV axes, written as 1240 / wavelength, are read back as that wavelength (gpuproc then
  converts with hc = 1239.84198 eV nm).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from gpuproc.io.axis_units import length_um, spectral_unit, time_s

#: file extension -> rosettasciio plugin (spectra-holding formats)
PLUGINS = {
    ".wdf": "renishaw", ".xml": "jobinyvon", ".hspy": "hspy", ".zspy": "zspy", ".dm3": "digitalmicrograph",
    ".dm4": "digitalmicrograph", ".sur": "digitalsurf", ".pro": "digitalsurf", ".tvf": "trivista",
    ".img": "hamamatsu", ".msa": "msa", ".ems": "msa", ".emsa": "msa", ".mas": "msa", ".spx": "bruker",
    ".spc": "edax", ".rpl": "ripple",
}
_NAMED = (("raman", "cm-1"), ("shift", "cm-1"), ("energy", "eV"), ("wavelength", "nm"))
#: seconds per unit where a plugin's unit label is wrong: rosettasciio 0.15 labels WDF time axes,
#: Windows FILETIME ticks of 100 ns, as "ns" (a 1 s + 2 s-interval series reads as 30.7 ms steps)
_TIME_FIXES = {("renishaw", "ns"): 1e-7}
#: eV axes a vendor computed as hc / lambda with a rounded hc (eV nm): LabSpec writes 1240 / lambda
#: (its eV export of a spectrum equals its cm^-1 export converted with hc = 1240.0, not 1239.84198,
#: a 126 ppm, 0.2 meV at 1.6 eV, offset), so its wavelengths 1240 / E are what it measured
_ROUNDED_HC = {"jobinyvon": 1240.0}


def read_rsciio(p: Path, data_path: str = "", axis_path: str = "",
                plugin: str | None = None) -> tuple[np.ndarray, np.ndarray, str | None, dict[str, Any]]:
    """A spectra file through rosettasciio: ``(data, axis, unit, metadata)``."""
    plugin = plugin or PLUGINS[p.suffix.lower()]
    try:
        module = importlib.import_module(f"rsciio.{plugin}")
    except ImportError as exc:
        raise ImportError(f"{p}: reading {p.suffix} files needs rosettasciio ({exc}); install it with "
                          "`pip install gpuproc[vendor]`") from None
    handlers = logging.getLogger("rsciio").handlers  # its own stdout handler
    for h in handlers:
        h.addFilter(_no_signal_class_warning)
    try:
        signals = module.file_reader(str(p))
    except Exception as exc:  # noqa: BLE001 - the vendor parsers raise anything on a bad file
        raise ValueError(f"{p}: rosettasciio ({plugin}) cannot read it: {type(exc).__name__}: {exc}") from None
    finally:
        for h in handlers:
            h.removeFilter(_no_signal_class_warning)
    for signal in signals:
        found = _spectral_signal(signal)
        if found is not None:
            return _adapted(p, plugin, signal, *found)
    shapes = [tuple(np.shape(s["data"])) for s in signals]
    raise ValueError(f"{p}: holds no spectra (rosettasciio signals {shapes}: none has one signal axis)")


def _no_signal_class_warning(record: logging.LogRecord) -> bool:
    """Drop rosettasciio's "Cannot find package lumispy" (HyperSpy signal classes gpuproc does not use)."""
    return "Cannot find package" not in record.getMessage()


def _spectral_signal(signal: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    axes = signal.get("axes", [])
    data = np.asarray(signal["data"]) if not hasattr(signal["data"], "dtype") else signal["data"]
    if data.dtype.names is not None:  # RGB images
        return None
    sig = [(i, a) for i, a in enumerate(axes) if not a.get("navigate", True)]
    if not sig and len(axes) == 1:  # formats that mark no navigation flag: a lone axis is spectral
        sig = [(0, axes[0])]
    return sig[0] if len(sig) == 1 else None


def _values(axis: dict[str, Any]) -> np.ndarray:
    if axis.get("axis") is not None:
        return np.asarray(axis["axis"], dtype=np.float64)
    return float(axis.get("offset", 0.0)) + float(axis.get("scale", 1.0)) * np.arange(int(axis["size"]))


def _step(axis: dict[str, Any]) -> float:
    v = _values(axis)
    return float(np.mean(np.diff(v))) if v.size > 1 else float(axis.get("scale", 1.0))


def _unit(axis: dict[str, Any]) -> str | None:
    unit = axis.get("units")
    if unit and spectral_unit(str(unit)) is not None:
        return str(unit)
    name = str(axis.get("name", "")).lower()
    for word, named in _NAMED:
        if word in name:
            return named
    return str(unit) if unit else None


def _adapted(p: Path, plugin: str, signal: dict[str, Any], sig_index: int,
             sig_axis: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str | None, dict[str, Any]]:
    axes = signal["axes"]
    position = int(sig_axis.get("index_in_array", sig_index))
    data = np.moveaxis(np.asarray(signal["data"]), position, -1)
    nav = sorted((a for i, a in enumerate(axes) if i != sig_index),
                 key=lambda a: int(a.get("index_in_array", axes.index(a))))
    md = signal.get("metadata", {}) or {}
    meta: dict[str, Any] = {"vendor": {"metadata": md, "original_metadata": signal.get("original_metadata", {})},
                            "navigation": [{"name": a.get("name"), "units": a.get("units"), "size": int(a["size"])}
                                           for a in nav]}
    laser = md.get("Acquisition_instrument", {}).get("Laser", {}).get("wavelength")
    if laser is not None and np.isfinite(float(laser)) and float(laser) > 0:
        meta["laser_nm"] = float(laser)
    exposure = md.get("Acquisition_instrument", {}).get("Detector", {}).get("integration_time")
    if exposure is not None:
        meta["exposure_s"] = float(exposure)
    times = [a for a in nav if time_s(a.get("units")) is not None or "time" in str(a.get("name", "")).lower()]
    if len(nav) == 1 and times:
        meta["mode"] = "timeseries"
        unit = nav[0].get("units")
        meta["time_step_s"] = _step(nav[0]) * _TIME_FIXES.get((plugin, unit), time_s(unit) or 1.0)
    elif len(nav) in (1, 2) and all(length_um(a.get("units")) is not None for a in nav):
        steps = [abs(_step(a)) * length_um(a.get("units")) for a in nav]
        if len(nav) == 1:
            data, steps = data[None], steps * 2
        meta["step_um"] = steps
    elif not nav:
        data = data.reshape(1, 1, -1)
    elif len(nav) > 2:
        data = data.reshape(-1, data.shape[-1])
    values, unit = _values(sig_axis), _unit(sig_axis)
    if plugin in _ROUNDED_HC and spectral_unit(unit) == ("eV", 1.0):
        values, unit = _ROUNDED_HC[plugin] / values, "nm"
        meta.update(axis_source_unit="eV",
                    axis_note=f"eV axis written as {_ROUNDED_HC[plugin]:g} / wavelength, read back as wavelength")
    return data, values, unit, meta
