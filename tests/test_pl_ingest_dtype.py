"""The spectra store keeps integer counts as the source holds them (gpuproc.pl.ingest.stored_dtype):
exact (float32 rounds integers above 2**24) and half the bytes of float32 for a CCD's uint16; other
sources are stored as float32 with NaN preserved."""

import numpy as np
import pytest

from gpuproc.pl.ingest import ingest_spectra, open_spectra
from gpuproc.pl.job import job_from_dict
from gpuproc.pl.pipeline import run_pl
from gpuproc.io.results import open_results
from gpuproc.synth.pl import BIAS_COUNTS, pl_map


@pytest.mark.parametrize("dtype, stored", [("u2", "u2"), ("i2", "i2"), ("u4", "u4"), ("i4", "i4"),
                                           ("u8", "f4"), ("f8", "f4"), ("f4", "f4")])
def test_store_dtype_follows_the_source(tmp_path, dtype, stored):
    data = np.arange(6 * 8, dtype=dtype).reshape(6, 8)
    if np.dtype(dtype).kind == "u" and np.dtype(dtype).itemsize == 4:
        data[0, 0] = 2**24 + 1  # not representable in float32
    np.savez(tmp_path / "s.npz", data=data, axis=np.linspace(500.0, 600.0, 8))
    store = open_spectra(ingest_spectra(tmp_path / "s.npz", tmp_path / "s.zarr", shape=(2, 3)))
    got = np.asarray(store.spectra[...])
    assert got.dtype == np.dtype(stored)
    np.testing.assert_array_equal(got.reshape(6, 8), data.astype(stored))
    if dtype == "u4":
        assert int(got[0, 0, 0]) == 2**24 + 1


def test_nan_survives_a_float_store(tmp_path):
    data = np.ones((4, 8), np.float64)
    data[1, 3] = np.nan
    np.savez(tmp_path / "s.npz", data=data, axis=np.linspace(500.0, 600.0, 8))
    got = np.asarray(open_spectra(ingest_spectra(tmp_path / "s.npz", tmp_path / "s.zarr", shape=(2, 2))).spectra[...])
    assert np.isnan(got.reshape(4, 8)[1, 3]) and np.isfinite(got).sum() == 31


def test_integer_store_fits_like_the_float_one(tmp_path):
    """A uint16 CCD map and the same counts as float64 give the same maps (the store's dtype is
    converted on the fitting device)."""
    m = pl_map((8, 8), 256, seed=3)
    counts = np.clip(np.rint(m.counts), 0, 65535)
    outs = {}
    for name, dtype in (("u16", np.uint16), ("f64", np.float64)):
        np.savez(tmp_path / f"{name}.npz", data=counts.astype(dtype), axis=m.wavelength)
        job = job_from_dict({"job": {"output": str(tmp_path / f"{name}.zarr"), "device": "cpu"},
                             "input": {"source": str(tmp_path / f"{name}.npz")}, "spectra": {"dark": BIAS_COUNTS}})
        outs[name] = open_results(run_pl(job, progress=False))
    assert open_spectra(tmp_path / "u16.spectra.zarr").spectra.dtype == np.uint16
    for k in ("energy", "fwhm_mev", "area", "n_peaks"):
        np.testing.assert_array_equal(outs["u16"][k].values, outs["f64"][k].values, err_msg=k)
