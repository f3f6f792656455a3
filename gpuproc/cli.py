"""Command line: ``gpuproc demo | export | report | waxs ... | pl ...``. Thin: parses, calls the API.

Commands import what they need when they run, so ``gpuproc --help`` and the start of a run do
not pay for the rest (zarr, the fitting engine, pyFAI, matplotlib, dask).
"""

from __future__ import annotations

import click

from gpuproc.backend import DEVICES
from gpuproc.cli_errors import UserErrorGroup


@click.group(cls=UserErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpuproc", prog_name="gpuproc")  # looked up when asked
@click.option("--debug", is_flag=True, help="Show the traceback of an error instead of one Error: line.")
def main(debug: bool) -> None:
    """gpuproc: fit peaks at every position of scanning X-ray diffraction and PL datasets, on GPU or CPU."""
    import atexit
    import gc

    from gpuproc.run.heap import limit_arenas

    limit_arenas()  # before the run's threads allocate: freed frame buffers are reused across them
    # at the process's exit, before the interpreter's last garbage collection, which then skips the
    # objects alive (every imported module: ~0.2 s of a WAXS run's exit, a third of it SciPy's)
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


@main.command()
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True, help="Where to fit.")
@click.option("-n", "--n-fits", type=click.IntRange(1), default=20000, show_default=True,
              help="Number of synthetic spectra (a quarter as many Bragg spots).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--out", type=click.Path(file_okay=False), default="demo-output", show_default=True,
              help="Directory for the synthetic data, results and figures.")
def demo(device: str, n_fits: int, seed: int, out: str) -> None:
    """Synthetic data with known answers: analyse it and print recovered versus true."""
    from gpuproc import __version__
    from gpuproc import demo as demo_module
    from gpuproc.backend import resolve_device

    click.echo(f"gpuproc {__version__} demo on {resolve_device(device)}")
    demo_module.run(device=device, n=n_fits, seed=seed, out=out)


@main.command()
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
def export(results: str, out: str) -> None:
    """Write a finished results store as one NeXus/HDF5 file (silx view, PyMca, DAWN open it)."""
    from gpuproc.io.nexus import export_nexus

    click.echo(f"wrote {export_nexus(results, out)}")


@main.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the figures and report.html [default: RESULTS_report next to RESULTS].")
def report(results: str, out: str | None) -> None:
    """Redraw every figure of a finished results store and write a self-contained report.html."""
    from pathlib import Path

    from gpuproc.report.html import write_report

    folder = Path(out) if out else Path(results).with_name(Path(results).name.removesuffix(".zarr") + "_report")
    click.echo(write_report(results, folder))


from gpuproc.waxs.cli import waxs  # noqa: E402

main.add_command(waxs)

from gpuproc.pl.cli import pl  # noqa: E402

main.add_command(pl)

if __name__ == "__main__":
    main()
