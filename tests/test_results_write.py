"""ResultStore.write_block writes a block's variables concurrently: every value lands in its
region, and a failed write leaves the block unmarked (a resume computes it again)."""

from __future__ import annotations

import numpy as np
import pytest

from gpuproc.io.results import ResultLayout, ResultStore, Variable


def _store(tmp_path):
    variables = {"a": Variable(("y", "x")), "b": Variable(("r", "y", "x"), np.uint8, fill=255)}
    lay = ResultLayout({"y": 4, "x": 3, "r": 2}, {}, variables, block_dim="y", block_size=2)
    return ResultStore(tmp_path / "r.zarr", lay, config_json="{}")


def test_block_values_land_in_their_regions(tmp_path):
    store = _store(tmp_path)
    a = np.arange(6, dtype=np.float64).reshape(2, 3)  # converted to the array's float32
    b = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    store.write_block(1, {"a": a, "b": b})
    assert store.pending_blocks() == [0]
    np.testing.assert_array_equal(store.read("a")[2:], a.astype(np.float32))
    assert np.isnan(store.read("a")[:2]).all()
    np.testing.assert_array_equal(store.read("b")[:, 2:], b)
    assert (store.read("b")[:, :2] == 255).all()


def test_failed_write_leaves_the_block_pending(tmp_path):
    store = _store(tmp_path)
    with pytest.raises(IndexError, match="too many indices"):
        store.write_block(0, {"a": np.zeros((2, 3)), "b": np.zeros((5, 5), np.uint8)})  # b: wrong shape
    assert store.pending_blocks() == [0, 1]
    np.testing.assert_array_equal(store.read("a")[:2], 0)  # the other writes still finished
