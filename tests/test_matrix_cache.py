"""The integration matrix cache (gpuproc.waxs.matrix_cache): a repeated or resumed run loads the
matrix instead of rebuilding it, a change of geometry, mask or bins rebuilds it, a corrupt entry
is rebuilt, and cached and fresh matrices give the same cakes bit for bit. The bins' pixel-offset
spread (gpuproc.waxs.broadening) and the geometry's polarisation and solid-angle arrays are
cached beside it: loaded bit for bit, recomputed when what they depend on changes."""

import numpy as np
import pyFAI.detectors
import pytest
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from run_helpers import demo_job, job_with_output

from gpuproc.waxs import broadening, matrix_cache
from gpuproc.waxs.integrate import CakeIntegrator
from gpuproc.waxs.pipeline import run_waxs

SHAPE = (96, 112)


def _ai(dist: float = 0.05) -> AzimuthalIntegrator:
    det = pyFAI.detectors.Detector(172e-6, 172e-6, max_shape=SHAPE)
    return AzimuthalIntegrator(dist=dist, poni1=0.008, poni2=0.009, rot1=0.02, detector=det, wavelength=1e-10)


def _integrator(dist: float = 0.05, npt_q: int = 40, mask: np.ndarray | None = None, **kwargs) -> CakeIntegrator:
    return CakeIntegrator(_ai(dist), npt_q=npt_q, npt_azimuth=36, q_range=(0.3, 3.0), mask=mask, split="full",
                          device="cpu", threads=1, **kwargs)


def _counted(monkeypatch, owner, name: str) -> list:
    """Calls of ``owner.name`` counted (one list item per call)."""
    count = []
    original = getattr(owner, name)

    def counting(*args, **kwargs):
        count.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return count


@pytest.fixture
def builds(monkeypatch, tmp_path):
    """Matrix builds counted, with the cache in a fresh folder."""
    monkeypatch.setenv(matrix_cache.ENV_DIR, str(tmp_path / "cache"))
    return _counted(monkeypatch, CakeIntegrator, "_build_engine")


@pytest.fixture
def spreads(monkeypatch):
    """Bin-spread computations counted (CakeIntegrator.bin_spread imports it when called)."""
    return _counted(monkeypatch, broadening, "bin_spread")


def _frames(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(50.0, (3, *SHAPE)).astype(np.uint32)


def test_same_setup_loads_and_gives_the_same_cakes(builds):
    fresh = _integrator()
    assert len(builds) == 1
    cached = _integrator()
    assert len(builds) == 1  # loaded, not rebuilt
    frames = _frames()
    for a, b in zip(fresh.integrate_sums(frames), cached.integrate_sums(frames)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fresh.q, cached.q)
    np.testing.assert_array_equal(fresh.azimuth, cached.azimuth)


def test_geometry_mask_or_bins_change_rebuilds(builds):
    _integrator()
    mask = np.zeros(SHAPE, bool)
    mask[40:50, :] = True
    for changed in (dict(dist=0.051), dict(mask=mask), dict(npt_q=41)):
        before = len(builds)
        _integrator(**changed)
        assert len(builds) == before + 1, changed
    _integrator(mask=mask)  # each of them is cached in turn
    assert len(builds) == 4


INVALID = np.array([5, 700, 2000, 5000])  #: flat pixels flagged in every probe frame


def test_bin_spread_loaded_bit_for_bit(builds, spreads, monkeypatch):
    fresh = _integrator().bin_spread(INVALID)
    cached = _integrator().bin_spread(INVALID)
    assert len(spreads) == 1  # loaded, not recomputed
    monkeypatch.setenv(matrix_cache.ENV_DIR, "none")
    uncached = _integrator().bin_spread(INVALID)
    assert len(spreads) == 2 and len(builds) == 2
    for name, a, b, c in zip(broadening.BinOffsets._fields, fresh, cached, uncached):
        assert a.dtype == b.dtype == np.float64 and a.shape == (36, 40), name
        np.testing.assert_array_equal(a, b, err_msg=name)
        np.testing.assert_array_equal(a, c, err_msg=name)
    assert np.count_nonzero(fresh.var_q) > 100  # a real spread, not an empty entry


def test_bin_spread_recomputed_when_its_inputs_change(builds, spreads):
    reference = _integrator().bin_spread(INVALID)
    mask = np.zeros(SHAPE, bool)
    mask[40:50, :] = True
    changes = (dict(dist=0.051), dict(mask=mask), dict(npt_q=41), dict(polarization_factor=0.9))
    for changed in changes:
        before = len(spreads)
        other = _integrator(**changed).bin_spread(INVALID)
        assert len(spreads) == before + 1, changed
        assert other.mean_q.shape != reference.mean_q.shape or not np.array_equal(other.var_chi, reference.var_chi)
    _integrator().bin_spread(INVALID[:2])  # other pixels flagged in every frame
    _integrator().bin_spread(None)
    assert len(spreads) == len(changes) + 3
    _integrator(polarization_factor=0.9).bin_spread(INVALID)  # each of them is cached in turn
    _integrator().bin_spread(None)
    assert len(spreads) == len(changes) + 3


def test_pixel_corrections_loaded_bit_for_bit(builds, monkeypatch):
    computed = _counted(monkeypatch, AzimuthalIntegrator, "solidAngleArray")
    fresh, cached = _integrator(polarization_factor=0.95), _integrator(polarization_factor=0.95)
    assert len(computed) == 1  # loaded, not recomputed
    for changed in (dict(polarization_factor=0.9), dict(dist=0.051, polarization_factor=0.95)):
        _integrator(**changed)
    assert len(computed) == 3
    monkeypatch.setenv(matrix_cache.ENV_DIR, "none")
    uncached = _integrator(polarization_factor=0.95)
    for other in (cached, uncached):
        np.testing.assert_array_equal(other._norm_pixel, fresh._norm_pixel)
        np.testing.assert_array_equal(other.norm, fresh.norm)
    plain = _integrator(polarization_factor=None, solid_angle=False)  # both off: the flat field (ones) alone
    assert np.all(plain._norm_pixel[plain._norm_pixel > 0] == 1)
    assert not np.array_equal(fresh._norm_pixel, plain._norm_pixel)


def test_corrupt_entry_is_rebuilt_not_fatal(builds, tmp_path):
    reference = _integrator().integrate(_frames(1))
    (entry,) = [p for p in (tmp_path / "cache" / "csr").glob("*.npz") if "indptr" in np.load(p).files]  # the matrix
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the matrix
    entry.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again = _integrator()
    assert len(builds) == 2
    np.testing.assert_array_equal(again.integrate(_frames(1)), reference)
    entry.write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        _integrator()
    assert len(builds) == 3
    _integrator()  # the rebuilt entry is good
    assert len(builds) == 3


def test_cache_off_and_unwritable_folder(builds, monkeypatch, tmp_path):
    monkeypatch.setenv(matrix_cache.ENV_DIR, "none")
    _integrator()
    _integrator()
    assert len(builds) == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(matrix_cache.ENV_DIR, str(blocker))  # a file where the folder should be
    with pytest.warns(RuntimeWarning, match="cannot cache"):
        _integrator()
    assert len(builds) == 3


def test_repeated_and_resumed_runs_do_not_rebuild(builds, spreads, tmp_path):
    job_file = demo_job(tmp_path / "run")
    first = run_waxs(job_with_output(job_file, tmp_path / "first.zarr"))
    assert len(builds) == 1 and len(spreads) == 1
    run_waxs(job_with_output(job_file, tmp_path / "first.zarr"))  # resumed (complete)
    second = run_waxs(job_with_output(job_file, tmp_path / "second.zarr"))  # another output, same set-up
    assert len(builds) == 1 and len(spreads) == 1
    import zarr

    a, b = zarr.open_group(first, mode="r"), zarr.open_group(second, mode="r")
    for name in ("q0", "fwhm_q", "fwhm_phi", "a", "strain", "mean_cake"):  # widths: the cake's broadening removed
        np.testing.assert_array_equal(a[name][...], b[name][...], err_msg=name)
