"""Which paths a run or an ingest may write, decided before any work.

A path is written only if it does not exist, is an empty folder, or is a store gpuproc wrote of
the same kind (the results store of the same pipeline, a scan store, a PL spectra store); never
an input of the job (or a folder holding one, or a path inside an input store), never the current
folder, the home folder, the file system root or a parent of them. Replacing an existing store
needs ``overwrite`` (``[job] overwrite = true`` / ``--overwrite``; a run that can resume
continues instead), and even then only a store whose entries are all Zarr nodes is removed (a
store that also holds the user's files is refused). Everything else is refused with a one-line
message naming the path and what it holds.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpuproc.io.results import resume_problems
from gpuproc.run.fingerprint import job_inputs
from gpuproc.run.settings import results_config_json

ZARR_METADATA = ("zarr.json", ".zgroup", ".zattrs", ".zarray", ".zmetadata")
KIND_TEXT = {"scan": "a gpuproc scan store", "pl_spectra": "a gpuproc PL spectra store"}


class OutputRefused(ValueError):
    """The path must not be written (it holds something gpuproc did not write, or an input)."""


@dataclass(frozen=True)
class Found:
    """What a path holds.

    Attributes
    ----------
    kind : str
        "absent", "empty", "results", "scan", "pl_spectra" or "other".
    text : str
        What it holds, for messages.
    pipeline : str
        For "results": the pipeline that wrote it ("waxs", "pl").
    attrs : dict
        The group attributes of a Zarr store.
    """

    kind: str
    text: str
    pipeline: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)


def pipeline_of(job: Any) -> str:
    """The pipeline of a job dataclass: WAXS jobs carry ``kind``, PL jobs ``[job] kind``."""
    return getattr(job, "kind", None) or job.job.kind


def inspect(path: Path) -> Found:
    """What ``path`` holds (reads only metadata)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return Found("absent", "nothing")
    if not path.is_dir() or path.is_symlink():
        return Found("other", f"a file ({path.stat().st_size} B)" if path.is_file() else "not a folder")
    names = sorted(os.listdir(path))
    if not names:
        return Found("empty", "an empty folder")
    attrs = _group_attrs(path)
    if attrs is None:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        return Found("other", f"a folder with {len(names)} entries ({shown}) that gpuproc did not write")
    if "gpuproc_results" in attrs or ("config" in attrs and "versions" in attrs):
        pipeline = attrs.get("gpuproc_results") or _pipeline_of_config(attrs.get("config"))
        return Found("results", f"a gpuproc {pipeline} results store", pipeline, attrs)
    kind = attrs.get("gpuproc_store") or ("pl_spectra" if attrs.get("kind") == "pl_spectra" else
                                          "scan" if {"frame_shape", "gpuproc_version"} <= set(attrs) else "")
    if kind:
        return Found(kind, KIND_TEXT.get(kind, f"a gpuproc {kind} store"), attrs=attrs)
    return Found("other", "a Zarr store that gpuproc did not write", attrs=attrs)


def _group_attrs(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    return meta.get("attributes", {}) if meta.get("node_type") == "group" else None


def _pipeline_of_config(config: Any) -> str:
    try:
        data = json.loads(config)
    except (TypeError, ValueError):
        return "?"
    return data.get("kind") or data.get("job", {}).get("kind") or "?"


def _input_paths(inputs: dict[str, str]) -> list[tuple[str, Path]]:
    """(key, resolved path) of every input; globs and lists expanded, ``::node`` removed."""
    out = []
    for key, spec in inputs.items():
        names = json.loads(spec) if spec.startswith("[") else [spec.split("::", 1)[0]]
        for name in names:
            for match in (glob.glob(name) if glob.has_magic(name) else [name]):
                out.append((key, Path(match).resolve()))
    return out


def refuse_unsafe(path: Path, inputs: dict[str, str]) -> None:
    """Refuse a path that is, holds or lies inside an input, or is the current / home folder,
    the root or a parent of them.

    Raises
    ------
    OutputRefused
    """
    p = Path(path).resolve()
    for name, special in (("the current folder", Path.cwd().resolve()), ("the home folder", Path.home().resolve())):
        if p == special or p in special.parents:
            raise OutputRefused(f"{path}: refusing to write there: it is {name}"
                                + ("" if p == special else f" or a folder above it ({special})"))
    if p == Path(p.anchor):
        raise OutputRefused(f"{path}: refusing to write there: it is the file system root")
    for key, ip in _input_paths(inputs):
        if p == ip:
            raise OutputRefused(f"{path}: refusing to write there: it is the input {key}")
        if p in ip.parents:
            raise OutputRefused(f"{path}: refusing to write there: it holds the input {key} ({ip})")
        if ip.is_dir() and ip in p.parents:
            raise OutputRefused(f"{path}: refusing to write there: it lies inside the input {key} ({ip})")


def check_removable(path: Path) -> None:
    """A store may be replaced only if every top-level entry is a Zarr node or its metadata.

    Raises
    ------
    OutputRefused
        It also holds other files (which gpuproc did not write).
    """
    foreign = [e.name for e in os.scandir(path) if not (
        e.name in ZARR_METADATA or (e.is_dir() and not e.is_symlink()
                                    and any((Path(e.path) / m).is_file() for m in ZARR_METADATA)))]
    if foreign:
        raise OutputRefused(f"{path}: refusing to replace it: besides the store it holds files gpuproc did not "
                            f"write ({', '.join(sorted(foreign)[:3])}); move them or choose another output")


def remove_store(path: Path) -> None:
    """Remove a gpuproc store (after :func:`check_removable`); nothing if absent or an empty folder."""
    found = inspect(path)
    if found.kind == "absent":
        return
    if found.kind == "empty":
        os.rmdir(path)
        return
    if found.kind == "other":
        raise OutputRefused(f"{path}: refusing to remove it: it is {found.text}")
    check_removable(path)
    shutil.rmtree(path)


def _foreign(path: Path, found: Found) -> OutputRefused:
    return OutputRefused(f"{path}: refusing to write there: it is {found.text}; choose a new path or an empty folder")


def check_run_output(job: Any) -> Found:
    """Refuse, before any work, a ``[job] output`` that must not be written: unsafe
    (:func:`refuse_unsafe`), holding anything but a results store of the job's pipeline, or such
    a store the job neither resumes (``resume = false``) nor may replace (``overwrite``).

    Raises
    ------
    OutputRefused
    """
    out = Path(job.job.output)
    refuse_unsafe(out, job_inputs(job))
    found, pipeline = inspect(out), pipeline_of(job)
    if found.kind in ("absent", "empty"):
        return found
    if found.kind != "results" or found.pipeline != pipeline:
        raise _foreign(out, found)
    if "config" in found.attrs and not job.job.resume and not job.job.overwrite:
        raise OutputRefused(f"{out}: a gpuproc {pipeline} results store exists and [job] resume = false; set "
                            "[job] overwrite = true (or --overwrite) to replace it, or choose another output")
    if job.job.overwrite:
        check_removable(out)
    return found


def run_decision(job: Any, fingerprints: dict[str, str]) -> str:
    """What a run does with its ``[job] output``: "create", "resume" or "replace".

    Parameters
    ----------
    job
        A pipeline's job dataclass (``job.job.output``, ``resume``, ``overwrite``), with the
        values the run uses (what the results record).
    fingerprints
        Its inputs' fingerprints (:func:`gpuproc.run.fingerprint.fingerprints`).

    Raises
    ------
    OutputRefused
        As :func:`check_run_output`; or a results store whose configuration or inputs changed
        and ``overwrite`` is not set: the message names each changed key and input.
    """
    found = check_run_output(job)
    if found.kind in ("absent", "empty"):
        return "create"
    if "config" not in found.attrs:  # its creation was interrupted: nothing to resume or lose
        check_removable(Path(job.job.output))
        return "replace"
    if not job.job.resume:
        return "replace"
    problems = resume_problems(found.attrs, results_config_json(job), fingerprints)
    if not problems:
        return "resume"
    if job.job.overwrite:
        return "replace"
    raise OutputRefused(f"{job.job.output}: cannot resume this {found.text}: {'; '.join(problems)}; set "
                        "[job] overwrite = true (or --overwrite) to start afresh, or choose another output")


def check_ingest_target(final: Path, kind: str, inputs: dict[str, str], overwrite: bool) -> None:
    """An ingest may write store ``final`` of ``kind`` ("scan", "pl_spectra").

    Raises
    ------
    OutputRefused
        ``final`` is unsafe (:func:`refuse_unsafe`) or holds something else than such a store.
    FileExistsError
        It is such a store and ``overwrite`` is False.
    """
    refuse_unsafe(final, inputs)
    found = inspect(final)
    if found.kind in ("absent", "empty"):
        return
    if found.kind != kind:
        raise _foreign(final, found)
    if not overwrite:
        raise FileExistsError(f"{final}: {found.text} already exists (pass --overwrite / overwrite=True to replace it)")
    check_removable(final)
