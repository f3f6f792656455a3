"""Stores that are either complete or absent: written under a staging folder
``<name>.<host>-<pid>-<random>.partial`` (unique per process, so two ingests never write one),
marked ``complete``, its metadata consolidated, and renamed into place only when every chunk is
written, so an interrupted ingest never looks like a finished one. Shared by the frame (WAXS) and spectra (PL) stores.

:func:`staged` wraps the two: the store is committed when its block ends and removed (with its lock)
when the block raises. :func:`begin` first checks the target (:func:`gpuproc.run.outputs.check_ingest_target`: never an
input, only a gpuproc store of the same kind is replaced, and only with ``overwrite``) and takes
its lock (:mod:`gpuproc.run.lock`); :func:`commit` replaces the target and releases the lock.
The group records ``gpuproc_store`` (its kind) and, at commit, a ``store_id`` unique to this
ingest (part of its fingerprint, :mod:`gpuproc.run.fingerprint`).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import zarr

from gpuproc.io.results import consolidate
from gpuproc.run import lock, outputs

_holders: dict[Path, lock.Holder] = {}  # staging folder -> the lock of its target


def begin(final: Path, *, kind: str, inputs: Sequence[str | Path] = (), overwrite: bool = False
          ) -> tuple[Path, zarr.Group]:
    """A fresh Zarr v3 group in a staging folder beside ``final``, after checking and locking it.

    Parameters
    ----------
    final : Path
        The store to write.
    kind : str
        "scan" or "pl_spectra": the only kind of existing store ``final`` may replace.
    inputs : sequence of paths
        What the ingest reads (``final`` must be none of them, hold none, lie in none).
    overwrite : bool
        Replace an existing store of ``kind``.

    Raises
    ------
    gpuproc.run.outputs.OutputRefused, FileExistsError, gpuproc.run.lock.OutputLocked
    """
    final = Path(final)
    named = {f"source[{i}]": str(Path(p).absolute()) for i, p in enumerate(inputs)}
    outputs.check_ingest_target(final, kind, named, overwrite)
    holder = lock.acquire(final, f"ingest-{kind}")
    try:
        outputs.check_ingest_target(final, kind, named, overwrite)  # again, now that it is ours
        for old in final.parent.glob(glob.escape(final.name) + ".*partial"):  # leftovers of failed attempts
            if old.is_dir() and outputs.inspect(old).kind in (kind, "empty"):
                shutil.rmtree(old)
        partial = final.with_name(f"{final.name}.{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")
        group = zarr.open_group(str(partial), mode="w", zarr_format=3)
        group.attrs["gpuproc_store"] = kind
    except BaseException:
        lock.release(final, holder)
        raise
    _holders[partial] = holder
    return partial, group


def commit(group: zarr.Group, partial: Path, final: Path) -> Path:
    """Mark the group complete and move it to ``final`` (replacing the store :func:`begin`
    allowed), then release ``final``'s lock."""
    group.attrs.update({"complete": True, "store_id": uuid.uuid4().hex})
    consolidate(partial)
    holder = _holders.pop(partial, None)
    try:
        outputs.remove_store(final)
        partial.rename(final)
    finally:
        lock.release(final, holder)
    return final


def discard(partial: Path, final: Path) -> None:
    """Remove a staging folder :func:`begin` made (a failed ingest) and release ``final``'s lock."""
    shutil.rmtree(partial, ignore_errors=True)
    lock.release(final, _holders.pop(partial, None))


@contextmanager
def staged(final: Path, *, kind: str, inputs: Sequence[str | Path] = (), overwrite: bool = False
           ) -> Iterator[zarr.Group]:
    """``with staged(final, kind=...) as group:`` write ``group``; committed to ``final`` when the
    block ends, discarded (staging folder removed, lock released) when it raises.
    Arguments as :func:`begin`."""
    partial, group = begin(final, kind=kind, inputs=inputs, overwrite=overwrite)
    try:
        yield group
    except BaseException:
        discard(partial, final)
        raise
    commit(group, partial, final)


def open_complete(path: Path, what: str) -> zarr.Group:
    """Open a finished store read-only; errors name the path and what was expected."""
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    group = zarr.open_group(str(path), mode="r")
    if not group.attrs.get("complete") or path.name.endswith(".partial"):
        raise ValueError(f"{what} {path} is incomplete (interrupted ingest?)")
    return group
