"""Access to ``../shared/realdata`` (public files from real detectors and spectrometers).

Tests that read them take the :func:`realdata` fixture (or call :func:`realdata_path`) and are
marked ``realdata``. Without the folder they skip, except under ``CI=true``, where a missing
folder or file is a failure: CI always has it, so a skip there would hide a broken test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("GPUPROC_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))


def realdata_path(*parts: str) -> Path:
    """Path of a real sample file (``realdata_path("waxs", "bitshuffle.h5")``); skips without it,
    fails under ``CI=true``."""
    path = ROOT.joinpath(*parts)
    if not path.exists():
        message = f"real sample data not found: {path} (the shared/realdata folder beside the checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
