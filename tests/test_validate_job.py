"""Values that used to turn a scan into NaN or a library traceback are refused up front, each with
one line naming the key (or file) and the allowed range."""

import h5py
import numpy as np
import pytest

from gpuproc.config import ConfigError
from gpuproc.pl.ingest import ingest_spectra
from gpuproc.pl.job import job_from_dict
from gpuproc.waxs.integrate import load_geometry
from gpuproc.waxs.job import load_job

PONI = """poni_version: 2.1
Detector: Pilatus100k
Detector_config: {{}}
Distance: {distance}
Poni1: 0.01
Poni2: 0.01
Rot1: 0.0
Rot2: 0.0
Rot3: 0.0
Wavelength: {wavelength}
"""


def waxs_job(**sections):
    job = {
        "job": {"output": "out.zarr"},
        "input": {"source": "scan.zarr"},
        "integration": {"poni": "g.poni", "q_range": [1.0, 2.0]},
        "reflections": [{"name": "100", "hkl": [1, 0, 0], "q_range": [1.2, 1.4], "azimuth_range": [-20, 20]}],
    }
    for name, keys in sections.items():
        job.setdefault(name, {}).update(keys)
    return job


@pytest.mark.parametrize(("section", "key", "value", "allowed"), [
    ("integration", "npt_q", -5, ">= 1"),
    ("integration", "npt_q", 0, ">= 1"),
    ("integration", "npt_azimuth", 0, ">= 1"),
    ("integration", "saturation", -1, "> 0"),
    ("integration", "saturation", 0, "> 0"),
    ("job", "batch_frames", 0, ">= 1"),
    ("job", "allow_failed_fraction", 1.5, "[0, 1]"),
    ("slurm", "cores", 0, ">= 1"),
    ("slurm", "n_jobs", 0, ">= 1"),
    ("slurm", "start_timeout_s", 0, "> 0"),
])
def test_waxs_job_values_refused_with_key_and_range(section, key, value, allowed):
    with pytest.raises(ConfigError) as err:
        load_job(waxs_job(**{section: {key: value}}))
    message = str(err.value)
    assert f"[{section}] {key}" in message and allowed in message and str(value) in message
    assert "\n" not in message


def test_valid_waxs_values_pass():
    job = load_job(waxs_job(integration={"npt_q": 1, "npt_azimuth": 1, "saturation": 1e6}))
    assert job.integration.saturation == 1e6


@pytest.mark.parametrize("batch_rows", [0, -3])
def test_pl_batch_rows_refused(batch_rows):
    with pytest.raises(ConfigError, match=r"\[job\] batch_rows must be >= 1"):
        job_from_dict({"job": {"output": "o.zarr", "batch_rows": batch_rows}, "input": {"source": "s.h5"}})


@pytest.mark.parametrize(("distance", "wavelength", "key"), [(-0.1, 1e-10, "distance"), (0.0, 1e-10, "distance"),
                                                            (0.1, -1e-10, "wavelength")])
def test_poni_distance_and_wavelength_must_be_positive(tmp_path, distance, wavelength, key):
    poni = tmp_path / "bad.poni"
    poni.write_text(PONI.format(distance=distance, wavelength=wavelength))
    with pytest.raises(ValueError, match=rf"PONI file .*bad.poni: {key} must be > 0 m"):
        load_geometry(poni)


def test_valid_poni_loads(tmp_path):
    poni = tmp_path / "good.poni"
    poni.write_text(PONI.format(distance=0.1, wavelength=1e-10))
    assert load_geometry(poni).dist == pytest.approx(0.1)


@pytest.mark.parametrize("first", [-50.0, 0.0])
def test_pl_axis_in_nm_must_be_positive(tmp_path, first):
    source = tmp_path / "map.h5"
    axis = np.linspace(first, 600.0, 16)
    with h5py.File(source, "w") as f:
        f["data"] = np.ones((2, 3, 16))
        f["axis"] = axis
        f["axis"].attrs["units"] = "nm"
    with pytest.raises(ValueError, match=r"map.h5: spectral axis: wavelengths must be > 0 nm; channel 0"):
        ingest_spectra(source, tmp_path / "spectra.zarr")
    assert not (tmp_path / "spectra.zarr").exists()
