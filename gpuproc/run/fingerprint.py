"""Fingerprints of a job's input files, recorded with the results so a resume can tell whether
what the results depend on has changed.

- a file up to :data:`SMALL_FILE_BYTES` (PONI, mask, dark, flat, most spectra): SHA-256 of its
  content (touching it changes nothing);
- a larger file: size, modification time and SHA-256 of its first :data:`HEADER_BYTES` and of
  :data:`SAMPLES` blocks spread over it (an Eiger master also covers its ``_data_*`` files);
- a Zarr store (a scan or spectra store): SHA-256 of every metadata document (shapes, chunking,
  attributes: for gpuproc stores the ``store_id`` written at each ingest) and of the size,
  modification time, first and last bytes of :data:`SAMPLES` chunks of each array (first, last,
  spread between);
- a glob or list of frame files: names, sizes and modification times of all, content of a few.

None of these reads a whole scan. The job's inputs are found generically: every ``Path`` value
(and every absolute path given as text, e.g. the WAXS source) of the job's sections except
``[job]`` and ``[slurm]``, which hold outputs and execution settings, and except fields marked
``metadata={"output": True}`` (a store the run itself writes).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any

SMALL_FILE_BYTES = 8 * 2**20
HEADER_BYTES = 2**20
SAMPLE_BYTES = 2**16
SAMPLES = 8
NOT_INPUT_SECTIONS = ("job", "slurm")


def job_inputs(job: Any) -> dict[str, str]:
    """``{"section.key": path}`` of every input file of a job dataclass (see the module docstring)."""
    found: dict[str, str] = {}
    for f in dataclasses.fields(job):
        if f.name not in NOT_INPUT_SECTIONS:
            _walk(getattr(job, f.name), f.name, found)
    return found


def _walk(value: Any, where: str, found: dict[str, str]) -> None:
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            if not f.metadata.get("output"):
                _walk(getattr(value, f.name), f"{where}.{f.name}", found)
    elif isinstance(value, Path) or (isinstance(value, str) and os.path.isabs(value)):
        found[where] = str(value)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, Path)) for v in value):
        if all(os.path.isabs(str(v)) for v in value):
            found[where] = json.dumps([str(v) for v in value])


def fingerprints(job: Any) -> dict[str, str]:
    """``{"section.key": fingerprint}`` of a job's inputs (:func:`job_inputs`)."""
    return {key: fingerprint(path) for key, path in job_inputs(job).items()}


def fingerprint(spec: str | Path) -> str:
    """A short text that changes when the input named by ``spec`` changes.

    ``spec`` is a file, a Zarr store, ``"file.h5::/node"``, a glob, or a JSON list of files.
    """
    text = str(spec)
    if text.startswith("["):
        return _files(sorted(json.loads(text)))
    path = Path(text.split("::", 1)[0])
    if path.is_dir():
        return _store(path) if (path / "zarr.json").is_file() or (path / ".zgroup").is_file() else _folder(path)
    if path.is_file():
        return _file(path)
    if glob.has_magic(text):
        return _files(sorted(glob.glob(text)))
    return "missing"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:16]


def _stat(path: Path) -> bytes:
    st = path.stat()
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode()


def _file(path: Path) -> str:
    size = path.stat().st_size
    if size <= SMALL_FILE_BYTES:
        return f"sha256:{_digest(path.read_bytes())} ({size} B)"
    parts = [_sampled(path)]
    if path.name.endswith("_master.h5"):  # Eiger: the frames are in <prefix>_data_NNNNNN.h5 beside it
        data = sorted(path.parent.glob(path.name[: -len("master.h5")] + "data_*.h5"))
        parts += [_sampled(p) for p in data]
    return f"sampled-sha256:{_digest(*parts)} ({size} B)"


def _sampled(path: Path) -> bytes:
    """Size, modification time, header and :data:`SAMPLES` blocks spread over a file."""
    size = path.stat().st_size
    parts = [_stat(path)]
    with path.open("rb") as f:
        parts.append(f.read(HEADER_BYTES))
        for k in range(SAMPLES):
            f.seek(max(0, (size - SAMPLE_BYTES) * k // max(1, SAMPLES - 1)))
            parts.append(f.read(SAMPLE_BYTES))
    return _digest(*parts).encode()


def _files(names: list[str]) -> str:
    """Frame files: all names, sizes and mtimes; the content of the first, middle and last."""
    if not names:
        return "missing"
    paths = [Path(n) for n in names]
    parts = [b"".join(_stat(p) for p in paths)]
    for p in {paths[0], paths[len(paths) // 2], paths[-1]}:
        parts.append(_sampled(p) if p.stat().st_size > SMALL_FILE_BYTES else p.read_bytes())
    return f"files:{_digest(*parts)} ({len(paths)} files)"


def _folder(path: Path) -> str:
    entries = sorted(os.scandir(path), key=lambda e: e.name)
    return f"folder:{_digest(*(_stat(Path(e.path)) for e in entries if e.is_file()))} ({len(entries)} entries)"


def _store(path: Path) -> str:
    """A Zarr v3 store: metadata documents and a sample of each array's chunk files."""
    parts: list[bytes] = []
    store_id = ""
    pending = [path]
    while pending:
        node = pending.pop()
        meta_file = node / "zarr.json"
        if not meta_file.is_file():
            parts += [(node / n).read_bytes() for n in (".zgroup", ".zattrs", ".zarray") if (node / n).is_file()]
            continue
        raw = meta_file.read_bytes()
        parts.append(raw)
        meta = json.loads(raw)
        if meta.get("node_type") == "group":
            store_id = store_id or str(meta.get("attributes", {}).get("store_id", ""))
            pending += sorted((e for e in node.iterdir() if e.is_dir()), reverse=True)
        elif meta.get("node_type") == "array":
            parts += [_chunk(node, meta, key) for key in _sample_keys(meta)]
    return f"store:{store_id or '-'}:{_digest(*parts)}"


def _sample_keys(meta: dict[str, Any]) -> list[tuple[int, ...]]:
    """Chunk indices of the first, the last and chunks spread between (C order)."""
    shape = meta["shape"]
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
    grid = [-(-s // c) for s, c in zip(shape, chunks)]
    n = 1
    for g in grid:
        n *= g
    if n == 0:
        return []
    flat = sorted({(n - 1) * k // max(1, SAMPLES - 1) for k in range(SAMPLES)})
    keys = []
    for i in flat:
        idx = []
        for g in reversed(grid):
            idx.append(i % g)
            i //= g
        keys.append(tuple(reversed(idx)))
    return keys


def _chunk(node: Path, meta: dict[str, Any], key: tuple[int, ...]) -> bytes:
    """Size, mtime and the first and last :data:`SAMPLE_BYTES` of one chunk file."""
    enc = meta.get("chunk_key_encoding", {"name": "default"})
    default = enc.get("name") == "default"
    sep = enc.get("configuration", {}).get("separator", "/" if default else ".")
    name = sep.join(["c", *map(str, key)]) if default else (sep.join(map(str, key)) or "0")
    path = node / name
    if not path.is_file():
        return b"fill"  # never written: the fill value
    with path.open("rb") as f:
        head = f.read(SAMPLE_BYTES)
        f.seek(max(0, path.stat().st_size - SAMPLE_BYTES))
        return _stat(path) + head + f.read(SAMPLE_BYTES)
