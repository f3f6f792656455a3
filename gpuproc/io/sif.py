"""Andor SIF spectra through ``sif_parser``.

The data are (frames, rows, channels); a single row is squeezed, so a kinetic series is
(frames, channels) (a time series, time step ``CycleTime`` s) and one frame is a 1 x 1 map. The
axis is the wavelength calibration polynomial ``c0 + c1 p + c2 p^2 + c3 p^3`` of the pixel
p = 1..n (as Solis writes it in its ``.asc`` export; the identity 0 1 0 0 means none; files with
one calibration per frame need them all equal), in nm, or
cm^-1 with the ``RamanExWavelength`` laser line when ``FrameAxis`` is a Raman shift. A file
without a calibration whose frames are images (several rows) holds no spectra and is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _per_frame_calibration(p: Path, vendor: dict[str, Any]) -> list[float] | None:
    """The calibration of files that store one per frame (``Calibration data for frame N``),
    when all frames share it (one axis for all spectra)."""
    per_frame = [vendor[k] for k in sorted(vendor) if k.startswith("Calibration_data_for_frame_")]
    if not per_frame:
        return None
    if any(not np.allclose(c, per_frame[0]) for c in per_frame):
        raise ValueError(f"{p}: the {len(per_frame)} frames have different wavelength calibrations; "
                         "gpuproc needs one spectral axis for all spectra")
    return list(per_frame[0])


def read_sif(p: Path, data_path: str, axis_path: str) -> tuple[np.ndarray, np.ndarray, str, dict[str, Any]]:
    """Andor SIF: ``(data, axis, unit, metadata)`` (see the module docstring)."""
    import sif_parser

    try:
        data, info = sif_parser.np_open(str(p))
    except (SyntaxError, ValueError, EOFError, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not a readable Andor SIF file ({exc})") from None
    data = np.asarray(data)
    vendor = {k: (v.decode(errors="replace") if isinstance(v, bytes) else v) for k, v in info.items() if k != "tile"}
    frame_axis = str(vendor.get("FrameAxis", "")).lower()
    coef = vendor.get("Calibration_data") or _per_frame_calibration(p, vendor)
    calibrated = coef is not None and any(np.asarray(coef, dtype=float) != [0.0, 1.0, 0.0, 0.0][:len(coef)])
    if not calibrated and data.shape[1] > 1:
        raise ValueError(f"{p}: holds images ({data.shape[0]} frame(s) of {data.shape[1]} x {data.shape[2]} "
                         "pixels) without a wavelength calibration, not spectra")
    if data.shape[1] == 1:
        data = data[:, 0, :]
    meta: dict[str, Any] = {"vendor": vendor, "exposure_s": float(vendor.get("ExposureTime", np.nan)),
                            "time_step_s": float(vendor.get("CycleTime", np.nan))}
    laser = vendor.get("RamanExWavelength")
    if laser is not None and np.isfinite(laser) and laser > 0:
        meta["laser_nm"] = float(laser)
    if data.ndim == 2 and data.shape[0] == 1:
        data = data.reshape(1, 1, -1)
    elif data.ndim == 2:
        meta["mode"] = "timeseries"
    if not calibrated:
        return data, np.arange(1, data.shape[-1] + 1, dtype=float), "pixel", meta
    pixel = np.arange(1, data.shape[-1] + 1, dtype=np.float64)
    axis = np.polynomial.polynomial.polyval(pixel, np.asarray(coef, dtype=np.float64))
    unit = "cm-1" if "raman" in frame_axis else ("eV" if "energy" in frame_axis else "nm")
    return data, axis, unit, meta
