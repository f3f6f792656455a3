"""The device data flow of the PL path, run without a GPU through tests/fake_cupy.py (only CuPy's
calls are replaced; gpuproc's code is the code a GPU runs):

- spectra travel in the spectra store's dtype (uint16, uint32, int32, float32: H2D bytes per
  spectrum = stored itemsize x channels), from pinned staging buffers on a copy stream, and are
  converted to float64 on the device by the same xp code as the CPU's NumPy path;
- the dark, energy axis, channel order and channel scale go to the device once per run;
- the upload of block k+1 is issued (reader thread, copy stream) while block k fits, and block
  k's work waits for its own copy's event;
- a multi-block map run through the device branches (spike removal and smoothing through
  ``cupyx.scipy.ndimage``, the fit kernel = the CPU library on the kernel's own argument list)
  gives the CPU run's results bit for bit.
"""

from collections import Counter
from pathlib import Path
import time

import numpy as np
import pytest
import tomli_w
import zarr
from fake_cupy import FakeCupy, cpu_kernels, installed
from run_helpers import assert_same_results

from gpuproc.fit import gpu
from gpuproc.io.results import consolidate
from gpuproc.fit.models import get_model
from gpuproc.pl.ingest import ingest_spectra
from gpuproc.pl.job import PLJob, load_job
from gpuproc.pl.peaks import peak_models
from gpuproc.pl.pipeline import PlBlocks
from gpuproc.synth.pl import BIAS_COUNTS, DEFAULT_EVENTS, STRAY_COUNTS, pl_map_pair, pl_timeseries

SHAPE, CHANNELS, ROWS = (8, 6), 192, 2  #: map, channels, rows per block: 4 blocks
#: statistics a PL map records as group attributes (with the noise model)
STATISTICS = ("energy_q1_ev", "energy_median_ev", "energy_q3_ev", "n_sample", "n_nonfinite", "n_no_peak",
              "noise_gain", "noise_read_noise", "noise_bias")
ESTIMATORS = {  # [spectra] and [fit] of the least-squares (default) and Poisson runs
    "lsq": {},
    "poisson": {"spectra": {"per_channel": False, "jacobian": False, "weights": "none"},
                "fit": {"estimator": "poisson", "max_peaks": 2}},
}


def spectra_store(directory: Path, dtype) -> Path:
    """A synthetic map's spectra store holding the counts as ``dtype`` (the ingest writes float32;
    integer dtypes hold them rounded, a 300-count bias above 0). Float32: one spectrum with a NaN
    channel."""
    m = pl_map_pair(SHAPE, CHANNELS, seed=7).first
    counts = m.counts.copy()
    if dtype == np.float32:
        counts[3, 2, 50] = np.nan
    np.savez(directory / "map.npz", data=counts, axis=m.wavelength)
    store = ingest_spectra(directory / "map.npz", directory / "map.spectra.zarr")
    if dtype != np.float32:
        group = zarr.open_group(str(store), mode="r+")
        old = group["spectra"]
        values, attrs = np.rint(old[...]).astype(dtype), dict(old.attrs)
        new = group.create_array("spectra", shape=old.shape, chunks=old.chunks, dtype=dtype, fill_value=0,
                                 dimension_names=old.metadata.dimension_names, overwrite=True)
        new[...] = values
        new.attrs.update(attrs)
        consolidate(store)
    return store


def pl_job(directory: Path, store: Path, name: str, device: str, estimator: str, **sections: dict) -> PLJob:
    data = {"job": {"output": f"{name}.zarr", "device": device, "batch_rows": ROWS},
            "input": {"source": str(store)}, "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS}}
    for section, values in (ESTIMATORS[estimator] | sections).items():
        data.setdefault(section, {}).update(values)
    path = directory / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return load_job(path)


def run_blocks(job: PLJob) -> PlBlocks:
    run = PlBlocks(job, create=True)
    with run.overlapped(run.pending()):
        for b in run.pending():
            run.run_block(b)
    run.finalize()
    return run


def gpu_run(monkeypatch, job: PLJob) -> tuple[PlBlocks, FakeCupy, int, int, list[int]]:
    """``job`` run through the GPU branches under the fake (the fit kernel: the CPU library):
    the run, the fake, where its blocks' operations start and end in the log, and the blocks whose
    fits began before the next block's upload was issued (none when the uploads overlap)."""
    f = job.fit
    models = peak_models(f.peak_shape, f.max_peaks, f.background) + [
        get_model("gauss1d", n_peaks=1, background=f.background)]  # the background-only BIC's fit
    fake, late = FakeCupy(), []

    def count(kind):
        return sum(1 for o in fake.trace.ops if kind in (o.kind, o.what))

    def until_next_upload():
        """Block k's fit launches wait (up to 5 s) until block k+1's spectra are uploading."""
        k, deadline = count("wait") - 1, time.monotonic() + 5
        while k + 1 < run.n_blocks and count("set") < k + 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        if k + 1 < run.n_blocks and count("set") < k + 2:
            late.append(k)

    with installed(monkeypatch, fake):
        monkeypatch.setattr(gpu, "cuda_kernel", cpu_kernels(fake, models, until_next_upload))
        run = PlBlocks(job, create=True)
        setup = len(fake.trace.ops)
        with run.overlapped(run.pending()):
            for b in run.pending():
                run.run_block(b)
        end = len(fake.trace.ops)
        run.finalize()
    return run, fake, setup, end, late


@pytest.mark.parametrize("estimator", ["lsq", "poisson"])
@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int32, np.float32])
def test_pl_map_run_on_the_device_data_flow(monkeypatch, tmp_path, dtype, estimator):
    """A 4-block PL map through the GPU branches equals the CPU run bit for bit; the spectra go up
    in their stored bytes from pinned buffers on the copy stream, once; the per-run arrays once."""
    store = spectra_store(tmp_path, dtype)
    cpu_run = run_blocks(pl_job(tmp_path, store, "cpu", "cpu", estimator))
    run, fake, setup, end, late = gpu_run(monkeypatch, pl_job(tmp_path, store, "gpu", "gpu", estimator))
    n_blocks = SHAPE[0] // ROWS
    assert run.n_blocks == n_blocks and not late, late  # upload k+1 overlapped block k's fits
    assert_same_results(run.output, cpu_run.output, attrs=STATISTICS)

    ops, block_ops = fake.trace.ops, fake.trace.ops[setup:end]
    n_spectra, itemsize = SHAPE[0] * SHAPE[1], np.dtype(dtype).itemsize
    spectra_up = [o for o in ops if o.kind == "h2d" and o.what == "set"]
    assert sum(o.nbytes for o in spectra_up) == n_spectra * itemsize * CHANNELS  # stored bytes, each spectrum once
    assert all(o.pinned and o.stream == "stream1" and o.thread.startswith("gpuproc-read") for o in spectra_up)
    assert [o.nbytes for o in ops if o.kind == "pinned"] == [ROWS * SHAPE[1] * itemsize * CHANNELS] * 2
    # once per run, before the blocks: the dark, the (cropped) energy axis, the channel order and
    # the channel scale; never again
    n_energy = run.prep.energy.size
    per_run = {((CHANNELS,), "float64"): 2, ((CHANNELS,), "int64"): 1}  # dark, scale; order
    per_run[((n_energy,), "float64")] = per_run.get(((n_energy,), "float64"), 0) + 1
    assert Counter((o.shape, o.dtype.name) for o in ops[:setup] if o.kind == "h2d") == per_run
    assert not [o for o in ops[setup:] if o.kind == "h2d" and o.what != "set" and {CHANNELS, n_energy} & set(o.shape)]
    # per block, besides its spectra: the fits' bounds and fixed-parameter bits (gpuproc.fit.problem)
    # and the area errors' parameter indices (gpuproc.fit.models.peak_sum), parameter-sized
    # whatever the block's size (here ~35 per block, ~1 KB)
    per_block = [o for o in block_ops if o.kind == "h2d" and o.what != "set"]
    f = run.job.fit
    n_params = max(m.n_params for m in peak_models(f.peak_shape, f.max_peaks, f.background))
    assert all(max(o.shape, default=1) <= n_params for o in per_block), {o.shape for o in per_block}
    assert any(o.what.startswith("ndimage.") for o in block_ops if o.kind == "launch")

    # order: each block's work waits for its copy's event, on the compute stream; none on the copy stream
    records = {id(o.event): i for i, o in enumerate(ops) if o.kind == "record"}
    waits = [(i, o) for i, o in enumerate(ops) if o.kind == "wait"]
    assert len(waits) == run.n_blocks and all(o.stream == "null" and o.thread == "MainThread" for _, o in waits)
    assert all(records[id(o.event)] < i for i, o in waits)
    assert not [o for o in ops if o.kind == "launch" and o.stream != "null"]


def test_pl_timeseries_run_on_the_device_data_flow(monkeypatch, tmp_path):
    """A 4-block time series cropped to 2.3-2.8 eV through the GPU branches: the same results as
    the CPU run bit for bit, the kymograph included; stored bytes up; the cropped axis once."""
    ts = pl_timeseries(duration=48.0, n_channels=CHANNELS, events=DEFAULT_EVENTS[:1], seed=4)
    np.savez(tmp_path / "series.npz", data=ts.counts, axis=ts.wavelength)
    store = ingest_spectra(tmp_path / "series.npz", tmp_path / "series.spectra.zarr", mode="timeseries")
    sections = dict(job={"batch_rows": 12}, spectra={"energy_range": [2.3, 2.8]}, fit={"max_peaks": 2})
    cpu_run = run_blocks(pl_job(tmp_path, store, "cpu", "cpu", "lsq", **sections))
    run, fake, setup, end, late = gpu_run(monkeypatch, pl_job(tmp_path, store, "gpu", "gpu", "lsq", **sections))
    assert run.n_blocks == 4 and not late, late
    assert "intensity" in run.results.layout.variables
    assert_same_results(run.output, cpu_run.output, attrs=("energy_median_ev", "n_sample", "n_events"))
    ops = fake.trace.ops
    assert sum(o.nbytes for o in ops if o.kind == "h2d" and o.what == "set") == ts.counts.size * 4
    n_energy = run.prep.energy.size
    assert 0.5 * CHANNELS < n_energy < CHANNELS
    assert [o.dtype.name for o in ops if o.kind == "h2d" and o.shape == (n_energy,)] == ["float64"]
    assert Counter(o.dtype.name for o in ops if o.kind == "h2d" and o.shape == (CHANNELS,)) == {"float64": 2,
                                                                                                "int64": 1}


def preprocess_staged(xp, dtype):
    """Spectra of ``dtype`` through the pinned buffers (two blocks, the second queued while the
    first lands) preprocessed on ``xp``'s device, and the NumPy preprocessing of the same."""
    from gpuproc.pl.job import SpectraSection
    from gpuproc.pl.noise import NoiseModel
    from gpuproc.pl.pipeline import Preprocessor
    from gpuproc.run.device_upload import Uploader

    m = pl_map_pair(SHAPE, CHANNELS, seed=7).first
    counts = np.rint(m.counts.reshape(-1, CHANNELS)).astype(dtype)
    prep = Preprocessor.build(m.wavelength, "nm", np.full(CHANNELS, BIAS_COUNTS + STRAY_COUNTS), SpectraSection(),
                              NoiseModel(1.5, 2.0))
    device = prep.on(xp)
    up = Uploader(xp, counts[:20].nbytes)
    staged = [up.put(counts[:20]), up.put(counts[20:])]
    out = [[v.get() for v in device(up.take(s), xp)] for s in staged]
    return [np.concatenate([o[i] for o in out]) for i in range(4)], prep(counts, np)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_staged_spectra_preprocess_like_the_cpu(monkeypatch, dtype):
    """Under the fake: the device preprocessing of staged spectra equals NumPy's bit for bit."""
    with installed(monkeypatch, FakeCupy()) as fake:
        got, ref = preprocess_staged(fake, dtype)
    assert ref[2].sum() > 0  # cosmic-ray channels replaced
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int32, np.float32])
def test_staged_spectra_preprocess_on_a_real_gpu(dtype):
    """With CuPy itself: staged spectra preprocess as on the CPU (float64 throughout; cupyx's
    filters and reductions may sum in another order: rtol 1e-12), spikes found in the same places."""
    import cupy

    got, ref = preprocess_staged(cupy, dtype)
    for i, (g, r) in enumerate(zip(got, ref)):
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=0, err_msg=str(i))
        else:
            np.testing.assert_array_equal(g, r, err_msg=str(i))
