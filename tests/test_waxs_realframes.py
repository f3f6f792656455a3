"""Cakes of real detector frames equal pyFAI's integrate2d with its defaults (../shared/realdata).

integrate2d is called as a pyFAI user would: no mask and no dummy passed, so pyFAI takes the
detector's own mask and its dummy / delta_dummy (Pilatus, Eiger: -2 +- 1.5); only the method and
the bins are set to ours. Frames: a Pilatus3 6M CBF with -1 gaps and -2 bad pixels, an Eiger 4M
uint32 frame with 2**32-1 in gaps and dead pixels, ten NXsas Pilatus 100K frames and the
Pilatus 300KW LaB6 TIFFs with their pyFAI-calib PONI. Files without a PONI get a geometry from
their header (CBF, NeXus) or a plausible one (the Eiger frame has none). Splits "bbox" and "no":
pyFAI builds its "full" split matrix differently from run to run (up to 1e-5 relative, a few % in
single bins), so two builds cannot be compared to float32 rounding.
"""

import fabio
import h5py
import hdf5plugin  # noqa: F401 - registers the bitshuffle-LZ4 filter
import numpy as np
import pyFAI
import pyFAI.detectors
import pytest
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

from gpuproc.waxs.integrate import CakeIntegrator

pytestmark = pytest.mark.realdata
NPT_Q, NPT_AZ = 500, 360


def detector_ai(name: str, distance: float, beam_px: tuple[float, float], wavelength: float) -> AzimuthalIntegrator:
    """pyFAI's detector ``name`` at ``distance`` (m), beam centre (row, column) pixels, normal incidence."""
    det = pyFAI.detectors.detector_factory(name)
    return AzimuthalIntegrator(dist=distance, poni1=beam_px[0] * det.pixel1, poni2=beam_px[1] * det.pixel2,
                               detector=det, wavelength=wavelength)


def cbf_ai(header: dict) -> AzimuthalIntegrator:
    """Pilatus 6M geometry from a miniCBF header (Detector_distance m, Beam_xy pixels, Wavelength A)."""
    text = header["_array_data.header_contents"]
    fields = {line.split()[1]: line.split()[2:] for line in text.splitlines() if len(line.split()) > 2}
    beam_x, beam_y = (float(v.strip("(),")) for v in fields["Beam_xy"][:2])
    return detector_ai("Pilatus6M", float(fields["Detector_distance"][0]), (beam_y, beam_x),
                       float(fields["Wavelength"][0]) * 1e-10)


def nxsas_geometry(f: h5py.File) -> tuple:
    """Pilatus 100K distance (m), beam centre (row, column) and wavelength (m) from the NXdetector
    and NXmonochromator of an NXsas file (mm, pixels, A)."""
    det = f["entry/instrument/detector"]
    beam = (float(det["beam_center_y_pixel"][0]), float(det["beam_center_x_pixel"][0]))
    wavelength = float(f["entry/instrument/monochromator/wavelength"][0]) * 1e-10
    return float(det["distance"][0]) * 1e-3, beam, wavelength


def assert_equals_integrate2d(ai: AzimuthalIntegrator, frames: np.ndarray, split: str = "bbox") -> None:
    """Our cakes of ``frames`` against ai.integrate2d(frame) with pyFAI's defaults, frame by frame
    (one integrator: pyFAI's geometry arrays are computed once)."""
    q = ai.array_from_unit(unit="q_A^-1")
    q_range = (float(q.min()), float(q.max()))
    ours = CakeIntegrator(ai, npt_q=NPT_Q, npt_azimuth=NPT_AZ, q_range=q_range, split=split,
                          device="cpu").integrate(frames)
    for k, frame in enumerate(frames):
        res = ai.integrate2d(frame, NPT_Q, NPT_AZ, unit="q_A^-1", radial_range=q_range, azimuth_range=(-180, 180),
                             method=(split, "csr", "cython"))
        empty = res.count == 0
        assert 0 < empty.sum() < empty.size  # real frames leave some bins empty
        np.testing.assert_array_equal(np.isnan(ours[k]), empty, err_msg=f"frame {k}: empty bins")
        np.testing.assert_allclose(ours[k][~empty], res.intensity[~empty], rtol=2e-6, err_msg=f"frame {k}")


def test_pilatus6m_cbf_flags(realdata):
    image = fabio.open(str(realdata("waxs", "DLS_I03_smargon_0001.cbf.gz")))
    frame = image.data
    det_mask = pyFAI.detectors.detector_factory("Pilatus6M").mask.astype(bool)
    assert frame.dtype == np.int32 and (frame[~det_mask] == -2).sum() > 1000  # bad pixels outside the gaps
    assert_equals_integrate2d(cbf_ai(image.header), frame[None])


def test_eiger4m_uint32_dummies(realdata):
    with h5py.File(realdata("waxs", "bitshuffle.h5")) as f:
        frames = f["entry/data/data"][:]
    det_mask = pyFAI.detectors.detector_factory("Eiger4M").mask.astype(bool)
    assert frames.dtype == np.uint32 and (frames[0][~det_mask] == 2**32 - 1).sum() > 100  # dead pixels
    assert_equals_integrate2d(detector_ai("Eiger4M", 0.2, (1100.0, 1000.0), 1.0e-10), frames)


@pytest.mark.parametrize("split", ["bbox", "no"])
def test_nxsas_pilatus100k_frames(realdata, split):
    """All ten frames in one batch."""
    with h5py.File(realdata("waxs", "nexus-example.hdf5")) as f:
        frames, geometry = f["entry/data/frames"][:], nxsas_geometry(f)
    assert frames.shape == (10, 195, 487)
    assert_equals_integrate2d(detector_ai("Pilatus100k", *geometry), frames, split)


@pytest.mark.parametrize("index", ["0009", "0023"])
@pytest.mark.parametrize("split", ["bbox", "no"])
def test_lab6_tiff_with_its_poni(realdata, index, split):
    tiff = realdata("waxs", "lab6_tth", f"b_toney_Lab6_thtth_rightside_scan2_{index}.tif")
    frame = fabio.open(str(tiff)).data
    assert frame.dtype == np.float32
    assert_equals_integrate2d(pyFAI.load(str(tiff.with_suffix(".poni"))), frame[None], split)
