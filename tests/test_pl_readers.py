"""Spectra readers (gpuproc.io.spectra and its format modules), each on a small file written here."""

import builtins
import struct

import h5py
import numpy as np
import pytest
import zarr

from gpuproc.io.axis_units import raman_to_wavelength
from gpuproc.io.spectra import read_spectra
from gpuproc.pl.ingest import ingest_spectra, open_spectra

AXIS = np.linspace(430.0, 560.0, 16)
DATA = np.arange(3 * 16, dtype=np.float32).reshape(3, 16)


def check(result, data=DATA, axis=AXIS, unit="nm"):
    d, a, u, meta = result
    np.testing.assert_allclose(d, data)
    np.testing.assert_allclose(a, axis)
    assert u == unit and isinstance(meta, dict)
    return meta


def test_hdf5(tmp_path):
    p = tmp_path / "map.h5"
    with h5py.File(p, "w") as f:
        f["entry/spectra"] = DATA
        f["entry/spectra"].attrs["exposure_s"] = 0.5
        f["entry/energy"] = AXIS
        f["entry/energy"].attrs["units"] = "eV"
    meta = check(read_spectra(p, data_path="entry/spectra", axis_path="entry/energy"), unit="eV")
    assert meta["exposure_s"] == 0.5
    check(read_spectra(f"{p}::/entry/spectra", axis_path="entry/energy"), unit="eV")  # file::dataset
    with pytest.raises(ValueError, match="no data dataset 'data'.*entry/spectra"):
        read_spectra(p)


def test_hdf5_group_as_path_and_corrupt_files(tmp_path):
    p = tmp_path / "map.h5"
    with h5py.File(p, "w") as f:
        f["entry/spectra"] = DATA
        f["entry/axis/values"] = AXIS
    with pytest.raises(ValueError, match=r"map.h5: 'entry' is a group, not a data dataset; datasets in it: "
                                         r"\['entry/axis/values', 'entry/spectra'\]"):
        read_spectra(p, data_path="entry")
    with pytest.raises(ValueError, match="'entry/axis' is a group, not a axis dataset"):
        read_spectra(p, data_path="entry/spectra", axis_path="entry/axis")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.h5: the file is empty"):
        read_spectra(tmp_path / "empty.h5")
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    with pytest.raises(ValueError) as err:
        read_spectra(tmp_path / "bad.h5")
    assert "bad.h5: not a readable HDF5 file" in str(err.value) and "\n" not in str(err.value)


def test_npz_and_npy(tmp_path):
    np.savez(tmp_path / "s.npz", data=DATA, axis=AXIS, axis_unit="nm")
    check(read_spectra(tmp_path / "s.npz"))
    np.save(tmp_path / "s.npy", DATA)
    check(read_spectra(tmp_path / "s.npy", axis=AXIS))
    np.save(tmp_path / "axis.npy", AXIS)
    check(read_spectra(tmp_path / "s.npy", axis=tmp_path / "axis.npy"))  # the axis from a file
    with pytest.raises(ValueError, match="holds no spectral axis"):
        read_spectra(tmp_path / "s.npy")


def table(axis, data, sep):
    return [sep.join(f"{v:.12g}" for v in (axis[i], *data[:, i])) for i in range(axis.size)]


@pytest.mark.parametrize("name, sep, header", [("s.csv", ",", "wavelength,a,b,c"), ("s.txt", "\t", None),
                                               ("s.dat", " ", "# comment")])
def test_text(tmp_path, name, sep, header):
    (tmp_path / name).write_text("\n".join(([header] if header else []) + table(AXIS, DATA, sep)) + "\n")
    meta = check(read_spectra(tmp_path / name))
    if header == "wavelength,a,b,c":
        assert meta["columns"] == ["wavelength", "a", "b", "c"]


@pytest.mark.parametrize("header, unit, expected", [
    ("energy_eV,a,b,c", "eV", AXIS / 200), ("Energy (eV),a,b,c", "eV", AXIS / 200),
    ("Wavelength (um),a,b,c", "nm", AXIS / 200 * 1e3), ("Energy (meV),a,b,c", "eV", AXIS / 200 * 1e-3)])
def test_text_header_units(tmp_path, header, unit, expected):
    (tmp_path / "s.csv").write_text("\n".join([header] + table(AXIS / 200, DATA, ",")) + "\n")
    check(read_spectra(tmp_path / "s.csv"), axis=expected, unit=unit)


def test_text_raman_shift_needs_a_laser(tmp_path):
    shift = np.linspace(100.0, 3000.0, 16)
    lines = ["Laser Wavelength (nm): 532.0", "", "Raman Shift (cm-1)\tcounts"] + table(shift, DATA[:1], "\t")
    (tmp_path / "r.txt").write_text("\n".join(lines) + "\n")
    d, a, u, meta = read_spectra(tmp_path / "r.txt")
    np.testing.assert_allclose(a, 1e7 / (1e7 / 532.0 - shift))
    assert u == "nm" and meta["laser_nm"] == 532.0 and meta["axis_source_unit"] == "cm-1" and d.shape == (1, 1, 16)
    (tmp_path / "r2.txt").write_text("\n".join(lines[2:]) + "\n")
    with pytest.raises(ValueError, match="r2.txt: the spectral axis is a Raman shift.*laser_nm"):
        read_spectra(tmp_path / "r2.txt")
    np.testing.assert_allclose(read_spectra(tmp_path / "r2.txt", laser_nm=633.0)[1], raman_to_wavelength(shift, 633.0))


def test_text_row_orientation(tmp_path):
    """Row 1 wavelengths, each further row one spectrum (LumiSpy's Background-*.txt layout)."""
    rows = [" ".join(f"{v:.6f}" for v in AXIS)] + [" ".join(f"{v:g}" for v in r) for r in DATA]
    (tmp_path / "rows.txt").write_text("\n".join(rows) + "\n")
    check(read_spectra(tmp_path / "rows.txt"))
    (tmp_path / "one.txt").write_text("\n".join(rows[:2]) + "\n")
    check(read_spectra(tmp_path / "one.txt"), data=DATA[:1].reshape(1, 1, 16))


def test_text_preamble_and_footer(tmp_path):
    """A preamble (LightField / SPE text export) and an Andor .asc footer around the table;
    ``Key: value`` lines become metadata, trailing tabs are ignored."""
    pre = ["SPE version: 2.2", "Exposure (ms): 30.0", "Laser Wavelength (nm): 636.3", "", "",
           "Wavelength\tFrame 1\tFrame 2\tFrame 3"]
    foot = ["", "", "Date and Time:                Fri Sep  8 15:03:52 2017",
            "Exposure Time (secs):         0.1", "Number of Accumulations:      500"]
    rows = [r + "\t" for r in table(AXIS, DATA, "\t")]
    (tmp_path / "x.asc").write_text("\n".join(pre + rows + foot) + "\n")
    meta = check(read_spectra(tmp_path / "x.asc"))
    assert meta["laser_nm"] == 636.3 and meta["vendor"]["Number of Accumulations"] == "500"
    assert meta["columns"][:2] == ["Wavelength", "Frame 1"]
    ocean = [">>>>>Begin Spectral Data<<<<<"] + table(AXIS, DATA[:1], "\t") + [">>>>>End Spectral Data<<<<<"]
    (tmp_path / "ocean.txt").write_text("\n".join(["Integration Time (sec): 1.0"] + ocean) + "\n")
    check(read_spectra(tmp_path / "ocean.txt"), data=DATA[:1].reshape(1, 1, 16))


def test_text_decimal_commas(tmp_path):
    rows = [";".join(f"{v:.6f}".replace(".", ",") for v in (AXIS[i], *DATA[:, i])) for i in range(16)]
    (tmp_path / "eu.csv").write_text("\n".join(["Wellenlänge (nm);a;b;c"] + rows) + "\n")
    check(read_spectra(tmp_path / "eu.csv"))


def test_wire_long_map_export(tmp_path):
    """WiRE X/Y/Wave/Intensity export of a 2 x 3 map, channels in descending order."""
    rng = np.random.default_rng(1)
    cube = rng.poisson(100, (2, 3, 16)).astype(float)
    lines = ["#X\t#Y\t#Wave\t#Intensity"]
    for iy, y in enumerate((5.0, 7.5)):
        for ix, x in enumerate((0.0, 2.0, 4.0)):
            lines += [f"{x}\t{y}\t{AXIS[c]}\t{cube[iy, ix, c]}" for c in range(15, -1, -1)]
    (tmp_path / "wire.txt").write_text("\n".join(lines) + "\n")
    d, a, _, meta = read_spectra(tmp_path / "wire.txt")
    np.testing.assert_allclose(a, AXIS[::-1])
    np.testing.assert_allclose(d, cube[..., ::-1])
    assert meta["step_um"] == [2.5, 2.0]


def test_zarr(tmp_path):
    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    g.create_array("data", data=DATA)
    ax = g.create_array("axis", data=AXIS)
    ax.attrs["units"] = "nm"
    g.attrs["sample"] = "SC-1"
    meta = check(read_spectra(tmp_path / "s.zarr"))
    assert meta["sample"] == "SC-1"


def write_sif(path, frames, coefficients, user_text=""):
    """A minimal Andor SIF file (layout of sif_parser's reader, SIF version 65540): spectra of
    one detector row, a wavelength polynomial c0 + c1 p + c2 p^2 + c3 p^3 of pixel p = 1..n."""
    n_frames, width = frames.shape
    head = (
        "Andor Technology Multi-Channel File\n65538 1\n"
        "65540 0 0 1 1540956289 -70.0 " + " " * 10 + "0 0.1 3.02 0.1 1 \x00 "
        "0.0 1e-06 0 1 1.0 0 0 0.0 " + "0 " * 16 + "500.0 rest\n"
        "DU401_BV\n"
        f"{width} 1 12\nsynthetic.sf \n"
        f"65538 {len(user_text)}\n{user_text}\n"
        "65538 12345678 0.0 0.0\n"
        "65539 " + " ".join(f"{c:.10g}" for c in coefficients) + "\n"
        "0 1 0 0\n0 1 0 0\n0\n422\n13\n13\n"
        "12\nPixel number6\nCounts12\nPixel number"
        f"65541 1 1 {width} 1 {n_frames} 1 {n_frames * width} {width} "
        f"65538 1 1 {width} 1 1 1\n" + "0\n" * n_frames + "0\n"
    )
    path.write_bytes(head.encode("latin-1") + frames.astype("<f4").tobytes())


def test_sif(tmp_path):
    coef = [430.0, 0.127, 1e-5, 0.0]
    write_sif(tmp_path / "s.sif", DATA, coef)
    pix = np.arange(1, 17)
    d, a, u, meta = read_spectra(tmp_path / "s.sif")
    np.testing.assert_allclose(d, DATA)
    np.testing.assert_allclose(a, coef[0] + coef[1] * pix + coef[2] * pix**2)
    assert u == "nm" and meta["exposure_s"] == pytest.approx(0.1) and meta["mode"] == "timeseries"
    store = open_spectra(ingest_spectra(tmp_path / "s.sif", tmp_path / "s.zarr"))
    assert store.mode == "timeseries" and store.attrs["time_step_s"] == pytest.approx(3.02)  # CycleTime
    per_frame = "\n".join(f"Calibration data for frame {i + 1}: " + ",".join(map(str, coef)) for i in range(3))
    write_sif(tmp_path / "f.sif", DATA, [0, 1, 0, 0], per_frame)  # one calibration per frame, all equal
    np.testing.assert_allclose(read_spectra(tmp_path / "f.sif")[1], a)
    write_sif(tmp_path / "g.sif", DATA, [0, 1, 0, 0], per_frame.replace("0.127", "0.128", 1))
    with pytest.raises(ValueError, match="g.sif: the 3 frames have different wavelength calibrations"):
        read_spectra(tmp_path / "g.sif")
    (tmp_path / "bad.sif").write_bytes(b"not a sif file at all, just some bytes....\n")
    with pytest.raises(ValueError, match="not a readable Andor SIF"):
        read_spectra(tmp_path / "bad.sif")


def write_spe2(path, frames, coef, laser_nm):
    """A WinSpec SPE 2.x file: uint16 frames of one row, calibration polynomial, laser line."""
    n_frames, width = frames.shape
    h = bytearray(4100)
    struct.pack_into("<H", h, 42, width)
    struct.pack_into("<h", h, 108, 3)
    struct.pack_into("<H", h, 656, 1)
    struct.pack_into("<i", h, 1446, n_frames)
    struct.pack_into("<f", h, 1992, 2.5)
    h[3098], h[3101] = 1, len(coef) - 1
    struct.pack_into("<6d", h, 3263, *coef, *[0.0] * (6 - len(coef)))
    struct.pack_into("<d", h, 3311, laser_nm)
    path.write_bytes(bytes(h) + frames.astype("<u2").tobytes())


def write_spe3(path, frames, wavelengths, frame_rate=None, metadata_bytes=0):
    """A LightField SPE 3.0 file: float32 frames of one row (each followed by ``metadata_bytes``
    of per-frame metadata), XML footer with the wavelengths and the frame rate."""
    frames = np.atleast_2d(frames)
    size = frames.shape[1] * 4
    stride = size + metadata_bytes
    data = b"".join(f.astype("<f4").tobytes() + bytes(metadata_bytes) for f in frames)
    h = bytearray(4100)
    struct.pack_into("<f", h, 1992, 3.0)
    struct.pack_into("<Q", h, 678, 4100 + len(data))
    rate = "" if frame_rate is None else f'<Experiment><FrameRate type="Double">{frame_rate}</FrameRate></Experiment>'
    xml = ('<SpeFormat version="3.0" xmlns="http://www.princetoninstruments.com/spe/2009"><DataFormat>'
           f'<DataBlock type="Frame" count="{len(frames)}" pixelFormat="MonochromeFloating32" size="{size}" '
           f'stride="{stride}"><DataBlock type="Region" count="1" width="{frames.shape[1]}" height="1" '
           f'size="{size}" stride="{size}"/></DataBlock></DataFormat><Calibrations>'
           '<WavelengthMapping id="1"><Wavelength xml:space="preserve">'
           + ",".join(f"{w:.9f}" for w in wavelengths) + "</Wavelength></WavelengthMapping></Calibrations>"
           + rate + "</SpeFormat>")
    path.write_bytes(bytes(h) + data + xml.encode())


def test_spe_v2_and_v3(tmp_path):
    coef = [627.08, 0.1002, -1.27e-6]
    frames = np.arange(2 * 16, dtype=np.uint16).reshape(2, 16)
    write_spe2(tmp_path / "a.spe", frames, coef, 636.3)
    d, a, u, meta = read_spectra(tmp_path / "a.spe")
    pix = np.arange(1, 17)
    np.testing.assert_allclose(a, coef[0] + coef[1] * pix + coef[2] * pix**2)
    np.testing.assert_array_equal(d, frames)
    assert u == "nm" and meta["laser_nm"] == 636.3 and meta["mode"] == "timeseries"
    write_spe3(tmp_path / "b.spe", DATA[0], AXIS)
    check(read_spectra(tmp_path / "b.spe"), data=DATA[:1].reshape(1, 1, 16))
    write_spe3(tmp_path / "c.spe", DATA, AXIS, frame_rate=0.25, metadata_bytes=16)  # a kinetic series
    meta = check(read_spectra(tmp_path / "c.spe"))
    assert meta["mode"] == "timeseries" and meta["time_step_s"] == 4.0
    (tmp_path / "short.spe").write_bytes(bytes(100))
    with pytest.raises(ValueError, match="short.spe: not an SPE file"):
        read_spectra(tmp_path / "short.spe")


def test_single_spectrum_is_a_1x1_map_and_axis_from_a_key(tmp_path):
    with h5py.File(tmp_path / "one.h5", "w") as f:
        f["data"] = DATA[0]
        f["axis"] = AXIS
    store = open_spectra(ingest_spectra(tmp_path / "one.h5", tmp_path / "one.zarr"))
    assert store.mode == "map" and store.spectra.shape == (1, 1, 16)
    np.save(tmp_path / "m.npy", DATA.reshape(1, 3, 16))
    store = open_spectra(ingest_spectra(tmp_path / "m.npy", tmp_path / "m.zarr", axis=list(AXIS), axis_unit="nm"))
    np.testing.assert_allclose(store.axis, AXIS)


def test_failed_ingest_leaves_nothing(tmp_path):
    np.savez(tmp_path / "s.npz", data=DATA, axis=AXIS)
    with pytest.raises(ValueError, match="do not fill a map"):
        ingest_spectra(tmp_path / "s.npz", tmp_path / "out.zarr", mode="map", shape=(2, 2))
    with pytest.raises(ValueError, match="laser_nm"):
        ingest_spectra(tmp_path / "s.npz", tmp_path / "out.zarr", axis_unit="cm-1")
    with pytest.raises(ValueError, match=r"a list of 3 spectra .*mode = 'timeseries'.*shape = \[ny, nx\]"):
        ingest_spectra(tmp_path / "s.npz", tmp_path / "out.zarr", mode="map")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]


def test_failed_write_removes_the_store_and_its_lock(tmp_path, monkeypatch):
    from gpuproc.pl import ingest

    np.savez(tmp_path / "s.npz", data=DATA, axis=AXIS)

    def disk_full(group, *args):
        group.create_array("spectra", shape=(1,), dtype=np.float32)
        raise OSError("No space left on device")

    monkeypatch.setattr(ingest, "_write_spectra", disk_full)
    with pytest.raises(OSError, match="No space left"):
        ingest_spectra(tmp_path / "s.npz", tmp_path / "out.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]
    monkeypatch.undo()
    assert open_spectra(ingest_spectra(tmp_path / "s.npz", tmp_path / "out.zarr")).spectra.shape == (3, 16)


def test_rosettasciio_formats_need_rosettasciio(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_rsciio(name, *args, **kwargs):
        if name.startswith("rsciio"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rsciio)
    # importlib.import_module bypasses __import__: hide an already imported rosettasciio too
    import sys

    for mod in [m for m in sys.modules if m == "rsciio" or m.startswith("rsciio.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setitem(sys.modules, "rsciio", None)
    for name in ("s.wdf", "s.xml", "s.hspy", "s.msa", "s.tvf"):
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(ImportError, match=r"pip install gpuproc\[vendor\]"):
            read_spectra(tmp_path / name)


def test_rosettasciio_adapter_takes_the_axis_from_metadata(tmp_path):
    """An EMSA file written by rosettasciio: the spectral axis from its offset/scale and units."""
    msa = pytest.importorskip("rsciio.msa")
    signal = {"data": DATA[0].astype(float), "metadata": {"General": {"title": "t"}, "Signal": {"signal_type": ""}},
              "original_metadata": {},
              "axes": [{"name": "Energy", "units": "eV", "size": 16, "offset": 1.5, "scale": 0.01, "navigate": False}]}
    msa.file_writer(str(tmp_path / "s.msa"), signal)
    d, a, u, _ = read_spectra(tmp_path / "s.msa")
    np.testing.assert_allclose(a, 1.5 + 0.01 * np.arange(16))
    assert u == "eV" and d.shape == (1, 1, 16)


def test_bad_inputs(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv: the file is empty"):
        read_spectra(tmp_path / "empty.csv")
    (tmp_path / "s.xyz").write_text("1 2\n")
    with pytest.raises(ValueError, match="unknown spectra format '.xyz'"):
        read_spectra(tmp_path / "s.xyz")
    with pytest.raises(FileNotFoundError):
        read_spectra(tmp_path / "missing.h5")
    np.savez(tmp_path / "short.npz", data=DATA, axis=AXIS[:-1])
    with pytest.raises(ValueError, match=r"short.npz: the spectral axis has 15 values but the spectra have 16"):
        read_spectra(tmp_path / "short.npz")
    (tmp_path / "words.txt").write_text("a b\nc d\n")
    with pytest.raises(ValueError, match="words.txt: no numeric table"):
        read_spectra(tmp_path / "words.txt")
    with h5py.File(tmp_path / "pix.h5", "w") as f:
        f["data"], f["axis"] = DATA, np.arange(16.0)
        f["axis"].attrs["units"] = "pixel"
    with pytest.raises(ValueError, match="pix.h5: spectral axis in 'pixel'"):
        read_spectra(tmp_path / "pix.h5")


def test_job_input_axis_and_laser_keys(tmp_path):
    """[input] axis (a file beside the job) for a .npy source, laser_nm for a Raman-shift axis."""
    from gpuproc.pl.job import load_job
    from gpuproc.pl.pipeline import spectra_store

    np.save(tmp_path / "m.npy", DATA.reshape(1, 3, 16))
    np.save(tmp_path / "shift.npy", np.linspace(200.0, 2000.0, 16))
    (tmp_path / "job.toml").write_text('[job]\noutput = "out.zarr"\n[input]\nsource = "m.npy"\naxis = "shift.npy"\n'
                                       'axis_unit = "cm-1"\nlaser_nm = 532.0\n')
    job = load_job(tmp_path / "job.toml")
    assert job.input.axis == tmp_path / "shift.npy" and job.input.laser_nm == 532.0
    store = spectra_store(job)
    np.testing.assert_allclose(store.axis, raman_to_wavelength(np.linspace(200.0, 2000.0, 16), 532.0))
    assert store.attrs["axis_source_unit"] == "cm-1" and store.attrs["laser_nm"] == 532.0


def test_text_labelled_rows(tmp_path):
    """SPE_Handler's row export: 'Wavelength w1 w2 ...', then 'Frame 1 c1 c2 ...' per spectrum."""
    lines = ["#SPE version: 2.2", "Wavelength\t" + "\t".join(f"{v:.6f}" for v in AXIS) + "\t"]
    lines += [f"Frame {i + 1}\t" + "\t".join(f"{v:g}" for v in row) for i, row in enumerate(DATA)]
    (tmp_path / "rows.txt").write_text("\n".join(lines) + "\n")
    meta = check(read_spectra(tmp_path / "rows.txt"))
    assert meta["rows"] == ["Frame 1", "Frame 2", "Frame 3"]
    (tmp_path / "ev.txt").write_text("\n".join(["Energy (eV)\t" + "\t".join(f"{v:.12g}" for v in AXIS / 200)]
                                               + ["Frame 1\t" + "\t".join(f"{v:g}" for v in DATA[0])]) + "\n")
    check(read_spectra(tmp_path / "ev.txt"), data=DATA[:1].reshape(1, 1, 16), axis=AXIS / 200, unit="eV")
