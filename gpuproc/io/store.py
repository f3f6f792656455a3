"""The chunked Zarr v3 scan store shared by the pipelines, and lazy openers for scans.

Layout of a store (a Zarr v3 group, readable with ``xarray.open_zarr``)::

    <store>/frames    (n_frames, H, W), detector dtype, chunks of whole frames,
                      Blosc (:data:`FRAME_CODEC` for new stores; a store keeps the codec it
                      was written with), dimension_names ("frame", "y_pixel", "x_pixel")
    <store>/monitor   (n_frames,) float64 incident-flux monitor, optional, dimension "frame"

Group attributes: ``scan_shape`` [ny, nx], ``scan_order`` ("row" or "snake"), ``step_um``
[dy, dx] in micrometres, ``frame_shape`` [H, W], ``sources`` (file names), ``units``,
``gpuproc_version`` and ``complete`` (True, written last).

Frame ``k`` was recorded at scan row ``k // nx``; its column is ``k % nx`` for "row" order and
reversed on odd rows for "snake" order (see :func:`scan_index`).

An ingest writes ``<store>.partial`` and renames it to ``<store>`` only after the last chunk
and the ``complete`` attribute are written, so an interrupted ingest never looks complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from gpuproc.io import staging

SCAN_ORDERS = ("row", "snake")
FRAME_DIMS = ("frame", "y_pixel", "x_pixel")
TARGET_CHUNK_BYTES = 16 * 2**20
UNITS = {"frames": "counts", "step_um": "um", "monitor": "counts"}
#: Blosc codec of new stores' frames, chosen by benchmarks/bench_codec.py (decode + read cost per
#: MB on Pilatus 1M frames; recorded in benchmarks/results/codec_cpu.json, which
#: tests/test_io_store_codec.py checks against this); stores written before keep theirs (zstd 3 +
#: bitshuffle), as zarr reads each array's codec from its own metadata
FRAME_CODEC = {"cname": "lz4", "clevel": 5, "shuffle": "bitshuffle"}


class Scan:
    """A lazily opened scan.

    Parameters
    ----------
    frames : array-like, optional
        (n_frames, H, W) detector frames (a dask array of frame files; any array with ``shape``,
        ``dtype`` and slicing); built from ``stored`` on first use when not given.
    attrs : dict
        Scan metadata (see module docstring).
    monitor : array-like, optional
        (n_frames,) monitor values.
    stored : zarr.Array, optional
        A scan store's frames array itself: frames are read from it directly (zarr decodes the
        chunks concurrently), without dask, which is imported only when :attr:`frames` is asked for.
    stored_monitor : zarr.Array, optional
        A scan store's monitor array.
    """

    def __init__(self, frames: Any = None, attrs: dict[str, Any] | None = None, monitor: Any = None,
                 stored: Any = None, stored_monitor: Any = None) -> None:
        if frames is None and stored is None:
            raise ValueError("a Scan needs its frames or a stored frames array")
        self._frames, self._monitor = frames, monitor
        self.attrs: dict[str, Any] = {} if attrs is None else attrs
        self.stored, self.stored_monitor = stored, stored_monitor

    @property
    def frames(self) -> Any:
        """(n_frames, H, W) frames as a dask array (chunks of whole frames), or as given."""
        if self._frames is None:
            self._frames = _dask_of(self.stored)
        return self._frames

    @property
    def monitor(self) -> Any:
        """(n_frames,) monitor values (a dask array for a store), or None."""
        if self._monitor is None and self.stored_monitor is not None:
            self._monitor = _dask_of(self.stored_monitor)
        return self._monitor

    @property
    def shape(self) -> tuple[int, ...]:
        """(n_frames, H, W)."""
        return tuple(int(n) for n in (self.stored if self.stored is not None else self._frames).shape)

    @property
    def dtype(self) -> np.dtype:
        """Pixel dtype of the frames."""
        return np.dtype((self.stored if self.stored is not None else self._frames).dtype)

    @property
    def scan_shape(self) -> tuple[int, int]:
        """(ny, nx) positions."""
        return tuple(self.attrs["scan_shape"])

    def frame_index(self) -> np.ndarray:
        """(ny, nx) frame index of every scan position (see :func:`scan_index`)."""
        return scan_index(self.scan_shape, self.attrs["scan_order"])

    def read(self, index: int | slice | np.ndarray) -> np.ndarray:
        """Frames at ``index`` (a frame, a slice or an array of frame numbers) as NumPy: from the
        store's zarr array when there is one (no dask scheduler), else through dask."""
        if self.stored is None:
            return np.asarray(self.frames[index])
        return np.asarray(self.stored.oindex[index] if isinstance(index, np.ndarray) else self.stored[index])

    def read_monitor(self) -> np.ndarray | None:
        """The (n_frames,) monitor values as NumPy, None without a monitor."""
        if self.stored_monitor is not None:
            return np.asarray(self.stored_monitor[...])
        return None if self._monitor is None else np.asarray(self._monitor)


def _dask_of(array: Any) -> Any:
    """A dask array over a zarr array, chunked as it is stored."""
    import dask.array as da

    return da.from_array(array, chunks=array.chunks)


def scan_index(scan_shape: tuple[int, int], scan_order: str = "row") -> np.ndarray:
    """Frame index at each scan position.

    Parameters
    ----------
    scan_shape
        (ny, nx) positions.
    scan_order
        ``"row"``: every row left to right; ``"snake"``: odd rows (0-based) right to left.

    Returns
    -------
    numpy.ndarray
        (ny, nx) int array; ``frames[scan_index(...)]`` maps frames onto the scan grid.
    """
    _check_order(scan_order)
    ny, nx = scan_shape
    index = np.arange(ny * nx).reshape(ny, nx)
    if scan_order == "snake":
        index[1::2] = index[1::2, ::-1]
    return index


def frames_per_chunk(frame_shape: tuple[int, int], dtype: np.dtype, n_frames: int) -> int:
    """Whole frames per chunk so that a chunk holds about 16 MB (at least one frame)."""
    frame_bytes = int(np.prod(frame_shape)) * np.dtype(dtype).itemsize
    return int(min(max(1, TARGET_CHUNK_BYTES // frame_bytes), max(1, n_frames)))


def write_scan(
    blocks: Iterable[np.ndarray],
    store_path: str | Path,
    *,
    n_frames: int,
    frame_shape: tuple[int, int],
    dtype: np.dtype,
    scan_shape: tuple[int, int],
    scan_order: str = "row",
    step_um: tuple[float, float] = (1.0, 1.0),
    monitor: Sequence[float] | np.ndarray | None = None,
    sources: Sequence[str] = (),
    chunk_frames: int | None = None,
    codec: dict[str, Any] | None = None,
    overwrite: bool = False,
    extra_attrs: dict[str, Any] | None = None,
) -> Path:
    """Stream consecutive blocks of frames into a new scan store.

    Parameters
    ----------
    blocks
        Arrays (k, H, W) in frame order, ``n_frames`` in total; each block is written and
        dropped, so memory stays bounded by one block.
    store_path
        Target directory of the Zarr v3 store.
    n_frames, frame_shape, dtype
        Frame count, (H, W) in pixels and pixel dtype.
    scan_shape
        (ny, nx) scan positions; ny * nx must equal ``n_frames``.
    scan_order
        ``"row"`` or ``"snake"``.
    step_um
        (dy, dx) scan step in micrometres.
    monitor
        Optional per-frame monitor values (n_frames,).
    sources
        Source file names recorded as provenance.
    chunk_frames
        Frames per chunk; default :func:`frames_per_chunk`.
    codec
        Blosc settings ``{"cname", "clevel", "shuffle"}`` of the frames; default :data:`FRAME_CODEC`.
    overwrite
        Replace an existing store at ``store_path``.
    extra_attrs
        More JSON-serialisable group attributes.

    Returns
    -------
    pathlib.Path
        The completed store.

    Raises
    ------
    ValueError
        Frame count differs from ny * nx, or a block has the wrong shape, or the blocks hold
        fewer or more than ``n_frames`` frames.
    FileExistsError
        ``store_path`` exists and ``overwrite`` is False.
    """
    _check_order(scan_order)
    _check_count(n_frames, scan_shape)
    final = Path(store_path)
    if final.exists() and not overwrite:
        raise FileExistsError(f"scan store already exists: {final} (pass overwrite=True)")
    with staging.staged(final, kind="scan", inputs=sources, overwrite=overwrite) as group:
        chunk = chunk_frames or frames_per_chunk(frame_shape, dtype, n_frames)
        frames = group.create_array(
            "frames",
            shape=(n_frames, *frame_shape),
            chunks=(chunk, *frame_shape),
            dtype=dtype,
            compressors=[BloscCodec(**(codec or FRAME_CODEC))],
            dimension_names=FRAME_DIMS,
            fill_value=0,
        )
        _write_blocks(frames, _rechunk(blocks, chunk), n_frames, tuple(frame_shape))
        if monitor is not None:
            _write_monitor(group, monitor, n_frames)
        group.attrs.update(
            {
                "scan_shape": [int(s) for s in scan_shape],
                "scan_order": scan_order,
                "step_um": [float(s) for s in step_um],
                "frame_shape": [int(s) for s in frame_shape],
                "sources": list(sources),
                "units": UNITS,
                "gpuproc_version": _version(),
                **(extra_attrs or {}),
            }
        )
    return final


def ingest_frames(
    source: str | Path | Sequence[str | Path],
    store_path: str | Path,
    scan_shape: tuple[int, int],
    scan_order: str = "row",
    step_um: tuple[float, float] = (1.0, 1.0),
    monitor: Sequence[float] | np.ndarray | None = None,
    **kwargs: Any,
) -> Path:
    """Copy frames from files or an HDF5 dataset into a scan store, one chunk at a time.

    Parameters
    ----------
    source
        ``"file.h5::/node"``, an HDF5/NeXus file (Eiger master, NXdata by ``@signal``), fabio
        files (multi-frame ones give all their frames), a file list or a glob pattern (see
        :func:`gpuproc.io.frames.open_frames`).
    store_path, scan_shape, scan_order, step_um, monitor, **kwargs
        As in :func:`write_scan`.

    Returns
    -------
    pathlib.Path
        The completed store.
    """
    from gpuproc.io.frames import iter_blocks, open_frames  # fabio, h5py: only when files are read

    reader = open_frames(source)
    _check_count(len(reader), scan_shape)
    n_frames, height, width = reader.shape
    chunk = kwargs.pop("chunk_frames", None) or frames_per_chunk((height, width), reader.dtype, n_frames)
    blocks = (block for _, block in iter_blocks(reader, chunk))
    return write_scan(
        blocks,
        store_path,
        n_frames=n_frames,
        frame_shape=(height, width),
        dtype=reader.dtype,
        scan_shape=scan_shape,
        scan_order=scan_order,
        step_um=step_um,
        monitor=monitor,
        sources=reader.names,
        chunk_frames=chunk,
        **kwargs,
    )


def open_scan(store_path: str | Path) -> Scan:
    """Open a completed scan store lazily.

    Raises
    ------
    FileNotFoundError
        No store at ``store_path``.
    ValueError
        The store is incomplete (an interrupted ingest) or not a scan store.
    """
    group = staging.open_complete(Path(store_path), "scan store")
    monitor = group["monitor"] if "monitor" in group else None
    return Scan(attrs=dict(group.attrs), stored=group["frames"], stored_monitor=monitor)


def open_frames_scan(
    source: str | Path | Sequence[str | Path],
    scan_shape: tuple[int, int],
    scan_order: str = "row",
    step_um: tuple[float, float] = (1.0, 1.0),
    chunk_frames: int | None = None,
) -> Scan:
    """Open frame files or an HDF5/NeXus source lazily, without copying.

    ``source`` is anything :func:`gpuproc.io.frames.open_frames` takes (``"file.h5::/node"``,
    an Eiger master, files, a glob). The returned :class:`Scan` has the frames and attributes a
    store ingested from it would have (without ``monitor``), so processing can read the files
    directly.
    """
    import dask.array as da

    from gpuproc.io.frames import open_frames

    _check_order(scan_order)
    reader = open_frames(source)
    _check_count(len(reader), scan_shape)
    n_frames, height, width = reader.shape
    chunk = chunk_frames or frames_per_chunk((height, width), reader.dtype, n_frames)
    frames = da.from_array(reader, chunks=(chunk, height, width), meta=np.empty((0, 0, 0), reader.dtype))
    attrs = {
        "scan_shape": [int(s) for s in scan_shape],
        "scan_order": scan_order,
        "step_um": [float(s) for s in step_um],
        "frame_shape": [height, width],
        "sources": reader.names,
        "units": UNITS,
        "complete": True,
    }
    return Scan(frames=frames, attrs=attrs)


def _rechunk(blocks: Iterable[np.ndarray], chunk: int) -> Iterable[np.ndarray]:
    """Regroup blocks of any size into blocks of exactly ``chunk`` frames (the last may be short)."""
    pending: list[np.ndarray] = []
    held = 0
    for block in blocks:
        block = np.asarray(block)
        pending.append(block)
        held += len(block)
        while held >= chunk:
            joined = np.concatenate(pending)
            yield joined[:chunk]
            pending, held = [joined[chunk:]], held - chunk
    if held:
        yield np.concatenate(pending)


def _write_blocks(array: zarr.Array, blocks: Iterable[np.ndarray], n_frames: int, frame_shape: tuple) -> None:
    """Write blocks at consecutive frame offsets, checking shapes and the total count."""
    start = 0
    for block in blocks:
        if tuple(block.shape[1:]) != frame_shape:
            raise ValueError(
                f"frames {start}..{start + len(block) - 1} have shape {tuple(block.shape[1:])}, expected {frame_shape}"
            )
        if start + len(block) > n_frames:
            raise ValueError(f"got more than the declared {n_frames} frames")
        array[start : start + len(block)] = block
        start += len(block)
    if start != n_frames:
        raise ValueError(f"got {start} frames, expected {n_frames}")


def _write_monitor(group: zarr.Group, monitor: Sequence[float] | np.ndarray, n_frames: int) -> None:
    """Store the per-frame monitor as a 1D float64 array."""
    values = np.asarray(monitor, dtype=np.float64)
    if values.shape != (n_frames,):
        raise ValueError(f"monitor has shape {values.shape}, expected ({n_frames},) (one value per frame)")
    array = group.create_array("monitor", shape=values.shape, dtype=np.float64, dimension_names=("frame",))
    array[:] = values


def _check_count(n_frames: int, scan_shape: tuple[int, int]) -> None:
    ny, nx = scan_shape
    if n_frames != ny * nx:
        raise ValueError(f"the source has {n_frames} frames but the scan shape {ny} x {nx} needs {ny * nx}")


def _check_order(scan_order: str) -> None:
    if scan_order not in SCAN_ORDERS:
        raise ValueError(f"scan_order must be one of {SCAN_ORDERS}, got {scan_order!r}")


def _version() -> str:
    from gpuproc import __version__

    return __version__
