"""``gpuproc waxs ingest | run | prepare | finalize | slurm | synth``: thin wrappers over the Python API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gpuproc.run.cli import JOB_FILE, add_array_commands, execution_options, run_command
from gpuproc.synth import SYNTH_DETECTORS

if TYPE_CHECKING:
    from gpuproc.run.blocks import RunSpec


@click.group()
def waxs() -> None:
    """Scanning X-ray nanodiffraction: frames -> cakes -> Bragg-spot fits -> structural maps."""


@waxs.command()
@click.argument("source", nargs=-1, required=True)
@click.option("-o", "--store", "store", type=click.Path(path_type=Path), required=True,
              help="Zarr store to create (directory).")
@click.option("--scan-shape", nargs=2, type=int, required=True, metavar="NY NX", help="Scan positions.")
@click.option("--order", type=click.Choice(["row", "snake"]), default="row", show_default=True)
@click.option("--step", nargs=2, type=float, default=(1.0, 1.0), show_default=True, metavar="DY DX",
              help="Scan step in um.")
@click.option("--monitor", type=click.Path(exists=True, path_type=Path), default=None,
              help=".npy file with one monitor (I0) value per frame.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
def ingest(source: tuple[str, ...], store: Path, scan_shape: tuple[int, int], order: str,
           step: tuple[float, float], monitor: Path | None, overwrite: bool) -> None:
    """Copy frames into a chunked Zarr scan store. SOURCE: fabio files (EDF/CBF/TIFF, multi-frame
    files give all their frames) or a glob of them, an HDF5/NeXus file (Eiger master with its data
    files, NXdata by @signal/@default) or file.h5::/path/to/dataset."""
    import numpy as np

    from gpuproc.io.store import ingest_frames

    if store.exists() and not overwrite:
        raise click.ClickException(f"scan store already exists: {store} (pass --overwrite to replace it)")
    src = source[0] if len(source) == 1 else list(source)
    mon = np.load(monitor) if monitor is not None else None
    path = ingest_frames(src, store, scan_shape=scan_shape, scan_order=order, step_um=step, monitor=mon,
                         overwrite=overwrite)
    click.echo(f"wrote {path}")


@waxs.command()
@click.argument("job_file", type=JOB_FILE)
@click.option("--progress/--no-progress", default=True, show_default=True)
@execution_options
def run(job_file: Path, progress: bool, **execution: Any) -> None:
    """Run the WAXS job described by JOB_FILE (TOML), or one job-array task's share of it."""
    run_command(_spec(job_file), progress=progress, **execution)


def _spec(job_file: Path) -> RunSpec:
    from gpuproc.waxs.job import load_job
    from gpuproc.waxs.pipeline import run_spec

    return run_spec(load_job(job_file))


add_array_commands(waxs, "waxs", _spec)


@waxs.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--shape", nargs=2, type=int, default=(12, 16), show_default=True, metavar="NY NX")
@click.option("--detector", type=click.Choice(SYNTH_DETECTORS), default="Pilatus100k", show_default=True,
              help="pyFAI detector the frames are rendered on.")
@click.option("--seed", type=int, default=0, show_default=True)
def synth(directory: Path, shape: tuple[int, int], detector: str, seed: int) -> None:
    """Write a synthetic scan with ground truth and a job file that processes it."""
    from gpuproc.waxs.demo_data import write_demo_job

    job, _ = write_demo_job(directory, tuple(shape), detector, seed)
    click.echo(f"wrote {job}; run it with: gpuproc waxs run {job}")
