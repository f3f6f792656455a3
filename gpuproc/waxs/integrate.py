"""Batched azimuthal regrouping ("caking") of detector frames with pyFAI's own CSR matrix.

pyFAI's 2D sparse integrators (``integrate2d`` with ``method=(split, "csr", "cython")``) build
a pixel-splitting matrix ``C`` of shape ``(n_bins, n_pixels)`` once and compute, per frame,

    signal = C @ (valid * (frame - dark))
    norm   = C @ (valid * flat * polarization * solid_angle)
    I      = signal / norm

:class:`CakeIntegrator` asks pyFAI for the same matrix, then applies it to a whole batch of
frames as one sparse x dense product (``scipy.sparse`` on the CPU, ``cupyx.scipy.sparse`` on the
GPU). Pixels that are invalid in one frame only (detector dummy values, saturation, NaN) are
removed from that frame's signal *and* normalisation, exactly as pyFAI's per-frame dynamic mask
does, so the result equals ``integrate2d`` to float32 rounding.

Conventions
-----------
- Cakes are float32 arrays ``(n_frames, npt_azimuth, npt_q)`` (pyFAI's ``intensity`` layout).
- Empty bins (zero normalisation: no valid pixel contributes) are NaN. pyFAI writes its
  ``empty`` value (0.0 by default) there instead.
- ``q`` holds radial bin centres in the chosen unit (``"q_A^-1"`` or ``"q_nm^-1"``).
- ``azimuth`` holds bin centres in degrees in pyFAI's chi convention: chi is measured in the
  detector plane from the horizontal axis through the beam centre, range [-180, 180) when
  pyFAI's discontinuity is at pi (the default), [0, 360) when the requested range needs it.
- Masks follow pyFAI: non-zero (True) means *masked*.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyFAI
import pyFAI.units
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from pyFAI.utils.mathutil import deg2rad

from gpuproc.backend import get_xp, resolve_device

RADIAL_UNITS = ("q_A^-1", "q_nm^-1")
SPLITS = ("no", "bbox")
_PONI_REQUIRED = ("distance", "poni1", "poni2", "wavelength")


def load_geometry(geometry: str | Path | AzimuthalIntegrator) -> AzimuthalIntegrator:
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
        return pyFAI.load(str(path))
    except Exception as exc:
        raise ValueError(f"malformed PONI file {path}: {exc}") from exc


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
        User mask (non-zero = masked), merged with the detector's own mask (gaps).
    dark
        Dark image (counts) subtracted from every frame.
    flat
        Flat-field image (dimensionless) dividing every frame.
    polarization_factor
        pyFAI polarisation factor in [-1, 1]; None: no polarisation correction.
    solid_angle
        Apply pyFAI's solid-angle correction (cos(incidence)^3, relative).
    split
        Pixel splitting: ``"bbox"`` (bounding box) or ``"no"``; matches pyFAI's
        ``method=(split, "csr", "cython")``.
    dummy
        Per-frame invalid value: ``"auto"`` (the dtype maximum for unsigned integer frames,
        e.g. 2**32-1 or 2**16-1, nothing for other dtypes), a number, or None.
    saturation
        Values above this (counts) are invalid in that frame; None: no threshold.
    device
        ``"auto"``, ``"cpu"`` or ``"gpu"``.
    block_frames
        Frames per sparse product (bounds temporary memory to about
        ``3 * 4 * block_frames * n_pixels`` bytes).

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
        geometry: str | Path | AzimuthalIntegrator,
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
        saturation: float | None = None,
        device: str = "auto",
        block_frames: int = 16,
    ) -> None:
        if unit not in RADIAL_UNITS:
            raise ValueError(f"unit must be one of {RADIAL_UNITS}, got {unit!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.ai = load_geometry(geometry)
        self.shape = self._detector_shape(shape)
        self.unit = unit
        self.npt_q, self.npt_azimuth = int(npt_q), int(npt_azimuth)
        self.dummy, self.saturation = dummy, saturation
        self.block_frames = int(block_frames)
        self.device = resolve_device(device)
        self._xp = get_xp(self.device)

        norm_pixel = self._normalisation_pixels(flat, polarization_factor, solid_angle)
        dark32 = self._image("dark", dark, np.zeros(self.shape, np.float32))
        static_mask = self._static_mask(mask, norm_pixel, dark32)
        engine = self._build_engine(static_mask, q_range, azimuth_range, split)
        self.q = np.asarray(engine.bin_centers0, np.float64) * pyFAI.units.to_unit(unit).scale
        self.azimuth = np.degrees(np.asarray(engine.bin_centers1, np.float64))

        data, indices, indptr = engine.lut
        self._matrix = self._device_csr(data, indices, indptr)
        self._dark = self._xp.asarray(dark32.ravel())
        self._norm_pixel = self._xp.asarray(np.where(static_mask, 0, norm_pixel).ravel())
        self._norm_static = self._matrix @ self._norm_pixel
        self.norm = self._to_cake(self._to_host(self._norm_static)[None])[0]
        ones = self._xp.asarray((~static_mask).ravel().astype(np.float32))
        self.count = self._to_cake(self._to_host(self._matrix @ ones)[None])[0]

    # ---- set-up -------------------------------------------------------------------------------

    def _detector_shape(self, shape: tuple[int, int] | None) -> tuple[int, int]:
        """Frame shape (H, W): the argument, else the detector's."""
        det_shape = self.ai.detector.shape
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
        """flat * polarization * solid angle per pixel (float32, pyFAI's order of products)."""
        norm = self._image("flat", flat, np.ones(self.shape, np.float32)).copy()
        if polarization_factor is not None:
            norm *= self.ai.polarization(self.shape, polarization_factor).astype(np.float32)
        if solid_angle:
            norm *= self.ai.solidAngleArray(self.shape, True).astype(np.float32)
        return norm

    def _static_mask(
        self, mask: np.ndarray | None, norm_pixel: np.ndarray, dark: np.ndarray
    ) -> np.ndarray:
        """Detector mask | user mask | pixels whose dark or normalisation is unusable."""
        static = np.zeros(self.shape, bool)
        if self.ai.detector.mask is not None:
            static |= np.asarray(self.ai.detector.mask, bool)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != self.shape:
                raise ValueError(f"mask has shape {mask.shape}, detector shape is {self.shape}")
            static |= mask.astype(bool)
        static |= ~np.isfinite(norm_pixel) | (norm_pixel == 0) | ~np.isfinite(dark)
        return static

    def _build_engine(
        self,
        mask: np.ndarray,
        q_range: tuple[float, float],
        azimuth_range: tuple[float, float],
        split: str,
    ) -> Any:
        """pyFAI's 2D CSR integrator, with ranges converted exactly as ``integrate2d`` does."""
        radial_unit = pyFAI.units.to_unit(self.unit)
        radial = tuple(float(r) / radial_unit.scale for r in q_range)
        disc = self.ai.chiDiscAtPi
        azim = tuple(deg2rad(float(a), disc) for a in azimuth_range)
        if azim[1] <= azim[0]:
            azim = (azim[0], azim[1] + 2 * np.pi)
        self.ai.check_chi_disc(azim)
        return self.ai.setup_sparse_integrator(
            self.shape,
            (self.npt_q, self.npt_azimuth),
            mask=mask.astype(np.int8),
            pos0_range=radial,
            pos1_range=azim,
            unit=(radial_unit, pyFAI.units.CHI_DEG),
            split=split,
            algo="CSR",
            scale=False,
        )

    def _device_csr(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> Any:
        """The CSR matrix (n_bins, n_pixels) on the integrator's device."""
        size = (self.npt_q * self.npt_azimuth, self.shape[0] * self.shape[1])
        arrays = (np.asarray(data, np.float32), np.asarray(indices), np.asarray(indptr))
        if self.device == "gpu":
            import cupyx.scipy.sparse

            return cupyx.scipy.sparse.csr_matrix(tuple(self._xp.asarray(a) for a in arrays), shape=size)
        import scipy.sparse

        return scipy.sparse.csr_matrix(arrays, shape=size)

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
            return xp.where(norm > 0, signal / norm, xp.float32(np.nan)).astype(xp.float32)

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
        if len(frames) == 0:
            empty = xp.empty((0, self.npt_azimuth, self.npt_q), xp.float32)
            return empty, empty.copy()
        step = self.block_frames
        blocks = [self._sums_block(frames[i : i + step]) for i in range(0, len(frames), step)]
        signal = xp.concatenate([b[0] for b in blocks])
        norm = xp.concatenate([b[1] for b in blocks])
        return self._to_cake(signal), self._to_cake(norm)

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

    def _sums_block(self, block: Any) -> tuple[Any, Any]:
        """(signal, norm) of one block of frames, each (n, n_bins) float32 on the device.

        One sparse product serves the whole block: its columns are the n dark-subtracted frames
        (invalid pixels zeroed) followed by one normalisation column per distinct pattern of
        invalid pixels; frames without invalid pixels use the precomputed static normalisation.
        """
        xp = self._xp
        raw = xp.asarray(block)
        n = raw.shape[0]
        valid = self._valid(raw).reshape(n, -1)
        patterns, which = self._invalid_patterns(valid)
        signal = xp.subtract(raw.reshape(n, -1), self._dark[None], dtype=xp.float32)
        columns = xp.empty((valid.shape[1], n + len(patterns)), xp.float32)
        if len(patterns):
            xp.copyto(signal, xp.float32(0), where=~valid)
            columns[:, n:] = xp.where(patterns, self._norm_pixel[None], xp.float32(0)).T
        columns[:, :n] = signal.T
        sums = (self._matrix @ columns).T
        norm = xp.repeat(self._norm_static[None], n, axis=0)
        if len(patterns):
            norm = xp.where((which >= 0)[:, None], sums[n + xp.maximum(which, 0)], norm)
        return xp.ascontiguousarray(sums[:n], xp.float32), xp.asarray(norm, xp.float32)

    def _invalid_patterns(self, valid: Any) -> tuple[Any, Any]:
        """Distinct validity rows among frames with invalid pixels.

        Returns
        -------
        patterns
            (k, n_pixels) bool, one row per distinct pattern (k = 0 when every pixel is valid).
        which
            (n,) int, the pattern of each frame, -1 for frames without invalid pixels.
        """
        xp = self._xp
        partial = self._to_host(~valid.all(axis=1))
        which = np.full(len(partial), -1)
        if not partial.any():
            return valid[:0], xp.asarray(which)
        rows = np.nonzero(partial)[0]
        index_of: dict[bytes, int] = {}  # packed pattern -> its index in `patterns`
        pattern_rows = []
        for row in rows:
            key = self._to_host(xp.packbits(valid[int(row)])).tobytes()
            if key not in index_of:
                index_of[key] = len(pattern_rows)
                pattern_rows.append(row)
            which[row] = index_of[key]
        return valid[xp.asarray(pattern_rows)], xp.asarray(which)

    def _valid(self, raw: Any) -> Any:
        """Per-frame validity: finite, not the dummy value, not above saturation."""
        xp = self._xp
        if np.issubdtype(raw.dtype, np.floating):
            valid = xp.isfinite(raw)
        else:
            valid = xp.ones(raw.shape, bool)
        dummy = self._dummy_for(raw.dtype)
        if dummy is not None:
            valid &= raw != dummy
        if self.saturation is not None:
            valid &= raw <= self.saturation
        return valid

    def _dummy_for(self, dtype: np.dtype) -> float | None:
        """The dummy value for frames of ``dtype``."""
        if self.dummy != "auto":
            return self.dummy
        dtype = np.dtype(dtype)
        return int(np.iinfo(dtype).max) if dtype.kind == "u" else None

    def _to_cake(self, flat_bins: Any) -> Any:
        """(n, npt_q * npt_azimuth) in pyFAI's bin order -> (n, npt_azimuth, npt_q)."""
        xp = self._xp if not isinstance(flat_bins, np.ndarray) else np
        n = flat_bins.shape[0]
        return xp.ascontiguousarray(flat_bins.reshape(n, self.npt_q, self.npt_azimuth).transpose(0, 2, 1))

    def _to_host(self, a: Any) -> np.ndarray:
        """NumPy copy of a device array."""
        return a.get() if self.device == "gpu" else np.asarray(a)
