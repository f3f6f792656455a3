"""``gpuproc --help`` and the building of the command line import only what they need: none of
the run machinery (zarr, dask, pyFAI, SciPy, matplotlib, the fitting engine); a run from a scan
store imports neither dask (its zarr array is read directly) nor what only figures and reports
use (issue 16: fixed cost of a run)."""

import subprocess
import sys

from click.testing import CliRunner
from run_helpers import demo_job

from gpuproc.cli import main

HEAVY = ("zarr", "dask", "pyFAI", "scipy", "matplotlib", "h5py", "gpuproc.fit", "gpuproc.run.executor")
#: not needed by a run without figures from a scan store (dask.array alone takes ~1 s to import)
NOT_IN_A_RUN = ("dask", "distributed", "xarray", "pandas", "matplotlib", "gpuproc.report")


def _loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """The ``modules`` a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()


def test_cli_imports_no_run_machinery():
    assert _loaded_after("import gpuproc.cli", HEAVY) == []


def test_pipelines_import_no_dask_nor_figures():
    assert _loaded_after("import gpuproc.waxs.pipeline, gpuproc.pl.pipeline", NOT_IN_A_RUN) == []


def test_pl_pipeline_imports_no_scipy_optimize_nor_ndimage():
    """Time-series response fits (curve_fit) and map-pair registration (scikit-image, ndimage) import
    SciPy's optimisers and ndimage when they run (~0.6 s of a PL map run's start)."""
    heavy = ("scipy.optimize", "scipy.ndimage", "skimage", "pyFAI")
    assert _loaded_after("import gpuproc.pl.pipeline", heavy) == []


def test_waxs_pipeline_imports_no_pyfai_nor_file_readers():
    """pyFAI (~1.3 s with the SciPy modules it loads), scipy.stats (~1 s) and the frame-file readers
    are imported when a run needs them: a matrix to build, statistics, frames from files
    (tests/test_geometry_record.py runs a repeated WAXS run that needs none of them)."""
    heavy = ("pyFAI", "scipy.stats", "scipy.optimize", "scipy.signal", "fabio", "h5py", "hdf5plugin")
    assert _loaded_after("import gpuproc.waxs.pipeline", heavy) == []


def test_waxs_run_from_a_store_loads_no_dask(tmp_path):
    job = demo_job(tmp_path)  # a scan store, figures off
    code = f"from gpuproc.waxs.pipeline import run_waxs\nrun_waxs({str(job)!r})"
    assert _loaded_after(code, NOT_IN_A_RUN) == []
    assert (tmp_path / "results.zarr").is_dir()


def test_version_and_lazy_api():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "gpuproc, version" in result.output
    import gpuproc
    from gpuproc.fit import FitResult, Status, fit

    assert gpuproc.Status is Status and gpuproc.FitResult is FitResult and gpuproc.fit.fit is fit


def test_a_command_exits_with_the_heap_frozen():
    """At the exit of a process that ran a command, the interpreter's last garbage collection skips
    the objects alive (gc.freeze, an exit hook); the command itself changes nothing."""
    code = ("import atexit, gc\nfrom gpuproc.cli import main\n"
            "atexit.register(lambda: print('at exit', gc.get_freeze_count() > 1000))  # runs after later ones\n"
            "main(['pl', 'run', '--help'], standalone_mode=False)\nprint('after the command', gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-2:] == ["after the command 0", "at exit True"]
