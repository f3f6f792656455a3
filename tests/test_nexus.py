"""NeXus export (gpuproc.io.nexus): a small WAXS run, a PL map and a PL time series written as
NeXus, read back with h5py and silx: @default chain, valid NXdata, units, _errors, and every
variable equal to the Zarr store bit for bit."""

import json

import h5py
import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from result_runs import pl_map_run, pl_series_run, waxs_run
from silx.io import nxdata as silx_nxdata

from gpuproc.cli import main
from gpuproc.io.nexus import export_nexus


@pytest.fixture(scope="module")
def waxs(tmp_path_factory):
    return waxs_run(tmp_path_factory.mktemp("nxwaxs"))


@pytest.fixture(scope="module")
def plmap(tmp_path_factory):
    return pl_map_run(tmp_path_factory.mktemp("nxplmap"))


@pytest.fixture(scope="module")
def plseries(tmp_path_factory):
    return pl_series_run(tmp_path_factory.mktemp("nxplts"))


def _nxdata_groups(f):
    out = []
    f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Group)
                 and obj.attrs.get("NX_class") == "NXdata" else None)
    return out


def _check_against_store(store, path, main_map):
    group = zarr.open_group(store, mode="r")
    with h5py.File(path, "r") as f:
        entry = f[f.attrs["default"]]
        assert entry.attrs["NX_class"] == "NXentry" and entry.attrs["default"] == main_map
        default = entry[main_map]
        assert default.attrs["signal"] == main_map and list(default.attrs["axes"]) == ["y", "x"]
        assert default["y"].attrs["units"] == "um" and default["x"].attrs["units"] == "um"
        np.testing.assert_array_equal(default["x"][...], group["x"][...])
        process = entry["process"]
        assert process["program"][()] == b"gpuproc" and process["date"][()]
        assert json.loads(process["job/data"][()]) == json.loads(group.attrs["config"])
        assert json.loads(process["inputs/data"][()]) == dict(group.attrs["inputs"])
        names = _nxdata_groups(f)
        for name in names:  # every plot silx would draw is a valid NXdata
            nx = silx_nxdata.NXdata(f[name])
            assert nx.is_valid, (name, nx.issues)
        exported = 0
        for name, array in group.arrays():
            if name in entry and entry[name].attrs.get("NX_class") == "NXdata":
                data = entry[name]
                np.testing.assert_array_equal(data[name][...], np.asarray(array[...]).astype(data[name].dtype),
                                              err_msg=name)
                assert data[name].dtype == array.dtype or array.dtype == bool, name
                assert data[name].attrs.get("units", "") == array.attrs.get("units", ""), name
                assert data[name].shape == array.shape
                exported += 1
        assert exported >= 10
        assert "done" not in entry
        return names


def test_waxs_export_opens_on_the_orientation_map(waxs):
    store, path = waxs
    names = _check_against_store(store, path, "orientation")
    group = zarr.open_group(store, mode="r")
    with h5py.File(path, "r") as f:
        e = f["entry"]
        np.testing.assert_array_equal(e["orientation/orientation_errors"][...], group["orientation_err"][...])
        np.testing.assert_array_equal(e["q0/q0_errors"][...], group["q0_err"][...])
        assert list(e["q0"].attrs["axes"]) == ["reflection", "y", "x"]
        labels = e["q0/reflection_label"].asstr()[...]
        assert list(labels) == list(group["reflection"][...])
        cake = e["mean_cake"]
        assert cake["definition"][()] == b"NXazint2d" and "entry/mean_cake/data" in names
        np.testing.assert_array_equal(cake["data/I"][0], group["mean_cake"][...])
        assert list(cake["data"].attrs["axes"]) == [".", "azimuthal_axis", "radial_axis"]
        assert cake["data/azimuthal_axis"].attrs["units"] == group["cake_azimuth"].attrs["units"]


def test_silx_opens_the_default_plot(waxs, plmap):
    import silx.io

    for path, signal in ((waxs[1], "orientation"), (plmap[1], "energy")):
        with silx.io.open(str(path)) as f:
            nx = silx_nxdata.get_default(f)
            assert nx is not None and nx.is_valid and nx.signal.name.endswith(f"/{signal}")
            assert nx.axes_dataset_names == ["y", "x"] and nx.errors is not None


def test_pl_map_export(plmap):
    store, path = plmap
    _check_against_store(store, path, "energy")
    with h5py.File(path, "r") as f:
        e = f["entry"]
        np.testing.assert_array_equal(e["fwhm_mev/fwhm_mev_errors"][...],
                                      zarr.open_group(store, mode="r")["fwhm_err_mev"][...])
        assert list(e["peak_energy"].attrs["axes"]) == ["y", "x", "peak"]
        np.testing.assert_allclose(e["energy/x"][...][:2], [0.0, 0.25])


def test_pl_timeseries_export(plseries):
    store, path = plseries
    group = zarr.open_group(store, mode="r")
    with h5py.File(path, "r") as f:
        e = f["entry"]
        assert e.attrs["default"] == "energy" and list(e["energy"].attrs["axes"]) == ["time"]
        kymograph = e["intensity"]
        assert list(kymograph.attrs["axes"]) == ["time", "photon_energy"]
        assert kymograph["photon_energy"].attrs["units"] == group["photon_energy"].attrs["units"]
        np.testing.assert_array_equal(kymograph["intensity"][...], group["intensity"][...])
        assert list(e["labels/event_label"].asstr()[...]) == list(group["event_label"][...])
        for name in _nxdata_groups(f):
            assert silx_nxdata.NXdata(f[name]).is_valid, name


def test_cli_export_and_its_errors(waxs, tmp_path):
    out = tmp_path / "again.nxs"
    result = CliRunner().invoke(main, ["export", str(waxs[0]), str(out)])
    assert result.exit_code == 0, result.output
    with h5py.File(out, "r") as f, h5py.File(waxs[1], "r") as g:
        np.testing.assert_array_equal(f["entry/a/a"][...], g["entry/a/a"][...])
    bad = tmp_path / "plain.zarr"
    zarr.open_group(bad, mode="w")
    result = CliRunner().invoke(main, ["export", str(bad), str(tmp_path / "x.nxs")])
    assert result.exit_code == 1 and "not a gpuproc results store" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unfinished_store_is_refused(tmp_path):
    g = zarr.open_group(tmp_path / "r.zarr", mode="w")
    g.attrs.update({"gpuproc_results": "waxs", "complete": False})
    with pytest.raises(ValueError, match="has not finished"):
        export_nexus(tmp_path / "r.zarr", tmp_path / "r.nxs")
