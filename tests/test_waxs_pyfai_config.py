"""[integration] pyfai_config: the JSON of pyFAI-integrate / pyFAI-calib2 instead of listing keys.

The reference is pyFAI's own Worker (what pyFAI-integrate runs) configured from the same file.
"""

import json

import fabio
import numpy as np
import pyFAI
import pytest
from pyFAI.io._json import json_dumps
from pyFAI.worker import Worker

from gpuproc.config import ConfigError
from gpuproc.io.store import Scan
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import make_context
from gpuproc.waxs.pyfai_config import integration_keys

STEM = "b_toney_Lab6_thtth_rightside_scan2_0009"
JOB = """
[job]
output = "out.zarr"
device = "cpu"
[input]
source = "frames.zarr"
scan_shape = [1, 1]
[integration]
pyfai_config = "integrate.json"
{extra}
[[reflections]]
name = "110"
hkl = [1, 1, 0]
q_range = [2.05, 2.22]
azimuth_range = [-180, 180]
"""


@pytest.fixture
def lab6(realdata):
    """The LaB6 frame and its pyFAI-calib PONI geometry."""
    path = realdata("waxs", "lab6_tth", STEM + ".tif")
    return fabio.open(str(path)).data, pyFAI.load(str(path.with_suffix(".poni")))


def write_config(folder, ai, shape, **keys) -> dict:
    """integrate.json as pyFAI's Worker writes it (current version), with drawmask-style EDF mask,
    dark and flat beside it (relative names, as pyFAI-integrate writes them)."""
    rng = np.random.default_rng(0)
    mask = ai.detector.mask.astype(bool).copy()
    mask[50:80, 300:700] = True  # a drawn region; non-zero = masked
    fabio.edfimage.EdfImage(data=mask.astype(np.int8)).write(str(folder / "mask.edf"))
    fabio.edfimage.EdfImage(data=rng.uniform(0, 2, shape).astype(np.float32)).write(str(folder / "dark.edf"))
    fabio.edfimage.EdfImage(data=rng.uniform(0.9, 1.1, shape).astype(np.float32)).write(str(folder / "flat.edf"))
    worker = Worker(azimuthalIntegrator=ai, shapeOut=(360, 500), unit="q_A^-1", method=("bbox", "csr", "cython"))
    worker.polarization_factor, worker.radial_range, worker.azimuth_range = 0.99, (1.0, 5.0), (-180, 180)
    config = worker.get_worker_config().as_dict()
    config.update(mask_file="mask.edf", dark_current=["dark.edf"], flat_field="flat.edf", **keys)
    (folder / "integrate.json").write_text(json_dumps(config, indent=2))
    return config


@pytest.mark.realdata
def test_cake_equals_pyfai_worker(tmp_path, lab6, monkeypatch):
    frame, ai = lab6
    config = write_config(tmp_path, ai, frame.shape)
    (tmp_path / "job.toml").write_text(JOB.format(extra=""))
    job = load_job(tmp_path / "job.toml")
    integ = job.integration
    assert (integ.npt_q, integ.npt_azimuth, integ.unit, integ.q_range) == (500, 360, "q_A^-1", (1.0, 5.0))
    assert (integ.split, integ.polarization_factor, integ.mask) == ("bbox", 0.99, tmp_path / "mask.edf")
    ctx = make_context(job, Scan(frames=np.zeros((1, *frame.shape), frame.dtype), attrs={}))
    ours = ctx.integrator.integrate(frame)[0]

    monkeypatch.chdir(tmp_path)  # pyFAI reads the file names relative to the working directory
    worker = Worker()
    worker.set_config(json.loads(json.dumps(config)))
    worker.output = "raw"
    res = worker.process(frame)
    empty = res.count == 0
    assert empty.sum() > 0 and (~empty).sum() > 1000
    np.testing.assert_array_equal(np.isnan(ours), empty)
    np.testing.assert_allclose(ours[~empty], res.intensity[~empty], rtol=2e-6)
    np.testing.assert_allclose(ctx.integrator.q, res.radial, rtol=1e-6)


@pytest.mark.realdata
def test_job_keys_win_over_the_file(tmp_path, lab6):
    frame, ai = lab6
    write_config(tmp_path, ai, frame.shape, val_dummy=-5.0, delta_dummy=0.5)
    extra = 'npt_q = 200\nunit = "q_nm^-1"\nq_range = [10.0, 50.0]\ndummy = "auto"'
    (tmp_path / "job.toml").write_text(JOB.format(extra=extra))
    integ = load_job(tmp_path / "job.toml").integration
    assert (integ.npt_q, integ.unit, integ.q_range) == (200, "q_nm^-1", (10.0, 50.0))
    assert (integ.dummy, integ.delta_dummy) == ("auto", None)  # the job's dummy, without the file's tolerance
    assert integ.npt_azimuth == 360 and integ.flat == tmp_path / "flat.edf"  # the rest from the file
    keys = integration_keys(tmp_path / "integrate.json")
    assert (keys["dummy"], keys["delta_dummy"]) == (-5.0, 0.5)


@pytest.mark.realdata
def test_version1_file_with_poni_path(tmp_path, realdata):
    """A version-1 file (PONI path, flat keys, legacy method string, do_* switches)."""
    poni = realdata("waxs", "lab6_tth", STEM + ".poni")
    (tmp_path / "geometry.poni").write_text(poni.read_text())
    (tmp_path / "integrate.json").write_text(json.dumps({
        "poni": "geometry.poni", "nbpt_rad": 800, "nbpt_azim": 90, "unit": "q_nm^-1", "do_2D": True,
        "do_radial_range": True, "radial_range_min": 10.0, "radial_range_max": 40.0, "method": "csr",
        "do_polarization": True, "polarization_factor": 0.95, "do_dummy": True, "val_dummy": -1, "delta_dummy": 0.5,
        "do_mask": False, "mask_file": "not-used.edf",
    }))
    keys = integration_keys(tmp_path / "integrate.json")
    # pyFAI's Worker runs the legacy "csr" as (no split, CSR) in 2D: so does gpuproc
    assert keys == {"npt_q": 800, "npt_azimuth": 90, "unit": "q_nm^-1", "q_range": (10.0, 40.0), "split": "no",
                    "polarization_factor": 0.95, "dummy": -1.0, "delta_dummy": 0.5}


@pytest.mark.realdata
def test_non_q_unit_needs_the_jobs_q_range(tmp_path, lab6):
    frame, ai = lab6
    write_config(tmp_path, ai, frame.shape, unit="2th_deg")
    (tmp_path / "job.toml").write_text(JOB.format(extra=""))
    with pytest.raises(ConfigError, match=r"integrate\.json: radial unit 2th_deg is not a q unit"):
        load_job(tmp_path / "job.toml")
    (tmp_path / "job.toml").write_text(JOB.format(extra='unit = "q_A^-1"\nq_range = [1.0, 5.0]'))
    assert load_job(tmp_path / "job.toml").integration.q_range == (1.0, 5.0)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a pyFAI integration JSON"),
    ('{"poni": {"dist": 0.1, "poni1": 0, "poni2": 0, "wavelength": 1e-10, "detector": "Pilatus1M"}, '
     '"polarization_description": [0.9, 1.0]}', "polarization offset 1.0 is not supported"),
])
def test_bad_files_name_the_file(tmp_path, content, message):
    (tmp_path / "integrate.json").write_text(content)
    (tmp_path / "job.toml").write_text(JOB.format(extra='q_range = [1.0, 2.0]'))
    with pytest.raises(ConfigError, match=rf"integrate\.json.*{message}"):
        load_job(tmp_path / "job.toml")


def test_missing_file_and_missing_geometry(tmp_path):
    (tmp_path / "job.toml").write_text(JOB.format(extra='q_range = [1.0, 2.0]'))
    with pytest.raises(ConfigError, match=r"integrate\.json: file not found"):
        load_job(tmp_path / "job.toml")
    (tmp_path / "job.toml").write_text(JOB.format(extra="").replace('pyfai_config = "integrate.json"',
                                                                    "q_range = [1.0, 2.0]"))
    with pytest.raises(ConfigError, match="needs poni or pyfai_config"):
        load_job(tmp_path / "job.toml")
