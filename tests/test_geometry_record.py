"""A PONI file's geometry is recorded beside the integration matrix (gpuproc.waxs.geometry_record):
a repeated run integrates bit for bit as the first without importing pyFAI, and a changed PONI
file, a replaced detector file or other ranges give a new record."""

import json
import os
import subprocess
import sys

import numpy as np
import pyFAI
import pyFAI.detectors
import pytest
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from run_helpers import demo_job

from gpuproc.waxs import geometry_record, matrix_cache
from gpuproc.waxs.integrate import CakeIntegrator

DETECTOR = pyFAI.detectors.detector_factory("Pilatus300k")  # three modules: gaps in its own mask
SHAPE = DETECTOR.shape


def _poni(path, dist=0.1):
    AzimuthalIntegrator(dist=dist, poni1=0.05, poni2=0.04, rot1=0.02, detector=DETECTOR,
                        wavelength=1e-10).write(str(path))
    return path


def _integrator(geometry, **kw):
    return CakeIntegrator(geometry, npt_q=40, npt_azimuth=36, q_range=(0.3, 4.0), split="bbox", device="cpu",
                          threads=1, polarization_factor=0.95, **kw)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv(matrix_cache.ENV_DIR, str(tmp_path / "cache"))
    return tmp_path / "cache" / "csr"


@pytest.mark.parametrize("azimuth_range", [(-180.0, 180.0), (90.0, 270.0)])  # the second moves chi's seam
def test_recorded_geometry_integrates_as_pyfai_loaded(cache, tmp_path, azimuth_range):
    poni = _poni(tmp_path / "g.poni")
    frames = np.random.default_rng(0).poisson(40.0, (3, *SHAPE)).astype(np.int32)
    frames[:, 10, 20] = -2  # a Pilatus flag: the recorded dummies must catch it
    built = _integrator(str(poni), azimuth_range=azimuth_range)
    recorded = _integrator(str(poni), azimuth_range=azimuth_range)
    assert built._ai is not None and recorded._ai is None  # the second never loaded pyFAI's geometry
    direct = _integrator(AzimuthalIntegrator.sload(str(poni)), azimuth_range=azimuth_range)
    for other in (recorded, direct):
        for a, b in zip(built.integrate_sums(frames), other.integrate_sums(frames)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(built.q, other.q)
        np.testing.assert_array_equal(built.azimuth, other.azimuth)
        np.testing.assert_array_equal(built._static, other._static)
        assert built.beam_centre_px == other.beam_centre_px
    gaps = DETECTOR.mask.astype(bool)
    assert gaps.any() and recorded._static.reshape(SHAPE)[gaps].all()  # the detector's mask, from the record
    assert recorded.ai.chiDiscAtPi == built.ai.chiDiscAtPi  # loaded on demand, with the same seam


def test_changed_poni_or_detector_file_or_ranges_give_a_new_record(cache, tmp_path):
    poni = _poni(tmp_path / "g.poni")
    key = geometry_record.key_of(poni, q_range=[0.3, 3.0], unit="q_A^-1")
    assert geometry_record.key_of(poni, q_range=[0.3, 3.0], unit="q_A^-1") == key
    assert geometry_record.key_of(poni, q_range=[0.3, 3.1], unit="q_A^-1") != key
    _poni(poni, dist=0.101)
    assert geometry_record.key_of(poni, q_range=[0.3, 3.0], unit="q_A^-1") != key
    spline = tmp_path / "detector.spline"
    spline.write_text("one")
    text = poni.read_text()
    poni.write_text(text + f"SplineFile: {spline.name}\n")  # a file the PONI names, relative to it
    named = geometry_record.key_of(poni, q_range=[0.3, 3.0], unit="q_A^-1")
    spline.write_text("another detector file")
    assert geometry_record.key_of(poni, q_range=[0.3, 3.0], unit="q_A^-1") != named
    _poni(poni, dist=0.1)
    first = _integrator(str(poni))
    _poni(poni, dist=0.12)
    second = _integrator(str(poni))
    assert second._ai is not None  # rebuilt by pyFAI
    assert not np.array_equal(first.q, second.q) or not np.array_equal(first.norm, second.norm)


def test_corrupt_record_is_rebuilt(cache, tmp_path):
    poni = _poni(tmp_path / "g.poni")
    reference = _integrator(str(poni))
    for entry in cache.glob("*.npz"):
        if "meta" in np.load(entry).files:
            entry.write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again = _integrator(str(poni))
    np.testing.assert_array_equal(again.norm, reference.norm)


#: runs the job argv[1] and prints which heavy modules the process loaded
RUN = """
import sys, json
from gpuproc.waxs.pipeline import run_waxs
run_waxs(sys.argv[1])
print(json.dumps(sorted({m.split('.')[0] + '.' + m.split('.')[1] if m.count('.') else m for m in sys.modules
                         if m.split('.')[0] in ('pyFAI', 'fabio', 'h5py') or m.startswith('scipy.stats')})))
"""


def test_repeated_run_imports_no_pyfai_and_gives_the_same_results(tmp_path):
    import zarr

    job = demo_job(tmp_path / "run")
    env = {**os.environ, matrix_cache.ENV_DIR: str(tmp_path / "cache")}
    loaded, outputs = [], []
    for name in ("first", "second"):
        text = job.read_text().replace('output = "results.zarr"', f'output = "{name}.zarr"')
        assert text != job.read_text()
        path = job.with_name(f"{name}.toml")
        path.write_text(text)
        done = subprocess.run([sys.executable, "-c", RUN, str(path)], capture_output=True, text=True, env=env,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        loaded.append(json.loads(done.stdout.strip().splitlines()[-1]))
        outputs.append(zarr.open_group(path.with_name(f"{name}.zarr"), mode="r"))
    assert "pyFAI" in loaded[0]  # the first run built the matrix with pyFAI
    assert loaded[1] == [], loaded[1]  # the repeated one needed none of them
    for name in ("q0", "fwhm_q", "phi0", "fwhm_phi", "a", "strain", "mean_cake", "mean_frame"):
        np.testing.assert_array_equal(outputs[0][name][...], outputs[1][name][...], err_msg=name)
    assert outputs[0]["mean_frame"].attrs["beam_centre_px"] == outputs[1]["mean_frame"].attrs["beam_centre_px"]


@pytest.mark.realdata
@pytest.mark.parametrize("index", ["0009", "0023"])
def test_real_pyfai_calib_poni_recorded(realdata, cache, index):
    """A real pyFAI-calib PONI of a Pilatus 300KW (LaB6 2theta scan): the record gives the same
    detector gaps, beam centre and cakes of the real frame as the integrator pyFAI loads."""
    import fabio

    tiff = realdata("waxs", "lab6_tth", f"b_toney_Lab6_thtth_rightside_scan2_{index}.tif")
    poni = tiff.with_suffix(".poni")
    frame = fabio.open(str(tiff)).data
    kw = dict(npt_q=200, npt_azimuth=45, q_range=(1.0, 3.1), split="bbox", device="cpu", threads=1)
    built, recorded = CakeIntegrator(str(poni), **kw), CakeIntegrator(str(poni), **kw)
    assert recorded._ai is None
    ai = pyFAI.load(str(poni))
    direct = CakeIntegrator(ai, **kw)
    gaps = ai.detector.mask.astype(bool)
    assert gaps.any() and recorded._static.reshape(recorded.shape)[gaps].all()
    assert recorded.beam_centre_px == pytest.approx([ai.getFit2D()["centerY"], ai.getFit2D()["centerX"]])
    for other in (recorded, direct):
        for a, b in zip(built.integrate_sums(frame), other.integrate_sums(frame)):
            np.testing.assert_array_equal(a, b)
