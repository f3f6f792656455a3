"""Resume tied to what results depend on (issue 9): a PONI or dark whose content changed between
an interrupted run and its resume is refused naming the file and both fingerprints; keys that
change the numbers are named; figures, device, resume and overwrite do not block a resume; a
replaced PL source is re-ingested, never reused stale; fingerprints of stores sample them."""

import os
import time

import fabio.edfimage
import numpy as np
import pytest
import tomli_w
from run_helpers import assert_same_results, demo_job, done_marks, job_with_output

from gpuproc.io.results import open_results
from gpuproc.io.store import open_scan, write_scan
from gpuproc.pl.ingest import open_spectra
from gpuproc.pl.pipeline import run_pl
from gpuproc.run import fingerprint
from gpuproc.run.outputs import OutputRefused
from gpuproc.synth.pl import pl_map, pl_map_pair
from gpuproc.waxs import pipeline
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import run_waxs


def _interrupted(job, monkeypatch, after: int = 2) -> None:
    """Run ``job`` until ``after`` blocks are written, then stop it as a kill would."""
    real, calls = pipeline.WaxsBlocks.run_block, []

    def run_block(self, block):
        if len(calls) == after:
            raise KeyboardInterrupt("simulated kill")
        calls.append(block)
        real(self, block)

    with monkeypatch.context() as m:
        m.setattr(pipeline.WaxsBlocks, "run_block", run_block)
        with pytest.raises(KeyboardInterrupt):
            run_waxs(job)
    assert done_marks(job.job.output).sum() == after


def _counting(monkeypatch) -> list[int]:
    """Blocks computed from now on."""
    real, calls = pipeline.WaxsBlocks.run_block, []

    def run_block(self, block):
        calls.append(block)
        real(self, block)

    monkeypatch.setattr(pipeline.WaxsBlocks, "run_block", run_block)
    return calls


def test_changed_poni_or_dark_refuses_the_resume(tmp_path, monkeypatch):
    job_file = demo_job(tmp_path)
    dark = tmp_path / "dark.edf"
    frame_shape = open_scan(tmp_path / "scan.zarr").frames.shape[1:]
    fabio.edfimage.EdfImage(data=np.zeros(frame_shape, np.float32)).write(str(dark))
    job = load_job(job_file)
    job.integration.dark = dark
    _interrupted(job, monkeypatch)
    marks = done_marks(job.job.output)

    fabio.edfimage.EdfImage(data=np.ones(frame_shape, np.float32)).write(str(dark))
    with pytest.raises(OutputRefused, match=r"input integration.dark changed \(sha256:\w+ \(\d+ B\) -> sha256:\w+"):
        run_waxs(job)
    fabio.edfimage.EdfImage(data=np.zeros(frame_shape, np.float32)).write(str(dark))  # the same content again

    poni = tmp_path / "geometry.poni"
    text = poni.read_text()
    distance = float(next(line for line in text.splitlines() if line.startswith("Distance:")).split(":")[1])
    poni.write_text(text.replace(f"Distance: {distance}", f"Distance: {distance * 1.01}"))
    with pytest.raises(OutputRefused, match=r"input integration.poni changed \(sha256:\w+ \(\d+ B\) -> sha256:\w+"):
        run_waxs(job)
    np.testing.assert_array_equal(done_marks(job.job.output), marks)  # nothing was written or wiped

    poni.write_text(text)
    calls = _counting(monkeypatch)
    run_waxs(job)  # the inputs are as they were: it resumes
    assert len(calls) == 4


def test_keys_that_change_the_numbers_are_named(job_file, tmp_path, monkeypatch):
    job = job_with_output(job_file, tmp_path / "keys.zarr")
    _interrupted(job, monkeypatch)
    changed = job_with_output(job_file, tmp_path / "keys.zarr")
    changed.integration.npt_q += 10
    with pytest.raises(OutputRefused, match=rf"\[integration\] npt_q changed \({job.integration.npt_q} -> "
                                            rf"{changed.integration.npt_q}\); set \[job\] overwrite = true"):
        run_waxs(changed)
    changed.job.overwrite = True
    calls = _counting(monkeypatch)
    run_waxs(changed)  # overwrite starts afresh
    assert len(calls) == 6


def test_resume_false_then_true_resumes(job_file, reference, tmp_path, monkeypatch):
    job = job_with_output(job_file, tmp_path / "fresh.zarr", resume=False)
    _interrupted(job, monkeypatch)
    calls = _counting(monkeypatch)
    run_waxs(job_with_output(job_file, tmp_path / "fresh.zarr", resume=True))
    assert sorted(calls) == [2, 3, 4, 5]
    assert_same_results(tmp_path / "fresh.zarr", reference)


def test_figures_device_and_executor_changes_resume(job_file, reference, tmp_path, monkeypatch):
    job = job_with_output(job_file, tmp_path / "figs.zarr")
    _interrupted(job, monkeypatch)
    calls = _counting(monkeypatch)
    run_waxs(job_with_output(job_file, tmp_path / "figs.zarr", figures=tmp_path / "figures", device="cpu",
                             overwrite=True))
    assert len(calls) == 4  # resumed (overwrite only replaces what cannot be resumed)
    assert (tmp_path / "figures").is_dir()
    assert_same_results(tmp_path / "figs.zarr", reference)


def _pl_job(directory, seed: int):
    m = pl_map((12, 12), 128, seed=seed)  # seeds 0 and 1 (some small maps make NaN intensities)
    np.savez(directory / "map.npz", data=m.counts, axis=m.wavelength)
    job = directory / "pl.toml"
    job.write_text(tomli_w.dumps({"job": {"output": "pl.zarr", "device": "cpu", "batch_rows": 4},
                                  "input": {"source": "map.npz"}, "fit": {"max_peaks": 1}}))
    return job


def test_replaced_pl_source_is_reingested_not_reused(tmp_path):
    job = _pl_job(tmp_path, seed=0)
    first = open_results(run_pl(job, progress=False))["energy"].values
    spectra = tmp_path / "pl.spectra.zarr"
    first_id = open_spectra(spectra).attrs["store_id"]
    time.sleep(0.01)
    _pl_job(tmp_path, seed=1)  # the source replaced under the same name
    with pytest.raises(OutputRefused, match=r"input input.source changed \(sha256:\w+ \(\d+ B\) -> sha256:"):
        run_pl(job, progress=False)
    text = job.read_text()
    job.write_text(text.replace("batch_rows = 4", "batch_rows = 4\nresume = false\noverwrite = true"))
    second = open_results(run_pl(job, progress=False))["energy"].values
    assert open_spectra(spectra).attrs["store_id"] != first_id  # re-ingested
    assert not np.array_equal(second, first, equal_nan=True)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    os.rename(tmp_path / "map.npz", fresh / "map.npz")
    (fresh / "pl.toml").write_text(text)
    assert_same_results(run_pl(fresh / "pl.toml", progress=False), tmp_path / "pl.zarr", attrs=())


def test_pl_fresh_run_with_a_second_map(tmp_path):
    """resume = false computes both maps once; running it again needs overwrite."""
    pair = pl_map_pair((8, 8), 256, seed=3)
    for name, m in (("first", pair.first), ("second", pair.second)):
        np.savez(tmp_path / f"{name}.npz", data=m.counts, axis=m.wavelength)
    job = tmp_path / "shift.toml"
    keys = {"output": "shift.zarr", "device": "cpu", "batch_rows": 4, "resume": False}
    job.write_text(tomli_w.dumps({"job": keys, "input": {"source": "first.npz", "second": "second.npz"},
                                  "fit": {"max_peaks": 1}}))
    assert "shift_mev" in open_results(run_pl(job, progress=False))
    with pytest.raises(OutputRefused, match=r"shift_second.zarr: a gpuproc pl results store exists and \[job\] "
                                            r"resume = false"):
        run_pl(job, progress=False)
    text = job.read_text()
    job.write_text(text.replace("resume = false", "resume = false\noverwrite = true"))
    assert "shift_mev" in open_results(run_pl(job, progress=False))


def test_fingerprints_follow_content_and_sample_large_inputs(tmp_path):
    small = tmp_path / "geometry.poni"
    small.write_text("Distance: 0.1\n")
    before = fingerprint.fingerprint(small)
    os.utime(small, (1, 1))
    assert fingerprint.fingerprint(small) == before  # touching a small file changes nothing
    small.write_text("Distance: 0.2\n")
    assert fingerprint.fingerprint(small) != before

    large = tmp_path / "frames.h5"
    large.write_bytes(bytes(fingerprint.SMALL_FILE_BYTES + 1))
    before, stat = fingerprint.fingerprint(large), large.stat()
    with large.open("r+b") as f:
        f.seek(100)
        f.write(b"x")
    os.utime(large, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint.fingerprint(large) != before  # the header is hashed, even with the old mtime
    with large.open("r+b") as f:
        f.seek(100)
        f.write(b"\0")
    os.utime(large, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint.fingerprint(large) == before
    os.utime(large, (1, 1))
    assert fingerprint.fingerprint(large) != before  # and so are size and mtime

    frames = np.arange(8 * 4 * 4, dtype=np.uint16).reshape(8, 4, 4)
    store = write_scan([frames], tmp_path / "scan.zarr", n_frames=8, frame_shape=(4, 4), dtype=np.uint16,
                       scan_shape=(2, 4), chunk_frames=1)
    before = fingerprint.fingerprint(store)
    assert before == fingerprint.fingerprint(store)
    write_scan([frames], store, n_frames=8, frame_shape=(4, 4), dtype=np.uint16, scan_shape=(2, 4), chunk_frames=1,
               overwrite=True)
    assert fingerprint.fingerprint(store) != before  # re-ingested: a new store_id
    assert fingerprint.fingerprint(tmp_path / "absent.poni") == "missing"
