"""Dark spectra: a number of counts per channel, or a file in any reader's syntax.

``[spectra] dark`` is a number, a file (``dark.h5``, ``dark.npy``, ``dark.txt``, ``dark.sif``, ...)
or ``file::name`` (an array inside an HDF5/NPZ/Zarr container, e.g. the dark stored in the
map's own file: ``map.h5::/dark``). A dark in the map's own file must be named so, and a named
array there that holds the map's spectra is refused: the map's data are never read as its dark. Checks against the spectra, each error naming both:

- channel count;
- the dark's axis, when its file has one: the same values (converted to the spectra's unit),
  or an error (reversed channel order, another range);
- without an axis (``.npy``, a bare dataset): the channel order, by correlating the dark's
  fixed pattern (hot and cold columns: the dark minus its 9-channel running median, which smooth
  emission and slopes do not have) with that of the map's darkest spectra, as given and
  reversed; a dark that matches only reversed is refused. A dark without such features is not
  checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gpuproc.io.spectra import DEFAULT_AXIS, DEFAULT_DATA, open_source, split_source

#: energy (eV) x wavelength (nm), vacuum; enough to compare a dark's axis with the spectra's
_HC = 1239.84198
_SAMPLE_ROWS = 8
_PATTERN_WIDTH = 9  #: channels of the running median removed before comparing fixed patterns
_REVERSED_MARGIN = 0.3


@dataclass(frozen=True)
class Dark:
    """A dark spectrum in the spectra's raw channel order.

    Attributes
    ----------
    mean : ndarray, shape (n_channels,)
        Mean dark counts per channel.
    frames : ndarray, shape (n_frames, n_channels) or None
        The individual dark spectra when the file holds several (for noise estimates).
    source : str
        Where it came from (file and array, or the constant), for messages and provenance.
    """

    mean: np.ndarray
    frames: np.ndarray | None
    source: str


def read_dark(
    dark: str | Path | float | None,
    axis: np.ndarray,
    unit: str,
    *,
    spectra: Any = None,
    map_source: str | Path | None = None,
    axis_path: str = DEFAULT_AXIS,
    laser_nm: float | None = None,
) -> Dark | None:
    """The dark of spectra with raw ``axis`` in ``unit``, checked against them.

    Parameters
    ----------
    dark : number, path or ``"file::name"``, or None
        Counts per channel, or the dark's file (see the module docstring).
    axis : ndarray, shape (n_channels,)
        The spectra's axis, raw channel order.
    unit : {"nm", "eV"}
    spectra : array-like, shape (..., n_channels), optional
        The spectra (sliceable, e.g. the store's Zarr array), for the channel-order check of a
        dark without an axis.
    map_source : path, optional
        The map's source file, so that its own data are never taken as the dark.
    axis_path : str
        Name of the dark's axis array in containers (optional there).
    laser_nm : float, optional
        Laser line for a dark whose axis is a Raman shift.

    Returns
    -------
    Dark or None

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or unreadable dark, the map's own data, channel count, axis or order mismatch.
    """
    axis = np.asarray(axis, dtype=np.float64)
    if dark is None:
        return None
    if isinstance(dark, (int, float)):
        return Dark(np.full(axis.shape, float(dark)), None, f"{float(dark):g} counts per channel")
    path, name = split_source(dark)
    same_file = _not_the_map(path, name, map_source)
    source = str(dark)
    with open_source(dark, data_path=name or DEFAULT_DATA, axis_path=axis_path, laser_nm=laser_nm,
                     need_axis=False) as (data, dark_axis, dark_unit, _):
        frames = np.asarray(data, dtype=np.float64).reshape(-1, data.shape[-1])
    if same_file and spectra is not None and _is_the_map(frames, spectra):
        raise ValueError(f"dark {source} is the map's own data ({frames.shape[0]} spectra equal to the map's); "
                         "name the dark's array")
    if frames.shape[1] != axis.size:
        raise ValueError(f"dark {source}: {frames.shape[1]} channels, the spectra {axis.size} "
                         f"({_span(axis, unit)})")
    if dark_axis is not None:
        _same_axis(source, _in_unit(dark_axis, dark_unit, unit), axis, unit)
    mean = np.nanmean(frames, axis=0)
    if dark_axis is None and spectra is not None:
        _check_order(source, mean, spectra, axis, unit)
    return Dark(mean, frames if frames.shape[0] > 1 else None, source)


def _not_the_map(path: Path, name: str | None, map_source: str | Path | None) -> bool:
    """Whether the dark lies in the map's own file; naming that file alone is an error."""
    if map_source is None:
        return False
    map_path, _ = split_source(map_source)
    same = path.exists() and map_path.exists() and path.resolve() == map_path.resolve()
    if same and name is None:
        raise ValueError(f"dark {path} is the map's own file: name the dark's array in it "
                         f"(dark = \"{path.name}::/dark\"); the map's data are not a dark")
    return same


def _is_the_map(frames: np.ndarray, spectra: Any) -> bool:
    """A dark array in the map's file that holds the map's spectra (named by its own path)."""
    n_spectra = int(np.prod(spectra.shape[:-1]))
    if frames.shape != (n_spectra, spectra.shape[-1]):
        return False
    first = np.asarray(spectra[0], dtype=np.float64).reshape(-1, spectra.shape[-1])[0]
    return bool(np.allclose(frames[0], first, equal_nan=True))


def _in_unit(values: np.ndarray, have: str, want: str) -> np.ndarray:
    return values if have == want else _HC / values


def _span(axis: np.ndarray, unit: str) -> str:
    return f"axis {axis[0]:.6g}..{axis[-1]:.6g} {unit}"


def _same_axis(source: str, dark_axis: np.ndarray, axis: np.ndarray, unit: str) -> None:
    tol = 0.05 * float(np.median(np.abs(np.diff(axis)))) if axis.size > 1 else 1e-9
    if np.allclose(dark_axis, axis, rtol=0, atol=tol):
        return
    what = "reversed channel order" if np.allclose(dark_axis[::-1], axis, rtol=0, atol=tol) else "another axis"
    raise ValueError(f"dark {source}: {_span(dark_axis, unit)}, the spectra {_span(axis, unit)} ({what}); "
                     "give a dark recorded on the spectra's axis, in their channel order")


def _darkest(spectra: Any, n_channels: int) -> np.ndarray | None:
    """Median of the 10 % least intense of up to 8 rows of spectra spread over the map."""
    n_rows = int(spectra.shape[0])
    rows = np.unique(np.linspace(0, n_rows - 1, min(_SAMPLE_ROWS, n_rows)).astype(int))
    sample = np.concatenate([np.asarray(spectra[int(r)], dtype=np.float64).reshape(-1, n_channels) for r in rows])
    sample = sample[np.all(np.isfinite(sample), axis=1)]
    if sample.shape[0] == 0:
        return None
    order = np.argsort(sample.sum(axis=1))
    return np.median(sample[order[: max(1, sample.shape[0] // 10)]], axis=0)


def _pattern(spectrum: np.ndarray) -> np.ndarray:
    """Fixed pattern of a spectrum: what its running median does not follow (hot/cold columns)."""
    from scipy.ndimage import median_filter

    return spectrum - median_filter(spectrum, size=_PATTERN_WIDTH, mode="nearest")


def _check_order(source: str, mean: np.ndarray, spectra: Any, axis: np.ndarray, unit: str) -> None:
    ref = _darkest(spectra, mean.size)
    if ref is None or mean.size < 2 * _PATTERN_WIDTH:
        return
    dark, ref = _pattern(mean), _pattern(ref)
    if np.std(ref) == 0 or np.std(dark) == 0:
        return
    as_given = float(np.corrcoef(dark, ref)[0, 1])
    reversed_ = float(np.corrcoef(dark[::-1], ref)[0, 1])
    if reversed_ > 0.5 and reversed_ - as_given > _REVERSED_MARGIN:
        raise ValueError(
            f"dark {source}: its channel order looks reversed against the spectra ({_span(axis, unit)}): "
            f"its fixed pattern correlates {as_given:.2f} with the map's darkest spectra as given, {reversed_:.2f} "
            "reversed; save it in the spectra's channel order (or with its axis, e.g. .npz)")
