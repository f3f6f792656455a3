"""An ingest that fails half-way leaves neither a staging folder nor a lock behind (both the frame
and the spectra stores go through gpuproc.io.staging.staged), so a retry succeeds."""

from pathlib import Path

import numpy as np
import pytest

from gpuproc.io.store import open_scan, write_scan
from gpuproc.run.lock import lock_path


def _blocks(n_good: int):
    for _ in range(n_good):
        yield np.ones((2, 8, 8), np.uint32)
    raise OSError("frame 4: truncated file")


def test_failed_scan_ingest_leaves_nothing(tmp_path: Path) -> None:
    store = tmp_path / "scan.zarr"
    kw = dict(store_path=store, n_frames=8, frame_shape=(8, 8), dtype="uint32", scan_shape=(2, 4),
              scan_order="row", step_um=(1.0, 1.0))
    with pytest.raises(OSError, match="frame 4"):
        write_scan(_blocks(2), **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == []   # no .partial, no .lock
    assert not lock_path(store).exists()
    write_scan(iter([np.ones((8, 8, 8), np.uint32)]), **kw)
    assert open_scan(store).frames.shape == (8, 8, 8)
