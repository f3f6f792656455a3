"""``gpuproc pl ingest | run | prepare | finalize | slurm``: ingest PL spectra into a store, run a
PL job file where it says (or one job-array task's share of it). Thin: parses, calls the API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gpuproc.config import ConfigError
from gpuproc.run.cli import JOB_FILE, add_array_commands, execution_options, run_command

if TYPE_CHECKING:
    from gpuproc.run.blocks import RunSpec


@click.group()
def pl() -> None:
    """Hyperspectral photoluminescence: maps and time series -> per-pixel peak fits -> PL maps."""


@pl.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--data-path", default="data", show_default=True,
              help="Data array in HDF5/NPZ/Zarr sources (or SOURCE as file.h5::/path).")
@click.option("--axis-path", default="axis", show_default=True, help="Spectral-axis array in HDF5/NPZ/Zarr.")
@click.option("--axis-unit", type=click.Choice(["nm", "eV", "cm-1"]), default=None, help="Unit of the axis (default: file's).")
@click.option("--axis", "axis_file", type=click.Path(exists=True, path_type=Path), default=None,
              help="Spectral axis file (.npy or text) for sources without one (.npy).")
@click.option("--laser-nm", type=float, default=None, help="Laser wavelength for Raman-shift axes (default: file's).")
@click.option("--mode", type=click.Choice(["map", "timeseries"]), default=None,
              help="Default: the file's; else 3D data (and single spectra) a map, 2D a time series.")
@click.option("--shape", type=(int, int), default=None, help="NY NX of a map stored as a list of spectra.")
@click.option("--step-um", type=(float, float), default=None, help="DY DX map step in um.")
@click.option("--time-step", type=float, default=None, help="Seconds between spectra of a time series.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
def ingest(source: Path, store: Path, data_path: str, axis_path: str, axis_unit: str | None, axis_file: Path | None,
           laser_nm: float | None, mode: str | None, shape: tuple[int, int] | None,
           step_um: tuple[float, float] | None, time_step: float | None, overwrite: bool) -> None:
    """Copy spectra from SOURCE (HDF5, npy/npz, text, Zarr, SIF, SPE, and rosettasciio's formats:
    WDF, LabSpec XML, hspy, ...) into a Zarr STORE."""
    from gpuproc.pl.ingest import ingest_spectra

    try:
        out = ingest_spectra(source, store, data_path=data_path, axis_path=axis_path, axis=axis_file,
                             axis_unit=axis_unit, laser_nm=laser_nm, mode=mode, shape=shape, step_um=step_um,
                             time_step_s=time_step, overwrite=overwrite)
    except (FileNotFoundError, FileExistsError, ValueError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {out}")


@pl.command()
@click.argument("job_file", type=JOB_FILE)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar.")
@execution_options
def run(job_file: Path, progress: bool, **execution: Any) -> None:
    """Run the PL job described by JOB_FILE (TOML; see examples/pl_map.toml), or one job-array
    task's share of it."""
    spec = _spec(job_file)
    try:
        run_command(spec, progress=progress, **execution)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _spec(job_file: Path) -> RunSpec:
    """The run of JOB_FILE; a bad job file is reported with its file, section and key."""
    from gpuproc.pl.job import load_job
    from gpuproc.pl.pipeline import run_spec

    try:
        return run_spec(load_job(job_file))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


add_array_commands(pl, "pl", _spec)
