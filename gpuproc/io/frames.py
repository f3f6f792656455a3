"""Readers for detector frames, found by what the files say.

A source is

- ``"file.h5::/path"``: an HDF5/NeXus node. A 3D dataset (n_frames, H, W) or a 2D dataset (one
  frame); a group is followed by its ``@signal`` (NXdata) or ``@default`` attribute, its Eiger
  data links ``data_000001``, ``data_000002``, ... (one scan across the data files, in order), a
  member named ``data``, its only NXentry / NXdata child, or its only member;
- ``"file.h5"``: the same, starting at the file's root (NeXus ``@default`` chain, Eiger master);
- a fabio-readable file (EDF, CBF, TIFF, ...; multi-frame files give all their frames);
- a list of such files, or a glob pattern (``"scan/frame_*.cbf"``, sorted).

External links (Eiger data files) are resolved relative to the file that holds them; a missing
data file, or a virtual dataset with a missing source, is an error naming it (HDF5 would read
zeros). Compression filters such as Eiger's bitshuffle/LZ4 decode through ``hdf5plugin``.

Readers are lazy: :meth:`Frames.read` loads only the frames asked for, so a scan can be streamed
in blocks with bounded memory. Errors name the file, the dataset and the frame index.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import fabio
import h5py
import hdf5plugin  # noqa: F401  (registers the HDF5 compression filters)
import numpy as np

HDF5_SEPARATOR = "::"
#: Eiger master files link their data files as /entry/data/data_000001, data_000002, ...
DATA_FILE_LINK = re.compile(r"data_(\d+)")
#: NeXus classes followed when a group names no signal or default
NEXUS_CONTAINERS = ("NXentry", "NXdata")


@dataclass(frozen=True)
class Part:
    """Consecutive frames stored in one file.

    Attributes
    ----------
    path : pathlib.Path
        The file holding the frames.
    dataset : str or None
        HDF5 dataset path; None for a fabio-readable file.
    n_frames : int
    frame_shape : tuple of int or None
        (H, W) when known without reading pixels (HDF5).
    dtype : numpy.dtype or None
        Pixel dtype when known without reading pixels (HDF5).
    stacked : bool
        False for a 2D HDF5 dataset (a single frame).
    """

    path: Path
    dataset: str | None
    n_frames: int
    frame_shape: tuple[int, int] | None = None
    dtype: np.dtype | None = None
    stacked: bool = True

    @property
    def name(self) -> str:
        """``file`` or ``file::/dataset``, for provenance and messages."""
        return str(self.path) if self.dataset is None else f"{self.path}{HDF5_SEPARATOR}{self.dataset}"

    def read(self, start: int, stop: int, first: int) -> list[np.ndarray]:
        """This part's frames ``start..stop - 1``; ``first`` is the scan index of its frame 0."""
        if self.dataset is None:
            return _read_fabio(self.path, start, stop, first)
        try:
            with h5py.File(self.path, "r") as f:
                ds = f[self.dataset]
                data = ds[start:stop] if self.stacked else ds[()][None]
        except (OSError, KeyError) as exc:
            raise OSError(f"cannot read frames {first + start}..{first + stop - 1} of {self.name}: {exc}") from exc
        return list(data)


class Frames:
    """A scan's frames across one or more files (:class:`Part`), read lazily in scan order.

    Attributes
    ----------
    parts : list of Part
    shape : tuple of int
        (n_frames, H, W); the frame shape is the first frame's.
    dtype : numpy.dtype
        Pixel dtype of the first frame.
    """

    def __init__(self, parts: Sequence[Part]) -> None:
        if not parts:
            raise ValueError("no frame files given")
        self.parts = list(parts)
        first = self.parts[0]
        if first.frame_shape is None:
            frame = first.read(0, 1, 0)[0]
            frame_shape, self.dtype = frame.shape, frame.dtype
        else:
            frame_shape, self.dtype = first.frame_shape, first.dtype
        self.starts = np.cumsum([0] + [p.n_frames for p in self.parts])
        self.shape = (int(self.starts[-1]), *frame_shape)
        for part, start in zip(self.parts, self.starts):
            if part.frame_shape is not None:
                _check_frame(part.frame_shape, part.dtype, self, int(start), part.name)

    @property
    def names(self) -> list[str]:
        """Source names (one per file or dataset), for provenance."""
        return [p.name for p in self.parts]

    @property
    def ndim(self) -> int:
        return 3

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start`` to ``stop - 1`` as an array (stop - start, H, W)."""
        out = np.empty((stop - start, *self.shape[1:]), self.dtype)
        for part, first in zip(self.parts, self.starts):
            lo, hi = max(start, int(first)), min(stop, int(first) + part.n_frames)
            for k, frame in enumerate(part.read(lo - first, hi - first, int(first)) if lo < hi else []):
                _check_frame(frame.shape, frame.dtype, self, lo + k, part.name)
                out[lo + k - start] = frame
        return out

    def __getitem__(self, key: tuple | slice | int) -> np.ndarray:
        """NumPy-style indexing, frames first (for ``dask.array.from_array``)."""
        key = key if isinstance(key, tuple) else (key,)
        frames = np.arange(len(self))[key[0]]
        lo, hi = (int(frames.min()), int(frames.max()) + 1) if frames.size else (0, 0)
        return self.read(lo, hi)[(frames - lo, *key[1:])]


def open_frames(source: str | Path | Sequence[str | Path]) -> Frames:
    """A lazy frame reader for ``"file.h5::/node"``, a file, a file list or a glob pattern.

    Raises
    ------
    FileNotFoundError
        A named file, an Eiger data file or a virtual dataset's source does not exist, or a glob
        matches nothing.
    ValueError
        A node holds no frames, or frames differ in shape or dtype.
    """
    if isinstance(source, (str, Path)):
        text = str(source)
        if HDF5_SEPARATOR in text:
            path, node = text.split(HDF5_SEPARATOR, 1)
            return Frames(hdf5_parts(Path(path), node))
        paths = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not paths:
            raise FileNotFoundError(f"no frame files match {text!r}")
        source = paths
    missing = [str(p) for p in source if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"frame file not found: {missing[0]} ({len(missing)} missing)")
    parts: list[Part] = []
    for path in map(Path, source):
        parts += hdf5_parts(path, None) if h5py.is_hdf5(path) else [_fabio_part(path, sum(p.n_frames for p in parts))]
    return Frames(parts)


def iter_blocks(reader: Frames, block: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, frames)`` for consecutive blocks of at most ``block`` frames."""
    for start in range(0, len(reader), block):
        yield start, reader.read(start, min(start + block, len(reader)))


# ---- HDF5 / NeXus -----------------------------------------------------------------------------


def hdf5_parts(path: Path, node: str | None) -> list[Part]:
    """The frames under ``node`` of an HDF5 file (its root when None), as parts in scan order."""
    if not path.is_file():
        raise FileNotFoundError(f"HDF5 file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise OSError(f"cannot open HDF5 file {path}: {exc}") from exc
    with f:
        return _parts_at(f, node or "/", path)


def _parts_at(f: h5py.File, name: str, path: Path) -> list[Part]:
    """Parts of the node ``name``, following an external link into its file."""
    link = f.get(name, getlink=True) if name != "/" else None
    if isinstance(link, h5py.ExternalLink):
        target = _linked_file(path, link.filename)
        if not target.is_file():
            raise FileNotFoundError(f"{path}{HDF5_SEPARATOR}{name} links to the data file {target}, "
                                    "which does not exist")
        return hdf5_parts(target, link.path)
    node = f.get(name)
    if isinstance(node, h5py.Dataset):
        return [_dataset_part(node, path)]
    if isinstance(node, h5py.Group):
        return _group_parts(node, path)
    raise ValueError(f"no dataset {name!r} in HDF5 file {path}")


def _group_parts(group: h5py.Group, path: Path) -> list[Part]:
    """Frames of a group: @signal, @default, Eiger data links, a 'data' member, a single NeXus child or member."""
    f, base = group.file, group.name.rstrip("/")
    for attr in ("signal", "default"):
        if attr in group.attrs:
            return _parts_at(f, f"{base}/{_text(group.attrs[attr])}", path)
    links = sorted((int(m.group(1)), k) for k in group if (m := DATA_FILE_LINK.fullmatch(k)))
    if links:
        return [p for _, k in links for p in _parts_at(f, f"{base}/{k}", path)]
    if group.get("data", getlink=True) is not None:
        return _parts_at(f, f"{base}/data", path)
    children = [k for k in group if isinstance(group.get(k, getlink=True), h5py.HardLink)]
    nexus = [k for k in children if isinstance(group[k], h5py.Group)
             and _text(group[k].attrs.get("NX_class", "")) in NEXUS_CONTAINERS]
    for candidates in (nexus, children):
        if len(candidates) == 1:
            return _parts_at(f, f"{base}/{candidates[0]}", path)
    raise ValueError(f"{path}{HDF5_SEPARATOR}{group.name} names no frames (no @signal, @default, data_NNNNNN "
                     "links, 'data' member, single NXentry/NXdata or single member); give the dataset as "
                     f"file{HDF5_SEPARATOR}/path")


def _dataset_part(ds: h5py.Dataset, path: Path) -> Part:
    """One dataset as a part: (n, H, W) frames or a single (H, W) frame."""
    if ds.is_virtual:
        _check_virtual_sources(ds, path)
    if ds.ndim not in (2, 3):
        raise ValueError(f"{path}{HDF5_SEPARATOR}{ds.name} has shape {ds.shape}; expected frames (n_frames, H, W) "
                         "or one frame (H, W)")
    stacked = ds.ndim == 3
    return Part(path, ds.name, int(ds.shape[0]) if stacked else 1, tuple(int(s) for s in ds.shape[-2:]), ds.dtype,
                stacked)


def _check_virtual_sources(ds: h5py.Dataset, path: Path) -> None:
    """FileNotFoundError naming the sources of a virtual dataset that are missing (HDF5 reads zeros)."""
    wanted: dict[Path, set[str]] = {}
    for source in ds.virtual_sources():
        file = path if source.file_name == "." else _linked_file(path, source.file_name)
        wanted.setdefault(file, set()).add(source.dset_name)
    missing = []
    for file, names in wanted.items():
        if not file.is_file():
            missing += [f"{file}{HDF5_SEPARATOR}{n}" for n in sorted(names)]
            continue
        with h5py.File(file, "r") as src:
            missing += [f"{file}{HDF5_SEPARATOR}{n}" for n in sorted(names) if not isinstance(src.get(n), h5py.Dataset)]
    if missing:
        total = sum(len(n) for n in wanted.values())
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise FileNotFoundError(f"{path}{HDF5_SEPARATOR}{ds.name} is a virtual dataset with {len(missing)} of {total} "
                                f"sources missing: {shown}")


def _linked_file(holder: Path, name: str) -> Path:
    """A linked file's path: absolute as written, else relative to the file holding the link."""
    target = Path(name)
    return target if target.is_absolute() else holder.parent / target


def _text(value: bytes | str | np.ndarray) -> str:
    """An HDF5 string attribute (bytes, str or a one-element array) as str."""
    value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
    return value.decode() if isinstance(value, bytes) else str(value)


# ---- fabio files ------------------------------------------------------------------------------


def _fabio_part(path: Path, first: int) -> Part:
    """A fabio-readable file as a part; its frame count comes from the header."""
    try:
        n_frames = int(fabio.openheader(str(path)).nframes)
    except Exception as exc:  # fabio raises many types for corrupt files
        raise OSError(f"cannot read frame {first} from {path}: {exc!r}") from exc
    return Part(path, None, n_frames)


def _read_fabio(path: Path, start: int, stop: int, first: int) -> list[np.ndarray]:
    """Frames ``start..stop - 1`` of one fabio file; errors name the file and the scan frame index."""
    frames = []
    try:
        with fabio.open(str(path)) as image:
            for i in range(start, stop):
                frame = image if image.nframes == 1 else image.getframe(i)
                if getattr(frame, "incomplete_file", False):  # EDF pads instead of raising
                    raise OSError("file is truncated")
                frames.append(np.asarray(frame.data))
    except Exception as exc:
        raise OSError(f"cannot read frame {first + start + len(frames)} from {path}: {exc}") from exc
    for k, frame in enumerate(frames):
        if frame.ndim != 2:
            raise ValueError(f"{path} (frame {first + start + k}) is not a 2D image (shape {frame.shape})")
    return frames


def _check_frame(shape: tuple[int, ...], dtype: np.dtype, frames: Frames, index: int, name: str) -> None:
    """ValueError naming the frame and file when a frame's shape or dtype differs from the first frame's."""
    if tuple(shape) != tuple(frames.shape[1:]):
        raise ValueError(f"frame {index} ({name}) has shape {tuple(shape)}, expected {tuple(frames.shape[1:])} "
                         "(first frame)")
    if np.dtype(dtype) != frames.dtype:
        raise ValueError(f"frame {index} ({name}) has dtype {np.dtype(dtype)}, expected {frames.dtype} (first frame)")
