"""Darks (gpuproc.io.dark): constants, files, file::name (also in the map's own file), frames,
and the checks of channel count, axis and channel order against the spectra."""

import h5py
import numpy as np
import pytest

from gpuproc.io.dark import read_dark
from gpuproc.io.results import open_results
from gpuproc.pl.job import job_from_dict
from gpuproc.pl.pipeline import run_pl

N = 64
AXIS_DESC = np.linspace(700.0, 400.0, N)  # a descending wavelength axis, as many spectrometers write it


def dark_pattern(rng):
    """Bias, a slope, two hot columns and read noise: what a real dark looks like."""
    pattern = 600.0 + np.linspace(0.0, 40.0, N)
    pattern[[5, 11]] += 300.0
    return pattern + rng.normal(0.0, 2.0, N)


def test_constant_and_frames(tmp_path):
    d = read_dark(612.5, AXIS_DESC, "nm")
    assert d.frames is None and np.all(d.mean == 612.5) and "612.5" in d.source
    assert read_dark(None, AXIS_DESC, "nm") is None
    frames = np.random.default_rng(0).normal(600.0, 5.0, (10, N))
    np.savez(tmp_path / "d.npz", data=frames, axis=AXIS_DESC)
    d = read_dark(tmp_path / "d.npz", AXIS_DESC, "nm")
    np.testing.assert_allclose(d.mean, frames.mean(axis=0))
    assert d.frames.shape == (10, N)


def test_dark_in_the_maps_own_hdf5_file(tmp_path):
    rng = np.random.default_rng(1)
    dark = dark_pattern(rng)
    with h5py.File(tmp_path / "map.h5", "w") as f:
        f["data"] = dark + rng.poisson(50.0, (3, 4, N))
        f["axis"] = AXIS_DESC
        f["calib/dark"] = np.stack([dark, dark + 1.0])
    d = read_dark(f"{tmp_path / 'map.h5'}::/calib/dark", AXIS_DESC, "nm", map_source=tmp_path / "map.h5")
    np.testing.assert_allclose(d.mean, dark + 0.5)
    assert d.frames.shape == (2, N)
    with pytest.raises(ValueError, match=r"map.h5 is the map's own file: name the dark's array in it"):
        read_dark(tmp_path / "map.h5", AXIS_DESC, "nm", map_source=tmp_path / "map.h5")
    with h5py.File(tmp_path / "map.h5", "r") as f:
        spectra = f["data"][()]
    with pytest.raises(ValueError, match=r"::/data is the map's own data \(12 spectra"):
        read_dark(f"{tmp_path / 'map.h5'}::/data", AXIS_DESC, "nm", map_source=tmp_path / "map.h5", spectra=spectra)
    with pytest.raises(ValueError, match="'calib' is a group"):
        read_dark(f"{tmp_path / 'map.h5'}::calib", AXIS_DESC, "nm", map_source=tmp_path / "map.h5")


def test_channel_count_and_axis_are_checked(tmp_path):
    np.savez(tmp_path / "short.npz", data=np.ones(N - 1), axis=AXIS_DESC[:-1])
    with pytest.raises(ValueError, match=r"dark .*short.npz: 63 channels, the spectra 64 \(axis 700..400 nm\)"):
        read_dark(tmp_path / "short.npz", AXIS_DESC, "nm")
    np.savez(tmp_path / "rev.npz", data=np.ones(N), axis=AXIS_DESC[::-1])
    with pytest.raises(ValueError, match=r"rev.npz: axis 400..700 nm, the spectra axis 700..400 nm "
                                         r"\(reversed channel order\)"):
        read_dark(tmp_path / "rev.npz", AXIS_DESC, "nm")
    np.savez(tmp_path / "other.npz", data=np.ones(N), axis=AXIS_DESC - 20.0)
    with pytest.raises(ValueError, match=r"other.npz: axis 680..380 nm.*\(another axis\)"):
        read_dark(tmp_path / "other.npz", AXIS_DESC, "nm")
    energy = 1239.84198 / AXIS_DESC  # the same channels, the dark's axis in eV
    with h5py.File(tmp_path / "ev.h5", "w") as f:
        f["data"], f["axis"] = np.ones(N), energy
        f["axis"].attrs["units"] = "eV"
    assert read_dark(tmp_path / "ev.h5", AXIS_DESC, "nm").mean.shape == (N,)


def test_reversed_npy_dark_is_refused(tmp_path):
    """A .npy dark saved ascending for spectra on a descending axis: its pattern matches the
    map's darkest spectra only when reversed."""
    rng = np.random.default_rng(2)
    dark = dark_pattern(rng)
    emission = np.exp(-0.5 * ((np.arange(N) - 40) / 4.0) ** 2)
    brightness = rng.uniform(0.0, 1.0, (6, 6))
    brightness[:, :2] = 0.0  # empty pixels outside the sample
    spectra = dark + 500.0 * brightness[..., None] * emission + rng.normal(0.0, 3.0, (6, 6, N))
    np.save(tmp_path / "good.npy", dark)
    assert np.allclose(read_dark(tmp_path / "good.npy", AXIS_DESC, "nm", spectra=spectra).mean, dark)
    np.save(tmp_path / "bad.npy", dark[::-1])
    with pytest.raises(ValueError, match=r"bad.npy: its channel order looks reversed against the spectra "
                                         r"\(axis 700..400 nm\)"):
        read_dark(tmp_path / "bad.npy", AXIS_DESC, "nm", spectra=spectra)


def test_pipeline_takes_the_dark_from_the_maps_file(tmp_path):
    """run_pl with ``dark = "map.h5::/dark"`` equals the run with the same dark as a number."""
    rng = np.random.default_rng(5)
    wavelength = np.linspace(560.0, 430.0, 128)
    peak = 400.0 * np.exp(-0.5 * ((wavelength - 500.0) / 6.0) ** 2)
    level = 600.0
    with h5py.File(tmp_path / "map.h5", "w") as f:
        f["data"] = rng.poisson(level + peak * rng.uniform(0.5, 1.0, (4, 4, 1))).astype(np.float32)
        f["axis"] = wavelength
        f["axis"].attrs["units"] = "nm"
        f["dark"] = np.full(wavelength.size, level)

    def run(name, dark):
        cfg = {"job": {"output": str(tmp_path / f"{name}.zarr"), "device": "cpu", "allow_failed_fraction": 1.0},
               "input": {"source": str(tmp_path / "map.h5"), "store": str(tmp_path / f"{name}.spectra.zarr")},
               "spectra": {"dark": dark, "gain": 1.0, "read_noise": 0.0}}
        return open_results(run_pl(job_from_dict(cfg), progress=False))

    named, constant = run("named", f"{tmp_path / 'map.h5'}::/dark"), run("constant", level)
    np.testing.assert_array_equal(named.energy.values, constant.energy.values)
    assert np.isfinite(named.energy.values).sum() > 0
    with pytest.raises(ValueError, match="the map's own file"):
        run("own", str(tmp_path / "map.h5"))


def test_order_check_raises_no_false_alarm(tmp_path):
    """A correct dark is accepted although emission fills every pixel, and a smooth dark (a slope,
    no hot columns) is accepted either way: only fixed patterns decide."""
    rng = np.random.default_rng(3)
    dark = dark_pattern(rng)
    emission = np.exp(-0.5 * ((np.arange(N) - 20) / 12.0) ** 2)
    spectra = dark + 2000.0 * rng.uniform(0.8, 1.0, (5, 5, 1)) * emission + rng.normal(0.0, 3.0, (5, 5, N))
    np.save(tmp_path / "good.npy", dark)
    read_dark(tmp_path / "good.npy", AXIS_DESC, "nm", spectra=spectra)
    smooth = 600.0 + np.linspace(0.0, 40.0, N)
    np.save(tmp_path / "smooth.npy", smooth[::-1])
    read_dark(tmp_path / "smooth.npy", AXIS_DESC, "nm", spectra=smooth + 500.0 * emission[None, None, :])
