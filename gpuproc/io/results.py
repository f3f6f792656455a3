"""The results store: a Zarr v3 group that ``xarray.open_zarr`` opens as a Dataset.

Every array carries ``dimension_names`` (so xarray sees named dimensions), and ``units`` and
``long_name`` attributes; coordinates are arrays named like their dimension. Group attributes
hold the job configuration (JSON) and package versions.

Group attributes also record ``gpuproc_results`` (the pipeline; written first, so even an
interrupted creation is recognised as a gpuproc store) and ``inputs`` (fingerprints of the input
files, :mod:`gpuproc.run.fingerprint`); a resume is refused when the configuration or an input
changed (:func:`resume_problems`).

Results are written block by block, each block being whole chunks, and a block is marked done
in the ``run/done`` array only after its data are written (bookkeeping lives in the ``run``
subgroup, which ``xarray.open_zarr`` does not show among the results). ``complete`` (group attribute) turns True
when the run has finished and metadata are consolidated; an interrupted run leaves
``complete = False`` and the ``done`` marks, from which ``resume`` continues. Blocks and done
marks never share a chunk, and Zarr writes each chunk file atomically, so several processes may
write different blocks of one store at the same time (:meth:`ResultStore.attach`).
"""

from __future__ import annotations

import asyncio
import json
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import zarr

RUN_GROUP = "run"  #: subgroup of the run's own bookkeeping (not results)
DONE = f"{RUN_GROUP}/done"  #: (n_blocks,) bool: block written

PROVENANCE_PACKAGES = ("gpuproc", "numpy", "scipy", "pyfai", "fabio", "zarr", "dask", "cupy-cuda12x")


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the results."""
    out = {}
    for name in PROVENANCE_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


@dataclass
class Variable:
    """One result array: dimensions, dtype, units and description."""

    dims: tuple[str, ...]
    dtype: Any = np.float32
    units: str = ""
    long_name: str = ""
    fill: Any = np.nan


@dataclass
class ResultLayout:
    """What a results store holds: dimension sizes, coordinates, variables, chunking."""

    sizes: dict[str, int]
    coords: dict[str, tuple[np.ndarray, dict[str, Any]]]
    variables: dict[str, Variable]
    block_dim: str  # results are written in blocks along this dimension (e.g. "y")
    block_size: int
    attrs: dict[str, Any] = field(default_factory=dict)
    #: small arrays known before the run, written at creation: name -> (values, dims, attrs)
    statics: dict[str, tuple[np.ndarray, tuple[str, ...], dict[str, Any]]] = field(default_factory=dict)
    #: blocks smaller than one ``block_dim`` step (block_size 1): ``sub_size`` along ``sub_dim``
    #: (e.g. part of a scan row); block ``i`` is part ``i % n_sub`` of step ``i // n_sub``
    sub_dim: str | None = None
    sub_size: int = 0

    @property
    def n_sub(self) -> int:
        """Blocks per ``block_dim`` step (1 without ``sub_dim``)."""
        return -(-self.sizes[self.sub_dim] // self.sub_size) if self.sub_dim else 1

    @property
    def n_blocks(self) -> int:
        return -(-self.sizes[self.block_dim] // self.block_size) * self.n_sub

    def block_slice(self, i: int) -> slice:
        """Block ``i``'s range along ``block_dim``."""
        i //= self.n_sub
        return slice(i * self.block_size, min((i + 1) * self.block_size, self.sizes[self.block_dim]))

    def block_region(self, i: int) -> dict[str, slice]:
        """Block ``i``'s ranges along ``block_dim`` (and ``sub_dim``); other dimensions are whole."""
        region = {self.block_dim: self.block_slice(i)}
        if self.sub_dim:
            j = i % self.n_sub
            region[self.sub_dim] = slice(j * self.sub_size, min((j + 1) * self.sub_size, self.sizes[self.sub_dim]))
        return region

    def chunk(self, dim: str) -> int:
        """Chunk length along ``dim``: one block's."""
        return {self.block_dim: self.block_size, self.sub_dim: self.sub_size}.get(dim, self.sizes[dim])


class ResultStore:
    """Create or reopen a results store and write it block by block.

    Parameters
    ----------
    path : Path
    layout : ResultLayout
    config_json : str
        What the results depend on (:func:`gpuproc.run.settings.results_config_json`).
    inputs : dict
        ``{"section.key": fingerprint}`` of the job's input files, recorded with the results.
    pipeline : str
        The pipeline writing it ("waxs", "pl"), recorded as ``gpuproc_results``.
    resume : bool
        Reopen the existing store (refused if its configuration or inputs differ); otherwise
        create it where nothing (or an empty folder) is (the caller removes an old store:
        :func:`gpuproc.run.outputs.remove_store`).
    """

    def __init__(self, path: str | Path, layout: ResultLayout, *, config_json: str,
                 inputs: dict[str, str] | None = None, pipeline: str = "", resume: bool = False):
        self.path = Path(path)
        self.layout = layout
        self._arrays: dict[str, zarr.Array] = {}  # opened arrays (:meth:`_array`)
        if resume:
            self.group = self._reopen(config_json, inputs or {})
        else:
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise FileExistsError(f"{self.path}: exists; a results store is only created where nothing is")
            self.group = self._create(config_json, inputs or {}, pipeline)

    @classmethod
    def attach(cls, path: str | Path, layout: ResultLayout, *, config_json: str,
               inputs: dict[str, str] | None = None) -> ResultStore:
        """Open a store that another process created, to write blocks into it; never creates or
        wipes one (so concurrent workers and array tasks can all attach)."""
        self = cls.__new__(cls)
        self.path, self.layout, self._arrays = Path(path), layout, {}
        self.group = self._reopen(config_json, inputs or {})
        return self

    def _reopen(self, config_json: str, inputs: dict[str, str]) -> zarr.Group:
        attrs = _stored_attrs(self.path)
        if attrs is None or "config" not in attrs:
            raise FileNotFoundError(f"{self.path}: no results store to attach to; it is created by the run "
                                    "(or its prepare step) before workers or array tasks start")
        problems = resume_problems(attrs, config_json, inputs)
        if problems:
            raise ValueError(f"{self.path}: cannot resume: {'; '.join(problems)}; set [job] overwrite = true "
                             "(or --overwrite) to start afresh, or choose another output")
        return zarr.open_group(self.path, mode="r+", use_consolidated=False)  # the store as it is now

    def _create(self, config_json: str, inputs: dict[str, str], pipeline: str) -> zarr.Group:
        lay = self.layout
        g = zarr.open_group(self.path, mode="w", zarr_format=3)
        g.attrs["gpuproc_results"] = pipeline  # first: an interrupted creation is still recognised as ours
        for name, (values, attrs) in lay.coords.items():
            self._put(g, name, np.asarray(values), (name,), attrs)
        for name, (values, dims, attrs) in lay.statics.items():
            self._put(g, name, np.asarray(values), dims, attrs)
        _create_all(g, {name: dict(shape=tuple(lay.sizes[d] for d in var.dims),
                                   chunks=tuple(lay.chunk(d) for d in var.dims), dtype=var.dtype,
                                   dimension_names=var.dims, fill_value=var.fill,
                                   attributes={"units": var.units, "long_name": var.long_name})
                        for name, var in lay.variables.items()})
        # one chunk per mark: blocks written concurrently by several processes never share a chunk
        part = f" x {lay.sub_size} along {lay.sub_dim}" if lay.sub_dim else ""
        g.create_group(RUN_GROUP).create_array(
            "done", shape=(lay.n_blocks,), chunks=(1,), dtype=bool, dimension_names=("block",), fill_value=False,
            attributes={"long_name": f"block of {lay.block_size} along {lay.block_dim}{part} written", "units": ""})
        g.attrs.update({**lay.attrs, "inputs": inputs, "versions": package_versions(), "complete": False,
                        "config": config_json})
        return g

    def pending_blocks(self) -> list[int]:
        """Blocks not yet written."""
        done = np.asarray(self.group[DONE][...])
        return [i for i in range(self.layout.n_blocks) if not done[i]]

    def write_block(self, i: int, values: dict[str, np.ndarray]) -> None:
        """Write every variable of block ``i`` (whole chunks, all at once), then mark the block done.

        The chunks are encoded and stored concurrently in zarr's event loop (one round trip for
        the block instead of one per variable: a WAXS block of 32 variables took ~80 ms, ~25 ms
        so); the done mark follows once every one of them is written.
        """
        block = self.layout.block_region(i)
        writes = []
        for name, v in values.items():
            a = self._array(name)
            region = tuple(block.get(d, slice(None)) for d in self.layout.variables[name].dims)
            writes.append((a, region, np.asarray(v, dtype=a.dtype)))
        _set_all(writes)
        self._array(DONE)[i] = True

    def _array(self, name: str) -> zarr.Array:
        """The store's array ``name``, opened once (each ``group[name]`` reads its metadata)."""
        if name not in self._arrays:
            self._arrays[name] = self.group[name]
        return self._arrays[name]

    def read(self, name: str) -> np.ndarray:
        return np.asarray(self.group[name][...])

    def add_array(self, name: str, values: np.ndarray, dims: tuple[str, ...], units: str = "",
                  long_name: str = "") -> None:
        """A small array computed after the blocks (statistics, averaged cake); replaces any earlier one."""
        if name in self.group:
            del self.group[name]
            self._arrays.pop(name, None)
        self._put(self.group, name, np.asarray(values), dims, {"units": units, "long_name": long_name})

    @staticmethod
    def _put(g: zarr.Group, name: str, values: np.ndarray, dims: tuple[str, ...], attrs: dict[str, Any]) -> None:
        """Write a whole small array; text becomes Zarr's variable-length UTF-8 strings."""
        text = values.dtype.kind in "US"
        a = g.create_array(name, shape=values.shape, dtype=str if text else values.dtype, dimension_names=dims,
                           fill_value=None, attributes=dict(attrs))
        a[...] = values.astype(object) if text else values

    def add_coord(self, name: str, values: np.ndarray, attrs: dict[str, Any]) -> None:
        """A coordinate introduced after creation (e.g. bins of a statistic)."""
        self.add_array(name, values, (name,), attrs.get("units", ""), attrs.get("long_name", ""))

    def finish(self, attrs: dict[str, Any] | None = None) -> None:
        """Record final attributes, mark complete, consolidate metadata."""
        self.group.attrs.update({**(attrs or {}), "complete": True})
        consolidate(self.path)


def _create_all(group: zarr.Group, arrays: dict[str, dict[str, Any]]) -> None:
    """``group.create_array(name, **keys)`` for every ``name: keys``, concurrently (each array's
    metadata, attributes included, is one write; ~40 WAXS arrays one after the other took ~0.2 s)."""
    _concurrently([group._async_group.create_array(name, **keys) for name, keys in arrays.items()])


def _set_all(writes: list[tuple[zarr.Array, tuple[slice, ...], np.ndarray]]) -> None:
    """``array[region] = values`` for every ``(array, region, values)``, concurrently."""
    _concurrently([a.async_array.setitem(region, v) for a, region, v in writes])


def _concurrently(coroutines: list[Any]) -> None:
    """Run ``coroutines`` together in zarr's event loop; every one finishes before the first
    error (if any) is raised."""
    from zarr.core.sync import sync  # what zarr's own synchronous methods run their coroutines with

    async def every() -> list[Any]:
        return await asyncio.gather(*coroutines, return_exceptions=True)

    for outcome in sync(every()):
        if isinstance(outcome, BaseException):
            raise outcome


def consolidate(path: str | Path) -> None:
    """Consolidate a finished store's metadata (xarray then opens it without a warning)."""
    with warnings.catch_warnings():  # consolidated metadata is a zarr-python v3 extension xarray reads
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(str(path))


def _stored_attrs(path: Path) -> dict[str, Any] | None:
    """Group attributes of an existing store; None if there is none."""
    try:
        return dict(zarr.open_group(path, mode="r").attrs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
        return None


def resume_problems(attrs: dict[str, Any], config_json: str, inputs: dict[str, str]) -> list[str]:
    """Why a store with attributes ``attrs`` cannot be continued by a job with this results
    configuration and these input fingerprints: each changed key and each changed input file
    (with both fingerprints); empty if it can."""
    old, new = _flat(json.loads(attrs.get("config") or "{}")), _flat(json.loads(config_json))
    problems = [f"{_key(k)} changed ({_short(old.get(k))} -> {_short(new.get(k))})"
                for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    recorded = attrs.get("inputs")
    if recorded is None:
        return problems + ["its inputs were not fingerprinted (written by an older gpuproc)"]
    for key in sorted(set(recorded) & set(inputs)):
        if recorded[key] != inputs[key]:
            problems.append(f"input {key} changed ({recorded[key]} -> {inputs[key]})")
    return problems


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
    return out


def _key(dotted: str) -> str:
    """``integration.npt_q`` as a job file names it: ``[integration] npt_q``."""
    section, _, key = dotted.partition(".")
    return f"[{section}] {key}" if key else section


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def open_results(path: str | Path) -> Any:
    """Open a finished results store as an xarray Dataset (refuses an incomplete one)."""
    import xarray as xr

    g = zarr.open_group(path, mode="r")
    if not g.attrs.get("complete", False):
        raise ValueError(f"{path}: the run that writes this store has not finished (complete = False); "
                         "re-run the job to resume it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = xr.open_zarr(path, consolidated=True)
    ds.attrs["config"] = json.loads(ds.attrs["config"]) if isinstance(ds.attrs.get("config"), str) else ds.attrs.get("config")
    return ds
