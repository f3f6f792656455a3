"""Princeton Instruments SPE files (WinSpec v2.x and LightField v3.0), read directly.

Layout (Princeton Instruments' format documentation): a 4100-byte little-endian header, then the
frames, then (v3) an XML footer whose offset is the uint64 at byte 678. Header fields used:
exposure (float32 s, byte 10), x size (uint16, 42), data type (int16, 108: 0 float32, 1 int32,
2 int16, 3 uint16, 5 float64, 6 uint8, 8 uint32), y size (uint16, 656), frame count (int32, 1446),
version (float32, 1992), and the v2 x calibration at 3000: valid flag (3098), polynomial order
(3101), coefficients (6 float64, 3263) of the 1-based pixel giving the wavelength in nm, and the
laser line (float64 nm, 3311).

v3: frame count, pixel format, region width/height and frame stride from ``DataFormat``; the axis
is ``Calibrations/WavelengthMapping/Wavelength`` (nm, one per sensor column, cut to the region's
``SensorMapping`` x offset and binning); exposure (ms), laser line (``WavelengthLaserLine``) and
frame rate from the experiment. One frame of one row is a 1 x 1 map; several one-row frames a
time series (time step 1 / frame rate, v3).
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

HEADER_BYTES = 4100
_DTYPES = {0: "<f4", 1: "<i4", 2: "<i2", 3: "<u2", 5: "<f8", 6: "u1", 8: "<u4"}
_PIXEL_FORMATS = {"MonochromeUnsigned16": "<u2", "MonochromeUnsigned32": "<u4", "MonochromeFloating32": "<f4"}


def read_spe(p: Path, data_path: str, axis_path: str) -> tuple[np.ndarray, np.ndarray, str, dict[str, Any]]:
    """Princeton SPE v2/v3: ``(data, axis, unit, metadata)`` (see the module docstring)."""
    raw = p.read_bytes()
    if len(raw) < HEADER_BYTES:
        raise ValueError(f"{p}: not an SPE file ({len(raw)} bytes, shorter than the {HEADER_BYTES}-byte header)")
    version = struct.unpack_from("<f", raw, 1992)[0]
    data, axis, unit, meta = (_v3 if version >= 3.0 else _v2)(p, raw)
    meta["vendor"]["version"] = round(float(version), 2)
    if data.shape[1] == 1:
        data = data[:, 0, :]
        if data.shape[0] == 1:
            data = data.reshape(1, 1, -1)
        else:
            meta["mode"] = "timeseries"
    return data, axis, unit, meta


def _frames(p: Path, raw: bytes, dtype: str, n_frames: int, ny: int, nx: int, stride: int | None = None) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    frame_bytes = ny * nx * itemsize
    stride = stride or frame_bytes
    end = HEADER_BYTES + (n_frames - 1) * stride + frame_bytes
    if n_frames < 1 or ny < 1 or nx < 1 or end > len(raw):
        raise ValueError(f"{p}: SPE header says {n_frames} frame(s) of {ny} x {nx} {dtype} pixels, the file has "
                         f"{len(raw) - HEADER_BYTES} data bytes")
    frames = [np.frombuffer(raw, dtype, ny * nx, HEADER_BYTES + i * stride) for i in range(n_frames)]
    return np.stack(frames).reshape(n_frames, ny, nx).astype(np.float64 if dtype.endswith("8") else np.float32)


def _v2(p: Path, raw: bytes) -> tuple[np.ndarray, np.ndarray, str, dict[str, Any]]:
    code = struct.unpack_from("<h", raw, 108)[0]
    if code not in _DTYPES:
        raise ValueError(f"{p}: SPE data type {code} is not one of {sorted(_DTYPES)}")
    nx, ny = struct.unpack_from("<H", raw, 42)[0], struct.unpack_from("<H", raw, 656)[0]
    n_frames = struct.unpack_from("<i", raw, 1446)[0]
    data = _frames(p, raw, _DTYPES[code], n_frames, ny, nx)
    valid, order = raw[3098], raw[3101]
    coef = np.array(struct.unpack_from("<6d", raw, 3263)[: order + 1])
    laser = struct.unpack_from("<d", raw, 3311)[0]
    vendor = {"exposure": struct.unpack_from("<f", raw, 10)[0],
              "center_wavelength_nm": struct.unpack_from("<f", raw, 72)[0],
              "calibration_valid": valid, "polynomial": coef.tolist(), "laser_nm": laser}
    meta: dict[str, Any] = {"vendor": vendor}
    if laser > 0:
        meta["laser_nm"] = float(laser)
    pixel = np.arange(1, nx + 1, dtype=np.float64)
    if not valid or not np.any(coef[1:]):
        return data, pixel, "pixel", meta
    return data, np.polynomial.polynomial.polyval(pixel, coef), "nm", meta


def _v3(p: Path, raw: bytes) -> tuple[np.ndarray, np.ndarray, str, dict[str, Any]]:
    offset = struct.unpack_from("<Q", raw, 678)[0]
    try:
        root = ET.fromstring(raw[offset:].decode("utf-8"))
    except (ET.ParseError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: SPE 3.0 file without a readable XML footer at byte {offset} ({exc})") from None
    tags = {el: el.tag.split("}")[-1] for el in root.iter()}  # without the XML namespace
    find: dict[str, ET.Element] = {}
    for el, tag in tags.items():
        find.setdefault(tag, el)  # the first element of each tag
    frame = find.get("DataBlock")
    regions = [el for el, tag in tags.items() if tag == "DataBlock" and el.get("type") == "Region"]
    if frame is None or len(regions) != 1:
        raise ValueError(f"{p}: SPE 3.0 DataFormat with {len(regions)} regions; one region is supported")
    region = regions[0]
    dtype = _PIXEL_FORMATS.get(frame.get("pixelFormat", ""))
    if dtype is None:
        raise ValueError(f"{p}: SPE 3.0 pixel format {frame.get('pixelFormat')!r} is not one of "
                         f"{sorted(_PIXEL_FORMATS)}")
    nx, ny, n_frames = int(region.get("width")), int(region.get("height")), int(frame.get("count"))
    data = _frames(p, raw, dtype, n_frames, ny, nx, int(frame.get("stride", 0)) or None)
    vendor: dict[str, Any] = {}
    for tag, key in (("ExposureTime", "exposure_ms"), ("WavelengthLaserLine", "laser_nm"),
                     ("FrameRate", "frame_rate_hz"), ("CenterWavelength", "center_wavelength_nm")):
        if tag in find and find[tag].text and re.match(r"^[-+0-9.eE]+$", find[tag].text.strip()):
            vendor[key] = float(find[tag].text)
    meta: dict[str, Any] = {"vendor": vendor}
    if "exposure_ms" in vendor:
        meta["exposure_s"] = vendor["exposure_ms"] * 1e-3
    if vendor.get("laser_nm", 0) > 0:
        meta["laser_nm"] = vendor["laser_nm"]
    if n_frames > 1 and vendor.get("frame_rate_hz", 0) > 0:
        meta["time_step_s"] = 1.0 / vendor["frame_rate_hz"]
    wl = find.get("Wavelength")
    if wl is None or not (wl.text or "").strip():
        return data, np.arange(1, nx + 1, dtype=np.float64), "pixel", meta
    axis = np.array([float(v) for v in wl.text.strip().split(",")])
    mapping = find.get("SensorMapping")
    if axis.size != nx and mapping is not None:
        x0, xbin = int(mapping.get("x", 0)), int(mapping.get("xBinning", 1))
        axis = axis[x0:x0 + nx * xbin].reshape(nx, xbin).mean(axis=1)
    if axis.size != nx:
        raise ValueError(f"{p}: SPE 3.0 wavelength calibration has {axis.size} values, the region {nx} columns")
    return data, axis, "nm", meta
