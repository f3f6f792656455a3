"""WAXS frame sources found by what the files say: Eiger masters with their data files, virtual
datasets, NeXus @default/@signal, single 2D frames, multi-frame fabio files and globs, both for
``ingest_frames`` and as ``[input] source`` of a job."""

from __future__ import annotations

import fabio
import h5py
import hdf5plugin
import numpy as np
import pytest
from fabio.cbfimage import CbfImage
from fabio.edfimage import EdfImage

from gpuproc.io.frames import open_frames
from gpuproc.io.results import open_results
from gpuproc.io.store import ingest_frames, open_frames_scan, open_scan
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import run_waxs

FRAME = (16, 20)


def small_frames(n: int, seed: int = 0, dtype=np.int32) -> np.ndarray:
    return np.random.default_rng(seed).poisson(40, (n, *FRAME)).astype(dtype)


# ---- Eiger masters and external links ----------------------------------------------------------


@pytest.mark.realdata
def test_eiger_master_with_missing_data_file_names_it(realdata, tmp_path):
    master = realdata("waxs", "dectris_eiger_master.h5")
    for source in (master, f"{master}::/entry/data", f"{master}::/entry/data/data_000001"):
        with pytest.raises(FileNotFoundError, match=r"data_000001 links to the data file .*dectris_eiger_data_000001\.h5"
                                                    r", which does not exist"):
            open_frames(source)
    with pytest.raises(FileNotFoundError, match="dectris_eiger_data_000001.h5"):
        ingest_frames(str(master), tmp_path / "s.zarr", scan_shape=(1, 1))
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.realdata
def test_eiger_master_with_two_data_files_is_one_scan(realdata, tmp_path):
    """A master linking the real Eiger 4M frame (bitshuffle-LZ4) and a second data file of two
    frames made from it: three frames in data-file order, equal to their sources."""
    real = realdata("waxs", "bitshuffle.h5")
    with h5py.File(real, "r") as f:
        frame = f["entry/data/data"][0]
    second = np.stack([frame // 2, frame // 3])
    second[:, frame == np.iinfo(np.uint32).max] = np.iinfo(np.uint32).max
    with h5py.File(tmp_path / "scan_data_000002.h5", "w") as f:
        f.create_dataset("entry/data/data", data=second, chunks=(1, *frame.shape), **hdf5plugin.Bitshuffle())
    with h5py.File(tmp_path / "scan_master.h5", "w") as f:
        data = f.create_group("entry/data")
        data.attrs["NX_class"] = "NXdata"
        f["entry"].attrs["NX_class"] = "NXentry"
        data["data_000002"] = h5py.ExternalLink("scan_data_000002.h5", "/entry/data/data")  # relative to the master
        data["data_000001"] = h5py.ExternalLink(str(real), "/entry/data/data")
    reader = open_frames(tmp_path / "scan_master.h5")
    assert reader.shape == (3, *frame.shape) and reader.dtype == np.uint32
    assert reader.names == [f"{real}::/entry/data/data", f"{tmp_path / 'scan_data_000002.h5'}::/entry/data/data"]
    np.testing.assert_array_equal(reader.read(0, 3), np.concatenate([frame[None], second]))
    store = ingest_frames(str(tmp_path / "scan_master.h5"), tmp_path / "s.zarr", scan_shape=(1, 3), chunk_frames=2)
    np.testing.assert_array_equal(open_scan(store).frames[1:].compute(), second)
    lazy = open_frames_scan(str(tmp_path / "scan_master.h5"), (3, 1), chunk_frames=2)
    np.testing.assert_array_equal(lazy.frames[:2].compute(), reader.read(0, 2))


def test_data_files_differing_in_frame_shape_are_an_error(tmp_path):
    for i, shape in ((1, FRAME), (2, (8, 8))):
        with h5py.File(tmp_path / f"d{i}.h5", "w") as f:
            f["entry/data/data"] = np.zeros((2, *shape), np.uint32)
    with h5py.File(tmp_path / "master.h5", "w") as f:
        for i in (1, 2):
            f[f"entry/data/data_{i:06d}"] = h5py.ExternalLink(f"d{i}.h5", "/entry/data/data")
    with pytest.raises(ValueError, match=r"frame 2 \(.*d2\.h5::/entry/data/data\) has shape \(8, 8\)"):
        open_frames(f"{tmp_path / 'master.h5'}::/entry/data")


# ---- virtual datasets --------------------------------------------------------------------------


def write_vds(tmp_path, parts: list[np.ndarray]) -> str:
    """Source files src_<i>.h5 and vds.h5::/entry/data/data mapping them in order (relative names)."""
    layout = h5py.VirtualLayout((sum(len(p) for p in parts), *FRAME), parts[0].dtype)
    start = 0
    for i, part in enumerate(parts):
        with h5py.File(tmp_path / f"src_{i}.h5", "w") as f:
            f["data"] = part
        layout[start:start + len(part)] = h5py.VirtualSource(f"src_{i}.h5", "data", shape=part.shape)
        start += len(part)
    with h5py.File(tmp_path / "vds.h5", "w") as f:
        f.create_virtual_dataset("entry/data/data", layout, fillvalue=0)
    return f"{tmp_path / 'vds.h5'}::/entry/data/data"


def test_virtual_dataset_reads_its_sources(tmp_path, monkeypatch):
    parts = [small_frames(3, 1), small_frames(2, 2)]
    spec = write_vds(tmp_path, parts)
    monkeypatch.chdir(tmp_path.parent)  # source names are relative to the VDS file, not the cwd
    np.testing.assert_array_equal(open_frames(spec).read(0, 5), np.concatenate(parts))


def test_virtual_dataset_with_missing_sources_names_them(tmp_path):
    spec = write_vds(tmp_path, [small_frames(3, 1), small_frames(2, 2), small_frames(2, 3)])
    (tmp_path / "src_1.h5").unlink()
    with h5py.File(tmp_path / "src_2.h5", "w") as f:
        f["other"] = np.zeros(3)
    with pytest.raises(FileNotFoundError, match=r"virtual dataset with 2 of 3 sources missing: .*src_1\.h5::data, "
                                                r".*src_2\.h5::data"):
        open_frames(spec)
    with pytest.raises(FileNotFoundError, match="src_1.h5"):
        ingest_frames(spec, tmp_path / "s.zarr", scan_shape=(1, 7))
    assert not (tmp_path / "s.zarr").exists()


# ---- NeXus: @default / @signal, 2D frames ------------------------------------------------------


def test_nxdata_found_by_default_and_signal(tmp_path):
    frames = small_frames(4)
    with h5py.File(tmp_path / "scan.nxs", "w") as f:
        f.attrs["default"] = "scan"
        entry = f.create_group("scan")
        entry.attrs.update({"NX_class": "NXentry", "default": "detector_data"})
        data = entry.create_group("detector_data")
        data.attrs.update({"NX_class": "NXdata", "signal": "counts"})
        data["counts"] = frames
        data["dark"] = np.zeros((4, *FRAME), np.int32)
    reader = open_frames(tmp_path / "scan.nxs")
    assert reader.names == [f"{tmp_path / 'scan.nxs'}::/scan/detector_data/counts"]
    np.testing.assert_array_equal(reader.read(0, 4), frames)
    np.testing.assert_array_equal(open_frames(f"{tmp_path / 'scan.nxs'}::/scan").read(1, 3), frames[1:3])


def test_group_without_frames_is_an_error_naming_it(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["entry/a"] = np.zeros((2, *FRAME))
        f["entry/b"] = np.zeros((2, *FRAME))
    with pytest.raises(ValueError, match=r"x\.h5::/entry names no frames"):
        open_frames(f"{tmp_path / 'x.h5'}::/entry")


def test_2d_dataset_is_a_one_frame_scan(tmp_path):
    frame = small_frames(1)[0]
    with h5py.File(tmp_path / "one.h5", "w") as f:
        f["entry/data/data"] = frame
    reader = open_frames(f"{tmp_path / 'one.h5'}::/entry/data/data")
    assert reader.shape == (1, *FRAME)
    np.testing.assert_array_equal(reader.read(0, 1)[0], frame)
    np.testing.assert_array_equal(open_scan(ingest_frames(str(tmp_path / "one.h5"), tmp_path / "s.zarr",
                                                          scan_shape=(1, 1))).frames[0].compute(), frame)


@pytest.mark.realdata
def test_real_nexus_file_by_signal_and_its_2d_frame(realdata):
    path = realdata("waxs", "nexus-example.hdf5")
    with h5py.File(path, "r") as f:
        frames, blank = f["entry/data/frames"][()], f["entry/data/blank"][()]
    reader = open_frames(path)  # root @default -> entry @default -> data @signal = frames
    assert reader.names == [f"{path}::/entry/data/frames"]
    np.testing.assert_array_equal(reader.read(0, 10), frames)
    np.testing.assert_array_equal(open_frames(f"{path}::/entry/data/blank").read(0, 1)[0], blank)


# ---- fabio files --------------------------------------------------------------------------------


def test_multi_frame_edf_and_a_list_of_them(tmp_path):
    frames = small_frames(5)
    paths = []
    for name, block in (("a.edf", frames[:3]), ("b.edf", frames[3:])):
        image = EdfImage(data=block[0])
        for frame in block[1:]:
            image.append_frame(data=frame)
        image.write(str(tmp_path / name))
        paths.append(tmp_path / name)
    assert fabio.open(str(paths[0])).nframes == 3
    reader = open_frames(str(tmp_path / "*.edf"))
    assert reader.shape == (5, *FRAME) and reader.names == [str(p) for p in paths]
    np.testing.assert_array_equal(reader.read(2, 5), frames[2:])
    np.testing.assert_array_equal(open_frames(paths[0]).read(0, 3), frames[:3])


@pytest.mark.realdata
def test_real_cbf_and_tiff_files(realdata):
    cbf = open_frames(realdata("waxs", "DLS_I03_smargon_0001.cbf.gz"))
    assert cbf.shape == (1, 2527, 2463) and cbf.dtype == np.int32
    assert (cbf.read(0, 1) == -1).sum() == 526_101  # the module gaps (README of realdata)
    tiffs = open_frames(str(realdata("waxs", "lab6_tth") / "*.tif"))
    assert tiffs.shape == (2, 195, 1475) and tiffs.dtype == np.float32
    np.testing.assert_array_equal(tiffs.read(1, 2)[0], fabio.open(tiffs.names[1]).data)


# ---- frame files as [input] source of a job -----------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A tiny synthetic job on its scan store and its results: the reference of the file sources."""
    d = tmp_path_factory.mktemp("sources")
    job, scan = write_demo_job(d, (2, 3), "Pilatus100k", seed=4, npt_q=150, npt_azimuth=120, figures=False,
                               job_overrides={"device": "cpu"})
    return job, scan, open_results(run_waxs(job))


def run_on(job_file, output, source) -> object:
    job = load_job(job_file)
    job.input.source, job.input.scan_shape, job.input.step_um = source, (2, 3), (0.3, 0.3)
    job.job.output = output
    return open_results(run_waxs(job))


def assert_same_maps(ds, ref) -> None:
    for name in ("q0", "fwhm_q", "phi0", "fit_status", "a", "size"):
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
    assert ds.attrs["config"]["input"]["scan_shape"] == [2, 3]
    np.testing.assert_allclose(ds["x"].values, ref["x"].values)


def test_multi_frame_edf_as_job_source(demo, tmp_path):
    job, scan, ref = demo
    image = EdfImage(data=scan.frame(0))
    for i in range(1, scan.n_frames):
        image.append_frame(data=scan.frame(i))
    image.write(str(tmp_path / "scan.edf"))
    assert_same_maps(run_on(job, tmp_path / "edf.zarr", str(tmp_path / "scan.edf")), ref)


def test_cbf_glob_as_job_source(demo, tmp_path):
    job, scan, ref = demo
    assert not scan.gaps.any()  # Pilatus100k: one module, so the int32 CBF holds the same counts
    for i in range(scan.n_frames):
        CbfImage(data=scan.frame(i).astype(np.int32)).write(str(tmp_path / f"f_{i:03d}.cbf"))
    ds = run_on(job, tmp_path / "cbf.zarr", str(tmp_path / "f_*.cbf"))
    assert ds.attrs["config"]["input"]["source"] == str(tmp_path / "f_*.cbf")
    assert_same_maps(ds, ref)


def test_frame_source_needs_a_scan_shape(demo, tmp_path):
    job, scan, _ = demo
    cfg = load_job(job)
    cfg.input.source = str(tmp_path / "*.cbf")
    with pytest.raises(ValueError, match=r"\[input\] scan_shape is required"):
        run_waxs(cfg)
