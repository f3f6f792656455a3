"""The integration matrix kept on disk between runs: built once per geometry, mask and bins.

pyFAI's CSR pixel-splitting matrix takes seconds to build (13.6 s for an Eiger 16M) and is the
same for every run of the same set-up, so :class:`gpuproc.waxs.integrate.CakeIntegrator` asks
:func:`load_or_build` for it: a repeated or resumed run, a dask worker or an array task with the
same set-up loads it instead of rebuilding it.

Key (:func:`fingerprint`): the pyFAI geometry (``AzimuthalIntegrator.get_config()``: distance,
PONI, rotations, wavelength, detector and its configuration), the chi discontinuity, the detector
shape, the static mask (detector gaps, user mask, unusable dark/flat/normalisation pixels: its
bytes hashed), the invalid-pixel rules, the bins (numbers and ranges), the units, the split mode,
and the gpuproc and pyFAI versions. Any change gives another entry.

Where: ``$GPUPROC_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/gpuproc``, else
``~/.cache/gpuproc``: the user's own cache folder (subfolder ``csr/``, one ``<key>.npz`` per
set-up, uncompressed). ``GPUPROC_CACHE_DIR=none`` turns the cache off. The folder holds at most
``$GPUPROC_CACHE_MAX_GB`` (default 8) GB: the least recently used entries are removed beyond
that. Entries are written to a temporary file and renamed, so concurrent runs never see a partial
one; an entry that cannot be read, or whose checksum or shapes do not match, is rebuilt (with a
warning) and replaced, never fatal. A folder that cannot be written only costs the rebuild.

The same folder keeps what the set-up derives from the matrix at a cost of the same order (any
NamedTuple of arrays, ``kind`` of :func:`load_or_build`): the cake bins' pixel-offset spread
(:class:`gpuproc.waxs.broadening.BinOffsets`, 0.2-0.5 s per run for 1-4 Mpixel), keyed by the
matrix's key, the matrix itself and the pixel weights it was computed with; and what the
integration needs of a PONI file's geometry (:mod:`gpuproc.waxs.geometry_record`), so that a
repeated run does not import pyFAI.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zlib
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np

from gpuproc.user_cache import ENV_DIR, cache_root

ENV_MAX_GB = "GPUPROC_CACHE_MAX_GB"  #: size limit of the matrix cache, GB
DEFAULT_MAX_GB = 8.0
FORMAT = 1  #: layout of an entry; a change makes old entries unreadable (rebuilt)
Entry = TypeVar("Entry", bound=tuple)  #: a NamedTuple of arrays


class CachedMatrix(NamedTuple):
    """pyFAI's CSR matrix (``data``, ``indices``, ``indptr``: bins in pyFAI's q-major order) and
    its bin centres (radial in pyFAI's internal unit, azimuth in radians)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    centers0: np.ndarray
    centers1: np.ndarray


def cache_dir() -> Path | None:
    """The matrix cache folder (None: caching off)."""
    root = cache_root()
    return None if root is None else root / "csr"


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def fingerprint(**parts: Any) -> str:
    """Key of a set-up: SHA-256 of its parts (arrays by their dtype, shape and bytes), with the
    gpuproc and pyFAI versions and the entry format."""
    h = hashlib.sha256()
    items = {**parts, "gpuproc": _version("gpuproc"), "pyfai": _version("pyfai"), "format": FORMAT}
    for name in sorted(items):
        value = items[name]
        h.update(name.encode())
        if isinstance(value, np.ndarray):
            h.update(f"{value.dtype.str}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(json.dumps(value, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def load_or_build(key: str, build: Callable[[], Entry], kind: type[Entry] = CachedMatrix) -> Entry:
    """The cached entry of ``key``, or ``build()`` it and store it.

    Parameters
    ----------
    key : str
        :func:`fingerprint` of the set-up.
    build : callable
        Builds the entry (the matrix: pyFAI); called only when no valid entry exists.
    kind : type
        The NamedTuple of arrays ``build`` returns: :class:`CachedMatrix` (checked for a
        consistent CSR layout), one with a ``consistent()`` method that checks itself (e.g.
        :class:`gpuproc.waxs.geometry_record.GeometryRecord`), or another whose arrays all have
        one shape (e.g. :class:`gpuproc.waxs.broadening.BinOffsets`). A loaded entry is bit for
        bit what was built.
    """
    folder = cache_dir()
    if folder is None:
        return build()
    path = folder / f"{key}.npz"
    if path.exists():
        try:
            found = _load(path, kind)
        except Exception as exc:  # truncated, corrupt, another format: rebuild it
            warnings.warn(f"integration matrix cache entry {path} ({kind.__name__}) is unreadable ({exc}); rebuilding it",
                          RuntimeWarning, stacklevel=2)
        else:
            _touch(path)
            return found
    entry = build()
    _store(folder, path, entry)
    return entry


def _checksum(arrays: tuple[np.ndarray, ...]) -> int:
    crc = 0
    for a in arrays:
        crc = zlib.crc32(memoryview(np.ascontiguousarray(a)).cast("B"), crc)
    return crc


def _load(path: Path, kind: type[Entry]) -> Entry:
    with np.load(path, allow_pickle=False) as z:
        entry = kind(*(z[name] for name in kind._fields))
        crc = int(z["checksum"])
    if crc != _checksum(entry):
        raise ValueError("checksum mismatch")
    if not _consistent(entry):
        raise ValueError("inconsistent shapes")
    return entry


def _consistent(entry: tuple) -> bool:
    """A matrix's CSR arrays and bin centres agree; an entry with a ``consistent()`` method says
    itself; any other entry's arrays have one shape."""
    if hasattr(entry, "consistent"):
        return bool(entry.consistent())
    if not isinstance(entry, CachedMatrix):
        return len({a.shape for a in entry}) == 1
    n_bins = entry.indptr.size - 1
    return entry.data.shape == entry.indices.shape and int(entry.indptr[-1]) == entry.data.size and \
        n_bins == entry.centers0.size * entry.centers1.size


def _store(folder: Path, path: Path, entry: tuple) -> None:
    """Write the entry atomically; a folder that cannot be written is only a warning."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **entry._asdict(), checksum=np.uint32(_checksum(entry)))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _evict(folder, keep=path)
    except OSError as exc:
        warnings.warn(f"cannot cache the integration matrix ({type(entry).__name__}) in {folder} ({exc}); the next "
                      f"run builds it again (set {ENV_DIR} to a writable folder, or to 'none')", RuntimeWarning,
                      stacklevel=3)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _evict(folder: Path, keep: Path) -> None:
    """Remove the least recently used entries beyond the size limit (never ``keep``)."""
    limit = float(os.environ.get(ENV_MAX_GB, DEFAULT_MAX_GB)) * 1e9
    entries = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in entries)
    for p in entries:
        if total <= limit:
            break
        if p != keep:
            total -= p.stat().st_size
            p.unlink(missing_ok=True)
