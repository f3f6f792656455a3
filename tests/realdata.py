"""Access to ``../shared/realdata`` (public files from real detectors and spectrometers).

Tests that read them take the :func:`realdata` fixture (or call :func:`realdata_path`) and are
marked ``realdata``. Without the folder they skip, except under ``CI=true``, where a missing
folder or file is a failure: CI always has it, so a skip there would hide a broken test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]


def _find_root() -> Path:
    """$GPUPROC_REALDATA, else ``shared/realdata`` beside the checkout, else beside the checkout this
    one was cloned from (a local ``git clone . /tmp/ci-clone``)."""
    if "GPUPROC_REALDATA" in os.environ:
        return Path(os.environ["GPUPROC_REALDATA"])
    beside = CHECKOUT.parent / "shared" / "realdata"
    if beside.exists():
        return beside
    origin = subprocess.run(["git", "-C", str(CHECKOUT), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True).stdout.strip()
    if origin and Path(origin).is_dir():
        cloned_from = Path(origin).resolve().parent / "shared" / "realdata"
        if cloned_from.exists():
            return cloned_from
    return beside


ROOT = _find_root()


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
