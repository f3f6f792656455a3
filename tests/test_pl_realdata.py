"""Real spectrometer files (../shared/realdata/pl): each ingests with the axis, shape and steps
its vendor software reports, or is refused with a one-line reason when it holds no spectra."""

import logging
import re
import shutil
import struct

import h5py
import numpy as np
import pytest

from gpuproc.io.spectra import open_source
from gpuproc.pl.ingest import ingest_spectra, open_spectra, stored_dtype

pytestmark = pytest.mark.realdata
logging.getLogger("rsciio").setLevel(logging.ERROR)

FILES = ["Background-bkg-700-300ms.txt", "Result_Single_SPE2.txt", "Testfile_Single_SPE2.SPE",
         "Testfile_Single_SPE3.spe", "asymmetric_peak_map.hspy", "jobinyvon_test_map_x3-y2.xml",
         "jobinyvon_test_spec.xml", "jobinyvon_test_spec_3s_cm-1.xml", "jobinyvon_test_spec_3s_eV.xml",
         "raman1.asc", "raman1.sif", "renishaw_test_linescan.wdf", "renishaw_test_map.wdf",
         "renishaw_test_spectrum.wdf", "renishaw_test_timeseries.wdf"]
NO_SPECTRA = {"test.sif": "holds images"}  # a 256 x 256 camera image, no wavelength calibration


def ingested(realdata, tmp_path, name):
    return open_spectra(ingest_spectra(realdata("pl", name), tmp_path / f"{name}.zarr"))


def test_every_file_is_covered(realdata):
    assert sorted(p.name for p in realdata("pl").iterdir()) == sorted(FILES + list(NO_SPECTRA))


@pytest.mark.parametrize("name", FILES)
def test_every_file_ingests(realdata, tmp_path, name):
    store = ingested(realdata, tmp_path, name)
    d = np.diff(store.axis)
    assert np.all(store.axis > 0) and (np.all(d > 0) or np.all(d < 0))
    assert store.attrs["axis_unit"] in ("nm", "eV") and np.isfinite(store.spectra[...]).all()
    with open_source(realdata("pl", name)) as (data, _, _, _):  # integer counts kept as the file has them
        assert store.spectra.dtype == stored_dtype(data.dtype)
        np.testing.assert_array_equal(np.asarray(store.spectra[...]).reshape(-1),
                                      np.asarray(data, dtype=store.spectra.dtype).reshape(-1))


@pytest.mark.parametrize("name, reason", NO_SPECTRA.items())
def test_files_without_spectra_are_refused_in_one_line(realdata, tmp_path, name, reason):
    with pytest.raises(ValueError) as err:
        ingest_spectra(realdata("pl", name), tmp_path / "s.zarr")
    assert name in str(err.value) and reason in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def asc_export(path):
    """Andor Solis' text export: (wavelength, counts) rows, then a ``Key: value`` footer."""
    lines = path.read_text().splitlines()
    rows = [ln.split() for ln in lines if re.match(r"^\d", ln)]
    footer = dict(ln.split(":", 1) for ln in lines if ":" in ln)
    return np.array(rows, dtype=float), {k.strip(): v.strip() for k, v in footer.items()}


def test_sif_against_andors_asc_export(realdata, tmp_path):
    table, footer = asc_export(realdata("pl", "raman1.asc"))
    store = ingested(realdata, tmp_path, "raman1.sif")
    assert store.spectra.shape == (1, 1, table.shape[0]) and store.mode == "map"
    np.testing.assert_allclose(store.axis, table[:, 0], atol=6e-6)  # .asc: 5 decimals
    np.testing.assert_allclose(store.spectra[0, 0], table[:, 1], rtol=6e-6)  # .asc: 6 significant digits
    assert store.attrs["time_step_s"] == pytest.approx(float(footer["Accumulate Cycle Time (secs)"]), abs=6e-6)
    assert store.attrs["exposure_s"] == pytest.approx(float(footer["Exposure Time (secs)"]))
    asc = ingested(realdata, tmp_path, "raman1.asc")  # the export itself, footer skipped
    np.testing.assert_allclose(asc.spectra[0, 0], table[:, 1])


def test_spe2_against_its_text_export(realdata, tmp_path):
    """Counts and ends of the axis as in SPE_Handler's export; inside, the export interpolates
    linearly between the end calibration values, we use WinSpec's calibration polynomial, which
    passes through every calibration pair of the header (pixel 1, 670.5, 1340)."""
    raw = realdata("pl", "Testfile_Single_SPE2.SPE").read_bytes()
    count = raw[3102]
    pixels, values = (np.array(struct.unpack_from(f"<{count}d", raw, at)) for at in (3103, 3183))
    text = realdata("pl", "Result_Single_SPE2.txt").read_text().splitlines()
    header = dict(ln.split(":", 1) for ln in text[:12] if ":" in ln)
    table = np.array([ln.split("\t") for ln in text if re.match(r"^\d", ln)], dtype=float)
    store = ingested(realdata, tmp_path, "Testfile_Single_SPE2.SPE")
    n_frames, width = int(header["Number of frames"]), int(header["Frame width"])
    assert store.spectra.shape == (n_frames, width) == (table.shape[1] - 1, table.shape[0])
    np.testing.assert_allclose(store.axis[[0, -1]], table[[0, -1], 0], rtol=1e-12)
    np.testing.assert_allclose(np.interp(pixels, np.arange(1, width + 1), store.axis), values, atol=1e-4)
    assert 0 < np.abs(store.axis - table[:, 0]).max() < 1.0  # nm: the export's linear approximation
    np.testing.assert_array_equal(store.spectra[...], table[:, 1:].T)
    assert store.attrs["laser_nm"] == pytest.approx(float(header["Laser Wavelength (nm)"]))


def test_spe3_axis_from_its_xml(realdata, tmp_path):
    raw = realdata("pl", "Testfile_Single_SPE3.spe").read_bytes()
    xml = raw[struct.unpack_from("<Q", raw, 678)[0]:].decode()
    wavelengths = np.array(re.search(r"<Wavelength[^>]*>([^<]+)</Wavelength>", xml).group(1).split(","), dtype=float)
    width = int(re.search(r'type="Region"[^>]*width="(\d+)"', xml).group(1))
    store = ingested(realdata, tmp_path, "Testfile_Single_SPE3.spe")
    assert store.spectra.shape == (1, 1, width) == (1, 1, wavelengths.size)
    np.testing.assert_allclose(store.axis, wavelengths)
    np.testing.assert_array_equal(store.spectra[0, 0], np.frombuffer(raw, "<f4", width, 4100))


def test_raman_shift_becomes_absolute_wavelength(realdata, tmp_path):
    """LabSpec exported one spectrum in cm^-1 and in eV: our cm^-1 -> nm with the file's laser
    line (632.817 nm) equals the eV export's wavelengths 1240 / E (LabSpec's hc; read back so)
    within the eV values' 6-digit rounding, and the counts are the same channels reversed."""
    cm = ingested(realdata, tmp_path, "jobinyvon_test_spec_3s_cm-1.xml")
    ev = ingested(realdata, tmp_path, "jobinyvon_test_spec_3s_eV.xml")
    assert cm.attrs["axis_source_unit"] == "1/cm" and cm.attrs["laser_nm"] == pytest.approx(632.817)
    assert cm.attrs["axis_unit"] == "nm" == ev.attrs["axis_unit"] and ev.attrs["axis_source_unit"] == "eV"
    np.testing.assert_allclose(cm.axis, ev.axis[::-1], atol=3e-3)
    np.testing.assert_allclose(cm.spectra[0, 0], np.asarray(ev.spectra[0, 0])[::-1])
    renishaw = pytest.importorskip("rsciio.renishaw")
    signal = renishaw.file_reader(str(realdata("pl", "renishaw_test_timeseries.wdf")))[0]
    shift, laser = signal["axes"][-1]["axis"], signal["metadata"]["Acquisition_instrument"]["Laser"]["wavelength"]
    ts = ingested(realdata, tmp_path, "renishaw_test_timeseries.wdf")
    assert ts.attrs["laser_nm"] == pytest.approx(laser) and signal["axes"][-1]["units"] == "1/cm"
    np.testing.assert_allclose(ts.axis, 1e7 / (1e7 / laser - shift))
    assert ts.axis.min() < laser < ts.axis.max()  # anti-Stokes and Stokes sides of the laser line


def test_renishaw_map_line_scan_spectrum_and_time_series(realdata, tmp_path):
    m = ingested(realdata, tmp_path, "renishaw_test_map.wdf")
    assert m.mode == "map" and m.spectra.shape[:2] == (3, 3) and m.attrs["step_um"] == [100.0, 100.0]
    line = ingested(realdata, tmp_path, "renishaw_test_linescan.wdf")
    assert line.mode == "map" and line.spectra.shape[:2] == (1, 5) and line.attrs["step_um"][1] == 30.0
    one = ingested(realdata, tmp_path, "renishaw_test_spectrum.wdf")
    assert one.mode == "map" and one.spectra.shape == (1, 1, 36)
    ts = ingested(realdata, tmp_path, "renishaw_test_timeseries.wdf")
    # WiRE: 3 spectra, 1 s exposures, 2000 ms TimeSeriesInterval -> about 3 s apart
    assert ts.mode == "timeseries" and ts.spectra.shape[0] == 3
    assert ts.attrs["time_step_s"] == pytest.approx(3.0, abs=0.1)


def test_labspec_map_and_hspy_axes(realdata, tmp_path):
    m = ingested(realdata, tmp_path, "jobinyvon_test_map_x3-y2.xml")
    assert m.spectra.shape[:2] == (2, 3) and m.attrs["step_um"] == [2.0, 2.0]
    path = realdata("pl", "asymmetric_peak_map.hspy")
    with h5py.File(path) as f:
        exp = next(iter(f["Experiments"].values()))
        axes = [dict(exp[f"axis-{i}"].attrs) for i in range(3)]
    store = ingested(realdata, tmp_path, "asymmetric_peak_map.hspy")
    assert store.spectra.shape == tuple(int(a["size"]) for a in axes)
    assert store.attrs["step_um"] == [pytest.approx(axes[0]["scale"]), pytest.approx(axes[1]["scale"])]
    np.testing.assert_allclose(store.axis, axes[2]["offset"] + axes[2]["scale"] * np.arange(axes[2]["size"]))


def test_hyperspy_file_named_hdf5(realdata, tmp_path):
    """A HyperSpy file with the .hdf5 extension (no 'data' dataset at the root) goes to rosettasciio."""
    shutil.copy(realdata("pl", "asymmetric_peak_map.hspy"), tmp_path / "map.hdf5")
    store = open_spectra(ingest_spectra(tmp_path / "map.hdf5", tmp_path / "map.zarr"))
    assert store.spectra.shape == (16, 30, 334) and store.attrs["step_um"][0] == pytest.approx(0.04001351818442345)


def test_row_oriented_text(realdata, tmp_path):
    rows = [ln.split() for ln in realdata("pl", "Background-bkg-700-300ms.txt").read_text().splitlines()]
    store = ingested(realdata, tmp_path, "Background-bkg-700-300ms.txt")
    assert store.spectra.shape == (1, 1, len(rows[0]))
    np.testing.assert_allclose(store.axis, np.array(rows[0], dtype=float))
    np.testing.assert_allclose(store.spectra[0, 0], np.array(rows[1], dtype=float))
