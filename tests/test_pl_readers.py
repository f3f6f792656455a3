"""Spectra readers (gpuproc.io.spectra), each on a small file written here."""

import builtins

import h5py
import numpy as np
import pytest
import zarr

from gpuproc.io.spectra import read_spectra

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
    with pytest.raises(ValueError, match="no data dataset 'data'.*entry/spectra"):
        read_spectra(p)


def test_npz_and_npy(tmp_path):
    np.savez(tmp_path / "s.npz", data=DATA, axis=AXIS, axis_unit="nm")
    check(read_spectra(tmp_path / "s.npz"))
    np.save(tmp_path / "s.npy", DATA)
    check(read_spectra(tmp_path / "s.npy", axis=AXIS))
    with pytest.raises(ValueError, match="pass axis="):
        read_spectra(tmp_path / "s.npy")


@pytest.mark.parametrize("name, sep, header", [("s.csv", ",", "wavelength,a,b,c"), ("s.txt", "\t", None),
                                               ("s.dat", " ", "# comment")])
def test_text(tmp_path, name, sep, header):
    rows = [sep.join(f"{v:.12g}" for v in (AXIS[i], *DATA[:, i])) for i in range(AXIS.size)]
    (tmp_path / name).write_text("\n".join(([header] if header else []) + rows) + "\n")
    meta = check(read_spectra(tmp_path / name))
    if header == "wavelength,a,b,c":
        assert meta["columns"] == ["wavelength", "a", "b", "c"]


def test_zarr(tmp_path):
    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    g.create_array("data", data=DATA)
    ax = g.create_array("axis", data=AXIS)
    ax.attrs["units"] = "nm"
    g.attrs["sample"] = "SC-1"
    meta = check(read_spectra(tmp_path / "s.zarr"))
    assert meta["sample"] == "SC-1"


def write_sif(path, frames, coefficients):
    """A minimal Andor SIF file (layout of sif_parser's reader, SIF version 65540): spectra of
    one detector row, a wavelength polynomial c0 + c1 p + c2 p^2 + c3 p^3 of pixel p = 1..n."""
    n_frames, width = frames.shape
    head = (
        "Andor Technology Multi-Channel File\n65538 1\n"
        "65540 0 0 1 1540956289 -70.0 " + " " * 10 + "0 0.1 0.1 0.1 1 \x00 "
        "0.0 1e-06 0 1 1.0 0 0 0.0 " + "0 " * 16 + "500.0 rest\n"
        "DU401_BV\n"
        f"{width} 1 12\nsynthetic.sf \n"
        "65538 0\n\n"
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
    assert u == "nm" and meta["ExposureTime"] == pytest.approx(0.1)
    (tmp_path / "bad.sif").write_bytes(b"not a sif file at all, just some bytes....\n")
    with pytest.raises(ValueError, match="not a readable Andor SIF"):
        read_spectra(tmp_path / "bad.sif")


def test_vendor_formats_need_rosettasciio(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_rsciio(name, *args, **kwargs):
        if name.startswith("rsciio"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rsciio)
    for name in ("s.wdf", "s.xml"):
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(ImportError, match=r"pip install gpuproc\[vendor\]"):
            read_spectra(tmp_path / name)


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
    with pytest.raises(ValueError, match="not a numeric table"):
        read_spectra(tmp_path / "words.txt")
