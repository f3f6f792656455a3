"""Stores that are either complete or absent: written under ``<name>.partial``, marked
``complete`` and renamed into place only when every chunk is written, so an interrupted ingest
never looks like a finished one. Shared by the frame (WAXS) and spectra (PL) stores."""

from __future__ import annotations

import shutil
from pathlib import Path

import zarr


def begin(final: Path) -> tuple[Path, zarr.Group]:
    """A fresh Zarr v3 group at ``<final>.partial`` (any leftover of an earlier attempt removed)."""
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    return partial, zarr.open_group(str(partial), mode="w", zarr_format=3)


def commit(group: zarr.Group, partial: Path, final: Path) -> Path:
    """Mark the group complete and move it to ``final`` (replacing an existing store)."""
    group.attrs["complete"] = True
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return final


def open_complete(path: Path, what: str) -> zarr.Group:
    """Open a finished store read-only; errors name the path and what was expected."""
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    group = zarr.open_group(str(path), mode="r")
    if not group.attrs.get("complete") or path.name.endswith(".partial"):
        raise ValueError(f"{what} {path} is incomplete (interrupted ingest?)")
    return group
