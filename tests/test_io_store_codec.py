"""The scan store's frame codec: new stores take FRAME_CODEC, stores written with the previous
default (Blosc zstd 3 + bitshuffle) or any other Blosc codec still open and read the same frames."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from gpuproc.io.store import FRAME_CODEC, open_scan, write_scan

PREVIOUS = {"cname": "zstd", "clevel": 3, "shuffle": "bitshuffle"}  # the default before issue 16


def _frames(dtype: str, seed: int = 3) -> np.ndarray:
    """Poisson frames with detector flags: 2^32 - 1 (uint32) or gaps -1 and bad pixels -2 (int32)."""
    rng = np.random.default_rng(seed)
    frames = rng.poisson(5.0, (6, 40, 48)).astype(dtype)
    if dtype == "uint32":
        frames[:, 20:22] = np.iinfo(np.uint32).max
    else:
        frames[:, 20:22], frames[:, 5, 7] = -1, -2
    return frames


def _write(path, frames: np.ndarray, **kw):
    return write_scan([frames[:4], frames[4:]], path, n_frames=len(frames), frame_shape=frames.shape[1:],
                      dtype=frames.dtype, scan_shape=(2, 3), chunk_frames=2, **kw)


def _blosc(path) -> dict:
    (codec,) = zarr.open_array(str(path / "frames"), mode="r").compressors
    return {"cname": codec.cname.name, "clevel": codec.clevel, "shuffle": codec.shuffle.name}


@pytest.mark.parametrize("dtype", ["uint32", "int32"])
def test_new_store_uses_the_chosen_codec_and_round_trips(tmp_path, dtype):
    frames = _frames(dtype)
    store = _write(tmp_path / "new.zarr", frames)
    assert _blosc(store) == FRAME_CODEC
    read = np.asarray(open_scan(store).frames)
    assert read.dtype == frames.dtype
    np.testing.assert_array_equal(read, frames)


@pytest.mark.parametrize("codec", [PREVIOUS, {"cname": "lz4", "clevel": 5, "shuffle": "noshuffle"}],
                         ids=["previous-default", "lz4-noshuffle"])
@pytest.mark.parametrize("dtype", ["uint32", "int32"])
def test_store_written_with_another_codec_still_opens(tmp_path, codec, dtype):
    frames = _frames(dtype)
    store = _write(tmp_path / "old.zarr", frames, codec=codec)
    assert _blosc(store) == codec  # the store keeps its own codec: nothing re-encodes it
    np.testing.assert_array_equal(np.asarray(open_scan(store).frames), frames)
    np.testing.assert_array_equal(np.asarray(open_scan(store).frames[3]),
                                  np.asarray(open_scan(_write(tmp_path / "new.zarr", frames)).frames[3]))


def test_default_is_the_measured_choice():
    """FRAME_CODEC is what benchmarks/bench_codec.py chose in the committed results."""
    import json
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "codec_cpu.json"
    if not results.exists():
        pytest.skip("benchmarks/results/codec_cpu.json not measured yet")
    chosen = json.loads(results.read_text())["chosen"]
    assert {k: chosen[k] for k in FRAME_CODEC} == FRAME_CODEC
