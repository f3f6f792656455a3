"""What the integration needs of a pyFAI geometry, kept on disk so that a repeated run of the same
PONI file need not import pyFAI.

Importing pyFAI's integrator costs ~1.3 s on 2 cores (it loads scipy.signal, .stats and
.ndimage), most of a run's fixed cost. With the integration matrix cached
(:mod:`gpuproc.waxs.matrix_cache`), a repeated run needs of its geometry only a few numbers and
the detector mask: the geometry's pyFAI configuration (the matrix cache's key), the chi
discontinuity and the ranges in pyFAI's internal units as ``integrate2d`` converts them, the
radial unit's scale, the detector shape, mask and dummy values per frame dtype, and the beam
centre. :func:`load_or_build` keeps those in the matrix cache folder; pyFAI is imported only
when they are built (the first run of a PONI file) or when something else (a matrix, the
polarisation) must be built.

Key (:func:`key_of`): the PONI file's bytes, the size and modification time of every file its
lines or detector configuration name (a NeXus detector file, a spline), the requested ranges and
radial unit, and the gpuproc and pyFAI versions. A PONI file edited in place, or a detector file
replaced, gives another key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from gpuproc.waxs import matrix_cache
from gpuproc.waxs.mean_frame import beam_centre_px

#: frame dtypes (kind and itemsize) whose detector dummies are recorded (another dtype asks pyFAI)
DTYPES = ("u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f2", "f4", "f8")


class GeometryRecord(NamedTuple):
    """A geometry's numbers (``meta``: UTF-8 JSON bytes) and its detector mask (``mask``: packed
    bits of the (H, W) bool mask, empty when the detector has none), as stored arrays."""

    meta: np.ndarray
    mask: np.ndarray

    def consistent(self) -> bool:
        """The JSON parses and the mask is empty or holds the detector's pixels."""
        shape = self.info["shape"]
        return self.mask.size == 0 or (shape is not None and self.mask.size == -(-int(np.prod(shape)) // 8))

    @property
    def info(self) -> dict[str, Any]:
        """The numbers: ``config`` (pyFAI ``get_config()``), ``chi_disc_at_pi``, ``radial``
        (pyFAI internal unit), ``azimuth`` (rad), ``unit_scale``, ``shape`` (or None),
        ``dummies`` (dtype -> [dummy, delta] or None), ``beam_centre_px``."""
        return json.loads(self.meta.tobytes().decode())

    def detector_mask(self, shape: tuple[int, int] | None) -> np.ndarray | None:
        """The detector's own mask, (H, W) = ``shape`` (``info["shape"]``) bool, True = masked;
        None when it has none."""
        if self.mask.size == 0 or shape is None:
            return None
        return np.unpackbits(self.mask, count=int(np.prod(shape))).astype(bool).reshape(shape)


def record_of(ai: Any, radial: tuple[float, float], azimuth: tuple[float, float], unit_scale: float) -> GeometryRecord:
    """The record of the pyFAI integrator ``ai`` (its chi discontinuity as the ranges left it)."""
    det = ai.detector
    mask = None if det.mask is None or det.shape is None else np.asarray(det.mask, bool)
    dummies = {}
    for t in DTYPES:
        value, delta = det.get_dummies(np.dtype(t))
        dummies[t] = None if value is None else [float(value), float(delta)]
    meta = {
        "config": json.loads(json.dumps(ai.get_config(), default=str)),
        "chi_disc_at_pi": bool(ai.chiDiscAtPi),
        "radial": [float(r) for r in radial],
        "azimuth": [float(a) for a in azimuth],
        "unit_scale": float(unit_scale),
        "shape": None if det.shape is None else [int(s) for s in det.shape],
        "dummies": dummies,
        "beam_centre_px": beam_centre_px(ai),
    }
    packed = np.packbits(mask.ravel()) if mask is not None else np.zeros(0, np.uint8)
    return GeometryRecord(np.frombuffer(json.dumps(meta).encode(), np.uint8).copy(), packed)


def key_of(poni: str | Path, **request: Any) -> str:
    """Cache key of the record of the PONI file ``poni`` for the ``request`` (ranges, unit)."""
    path = Path(poni)
    data = path.read_bytes()
    named = sorted({str(p) for p in _named_files(data.decode(errors="replace"), path.parent)})
    stats = [[p, s.st_size, s.st_mtime_ns] for p, s in ((p, Path(p).stat()) for p in named)]
    return matrix_cache.fingerprint(entry="geometry", poni=hashlib.sha256(data).hexdigest(), files=stats,
                                    **request)


def _named_files(text: str, folder: Path) -> list[Path]:
    """Existing files that the PONI text names: line values and strings in its JSON detector
    configuration (absolute, or relative to the PONI file's folder)."""
    values: list[str] = []
    for line in text.splitlines():
        if ":" not in line or line.lstrip().startswith("#"):
            continue
        value = line.split(":", 1)[1].strip()
        values.append(value)
        if value.startswith("{"):
            try:
                values.extend(_strings(json.loads(value)))
            except json.JSONDecodeError:
                pass
    found = []
    for v in values:
        if not v or len(v) > 4096:
            continue
        for candidate in (Path(v), folder / v):
            try:
                if candidate.is_file():
                    found.append(candidate.resolve())
                    break
            except OSError:
                continue
    return found


def _strings(value: Any) -> list[str]:
    """Every string inside a parsed JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
