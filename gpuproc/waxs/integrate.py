"""Batched azimuthal regrouping ("caking") of detector frames with pyFAI's own CSR matrix.

pyFAI's 2D sparse integrators (``integrate2d`` with ``method=(split, "csr", "cython")``) build
a pixel-splitting matrix ``C`` of shape ``(n_bins, n_pixels)`` once and compute, per frame,

    signal = C @ (valid * (frame - dark))
    norm   = C @ (valid * flat * polarization * solid_angle)
    I      = signal / norm

:class:`CakeIntegrator` asks pyFAI for the same matrix, then applies it to a whole batch of
frames as one sparse x dense product (``scipy.sparse`` on the CPU, ``cupyx.scipy.sparse`` on the
GPU). Pixels that are invalid in one frame only are removed from that frame's signal *and*
normalisation with pyFAI's own rules (:mod:`gpuproc.waxs.invalid_pixels`: non-finite values, the
detector's dummy +- delta_dummy, e.g. the -1/-2 flags of Pilatus/Eiger frames; flat-field values
meeting the dummy test), so the result equals ``integrate2d`` with the same method to float32
rounding; gpuproc adds the unsigned dtype maximum and an optional saturation threshold.

Conventions
-----------
- Cakes are float32 arrays ``(n_frames, npt_azimuth, npt_q)`` (pyFAI's ``intensity`` layout).
- Empty bins (normalisation not > 0: no valid pixel contributes) are NaN. pyFAI writes its
  ``empty`` value (0.0 by default) there instead. (pyFAI's full split gives a few bins at the
  chi seam a negative total weight; pyFAI divides there, gpuproc leaves them empty.)
- ``q`` holds radial bin centres in the chosen unit (``"q_A^-1"`` or ``"q_nm^-1"``).
- ``azimuth`` holds bin centres in degrees in pyFAI's chi convention: chi is measured in the
  detector plane from the horizontal axis through the beam centre, range [-180, 180) when
  pyFAI's discontinuity is at pi (the default), [0, 360) when the requested range needs it.
- Masks follow pyFAI: non-zero (True) means *masked*.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse

from gpuproc.backend import get_xp, resolve_device
from gpuproc.waxs import geometry_record, matrix_cache
from gpuproc.waxs.broadening import BinOffsets
from gpuproc.waxs.invalid_pixels import DummyRule, dummy_rule, invalid_intervals
from gpuproc.run.validate import check_geometry

RADIAL_UNITS = ("q_A^-1", "q_nm^-1")
_BAD_CAP = 1 << 16  # invalid pixels listed per block by the compiled kernel before falling back
_c_ll, _c_i, _c_d, _c_p = ctypes.c_longlong, ctypes.c_int, ctypes.c_double, ctypes.c_void_p
_PREPARE = {np.dtype(t): f"csr_prepare_{s}" for t, s in
            (("u2", "u16"), ("u4", "u32"), ("i4", "i32"), ("f4", "f32"), ("f8", "f64"))}  # fmt: skip


@functools.lru_cache(maxsize=1)
def _kernels() -> ctypes.CDLL | None:
    """The compiled CPU kernels (kernels/csr_cpu.cpp as gpuproc._csrcpu), None if not built.

    Without them the CPU path uses NumPy for the frame preparation and scipy.sparse for the
    product: the same results, several times slower. ``GPUPROC_NO_CSR_KERNELS=1`` forces that.
    """
    if os.environ.get("GPUPROC_NO_CSR_KERNELS") == "1":
        return None
    spec = importlib.util.find_spec("gpuproc._csrcpu")
    if spec is None or spec.origin is None:
        return None
    lib = ctypes.CDLL(spec.origin)
    for name in _PREPARE.values():
        fn = getattr(lib, name)
        fn.restype = _c_ll
        fn.argtypes = [_c_p, _c_ll, _c_ll, _c_p, _c_i, _c_p, _c_i, _c_d, _c_p, _c_p, _c_p, _c_ll]
    lib.csr_spmm.restype = None
    lib.csr_spmm.argtypes = [_c_ll, _c_ll, _c_ll, _c_p, _c_p, _c_p, _c_p, _c_p, _c_ll, _c_p]
    return lib

SPLITS = ("no", "bbox", "full")
_PONI_REQUIRED = ("distance", "poni1", "poni2", "wavelength")


def load_geometry(geometry: str | Path | Any) -> Any:
    """An AzimuthalIntegrator from a PONI file, or the integrator itself.

    Parameters
    ----------
    geometry
        Path to a PONI file (pyFAI format, distances in m, angles in rad, wavelength in m) or
        an existing :class:`pyFAI.integrator.azimuthal.AzimuthalIntegrator`.

    Raises
    ------
    FileNotFoundError
        The PONI file does not exist.
    ValueError
        The PONI file cannot be parsed or lacks distance, PONI or wavelength.
    """
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    if isinstance(geometry, AzimuthalIntegrator):
        return geometry
    path = Path(geometry)
    if not path.is_file():
        raise FileNotFoundError(f"PONI file not found: {path}")
    keys = _poni_keys(path)
    missing = [k for k in _PONI_REQUIRED if k not in keys]
    if missing:
        raise ValueError(f"malformed PONI file {path}: missing {', '.join(missing)}")
    try:
        ai = AzimuthalIntegrator()
        # pyFAI runs a full garbage collection at every reset (loading is one: ~0.08 s after the imports)
        ai.auto_gc = False
        ai.load(str(path))  # as pyFAI.load(path)
    except Exception as exc:
        raise ValueError(f"malformed PONI file {path}: {exc}") from exc
    check_geometry(ai, path)
    return ai


def _poni_keys(path: Path) -> set[str]:
    """Lower-case keys of the ``key: value`` lines of a PONI file."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ValueError(f"malformed PONI file {path}: not a text file ({exc})") from exc
    keys = set()
    for line in text.splitlines():
        if ":" in line and not line.lstrip().startswith("#"):
            keys.add(line.split(":", 1)[0].strip().lower())
    return keys


class PixelCorrections(NamedTuple):
    """Per-pixel corrections of a geometry (H, W) float32: pyFAI's polarisation factor and its
    relative solid angle (ones where the job turns one off)."""

    polarization: np.ndarray
    solid_angle: np.ndarray


@dataclass(frozen=True)
class _FrameRules:
    """Invalid values of frames of one dtype."""

    intervals: list[tuple[Any, Any]]  #: closed intervals of invalid raw values (invalid_intervals)
    flat_bad: np.ndarray  #: pixels whose flat value meets the dummy test: invalid in every frame
    flat_bad_dev: Any  #: the same on the integrator's device (uploaded once)


class CakeIntegrator:
    """Regroup batches of frames into (azimuth, q) cakes with one precomputed CSR matrix.

    Parameters
    ----------
    geometry
        PONI file path or pyFAI AzimuthalIntegrator (distance, beam centre, tilts, wavelength).
        A given integrator is used as is; like ``integrate2d``, an azimuth range crossing
        180 degrees moves its chi discontinuity to 0.
    npt_q, npt_azimuth
        Number of radial and azimuthal bins.
    q_range
        Fixed (q_min, q_max) of the radial axis, in ``unit``.
    unit
        ``"q_A^-1"`` or ``"q_nm^-1"``.
    azimuth_range
        (chi_min, chi_max) in degrees, pyFAI chi convention; default the full circle.
    shape
        Detector shape (H, W) in pixels; default the detector's own shape.
    mask
        User mask (non-zero = masked), merged with the detector's own mask (gaps). (pyFAI's
        ``integrate2d(mask=m)`` uses ``m`` alone; the cake equals it with ``m | detector.mask``.)
    dark
        Dark image (counts) subtracted from every frame.
    flat
        Flat-field image (dimensionless) dividing every frame.
    polarization_factor
        pyFAI polarisation factor in [-1, 1]; None: no polarisation correction.
    solid_angle
        Apply pyFAI's solid-angle correction (cos(incidence)^3, relative).
    split
        Pixel splitting: ``"bbox"`` (bounding box), ``"full"`` (pixel corners, pyFAI's default
        split) or ``"no"``; matches pyFAI's ``method=(split, "csr", "cython")``. (pyFAI 2026.9
        builds its "full" matrix slightly differently from run to run: up to 1e-5 relative.)
    dummy
        Per-frame invalid value, tested as pyFAI does (:mod:`gpuproc.waxs.invalid_pixels`):
        ``"auto"`` the detector's own dummy and delta_dummy, as ``integrate2d`` uses them
        (Pilatus/Eiger: -2 +- 1.5, cast through the frame dtype; none for a generic detector);
        a number (counts); or None (no dummy test).
    delta_dummy
        Tolerance of a numeric ``dummy`` (``|value - dummy| <= delta_dummy`` is invalid); None:
        exact equality. Must be None with ``"auto"``.
    saturation
        Values above this (counts) are invalid in that frame; None: no threshold. The maximum
        of unsigned integer dtypes (2**16-1, 2**32-1) is always invalid, as are NaN and inf.
    device
        ``"auto"``, ``"cpu"`` or ``"gpu"``.
    block_frames
        Frames per sparse product. Each CPU thread keeps a work buffer of
        ``4 * block_frames * n_pixels`` bytes (64 MiB for 16 frames of 1 Mpixel).
    threads
        CPU threads running blocks of frames in parallel; default ``min(os.cpu_count(), 8)``.
        Ignored on the GPU.

    Attributes
    ----------
    q : numpy.ndarray
        Radial bin centres in ``unit``, shape (npt_q,).
    azimuth : numpy.ndarray
        Azimuthal bin centres in degrees, shape (npt_azimuth,).
    count : numpy.ndarray
        Pixel weight per bin with the static mask only (sum of splitting fractions),
        shape (npt_azimuth, npt_q), float32.
    norm : numpy.ndarray
        Normalisation per bin with the static mask only (sum of fraction * flat * polarization
        * solid angle), shape (npt_azimuth, npt_q), float32.
    """

    def __init__(
        self,
        geometry: str | Path | Any,
        *,
        npt_q: int,
        npt_azimuth: int,
        q_range: tuple[float, float],
        unit: str = "q_A^-1",
        azimuth_range: tuple[float, float] = (-180.0, 180.0),
        shape: tuple[int, int] | None = None,
        mask: np.ndarray | None = None,
        dark: np.ndarray | None = None,
        flat: np.ndarray | None = None,
        polarization_factor: float | None = None,
        solid_angle: bool = True,
        split: str = "bbox",
        dummy: float | str | None = "auto",
        delta_dummy: float | None = None,
        saturation: float | None = None,
        device: str = "auto",
        block_frames: int = 16,
        threads: int | None = None,
    ) -> None:
        if unit not in RADIAL_UNITS:
            raise ValueError(f"unit must be one of {RADIAL_UNITS}, got {unit!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.unit = unit
        self._source = geometry
        self._ai = None if isinstance(geometry, (str, Path)) else load_geometry(geometry)
        record = self._geometry_record(q_range, azimuth_range)
        self._geometry = record.info
        self._detector_mask = record.detector_mask(self._geometry["shape"])
        self.shape = self._detector_shape(shape)
        self.npt_q, self.npt_azimuth = int(npt_q), int(npt_azimuth)
        self.dummy, self.delta_dummy, self.saturation = dummy, delta_dummy, saturation
        self._dummy_rule(np.dtype(np.float32))  # a bad dummy / delta_dummy fails here, not later
        self.block_frames = int(block_frames)
        self.device = resolve_device(device)
        self._xp = get_xp(self.device)

        norm_pixel = self._normalisation_pixels(flat, polarization_factor, solid_angle)
        dark32 = self._image("dark", dark, np.zeros(self.shape, np.float32))
        self._flat = None if flat is None else self._image("flat", flat, None).ravel()
        static_mask = self._static_mask(mask, norm_pixel, dark32)
        self._static = static_mask.ravel()
        self._static_u8 = self._static.view(np.uint8)
        self._static_index = np.flatnonzero(self._static)
        self._unmasked_dev = self._xp.asarray(~self._static)  # on the device once (pixel_signal)
        if static_mask.all():
            raise ValueError("every detector pixel is masked (detector gaps, user mask, invalid dark/flat)")
        geo = self._geometry
        radial, azim = tuple(geo["radial"]), tuple(geo["azimuth"])
        key = matrix_cache.fingerprint(
            geometry=geo["config"], chi_disc_at_pi=geo["chi_disc_at_pi"], shape=self.shape,
            mask=np.packbits(static_mask), radial=radial, azimuth=azim, bins=(self.npt_q, self.npt_azimuth),
            unit=unit, split=split, rules=(str(dummy), delta_dummy, saturation))
        engine = matrix_cache.load_or_build(key, lambda: self._build_engine(static_mask, radial, azim, split))
        self._matrix_key = key
        self.q = np.asarray(engine.centers0, np.float64) * geo["unit_scale"]
        self.azimuth = np.degrees(np.asarray(engine.centers1, np.float64))

        self.threads = self._thread_count(threads)
        self._prepare_matrix((engine.data, engine.indices, engine.indptr), static_mask, norm_pixel)
        self._dark = dark32.ravel()
        self._dark_dev = self._xp.asarray(self._dark)
        self._usable_dev = self._xp.asarray(~self._static)  # pixels outside the static mask
        self._local = threading.local()  # per-thread work buffers (CPU)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pattern_norms: dict[bytes, Any] = {}  # invalid-pixel pattern -> its cake norm
        self._rules: dict[np.dtype, _FrameRules] = {}  # frame dtype -> its invalid-value rules

    # ---- set-up -------------------------------------------------------------------------------

    @property
    def ai(self) -> Any:
        """The pyFAI AzimuthalIntegrator of the geometry, its chi discontinuity where the azimuth
        range puts it. Loaded from the PONI file on first use (which imports pyFAI): a repeated
        run with its matrix cached does not need it (gpuproc.waxs.geometry_record)."""
        if self._ai is None:
            ai = load_geometry(self._source)
            ai.check_chi_disc(tuple(self._geometry["azimuth"]))
            self._ai = ai
        return self._ai

    @property
    def beam_centre_px(self) -> list[float]:
        """Direct-beam position [row, column] on the detector, pixels (integers at pixel edges)."""
        return list(self._geometry["beam_centre_px"])

    def release_geometry_arrays(self) -> None:
        """Drop the per-pixel arrays pyFAI keeps (polarisation, solid angle, chi, q: ~150 MB on an
        Eiger 4M) once the set-up is done; nothing to drop when pyFAI was not needed."""
        if self._ai is not None:
            self._ai.reset(collect_garbage=False)

    def _geometry_record(self, q_range: tuple[float, float],
                         azimuth_range: tuple[float, float]) -> geometry_record.GeometryRecord:
        """What the integration needs of the geometry: cached on disk for a PONI file (keyed by its
        bytes and the ranges), computed from a given integrator."""
        if self._ai is not None:
            return self._record_from_pyfai(q_range, azimuth_range)
        path = Path(self._source)
        if not path.is_file():
            raise FileNotFoundError(f"PONI file not found: {path}")
        key = geometry_record.key_of(path, q_range=[float(v) for v in q_range],
                                     azimuth_range=[float(v) for v in azimuth_range], unit=self.unit)

        def build() -> geometry_record.GeometryRecord:
            self._ai = load_geometry(path)
            return self._record_from_pyfai(q_range, azimuth_range)

        return matrix_cache.load_or_build(key, build, geometry_record.GeometryRecord)

    def _record_from_pyfai(self, q_range: tuple[float, float],
                           azimuth_range: tuple[float, float]) -> geometry_record.GeometryRecord:
        """The geometry record computed by pyFAI (the ranges as ``integrate2d`` converts them)."""
        import pyFAI.units

        scale = pyFAI.units.to_unit(self.unit).scale
        radial, azim = self._ranges(q_range, azimuth_range, scale)
        return geometry_record.record_of(self.ai, radial, azim, scale)

    def _detector_shape(self, shape: tuple[int, int] | None) -> tuple[int, int]:
        """Frame shape (H, W): the argument, else the detector's."""
        det_shape = self._geometry["shape"]
        if shape is None:
            if det_shape is None:
                raise ValueError("the detector has no shape; pass shape=(H, W)")
            return tuple(int(s) for s in det_shape)
        shape = tuple(int(s) for s in shape)
        if det_shape is not None and tuple(det_shape) != shape:
            raise ValueError(f"shape {shape} differs from the detector shape {tuple(det_shape)}")
        return shape

    def _image(self, name: str, image: np.ndarray | None, default: np.ndarray) -> np.ndarray:
        """A correction image as float32 with the detector shape, or ``default``."""
        if image is None:
            return default
        image = np.asarray(image, dtype=np.float32)
        if image.shape != self.shape:
            raise ValueError(f"{name} has shape {image.shape}, detector shape is {self.shape}")
        return image

    def _normalisation_pixels(
        self, flat: np.ndarray | None, polarization_factor: float | None, solid_angle: bool
    ) -> np.ndarray:
        """flat * polarization * solid angle per pixel (float32, pyFAI's order of products). The
        geometry's two arrays are cached on disk (gpuproc.waxs.matrix_cache) keyed by the pyFAI
        geometry, shape, polarisation factor and solid-angle switch (a factor left out is ones)."""
        norm = self._image("flat", flat, np.ones(self.shape, np.float32)).copy()

        def build() -> PixelCorrections:
            ones = np.ones(self.shape, np.float32)
            return PixelCorrections(
                ones if polarization_factor is None else
                self.ai.polarization(self.shape, polarization_factor).astype(np.float32),
                self.ai.solidAngleArray(self.shape, True).astype(np.float32) if solid_angle else ones)

        key = matrix_cache.fingerprint(entry="pixel_corrections", geometry=self._geometry["config"], shape=self.shape,
                                       polarization_factor=polarization_factor, solid_angle=bool(solid_angle))
        for correction in matrix_cache.load_or_build(key, build, PixelCorrections):
            norm *= correction  # x 1.0 where a correction is off: exact
        return norm

    def _static_mask(
        self, mask: np.ndarray | None, norm_pixel: np.ndarray, dark: np.ndarray
    ) -> np.ndarray:
        """Detector mask | user mask | pixels whose dark or normalisation is unusable."""
        static = np.zeros(self.shape, bool)
        if self._detector_mask is not None:
            static |= self._detector_mask
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != self.shape:
                raise ValueError(f"mask has shape {mask.shape}, detector shape is {self.shape}")
            static |= mask.astype(bool)
        static |= ~np.isfinite(norm_pixel) | (norm_pixel == 0) | ~np.isfinite(dark)
        return static

    def _ranges(self, q_range: tuple[float, float], azimuth_range: tuple[float, float],
                scale: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """Radial range in pyFAI's internal unit (``scale``: the radial unit's) and azimuth range in
        radians, converted exactly as ``integrate2d`` does (which may move the geometry's chi
        discontinuity)."""
        from pyFAI.utils.mathutil import deg2rad

        radial = tuple(float(r) / scale for r in q_range)
        disc = self.ai.chiDiscAtPi
        azim = tuple(deg2rad(float(a), disc) for a in azimuth_range)
        if azim[1] <= azim[0]:
            azim = (azim[0], azim[1] + 2 * np.pi)
        self.ai.check_chi_disc(azim)
        return radial, azim

    def _build_engine(self, mask: np.ndarray, radial: tuple[float, float], azim: tuple[float, float],
                      split: str) -> matrix_cache.CachedMatrix:
        """pyFAI's 2D CSR matrix and bin centres (the ranges from :meth:`_ranges`)."""
        import pyFAI.units

        engine = self.ai.setup_sparse_integrator(
            self.shape,
            (self.npt_q, self.npt_azimuth),
            mask=mask.astype(np.int8),
            pos0_range=radial,
            pos1_range=azim,
            unit=(pyFAI.units.to_unit(self.unit), pyFAI.units.CHI_DEG),
            split=split,
            algo="CSR",
            scale=False,
        )
        data, indices, indptr = engine.lut
        return matrix_cache.CachedMatrix(np.asarray(data, np.float32), np.asarray(indices, np.int32),
                                         np.asarray(indptr, np.int32), np.asarray(engine.bin_centers0, np.float64),
                                         np.asarray(engine.bin_centers1, np.float64))

    def _thread_count(self, threads: int | None) -> int:
        """Worker threads for the CPU path (1 on the GPU)."""
        if self.device == "gpu":
            return 1
        if threads is None:
            return max(1, min(os.cpu_count() or 1, 8))
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        return int(threads)

    def _prepare_matrix(self, lut: tuple, static_mask: np.ndarray, norm_pixel: np.ndarray) -> None:
        """pyFAI's CSR matrix with its rows reordered for locality, the static normalisation.

        pyFAI orders bins q-major, so consecutive rows walk around a ring and the product reads
        the frames in a scattered order; sorting rows by their first pixel makes it sweep the
        frames nearly sequentially (about 2x faster on the CPU). Each row keeps its non-zeros in
        pyFAI's order. ``_cake_index`` maps (azimuth, q) cake positions to rows.
        """
        data, indices, indptr = lut
        n_bins, n_pixels = self.npt_q * self.npt_azimuth, self.shape[0] * self.shape[1]
        pyfai = scipy.sparse.csr_matrix(
            (np.asarray(data, np.float32), np.asarray(indices, np.int32), np.asarray(indptr, np.int32)),
            shape=(n_bins, n_pixels),
        )
        lengths = np.diff(pyfai.indptr)
        first = np.where(lengths > 0, pyfai.indices[np.minimum(pyfai.indptr[:-1], max(pyfai.nnz - 1, 0))], n_pixels)
        order = np.argsort(first, kind="stable")
        host = pyfai[order]
        self._host = scipy.sparse.csr_matrix(
            (host.data.astype(np.float32), host.indices.astype(np.int32), host.indptr.astype(np.int32)),
            shape=host.shape,
        )
        self._host_csc: Any = None  # built on the first invalid-pixel pattern
        row_of_bin = np.empty(n_bins, np.intp)
        row_of_bin[order] = np.arange(n_bins)
        # pyFAI's bin b = iq * npt_azimuth + iaz; the cake is (azimuth, q)
        self._cake_index = row_of_bin.reshape(self.npt_q, self.npt_azimuth).T.ravel().copy()
        self._cake_index_dev = self._xp.asarray(self._cake_index)
        self._row_dest = np.empty(n_bins, np.int64)  # row -> its flat (azimuth, q) cake position
        self._row_dest[self._cake_index] = np.arange(n_bins)
        self._matrix = self._device_csr(self._host)
        self._norm_pixel = np.where(static_mask, 0, norm_pixel).ravel().astype(np.float32)
        self._norm_static = self._host @ self._norm_pixel
        self.norm = self._to_cake(self._norm_static[None])[0]
        self._norm_dev = self._xp.asarray(self.norm)
        self.count = self._to_cake((self._host @ (~static_mask).ravel().astype(np.float32))[None])[0]

    def bin_spread(self, invalid: np.ndarray | None = None) -> BinOffsets:
        """Mean offset of the contributing pixel centres from every bin's centre and their variance
        about it, (n_azimuth, n_q) each, in q unit (squared) and degrees (squared): where a bin
        samples the pattern and the broadening the cake adds (gpuproc.waxs.broadening); with the
        pixels ``invalid`` (flat indices, e.g. :meth:`shared_invalid`) left out. Cached on disk
        with the matrix (gpuproc.waxs.matrix_cache), keyed by the matrix and the pixel weights."""
        from gpuproc.waxs.broadening import bin_spread, pixel_centres

        pixel_norm = self._norm_pixel
        if invalid is not None and len(invalid):
            pixel_norm = pixel_norm.copy()
            pixel_norm[invalid] = 0

        def build() -> BinOffsets:
            q_pix, chi_pix = pixel_centres(self.ai, self.shape, self.unit)
            return bin_spread(self._host, self._row_dest, q_pix.ravel(), chi_pix.ravel(), self.q, self.azimuth,
                              pixel_norm)

        m = self._host
        key = matrix_cache.fingerprint(entry="bin_spread", matrix=self._matrix_key, data=m.data, indices=m.indices,
                                       indptr=m.indptr, pixel_norm=pixel_norm)
        return matrix_cache.load_or_build(key, build, BinOffsets)

    def shared_invalid(self, frames: Any) -> np.ndarray:
        """Pixels (sorted flat indices) invalid in every one of ``frames`` and not statically
        masked: the flags a detector writes into each frame (Dectris -1/-2, 2**32-1 on dead
        pixels). Set-up statistics for a typical frame leave them out (:meth:`typical_norm`,
        :meth:`bin_spread`); integration does not need them (each frame's own pixels decide)."""
        frames = self._as_batch(frames)
        bad = ~self._valid(self._xp.asarray(frames).reshape(frames.shape[0], -1))
        return np.flatnonzero(self._to_host(bad.all(axis=0)) & ~self._static)

    def pixel_signal(self, frames: Any) -> np.ndarray:
        """The pixels as the integration uses them: (n, H, W) float32 NumPy, frame - dark, NaN
        where the pixel is masked (detector gaps, user mask, unusable dark or flat) or invalid
        in that frame (dummy values, detector flags, saturation)."""
        frames = self._as_batch(frames)
        xp = self._xp
        raw = xp.asarray(frames).reshape(frames.shape[0], -1)
        lib = _kernels() if self.device == "cpu" else None
        if lib is not None and np.dtype(raw.dtype) in _PREPARE:  # one pass of the compiled kernel
            x, bad = self._prepared_kernels(lib, np.ascontiguousarray(raw))
            signal = np.ascontiguousarray(x.T)
            signal[:, self._static_index] = np.nan
            signal.ravel()[bad] = np.nan
            return signal.reshape(frames.shape)
        valid = self._valid(raw) & self._unmasked_dev
        signal = xp.where(valid, raw.astype(xp.float32) - self._dark_dev, xp.float32(np.nan))
        return self._to_host(signal).reshape(frames.shape)

    def typical_norm(self, invalid: np.ndarray) -> np.ndarray:
        """Cake normalisation (npt_azimuth, npt_q), NumPy, of a frame whose pixels ``invalid``
        (sorted flat indices, e.g. :meth:`shared_invalid`) are invalid: :attr:`norm` without them."""
        if not len(invalid):
            return self.norm
        return self._to_host(self._pattern_norm(np.asarray(invalid, np.int64)))

    def _device_csr(self, host: Any) -> Any:
        """The CSR matrix (n_bins, n_pixels) on the integrator's device."""
        if self.device == "gpu":
            import cupyx.scipy.sparse

            arrays = tuple(self._xp.asarray(a) for a in (host.data, host.indices, host.indptr))
            return cupyx.scipy.sparse.csr_matrix(arrays, shape=host.shape)
        return host

    # ---- integration --------------------------------------------------------------------------

    def integrate(self, frames: Any) -> Any:
        """Cakes of a batch of frames.

        Parameters
        ----------
        frames
            Array (n_frames, H, W) or one frame (H, W), counts; NumPy, CuPy or any array-like.

        Returns
        -------
        Array (n_frames, npt_azimuth, npt_q), float32, intensity per unit normalisation; NaN in
        empty bins. On the integrator's device (NumPy on the CPU, CuPy on the GPU).
        """
        signal, norm = self.integrate_sums(frames)
        xp = self._xp
        with np.errstate(invalid="ignore", divide="ignore"):
            xp.divide(signal, norm, out=signal)
        xp.copyto(signal, xp.float32(np.nan), where=~(norm > 0))
        return signal

    def integrate_sums(self, frames: Any) -> tuple[Any, Any]:
        """Summed signal and normalisation per bin (useful as fit weights).

        Returns
        -------
        signal, norm
            Arrays (n_frames, npt_azimuth, npt_q), float32: sum of fraction * (frame - dark) and
            sum of fraction * flat * polarization * solid angle over the valid pixels of each frame.
        """
        frames = self._as_batch(frames)
        xp = self._xp
        n = len(frames)
        signal = xp.empty((n, self.npt_azimuth, self.npt_q), xp.float32)
        norm = xp.empty_like(signal)
        work = lambda r: self._sums_block(frames[r[0]:r[1]], signal[r[0]:r[1]], norm[r[0]:r[1]])  # noqa: E731
        ranges = self._frame_blocks(n)
        if self.threads > 1 and len(ranges) > 1:
            for _ in self._executor().map(work, ranges):
                pass
        else:
            for r in ranges:
                work(r)
        return signal, norm

    def _frame_blocks(self, n: int) -> list[tuple[int, int]]:
        """(start, stop) of the sparse products of ``n`` frames: at most ``block_frames`` each, as
        many as a multiple of the threads, sizes within one frame of each other (so no thread
        waits on another: 40 frames on 2 threads are 4 x 10, not 16 + 16 + 8)."""
        count = -(-n // self.block_frames)
        if self.threads > 1:
            count = min(n, self.threads * -(-count // self.threads))
        bounds = [n * i // max(count, 1) for i in range(count + 1)]
        return list(zip(bounds[:-1], bounds[1:]))

    def _executor(self) -> ThreadPoolExecutor:
        """The integrator's thread pool (its threads keep their work buffers between calls)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="cake")
            return self._pool

    def _as_batch(self, frames: Any) -> Any:
        """Frames as (n, H, W), with an error naming the first frame of the wrong shape."""
        if isinstance(frames, (list, tuple)):
            for index, frame in enumerate(frames):
                self._check_shape(index, np.shape(frame))
            return np.stack([np.asarray(f) for f in frames]) if frames else np.empty((0, *self.shape))
        if getattr(frames, "ndim", None) is None:
            frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        elif frames.ndim != 3:
            raise ValueError(f"frames must be (n_frames, H, W) or (H, W), got shape {tuple(frames.shape)}")
        self._check_shape(0, frames.shape[1:])
        return frames

    def _check_shape(self, index: int, shape: tuple[int, ...]) -> None:
        """Raise ValueError naming the frame index when its shape is not the detector's."""
        if tuple(shape) != self.shape:
            raise ValueError(f"frame {index} has shape {tuple(shape)}, detector shape is {self.shape}")

    def _sums_block(self, block: Any, signal: Any, norm: Any) -> None:
        """Signal and normalisation of one block of frames into ``signal``, ``norm`` (n, az, q).

        One sparse product serves the whole block: its columns are the n dark-subtracted frames
        with their invalid pixels zeroed. A frame without invalid pixels takes the static
        normalisation; a frame with some takes that of its pattern of invalid pixels, in which
        only the bins those pixels touch are recomputed (once per pattern, then cached).
        """
        raw = block.reshape(block.shape[0], -1)
        lib = _kernels() if self.device == "cpu" else None
        if lib is not None and np.dtype(raw.dtype) in _PREPARE:
            bad = self._product_kernels(lib, np.ascontiguousarray(raw), signal)
        else:
            sums, bad = self._product_xp(raw)
            signal[...] = sums[self._cake_index_dev].T.reshape(signal.shape)
        norm[...] = self._norm_dev
        if len(bad):
            frame_of, pixel = np.divmod(bad, raw.shape[1])
            cuts = np.flatnonzero(np.diff(frame_of)) + 1
            for frame, pixels in zip(frame_of[np.r_[0, cuts]], np.split(pixel, cuts)):
                norm[int(frame)] = self._pattern_norm(pixels)

    def _buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """This thread's work arrays: frames (n_pixels, n) and the invalid-pixel list. The memory
        is kept for the largest ``n`` seen (a fresh buffer costs its page faults at every block)."""
        local = self._local
        size = self._host.shape[1] * n
        if getattr(local, "x", None) is None or local.x.size < size:
            local.x = np.empty(size, np.float32)
            local.bad = np.empty(_BAD_CAP, np.int64)
        return local.x[:size].reshape(self._host.shape[1], n), local.bad

    def _product_kernels(self, lib: ctypes.CDLL, raw: np.ndarray, signal: np.ndarray) -> np.ndarray:
        """signal = C @ (frames - dark) as cakes, with the compiled kernels.

        Returns the sorted flat indices (frame * n_pixels + pixel) of the invalid pixels outside
        the static mask.
        """
        x, bad_flat = self._prepared_kernels(lib, raw)
        m = self._host
        assert signal.flags.c_contiguous and signal.dtype == np.float32
        lib.csr_spmm(0, m.shape[0], raw.shape[0], m.indptr.ctypes.data, m.indices.ctypes.data, m.data.ctypes.data,
                     x.ctypes.data, self._row_dest.ctypes.data, m.shape[0], signal.ctypes.data)  # fmt: skip
        return bad_flat

    def _prepared_kernels(self, lib: ctypes.CDLL, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This thread's work array X (n_pixels, n) = frames - dark, transposed, 0 at invalid
        pixels, and the sorted flat indices (frame * n_pixels + pixel) of the invalid pixels
        outside the static mask, with the compiled kernel."""
        n, n_pixels = raw.shape
        x, bad = self._buffers(n)
        rules, saturation = self._rules_for(raw.dtype), self.saturation
        if raw.dtype == np.float32:  # compare as NumPy does: the Python scalar becomes float32
            saturation = None if saturation is None else float(np.float32(saturation))
        intervals = np.asarray(rules.intervals, np.float64).ravel()  # exact: <= 32-bit values
        count = getattr(lib, _PREPARE[np.dtype(raw.dtype)])(
            raw.ctypes.data, n, n_pixels, self._dark.ctypes.data,
            len(rules.intervals), intervals.ctypes.data, saturation is not None, float(saturation or 0),
            self._static_u8.ctypes.data, x.ctypes.data, bad.ctypes.data, _BAD_CAP,
        )  # fmt: skip
        if count > _BAD_CAP:  # too many to list: the kernel zeroed them all, find them again
            bad_flat = self._unmasked(np.flatnonzero(~self._valid(raw)), n_pixels)
        else:
            bad_flat = np.sort(bad[:count])
        if len(rules.flat_bad):  # invalid in every frame of this dtype
            x[rules.flat_bad] = 0
            bad_flat = np.union1d(bad_flat, (np.arange(n)[:, None] * n_pixels + rules.flat_bad).ravel())
        return x, bad_flat

    def _product_xp(self, raw: Any) -> tuple[Any, np.ndarray]:
        """C @ (frames - dark) with the array library (NumPy + scipy.sparse, or CuPy + cuSPARSE)."""
        xp = self._xp
        raw = xp.asarray(raw)
        n, n_pixels = raw.shape
        if self.device == "cpu":
            x = self._buffers(n)[0]
            step = 8192  # pixels per chunk: the transposing subtraction stays in cache
            for p in range(0, n_pixels, step):
                np.subtract(raw[:, p : p + step].T, self._dark[p : p + step, None], out=x[p : p + step],
                            dtype=np.float32)  # fmt: skip
        else:
            x = xp.subtract(raw.T, self._dark_dev[:, None], dtype=xp.float32)
        # statically masked pixels have no matrix entries: neither zeroed nor listed (on the GPU the
        # list comes to the host; Pilatus gaps flagged -1 in every frame would be ~8 % of the pixels)
        bad_flat = xp.flatnonzero(~self._valid(raw) & self._usable_dev)
        if len(bad_flat):
            x[bad_flat % n_pixels, bad_flat // n_pixels] = 0
        return self._matrix @ x, self._to_host(bad_flat)

    def _unmasked(self, bad_flat: np.ndarray, n_pixels: int) -> np.ndarray:
        """The flat indices (frame * n_pixels + pixel) whose pixel is not in the static mask
        (a statically masked pixel has no matrix entries: it changes no normalisation)."""
        return bad_flat[~self._static[bad_flat % n_pixels]]

    def _pattern_norm(self, pixels: np.ndarray) -> Any:
        """Cake normalisation (npt_azimuth, npt_q) with the given pixels invalid (cached)."""
        key = pixels.astype(np.int64).tobytes()
        cached = self._pattern_norms.get(key)
        if cached is not None:
            return cached
        with self._lock:
            if self._host_csc is None:
                self._host_csc = self._host.tocsc()
        rows = np.unique(self._host_csc[:, pixels].indices)
        sub = self._host[rows]
        sub.data[np.isin(sub.indices, pixels)] = 0
        norm = self._norm_static.copy()
        norm[rows] = sub @ self._norm_pixel
        cake = self._xp.asarray(self._to_cake(norm[None])[0])
        with self._lock:
            if len(self._pattern_norms) >= 256:
                self._pattern_norms.pop(next(iter(self._pattern_norms)))
            self._pattern_norms[key] = cake
        return cake

    def _valid(self, raw: Any) -> Any:
        """Per-frame validity of raw values (n, n_pixels): pyFAI's rules and gpuproc's."""
        xp = self._xp
        rules = self._rules_for(raw.dtype)
        if np.issubdtype(raw.dtype, np.floating):  # pyFAI tests the float32 conversion
            with np.errstate(over="ignore"):
                value = raw.astype(xp.float32, copy=False)
            valid = xp.isfinite(value)
        else:
            value, valid = raw, xp.ones(raw.shape, bool)
        for lo, hi in rules.intervals:
            valid &= (value < lo) | (value > hi)
        if self.saturation is not None:
            valid &= raw <= self.saturation
        if len(rules.flat_bad):
            valid[:, rules.flat_bad_dev] = False
        return valid

    def _dummy_rule(self, dtype: np.dtype) -> DummyRule | None:
        """pyFAI's dummy test for frames of ``dtype`` (None: no test)."""
        return dummy_rule(_RecordedDummies(self._geometry["dummies"], lambda: self.ai.detector), dtype,
                          self.dummy, self.delta_dummy)

    def _rules_for(self, dtype: np.dtype) -> _FrameRules:
        """The invalid-value rules for frames of ``dtype`` (cached per dtype)."""
        dtype = np.dtype(dtype)
        rules = self._rules.get(dtype)
        if rules is None:
            rule = self._dummy_rule(dtype)
            flat_bad = np.empty(0, np.int64)
            if rule is not None and self._flat is not None:  # pyFAI tests the flat field too
                flat_bad = np.flatnonzero(rule.hits(self._flat) & ~self._static)
            rules = _FrameRules(invalid_intervals(dtype, rule), flat_bad, self._xp.asarray(flat_bad))
            self._rules[dtype] = rules
        return rules

    def _to_cake(self, rows: np.ndarray) -> np.ndarray:
        """(n, n_bins) host array in row order -> (n, npt_azimuth, npt_q)."""
        return rows[:, self._cake_index].reshape(rows.shape[0], self.npt_azimuth, self.npt_q)

    def _to_host(self, a: Any) -> np.ndarray:
        """NumPy copy of a device array."""
        return a.get() if self.device == "gpu" else np.asarray(a)


class _RecordedDummies:
    """The detector's ``get_dummies`` as the geometry record holds it (pyFAI's for other dtypes)."""

    def __init__(self, recorded: dict[str, list[float] | None], detector: Callable[[], Any]) -> None:
        self._recorded, self._detector = recorded, detector  # detector(): pyFAI's, loaded on demand

    def get_dummies(self, dtype: np.dtype) -> tuple[Any, Any]:
        """(dummy, delta_dummy) as float32 for frames of ``dtype``, or (None, None)."""
        dtype = np.dtype(dtype)
        name = f"{dtype.kind}{dtype.itemsize}"
        if name not in self._recorded:
            return self._detector().get_dummies(dtype)
        pair = self._recorded[name]
        return (None, None) if pair is None else (np.float32(pair[0]), np.float32(pair[1]))
