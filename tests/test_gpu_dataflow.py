"""The device data flow of the WAXS path, run without a GPU through tests/fake_cupy.py (only CuPy's
calls are replaced; gpuproc's code is the code a GPU runs):

- frames travel in their stored dtype (uint16, uint32, int32: H2D bytes per frame = stored
  itemsize x pixels), from pinned staging buffers on a copy stream, and are converted on the
  device by the same xp code as the CPU's NumPy path (same cakes, bit for bit);
- the CSR matrix, the normalisation and the windows' gather indices go to the device once per
  run, however many blocks;
- the upload of block k+1 is issued on the copy stream while block k computes, and block k's
  work starts after its own copy's event.
"""

from collections import Counter
import threading
import time

import numpy as np
import pyFAI.detectors
import pytest
from fake_cupy import FakeCupy, cpu_kernels, installed
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from run_helpers import assert_same_results, job_with_output

import gpuproc.waxs.integrate as integrate
from gpuproc.fit import gpu
from gpuproc.run.device_upload import Uploader
from gpuproc.waxs.pipeline import WaxsBlocks

SHAPE = (96, 80)
BINS = dict(npt_q=40, npt_azimuth=36, q_range=(0.5, 3.5))


def small_ai(dummy=None, delta_dummy=None) -> AzimuthalIntegrator:
    det = pyFAI.detectors.Detector(172e-6, 172e-6, max_shape=SHAPE)
    det.dummy, det.delta_dummy = dummy, delta_dummy
    return AzimuthalIntegrator(dist=0.03, poni1=0.009, poni2=0.007, rot1=0.02, detector=det, wavelength=1.0e-10)


GAP = (slice(40, 44), slice(None))  #: a module gap: masked, flagged in every frame


def flagged_frames(dtype, n=7, seed=0) -> np.ndarray:
    """Poisson frames with invalid values of the dtype: its maximum (unsigned), Dectris -1/-2
    (signed), values above the saturation threshold; each frame its own pattern, plus the flagged
    :data:`GAP`. Invalid pixels outside the gap: 7 per frame (unsigned), 6 (signed)."""
    rng = np.random.default_rng(seed)
    frames = rng.poisson(40, (n, *SHAPE)).astype(dtype)
    frames[(slice(None), *GAP)] = np.iinfo(dtype).max if np.dtype(dtype).kind == "u" else -1
    for k in range(n):
        frames[k, 3 + k, 5:9] = 5000  # saturated
        if np.dtype(dtype).kind == "u":
            frames[k, 10, 2 * k : 2 * k + 3] = np.iinfo(dtype).max
        else:
            frames[k, 11, k] = -1
            frames[k, 12 + k, 7] = -2
    return frames


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int32])
def test_frames_upload_in_stored_dtype_and_cake_like_the_cpu(monkeypatch, dtype):
    frames = flagged_frames(dtype)
    gap = np.zeros(SHAPE, bool)
    gap[GAP] = True
    kw = dict(BINS, mask=gap, dummy=-2.0, delta_dummy=1.5, saturation=3000, block_frames=2)
    frame_bytes = np.dtype(dtype).itemsize * SHAPE[0] * SHAPE[1]
    with installed(monkeypatch, FakeCupy()) as fake:
        ci = integrate.CakeIntegrator(small_ai(), device="gpu", **kw)
        setup_ops = len(fake.trace.ops)
        up = Uploader(fake, 3 * frame_bytes)  # staging for 3 frames; blocks of 3, then 1
        out = []
        for k in range(0, len(frames), 3):
            block = up.take(up.put(frames[k : k + 3]))
            assert block.dtype == dtype and isinstance(block, fake.ndarray)
            out.append([a.get() for a in ci.integrate_sums(block)])
        run = fake.trace.ops[setup_ops:]
    sets = [o for o in run if o.kind == "h2d" and o.what == "set"]
    assert sum(o.nbytes for o in sets) == frames.nbytes == len(frames) * frame_bytes
    assert {o.dtype for o in sets} == {np.dtype(np.uint8)}  # the frames' own bytes, reinterpreted
    assert all(o.pinned and o.stream == "stream1" for o in sets)
    assert [o.nbytes for o in run if o.kind == "pinned"] == [3 * frame_bytes] * 2
    # besides the frames: the normalisation of each new invalid-pixel pattern, and once for the
    # frames' dtype its rules' list of pixels whose flat field is invalid (none here)
    others = [o for o in run if o.kind == "h2d" and o.what != "set"]
    norms = [o for o in others if (o.shape, o.dtype) == ((BINS["npt_azimuth"], BINS["npt_q"]), np.float32)]
    assert 1 <= len(norms) <= len(frames)
    assert [(o.shape, o.dtype) for o in others if o not in norms] == [((0,), np.int64)]
    assert not [o for o in run if o.kind == "launch" and o.stream != "null"]  # no work on the copy stream
    # back to the host: the invalid pixels outside the static mask (not the gap's, every frame)
    listed = sum(o.nbytes for o in run if o.kind == "d2h" and o.dtype == np.int64) // 8
    assert listed == len(frames) * (7 if np.dtype(dtype).kind == "u" else 6)

    signal, norm = (np.concatenate([o[i] for o in out]) for i in (0, 1))
    monkeypatch.setattr(integrate, "_kernels", lambda: None)  # the CPU's NumPy path: same algorithm
    ref_signal, ref_norm = integrate.CakeIntegrator(small_ai(), device="cpu", **kw).integrate_sums(frames)
    np.testing.assert_array_equal(signal, ref_signal)
    np.testing.assert_array_equal(norm, ref_norm)
    monkeypatch.undo()  # the compiled CPU kernels (their own implementation of the same rules)
    compiled = integrate.CakeIntegrator(small_ai(), device="cpu", **kw).integrate_sums(frames)
    np.testing.assert_allclose(signal, compiled[0], rtol=2e-6, atol=1e-3)
    np.testing.assert_array_equal(norm, compiled[1])


def test_large_block_goes_through_both_staging_buffers_in_turn(monkeypatch):
    """A block larger than one staging buffer: chunks alternate between the two buffers and a
    buffer is refilled only after the event of its previous copy."""
    frames = flagged_frames(np.uint16, n=5)
    frame_bytes = frames[0].nbytes
    with installed(monkeypatch, FakeCupy()) as fake:
        up = Uploader(fake, 2 * frame_bytes)
        block = up.take(up.put(frames))
        np.testing.assert_array_equal(block.get(), frames)
        ops = [o for o in fake.trace.ops if o.kind in ("h2d", "record", "sync", "wait")]
    kinds = [(o.kind, o.nbytes) if o.kind == "h2d" else (o.kind,) for o in ops]
    b = 2 * frame_bytes
    assert kinds == [("h2d", b), ("record",), ("h2d", b), ("record",), ("sync",), ("h2d", frame_bytes),
                     ("record",), ("wait",)]
    assert ops[4].event is ops[1].event  # the third chunk reuses buffer 1 after its first copy
    assert ops[-1].event is ops[-2].event and ops[-1].stream == "null"


def test_big_endian_frames_arrive_in_native_order(monkeypatch):
    """Frames read big-endian (some HDF5 and EDF files) go up in the same dtype, native order."""
    frames = flagged_frames(np.uint32, n=2).astype(">u4")
    with installed(monkeypatch, FakeCupy()) as fake:
        up = Uploader(fake, frames.nbytes)
        block = up.take(up.put(frames))
    assert block.dtype == np.uint32 and block.dtype.isnative
    np.testing.assert_array_equal(block.get(), frames)


def test_waxs_run_on_the_device_data_flow(monkeypatch, job_file, tmp_path):
    """A 6-block WAXS run through the GPU branches: results equal the CPU run's (same cakes, same
    fits) bit for bit; frames in stored bytes through pinned buffers; CSR, normalisation and
    gather indices uploaded once; upload k+1 overlaps block k, and block k waits for its own."""
    from gpuproc.waxs.job import load_job
    from gpuproc.io.store import open_scan

    scan = open_scan(job_file.with_name("scan.zarr"))
    frame_bytes = scan.frames.dtype.itemsize * int(np.prod(scan.frames.shape[1:]))
    n_frames = scan.frames.shape[0]
    monitor = np.linspace(0.8, 1.2, n_frames)  # a beam monitor's scale: a host array sent per block

    monkeypatch.setattr(integrate, "_kernels", lambda: None)  # CPU reference: the same xp algorithm
    cpu_job = job_with_output(job_file, tmp_path / "cpu.zarr", device="cpu")
    cpu_run = WaxsBlocks(cpu_job, create=True)
    cpu_run.ctx.monitor_scale = monitor
    with cpu_run.overlapped(cpu_run.pending()):
        for b in cpu_run.pending():
            cpu_run.run_block(b)
    cpu_run.finalize()
    models = {r.model for r in load_job(job_file).reflections}
    fake = FakeCupy()
    sets = lambda: sum(1 for o in fake.trace.ops if o.kind == "h2d" and o.what == "set")  # noqa: E731
    waits = lambda: sum(1 for o in fake.trace.ops if o.kind == "wait")  # noqa: E731
    late = []

    def until_next_upload():
        """Block k's first fit launch waits (up to 5 s) until block k+1's frames are uploading."""
        k, deadline = waits() - 1, time.monotonic() + 5
        while k + 1 < n_blocks and sets() < k + 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        if k + 1 < n_blocks and sets() < k + 2:
            late.append(k)

    with installed(monkeypatch, fake):
        monkeypatch.setattr(gpu, "cuda_kernel", cpu_kernels(fake, models, until_next_upload))
        run = WaxsBlocks(job_with_output(job_file, tmp_path / "gpu.zarr", device="gpu"), create=True)
        run.ctx.monitor_scale = monitor
        ci = run.ctx.integrator
        n_blocks = run.n_blocks
        setup = len(fake.trace.ops)
        with run.overlapped(run.pending()):
            for b in run.pending():
                run.run_block(b)
        end = len(fake.trace.ops)
        run.finalize()  # (its mean frame and cake read a few frames again)
    assert n_blocks >= 3 and not late, late
    assert_same_results(run.output, cpu_run.output)

    ops, block_ops = fake.trace.ops, fake.trace.ops[setup:end]
    h2d = [o for o in ops if o.kind == "h2d"]
    frames_up = [o for o in h2d if o.what == "set"]
    assert sum(o.nbytes for o in frames_up) == n_frames * frame_bytes  # stored bytes, each frame once
    assert all(o.pinned and o.stream == "stream1" and o.thread.startswith("gpuproc-read") for o in frames_up)
    batch = run.job.job.batch_frames
    assert [o.nbytes for o in ops if o.kind == "pinned"] == [batch * frame_bytes] * 2
    # uploaded once per run: the CSR matrix, the static normalisation, each window's gather index
    nnz = ci._host.nnz
    assert sum(1 for o in h2d if o.shape == (nnz,) and o.dtype == np.float32) == 1
    assert sum(1 for o in h2d if o.shape == (nnz,) and o.dtype == np.int32) == 1
    assert sum(1 for o in h2d if o.shape == ci.norm.shape and o.what == "asarray") <= 2  # static (+ a shared pattern)
    assert all(isinstance(w.flat_index, fake.ndarray) for w in run.ctx.windows)
    shapes = Counter(w.flat_index.shape for w in run.ctx.windows)
    assert Counter(o.shape for o in h2d if o.dtype == np.int64 and o.shape in shapes) == shapes
    assert not [o for o in block_ops if o.kind == "h2d" and o.what == "index"]  # no host index arrays per block
    assert not [o for o in block_ops if o.kind == "h2d" and o.shape == (nnz,)]
    # per block, besides its frames: the monitor scale, the fits' bounds and fixed-parameter bits
    per_block = [o for o in block_ops if o.kind == "h2d" and o.what != "set"]
    assert {(o.what, o.dtype.name) for o in per_block} <= {("asarray", "float32"), ("asarray", "uint32")}
    assert sum(o.nbytes for o in per_block) < 0.01 * n_frames * frame_bytes

    # order: block k's work on the compute stream starts after waiting for its copy's event
    records = {id(o.event): i for i, o in enumerate(ops) if o.kind == "record"}
    main_waits = [(i, o) for i, o in enumerate(ops) if o.kind == "wait"]
    assert len(main_waits) == n_blocks and all(o.stream == "null" and o.thread == "MainThread" for _, o in main_waits)
    assert all(records[id(o.event)] < i for i, o in main_waits)
    compute = [i for i, o in enumerate(ops) if o.kind == "launch" and o.thread == "MainThread" and i > setup]
    assert compute and compute[0] > main_waits[0][0]
    assert not [o for o in ops if o.kind == "launch" and o.stream != "null"]
    assert threading.current_thread().name == "MainThread"


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int32])
def test_staged_frames_cake_on_a_real_gpu(dtype):
    """With CuPy itself: blocks through the pinned buffers (one larger than a buffer) arrive intact
    in their dtype, and their cakes equal the CPU's (as test_waxs_integrate.test_gpu_matches_cpu)."""
    import cupy

    frames = flagged_frames(dtype)
    kw = dict(BINS, dummy=-2.0, delta_dummy=1.5, saturation=3000)
    ci = integrate.CakeIntegrator(small_ai(), device="gpu", **kw)
    up = Uploader(cupy, 2 * frames[0].nbytes)
    blocks = [up.put(frames[:3]), up.put(frames[3:])]  # the second is queued while the first lands
    sums = []
    for staged, host in zip(blocks, (frames[:3], frames[3:])):
        block = up.take(staged)
        assert block.dtype == dtype
        np.testing.assert_array_equal(block.get(), host)
        sums.append([a.get() for a in ci.integrate_sums(block)])
    cpu = integrate.CakeIntegrator(small_ai(), device="cpu", **kw).integrate_sums(frames)
    for i in (0, 1):
        np.testing.assert_allclose(np.concatenate([s[i] for s in sums]), cpu[i], rtol=1e-5, atol=1e-3)
