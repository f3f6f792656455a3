"""Outputs that must never be written (issue 9): a user's folder, the scan store, ".", a parent of
the job's folder; a results store with the user's files in it; replacing a store needs overwrite.
Each case leaves a sentinel file that must still exist, and is refused before any work."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import tomli_w
from run_helpers import demo_job, job_with_output

from gpuproc.io.results import open_results
from gpuproc.io.store import ingest_frames, open_scan, write_scan
from gpuproc.pl.ingest import ingest_spectra
from gpuproc.pl.pipeline import run_pl
from gpuproc.run.outputs import OutputRefused
from gpuproc.waxs import pipeline
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import run_waxs


@pytest.fixture(scope="module")
def job_file(tmp_path_factory):
    """A small synthetic WAXS job in its own folder (scan.zarr, geometry.poni, job.toml)."""
    return demo_job(tmp_path_factory.mktemp("safe") / "project")


@pytest.fixture
def no_work(monkeypatch):
    """Any integration set-up (the first work of a WAXS run) fails the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(pipeline, "make_context", forbidden)


def _sentinel(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "my_notes.txt"
    path.write_text("irreplaceable")
    return path


def _intact(job_file: Path) -> None:
    """The job's own files are untouched."""
    assert job_file.is_file()
    assert (job_file.parent / "geometry.poni").is_file()
    assert open_scan(job_file.parent / "scan.zarr").frames.shape[0] == 48


def test_a_user_folder_is_refused(job_file, tmp_path, no_work):
    sentinel = _sentinel(tmp_path / "mine")
    for overwrite in (False, True):
        with pytest.raises(OutputRefused, match=r"mine: refusing to write there: it is a folder with 1 entries "
                                                r"\(my_notes.txt\) that gpuproc did not write"):
            run_waxs(job_with_output(job_file, tmp_path / "mine", overwrite=overwrite))
    assert sentinel.read_text() == "irreplaceable"
    assert not (tmp_path / "mine.lock").exists()


def test_the_scan_store_is_refused_as_output(job_file, no_work):
    for overwrite in (False, True):
        with pytest.raises(OutputRefused, match=r"scan.zarr: refusing to write there: it is the input input.source"):
            run_waxs(job_with_output(job_file, job_file.parent / "scan.zarr", overwrite=overwrite))
    _intact(job_file)


def test_dot_and_parents_of_the_job_folder_are_refused(job_file, no_work, monkeypatch):
    sentinel = _sentinel(job_file.parent / "notes")
    text = job_file.read_text()
    for output, reason in ((".", "it holds the input"), ("..", "it holds the input")):
        job = job_file.with_name(f"dot{len(output)}.toml")
        job.write_text(text.replace('output = "results.zarr"', f'output = "{output}"'))
        with pytest.raises(OutputRefused, match=reason):
            run_waxs(job)
    monkeypatch.chdir(job_file.parent)
    cfg = load_job(job_file)
    cfg.job.output, cfg.job.overwrite = Path("."), True
    with pytest.raises(OutputRefused, match="it is the current folder"):
        run_waxs(cfg)
    cfg.job.output = Path("..")
    with pytest.raises(OutputRefused, match="the current folder or a folder above it"):
        run_waxs(cfg)
    assert sentinel.read_text() == "irreplaceable"
    _intact(job_file)


def test_replacing_a_results_store_needs_overwrite_and_spares_foreign_files(job_file, tmp_path):
    out = tmp_path / "results.zarr"
    run_waxs(job_with_output(job_file, out))
    with pytest.raises(OutputRefused, match=r"resume = false; set \[job\] overwrite = true"):
        run_waxs(job_with_output(job_file, out, resume=False))
    assert open_results(out).attrs["complete"]
    sentinel = out / "my_notes.txt"
    sentinel.write_text("irreplaceable")
    with pytest.raises(OutputRefused, match=r"holds files gpuproc did not write \(my_notes.txt\)"):
        run_waxs(job_with_output(job_file, out, resume=False, overwrite=True))
    assert sentinel.read_text() == "irreplaceable"
    sentinel.unlink()
    run_waxs(job_with_output(job_file, out, resume=False, overwrite=True))  # now it may be replaced
    assert open_results(out).attrs["complete"]


def test_a_results_store_of_the_other_pipeline_is_refused(job_file, tmp_path):
    waxs_results = run_waxs(job_with_output(job_file, tmp_path / "results.zarr"))
    spectra = tmp_path / "map.npz"
    np.savez(spectra, data=np.ones((2, 2, 8)), axis=np.linspace(500, 600, 8))
    job = tmp_path / "pl.toml"
    job.write_text(tomli_w.dumps({"job": {"output": "results.zarr", "device": "cpu", "overwrite": True},
                                  "input": {"source": "map.npz"}}))
    with pytest.raises(OutputRefused, match="it is a gpuproc waxs results store"):
        run_pl(job, progress=False)
    assert open_results(waxs_results).attrs["complete"]
    assert not (tmp_path / "results.spectra.zarr").exists()  # refused before the ingest


def test_ingest_targets_follow_the_same_rules(tmp_path):
    frames = np.arange(4 * 6 * 5, dtype=np.uint16).reshape(4, 6, 5)

    def write(target, **kw):
        return write_scan([frames], target, n_frames=4, frame_shape=(6, 5), dtype=np.uint16, scan_shape=(2, 2), **kw)

    sentinel = _sentinel(tmp_path / "mine")
    with pytest.raises(OutputRefused, match="mine: refusing to write there: it is a folder with 1 entries"):
        write(tmp_path / "mine", overwrite=True)
    assert sentinel.read_text() == "irreplaceable"
    assert not list(tmp_path.glob("mine.*partial")) and not (tmp_path / "mine.lock").exists()
    store = write(tmp_path / "scan.zarr")
    with pytest.raises(FileExistsError):
        write(store)
    write(store, overwrite=True)  # a gpuproc scan store may be replaced with overwrite
    assert open_scan(store).frames.shape == (4, 6, 5)
    h5 = tmp_path / "raw" / "frames.h5"
    h5.parent.mkdir()
    with h5py.File(h5, "w") as f:
        f["data"] = frames
    for target, reason in ((h5, "it is the input"), (h5.parent, "it holds the input")):
        with pytest.raises(OutputRefused, match=reason):
            ingest_frames(f"{h5}::/data", target, scan_shape=(2, 2), overwrite=True)
    assert h5py.File(h5, "r")["data"].shape == (4, 6, 5)
    spectra = tmp_path / "spectra.npz"
    np.savez(spectra, data=np.ones((2, 2, 8)), axis=np.linspace(500, 600, 8))
    with pytest.raises(OutputRefused, match="it is a gpuproc scan store"):
        ingest_spectra(spectra, store, overwrite=True)
    assert open_scan(store).frames.shape == (4, 6, 5)


def test_pl_spectra_store_next_to_the_output_is_checked(tmp_path):
    spectra = tmp_path / "map.npz"
    np.savez(spectra, data=np.ones((2, 2, 8)), axis=np.linspace(500, 600, 8))
    sentinel = _sentinel(tmp_path / "out.spectra.zarr")
    job = tmp_path / "job.toml"
    job.write_text(tomli_w.dumps({"job": {"output": "out.zarr", "device": "cpu", "overwrite": True},
                                  "input": {"source": "map.npz"}}))
    with pytest.raises(OutputRefused, match=r"out.spectra.zarr: refusing to write there: it is a folder"):
        run_pl(job, progress=False)
    assert sentinel.read_text() == "irreplaceable"


def test_cli_refusals_are_one_line_and_overwrite_replaces(job_file, tmp_path):
    from click.testing import CliRunner
    from run_helpers import variant

    from gpuproc.cli import main

    job = variant(job_file, "cli_overwrite", resume=False)
    out = job.with_name("cli_overwrite.zarr")
    cli = CliRunner()
    run = ["waxs", "run", str(job), "--no-progress"]
    assert cli.invoke(main, run).exit_code == 0
    refused = cli.invoke(main, run)
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1].startswith(f"Error: {out}: a gpuproc waxs results store exists")
    assert cli.invoke(main, [*run, "--overwrite"]).exit_code == 0
    assert open_results(out).attrs["complete"]
