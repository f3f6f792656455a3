"""Dectris flags in a synthetic Pilatus scan change nothing versus the same pixels masked.

About 1/9 of the pixels of every frame carry -1 (gap) or -2 (bad pixel), as a signed Pilatus CBF
writes them. With pyFAI's detector dummy (-2 +- 1.5, the default) the whole pipeline (cakes,
spot fits, maps) equals that of the same scan with those pixels holding their counts and listed
in ``[integration] mask``, to float32 rounding; with the dummy test off (``dummy = "none"``) the
flags are counted as intensities and the fits move (so the comparison can fail).
"""

import fabio
import numpy as np
import tomli_w
import tomllib

from gpuproc.io.results import open_results
from gpuproc.io.store import write_scan
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.pipeline import run_waxs

FIT_VARS = ("amplitude", "q0", "fwhm_q", "phi0", "fwhm_phi", "chi2")
MAPS = ("a", "b", "strain", "size", "orientation", "disorder")


def run_variant(folder, job: dict, frames: np.ndarray, scan, name: str, **integration) -> object:
    """Run ``job`` on ``frames`` (a copy of the synthetic scan's store) with extra integration keys."""
    store = write_scan(iter([frames]), folder / f"{name}.zarr", n_frames=len(frames), frame_shape=frames.shape[1:],
                       dtype=frames.dtype, scan_shape=scan.shape, step_um=(0.3, 0.3))
    variant = {**job, "job": {**job["job"], "output": f"{name}.results.zarr"}, "input": {"source": store.name},
               "integration": {**job["integration"], **integration}}
    path = folder / f"{name}.toml"
    path.write_text(tomli_w.dumps(variant))
    return open_results(run_waxs(path))


def test_flags_equal_mask_and_matter(tmp_path):
    job_path, scan = write_demo_job(tmp_path, shape=(4, 5), detector="Pilatus100k", seed=4, figures=False,
                                    job_overrides={"device": "cpu"})
    job = tomllib.loads(job_path.read_text())
    counts = scan.stack().astype(np.int32)
    rng = np.random.default_rng(11)
    flagged = rng.random(scan.frame_shape) < 1 / 9
    flags = np.where(rng.random(scan.frame_shape) < 0.5, -1, -2).astype(np.int32)
    flagged_frames = np.where(flagged, flags, counts)
    fabio.edfimage.EdfImage(data=flagged.astype(np.int8)).write(str(tmp_path / "mask.edf"))

    with_flags = run_variant(tmp_path, job, flagged_frames, scan, "flags")
    masked = run_variant(tmp_path, job, counts, scan, "masked", mask="mask.edf")
    ignored = run_variant(tmp_path, job, flagged_frames, scan, "ignored", dummy="none")

    np.testing.assert_array_equal(with_flags["fit_status"].values, masked["fit_status"].values)
    assert (with_flags["fit_status"].values == 0).mean() > 0.8  # most fits converge: a real comparison
    for name in FIT_VARS + tuple(v + "_err" for v in FIT_VARS[:-1]) + MAPS:
        np.testing.assert_allclose(with_flags[name].values, masked[name].values, rtol=1e-5, atol=0,
                                   equal_nan=True, err_msg=name)
    # counted as intensities, the flags move the spots (q0 by several standard errors) and the sizes
    q0_shift = np.abs(ignored["q0"].values - with_flags["q0"].values) / with_flags["q0_err"].values
    assert np.nanmedian(q0_shift) > 2
    assert np.nanmedian(np.abs(ignored["size"].values / with_flags["size"].values - 1)) > 0.05
