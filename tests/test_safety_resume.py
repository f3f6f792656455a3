"""Resume tied to what results depend on (issue 9): a PONI or dark whose content changed between
an interrupted run and its resume is refused naming the file and both fingerprints; keys that
change the numbers are named; figures, device, resume and overwrite do not block a resume;
fingerprints follow content and sample large inputs. PL: tests/test_safety_pl.py."""

import os

import fabio.edfimage
import numpy as np
import pytest
from run_helpers import assert_same_results, demo_job, done_marks, job_with_output

from gpuproc.io.store import open_scan, write_scan
from gpuproc.run import fingerprint
from gpuproc.run.outputs import OutputRefused
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


def test_figures_and_device_changes_resume(job_file, tmp_path, monkeypatch):
    job = job_with_output(job_file, tmp_path / "figs.zarr")
    _interrupted(job, monkeypatch)
    calls, finalized = _counting(monkeypatch), []
    monkeypatch.setattr(pipeline.WaxsBlocks, "finalize", lambda self: finalized.append(self.ctx.job.job))
    monkeypatch.setattr(pipeline.WaxsBlocks, "publish", lambda self: None)  # no statistics: nothing to draw
    run_waxs(job_with_output(job_file, tmp_path / "figs.zarr", figures=tmp_path / "figures", device="cpu",
                             overwrite=True))
    assert sorted(calls) == [2, 3, 4, 5]  # resumed (overwrite only replaces what cannot be resumed)
    assert done_marks(tmp_path / "figs.zarr").all()
    assert [(j.figures, j.device) for j in finalized] == [(tmp_path / "figures", "cpu")]


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
