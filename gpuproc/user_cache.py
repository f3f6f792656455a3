"""The user's gpuproc cache folder, shared by every on-disk cache of gpuproc.

``$GPUPROC_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/gpuproc``, else ``~/.cache/gpuproc``;
``GPUPROC_CACHE_DIR=none`` (or ``off``, or empty) turns caching off. Each cache keeps a subfolder
of its own: ``csr/`` (integration matrices, gpuproc.waxs.matrix_cache), ``kernels/`` (user
models' compiled libraries and generated CUDA sources, gpuproc.fit.compile_cpu).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DIR = "GPUPROC_CACHE_DIR"  #: cache folder; "none" turns caching off


def cache_root() -> Path | None:
    """The cache folder (not created here), or None when caching is off."""
    given = os.environ.get(ENV_DIR)
    if given is not None:
        return None if given.strip().lower() in ("", "none", "off") else Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gpuproc"
