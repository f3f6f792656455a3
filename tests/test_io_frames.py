"""Frame readers (EDF, CBF, HDF5) and the Zarr v3 scan store."""

import h5py
import hdf5plugin
import numpy as np
import pytest
from fabio.cbfimage import CbfImage
from fabio.edfimage import EdfImage

from gpuproc.io.frames import open_frames
from gpuproc.io.store import ingest_frames, open_frames_scan, open_scan, scan_index, write_scan

SCAN = (3, 4)
FRAME = (24, 30)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.poisson(50, (SCAN[0] * SCAN[1], *FRAME)).astype(np.int32)


def write_fabio(tmp_path, frames, kind: str) -> list:
    cls = {"edf": EdfImage, "cbf": CbfImage}[kind]
    paths = []
    for i, frame in enumerate(frames):
        path = tmp_path / f"frame_{i:05d}.{kind}"
        cls(data=frame).write(str(path))
        paths.append(path)
    return paths


def write_h5(tmp_path, frames, compression=None, name="data.h5") -> str:
    path = tmp_path / name
    with h5py.File(path, "w") as f:
        f.create_dataset("entry/data/data", data=frames, chunks=(1, *FRAME), **(compression or {}))
    return f"{path}::/entry/data/data"


def ingest(source, store, **kw):
    return ingest_frames(source, store, scan_shape=SCAN, step_um=(0.25, 0.3), **kw)


@pytest.mark.parametrize("kind", ["edf", "cbf"])
def test_fabio_ingest_roundtrip(tmp_path, frames, kind):
    paths = write_fabio(tmp_path, frames, kind)
    store = ingest(str(tmp_path / f"frame_*.{kind}"), tmp_path / "scan.zarr", chunk_frames=5)
    scan = open_scan(store)
    np.testing.assert_array_equal(scan.frames.compute(), frames)
    assert scan.frames.chunks[0] == (5, 5, 2)
    assert scan.attrs["scan_shape"] == list(SCAN)
    assert scan.attrs["step_um"] == [0.25, 0.3]
    assert scan.attrs["units"]["step_um"] == "um"
    assert scan.attrs["sources"] == [str(p) for p in paths]
    assert scan.attrs["complete"] is True


@pytest.mark.parametrize(
    "compression", [None, dict(hdf5plugin.Bitshuffle()), dict(hdf5plugin.Blosc(cname="zstd"))], ids=["plain", "bitshuffle", "blosc"]
)
def test_hdf5_ingest_matches_files(tmp_path, frames, compression):
    write_fabio(tmp_path, frames, "edf")
    from_files = open_scan(ingest(str(tmp_path / "frame_*.edf"), tmp_path / "a.zarr"))
    spec = write_h5(tmp_path, frames, compression)
    from_h5 = open_scan(ingest(spec, tmp_path / "b.zarr", monitor=np.arange(len(frames)) + 1.0))
    np.testing.assert_array_equal(from_h5.frames.compute(), from_files.frames.compute())
    for key in ("scan_shape", "scan_order", "step_um", "frame_shape", "units"):
        assert from_h5.attrs[key] == from_files.attrs[key]
    np.testing.assert_array_equal(from_h5.monitor.compute(), np.arange(len(frames)) + 1.0)
    lazy = open_frames_scan(spec, SCAN, step_um=(0.25, 0.3), chunk_frames=4)
    np.testing.assert_array_equal(lazy.frames.compute(), frames)
    np.testing.assert_array_equal(lazy.frames[5:7, 3].compute(), frames[5:7, 3])
    assert lazy.attrs["step_um"] == from_h5.attrs["step_um"]


def test_store_opens_with_xarray(tmp_path, frames):
    xr = pytest.importorskip("xarray")
    store = ingest(write_h5(tmp_path, frames), tmp_path / "s.zarr")
    ds = xr.open_zarr(store, consolidated=False)
    assert ds["frames"].dims == ("frame", "y_pixel", "x_pixel")
    assert ds.attrs["scan_order"] == "row"


def test_chunks_hold_whole_frames_of_about_16_mb(tmp_path):
    data = np.zeros((8, 1024, 1024), np.uint32)  # 4 MB frames -> 4 per chunk
    store = write_scan(
        [data[:3], data[3:]], tmp_path / "big.zarr", n_frames=8, frame_shape=(1024, 1024),
        dtype=data.dtype, scan_shape=(2, 4),
    )
    assert open_scan(store).frames.chunks[0] == (4, 4)


def test_snake_order(tmp_path, frames):
    store = ingest(write_h5(tmp_path, frames), tmp_path / "s.zarr", scan_order="snake")
    scan = open_scan(store)
    assert scan.attrs["scan_order"] == "snake"
    np.testing.assert_array_equal(scan.frame_index(), [[0, 1, 2, 3], [7, 6, 5, 4], [8, 9, 10, 11]])
    np.testing.assert_array_equal(scan_index(SCAN, "row")[1], [4, 5, 6, 7])
    with pytest.raises(ValueError, match="scan_order"):
        scan_index(SCAN, "zigzag")


def test_frame_count_mismatch(tmp_path, frames):
    spec = write_h5(tmp_path, frames[:11])
    with pytest.raises(ValueError, match=r"11 frames.*3 x 4 needs 12"):
        ingest(spec, tmp_path / "s.zarr")
    with pytest.raises(ValueError, match=r"11 frames.*12"):
        open_frames_scan(spec, SCAN)
    assert not (tmp_path / "s.zarr").exists()


def test_truncated_files_name_file_and_frame(tmp_path, frames):
    for kind in ("edf", "cbf"):
        (tmp_path / kind).mkdir()
        paths = write_fabio(tmp_path / kind, frames, kind)
        raw = paths[7].read_bytes()
        paths[7].write_bytes(raw[: len(raw) // 2])
        with pytest.raises(OSError, match=rf"frame 7 from .*frame_00007\.{kind}"):
            ingest(paths, tmp_path / f"{kind}.zarr")
        assert not (tmp_path / f"{kind}.zarr").exists()
        assert not list(tmp_path.glob(f"{kind}.zarr.*"))  # neither its staging folder nor its lock is left


def test_truncated_hdf5(tmp_path, frames):
    spec = write_h5(tmp_path, frames, dict(hdf5plugin.Bitshuffle()))
    path = tmp_path / "data.h5"
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.7)])
    with pytest.raises(OSError, match="data.h5"):
        open_frames(spec).read(0, len(frames))


def test_shape_mismatch_names_frame(tmp_path, frames):
    paths = write_fabio(tmp_path, frames, "edf")
    EdfImage(data=np.zeros((10, 10), np.int32)).write(str(paths[4]))
    with pytest.raises(ValueError, match=r"frame 4 \(.*frame_00004\.edf\) has shape \(10, 10\), expected \(24, 30\)"):
        ingest(paths, tmp_path / "s.zarr")


def test_missing_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="no frame files match"):
        open_frames(str(tmp_path / "*.cbf"))
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        open_frames(f"{tmp_path / 'nope.h5'}::/entry/data/data")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["a"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"no dataset '/entry/data/data' in HDF5 file .*x\.h5"):
        open_frames(f"{tmp_path / 'x.h5'}::/entry/data/data")
    with pytest.raises(ValueError, match=r"x\.h5::/a has shape \(3,\)"):
        open_frames(f"{tmp_path / 'x.h5'}::/a")


def test_existing_store_not_overwritten(tmp_path, frames):
    spec = write_h5(tmp_path, frames)
    ingest(spec, tmp_path / "s.zarr")
    with pytest.raises(FileExistsError, match="s.zarr"):
        ingest(spec, tmp_path / "s.zarr")
    ingest(spec, tmp_path / "s.zarr", overwrite=True, scan_order="snake")
    assert open_scan(tmp_path / "s.zarr").attrs["scan_order"] == "snake"
