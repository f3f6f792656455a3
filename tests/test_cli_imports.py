"""``gpuproc --help`` and the building of the command line import only what they need: none of
the run machinery (zarr, dask, pyFAI, SciPy, matplotlib, the fitting engine)."""

import subprocess
import sys

from click.testing import CliRunner

from gpuproc.cli import main

HEAVY = ("zarr", "dask", "pyFAI", "scipy", "matplotlib", "h5py", "gpuproc.fit", "gpuproc.run.executor")


def test_cli_imports_no_run_machinery():
    code = ("import sys, gpuproc.cli; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_version_and_lazy_api():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "gpuproc, version" in result.output
    import gpuproc
    from gpuproc.fit import FitResult, Status, fit

    assert gpuproc.Status is Status and gpuproc.FitResult is FitResult and gpuproc.fit.fit is fit
