"""Readers for detector frames: fabio-readable files (EDF, CBF, TIFF, ...) or one HDF5 dataset.

A source is either

- a list of file paths, or a glob pattern (``"scan/frame_*.cbf"``), one frame per file, in
  sorted order for a glob; or
- an HDF5/NeXus dataset of shape (n_frames, H, W) written as ``"file.h5::/entry/data/data"``
  (compression filters such as Eiger's bitshuffle/LZ4 decode through ``hdf5plugin``).

Readers are lazy: :meth:`read` loads only the frames asked for, so a scan can be streamed in
blocks with bounded memory. Errors name the file and the frame index.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from pathlib import Path

import fabio
import h5py
import hdf5plugin  # noqa: F401  (registers the HDF5 compression filters)
import numpy as np

HDF5_SEPARATOR = "::"


class FileFrames:
    """Frames stored one per fabio-readable file.

    Parameters
    ----------
    paths
        Frame files in scan order.

    Attributes
    ----------
    paths : list of pathlib.Path
    shape : tuple of int
        (n_frames, H, W), frame shape taken from the first file.
    dtype : numpy.dtype
        Pixel dtype of the first file.
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        if not paths:
            raise ValueError("no frame files given")
        self.paths = [Path(p) for p in paths]
        first = _read_fabio(self.paths[0], 0)
        self.shape = (len(self.paths), *first.shape)
        self.dtype = first.dtype

    @property
    def names(self) -> list[str]:
        """Source file names, for provenance."""
        return [str(p) for p in self.paths]

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start`` to ``stop - 1`` as an array (stop - start, H, W)."""
        out = np.empty((stop - start, *self.shape[1:]), self.dtype)
        for i in range(start, stop):
            frame = _read_fabio(self.paths[i], i)
            _check_frame_shape(frame.shape, self.shape[1:], i, self.paths[i])
            out[i - start] = frame
        return out


class HDF5Frames:
    """Frames in one 3D HDF5 dataset, read in blocks (the file is opened per read).

    Parameters
    ----------
    path
        HDF5 (or NeXus) file.
    dataset
        Dataset path inside the file, e.g. ``"/entry/data/data"``.
    """

    def __init__(self, path: str | Path, dataset: str) -> None:
        self.path = Path(path)
        self.dataset = dataset
        if not self.path.is_file():
            raise FileNotFoundError(f"HDF5 file not found: {self.path}")
        with self._open() as ds:
            if ds.ndim != 3:
                raise ValueError(
                    f"{self.path}::{dataset} has shape {ds.shape}; expected (n_frames, H, W)"
                )
            self.shape = tuple(int(s) for s in ds.shape)
            self.dtype = ds.dtype
            self.chunks = ds.chunks

    @property
    def names(self) -> list[str]:
        """Source name, for provenance."""
        return [f"{self.path}{HDF5_SEPARATOR}{self.dataset}"]

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start`` to ``stop - 1`` as an array (stop - start, H, W)."""
        try:
            with self._open() as ds:
                return ds[start:stop]
        except OSError as exc:
            raise OSError(f"cannot read frames {start}..{stop - 1} of {self.path}::{self.dataset}: {exc}") from exc

    def __getitem__(self, key: tuple | slice | int) -> np.ndarray:
        """NumPy-style indexing (for ``dask.array.from_array``)."""
        try:
            with self._open() as ds:
                return ds[key]
        except OSError as exc:
            raise OSError(f"cannot read {key} of {self.path}::{self.dataset}: {exc}") from exc

    @property
    def ndim(self) -> int:
        return 3

    def _open(self):
        """Context manager yielding the dataset (the file closes with it)."""
        return _DatasetContext(self.path, self.dataset)


class _DatasetContext:
    """``with _DatasetContext(path, name) as ds``: opens the file, yields the dataset, closes."""

    def __init__(self, path: Path, dataset: str) -> None:
        self.path, self.dataset, self.file = path, dataset, None

    def __enter__(self) -> h5py.Dataset:
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as exc:
            raise OSError(f"cannot open HDF5 file {self.path}: {exc}") from exc
        node = self.file.get(self.dataset)
        if not isinstance(node, h5py.Dataset):
            self.file.close()
            raise ValueError(f"no dataset {self.dataset!r} in HDF5 file {self.path}")
        return node

    def __exit__(self, *exc_info) -> None:
        self.file.close()


FrameSource = FileFrames | HDF5Frames


def open_frames(source: str | Path | Sequence[str | Path]) -> FrameSource:
    """A lazy frame reader for a file list, a glob pattern or ``"file.h5::/dataset"``.

    Raises
    ------
    FileNotFoundError
        A named file does not exist, or a glob matches nothing.
    """
    if isinstance(source, (str, Path)):
        text = str(source)
        if HDF5_SEPARATOR in text:
            path, dataset = text.split(HDF5_SEPARATOR, 1)
            return HDF5Frames(path, dataset)
        paths = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not paths:
            raise FileNotFoundError(f"no frame files match {text!r}")
        source = paths
    missing = [str(p) for p in source if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"frame file not found: {missing[0]} ({len(missing)} missing)")
    return FileFrames(source)


def iter_blocks(reader: FrameSource, block: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, frames)`` for consecutive blocks of at most ``block`` frames."""
    for start in range(0, len(reader), block):
        yield start, reader.read(start, min(start + block, len(reader)))


def _read_fabio(path: Path, index: int) -> np.ndarray:
    """The single frame of one fabio file, with errors naming the file and frame index."""
    try:
        with fabio.open(str(path)) as image:
            nframes = image.nframes
            data = np.asarray(image.data)
            truncated = bool(getattr(image, "incomplete_file", False))  # EDF pads instead of raising
    except Exception as exc:  # fabio raises many types for corrupt files
        raise OSError(f"cannot read frame {index} from {path}: {exc!r}") from exc
    if truncated:
        raise OSError(f"cannot read frame {index} from {path}: file is truncated")
    if nframes != 1:
        raise ValueError(f"{path} (frame {index}) holds {nframes} frames; expected one frame per file")
    if data.ndim != 2:
        raise ValueError(f"{path} (frame {index}) is not a 2D image (shape {data.shape})")
    return data


def _check_frame_shape(shape: tuple[int, ...], expected: tuple[int, ...], index: int, path: Path) -> None:
    """ValueError naming the frame and file when a frame's shape differs from the first frame's."""
    if tuple(shape) != tuple(expected):
        raise ValueError(
            f"frame {index} ({path}) has shape {tuple(shape)}, expected {tuple(expected)} (first frame)"
        )
