"""The scan-averaged cake and detector image are the same bit for bit whoever adds which picked
frames: blocks in order, some blocks then the finalize, or the finalize alone (a resumed run or
one computed by other processes), whatever the finalize's read step; and they are the batch sums
the finalize made before blocks added frames (np.sum / np.nansum over each batch of 16 picks)."""

from __future__ import annotations

import numpy as np
import pytest
from test_waxs_integrate import NPT_AZ, NPT_Q, Q_RANGE, SHAPE, make_ai, make_frames

from gpuproc.waxs.integrate import CakeIntegrator
from gpuproc.waxs.scan_average import BATCH, FRAMES, ScanAverage, picked_frames

N, READ, BLOCK = 45, 5, 8  # the finalize reads 5 frames at a time


@pytest.fixture(scope="module")
def scan():
    rng = np.random.default_rng(7)
    frames = make_frames(N, rng)
    frames[[3, 20], 40:44, 50] = np.iinfo(np.uint32).max  # invalid in two frames (one picked)
    mask = np.zeros(SHAPE, np.int8)
    mask[120:126, :] = 1
    ci = CakeIntegrator(make_ai(), npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=Q_RANGE, mask=mask,
                        dark=rng.uniform(0, 3, SHAPE).astype(np.float32), device="cpu")
    return frames, ci


def _blocks(avg, frames, ci, blocks):
    for b in blocks:
        k0 = b * BLOCK
        signal, norm = ci.integrate_sums(frames[k0:k0 + BLOCK])
        avg.add_block(k0, frames[k0:k0 + BLOCK], signal, norm, ci)


def _batch_sums(frames, ci):
    """What the finalize computed before: each batch of picks read, integrated and summed."""
    picks = picked_frames(len(frames))
    signal = norm = 0.0
    total, count = 0.0, 0
    for i in range(0, picks.size, BATCH):
        s, nm = ci.integrate_sums(frames[picks[i:i + BATCH]])
        signal, norm = signal + s.sum(axis=0), norm + nm.sum(axis=0)
        pixels = ci.pixel_signal(frames[picks[i:i + BATCH]])
        total = total + np.nansum(pixels, axis=0, dtype=np.float64)
        count = count + np.isfinite(pixels).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.where(norm > 0, signal / norm, np.nan).astype(np.float32),
                np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32))


def test_whoever_adds_the_frames_the_same_averages(scan):
    frames, ci = scan
    reads = []

    def read(index):
        reads.append(list(index))
        return frames[index]

    picks = picked_frames(N)
    assert picks.size == FRAMES and picks[0] == 0 and picks[-1] == N - 1
    cake, image = _batch_sums(frames, ci)
    n_blocks = -(-N // BLOCK)
    runs = {  # blocks computed in this process -> picked frames the finalize reads
        "finalize alone": ([], list(picks)),
        "every block": (range(n_blocks), []),
        "first blocks": ([0, 1, 2], [k for k in picks if k >= 3 * BLOCK]),
        "resumed (block 0 done before)": (range(1, n_blocks), list(picks)),
    }
    for name, (blocks, expected) in runs.items():
        reads.clear()
        avg = ScanAverage(N, READ)
        _blocks(avg, frames, ci, blocks)
        got_cake, got_image, n = avg.finish(read, ci)
        assert n == FRAMES
        np.testing.assert_array_equal(got_cake, cake, err_msg=name)
        np.testing.assert_array_equal(got_image, image, err_msg=name)
        assert [k for r in reads for k in r] == expected, name
        assert all(len(r) <= READ for r in reads), name
    assert np.isfinite(cake).any() and np.isnan(image[122]).all()
