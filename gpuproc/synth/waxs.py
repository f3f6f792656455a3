"""Synthetic scanning X-ray nanodiffraction (WAXS + SAXS) of a CsPbBr3-like supercrystal, with
ground truth.

A scan of ``(ny, nx)`` positions is rendered through a pyFAI geometry onto a real detector model
(module gaps included) as uint32 Poisson counts, one frame at a time. Frame ``i`` belongs to scan
position ``(i // nx, i % nx)`` (raster order) and is reproducible on its own from ``(seed, i)``.

Ground truth (maps over the scan, see :class:`TruthModel`)
----------------------------------------------------------
* size ``s`` (nm): 16 nm at the centre of the scan to 8.5 nm at its corners,
  ``s = s_c - (s_c - s_e) r^p`` with ``r`` the distance from the centre (1 at the corners);
* microstrain ``eps``: a smooth Gaussian random field, mean 1.8 %, patchy (not radial);
* orientation ``phi0`` (degrees, azimuth of the 100 spot): Voronoi domains of +-5 degrees around
  the mean orientation;
* orientational disorder ``dphi_do`` (rad): ``d_c + (d_e - d_c) r^2``, growing toward the edges;
* lattice parameters ``a, b`` (A) anticorrelated with size: ``a = a_m + C (s^-alpha - s_z^-alpha)``,
  ``b = a_m - C (s^-alpha - s_z^-alpha)`` (s in nm) with ``a - b = 0.035 A`` at 8.5 nm and 0 at
  ``s_z = 13 nm``, plus a small white scatter;
* superlattice parameter ``a_sc`` (A): ``a_sc0 + g (s - 12.6 nm)``;
* scattering power (relative thickness): a smooth field around 1 that scales peaks and background.

Spots, per position, Gaussian in q times wrapped Gaussian in azimuth (pyFAI chi, degrees)
-----------------------------------------------------------------------------------------
* WAXS reflection hkl: ``q0 = 2 pi sqrt(h^2/a^2 + k^2/b^2)``, azimuth
  ``phi0 + atan2(k/b, h/a)`` (100 and 010 90 degrees apart, Friedel mates at +180 degrees,
  110 near 45 degrees); radial FWHM exactly Williamson-Hall,
  ``FWHM_q^2 = (eps q0)^2 + (2 pi K / s)^2`` (s in A, K = 0.85); azimuthal FWHM (rad)
  ``dphi^2 = dphi_do^2 + (dq0 / q0)^2 + eps^2`` with ``dq0 = 2 pi K / s``.
* SAXS (four first-order superlattice peaks 10, 01, -10, 0-1, aligned with the atomic lattice):
  ``q = 2 pi / a_sc``, fixed radial and azimuthal FWHM.
* Amplitudes are peak heights (counts) ``peak_counts x relative intensity x scattering power``.

Each pixel's expected count is ``gain x (background + spots)``, evaluated at the pixel centre,
with ``gain`` the pyFAI solid angle (1 at the PONI) times the polarisation factor, so that a
corrected azimuthal integration recovers the model. The background is a smooth function of q,
``B (1 + 3 exp(-q / 0.15 A^-1) + 0.5 exp(-((q - 1.9 A^-1) / 0.6 A^-1)^2))``. Counts are Poisson;
masked detector pixels (module gaps of the pyFAI detector) carry the dummy value 2^32 - 1, like
a real Eiger's uint32 frames; with ``signed=True`` frames are int32 as a Pilatus/Eiger CBF writes
them, gaps -1 and bad pixels -2 (the Dectris flags). ``bad_pixels`` marks a random, fixed fraction
of the other pixels bad (2^32 - 1 in uint32 frames).
Pixel-size broadening (point sampling at pixel centres) is not added; it is below 1 % of the
widths on a 1 Mpixel detector.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyFAI.detectors
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from scipy import ndimage

from gpuproc.fit.models.gauss2d_polar import wrap_deg

#: value of masked (gap) pixels in uint32 frames
DUMMY_UINT32 = 2**32 - 1
#: Dectris flags in signed (int32) frames: module gap, bad pixel
GAP_INT32, BAD_INT32 = -1, -2
TWO_PI = 2.0 * math.pi
#: spots rendered half-widths: 5 standard deviations (exp(-12.5) ~ 4e-6 of the peak is cut)
SPOT_EXTENT_SIGMA = 5.0
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

WAXS_SPOTS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("100", (1, 0, 0)), ("010", (0, 1, 0)), ("-100", (-1, 0, 0)), ("0-10", (0, -1, 0)),
    ("110", (1, 1, 0)), ("-110", (-1, 1, 0)), ("-1-10", (-1, -1, 0)), ("1-10", (1, -1, 0)),
    ("200", (2, 0, 0)), ("020", (0, 2, 0)), ("-200", (-2, 0, 0)), ("0-20", (0, -2, 0)),
)
#: SAXS first-order peaks; Friedel pairs (0, 2) and (1, 3) give a1 and a2
SAXS_SPOTS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("sc10", (1, 0, 0)), ("sc01", (0, 1, 0)), ("sc-10", (-1, 0, 0)), ("sc0-10", (0, -1, 0)),
)
#: peak height relative to 100, by sum of squared indices (h^2 + k^2 + l^2)
RELATIVE_INTENSITY = {1: 1.0, 2: 0.6, 4: 0.4}

TRUTH_UNITS = {
    "a": "A", "b": "A", "size_nm": "nm", "strain": "1", "phi0_deg": "deg", "disorder_rad": "rad", "disorder_deg": "deg",
    "a_sc": "A", "scattering": "1", "background": "counts",
    "q0": "A^-1", "fwhm_q": "A^-1", "azimuth_deg": "deg", "fwhm_phi_deg": "deg", "amplitude": "counts",
}


@dataclasses.dataclass(frozen=True)
class TruthModel:
    """Parameters of the ground-truth maps (defaults: published CsPbBr3 supercrystal values)."""

    size_center_nm: float = 16.0
    size_edge_nm: float = 8.5
    size_exponent: float = 1.35  #: p in s = s_c - (s_c - s_e) r^p; mean size ~12.6 nm
    strain_mean: float = 0.018
    strain_std: float = 0.0025
    correlation_length: float = 0.15  #: of random fields, fraction of the larger scan side
    orientation_deg: float = 20.0  #: mean azimuth of the 100 spot (pyFAI chi)
    domain_deg: float = 5.0  #: domain orientations uniform in +-domain_deg
    n_domains: int = 6
    disorder_center_rad: float = 0.01
    disorder_edge_rad: float = 0.06
    a_mean: float = 5.87  #: A, a = b at s = split_zero_nm
    split: float = 0.035  #: a - b (A) at s = split_size_nm
    split_size_nm: float = 8.5
    split_zero_nm: float = 13.0
    split_exponent: float = 1.1
    lattice_scatter: float = 0.002  #: A, white noise on a and b
    a_sc: float = 135.0  #: A, superlattice parameter at 12.6 nm
    a_sc_per_nm: float = 1.0  #: A of a_sc per nm of size
    scattering_std: float = 0.15
    shape_factor: float = 0.85
    saxs_fwhm_q: float = 0.008  #: A^-1
    saxs_fwhm_phi_deg: float = 10.0


@dataclasses.dataclass(frozen=True)
class Reflection:
    """One spot and its fit window, in a form a job config can take.

    ``azimuth_range`` is in degrees, pyFAI chi convention: ``lo`` in [-180, 180) and
    ``hi = lo + width``, which may exceed 180 for a window across the seam.
    """

    name: str
    hkl: tuple[int, int, int]
    q_range: tuple[float, float]  #: A^-1
    azimuth_range: tuple[float, float]  #: degrees
    kind: str  #: "waxs" or "saxs"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples), e.g. for TOML/JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


class SyntheticScan:
    """A rendered-on-demand synthetic scan: geometry, reflections, ground truth and frames.

    Build with :func:`make_waxs_scan`. Frames are computed lazily, one at a time.
    """

    def __init__(self, shape: tuple[int, int], ai: AzimuthalIntegrator, spots: list[tuple[str, tuple[int, int, int], str]],
                 truth: dict[str, np.ndarray], seed: int, *, signed: bool = False, bad_pixels: float = 0.0):
        self.shape = shape
        self.ai = ai
        self.truth = truth
        self.seed = seed
        self.signed = signed
        self.reflections = _reflections(spots, truth)
        self._pixels = _PixelModel(ai, self.reflections)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
        self.bad = (rng.random(self.frame_shape) < bad_pixels) & ~self._pixels.masked  #: (H, W) bad pixels

    @property
    def n_frames(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def frame_shape(self) -> tuple[int, int]:
        return tuple(self.ai.detector.shape)

    @property
    def dtype(self) -> np.dtype:
        """Pixel dtype of the frames: int32 with Dectris flags (``signed``), else uint32."""
        return np.dtype(np.int32 if self.signed else np.uint32)

    @property
    def gaps(self) -> np.ndarray:
        """(H, W) True on the detector's module gaps."""
        return self._pixels.masked

    @property
    def window_coverage(self) -> list[float]:
        """Per reflection, the fraction of the detector pixels inside its window that are not gaps."""
        return self._pixels.coverage

    def expected(self, i: int) -> np.ndarray:
        """Noise-free expected counts of frame ``i``, float32 (H, W); gaps hold 0."""
        if not 0 <= i < self.n_frames:
            raise IndexError(f"frame {i} out of range for {self.n_frames} frames")
        iy, ix = divmod(i, self.shape[1])
        spots = {k: self.truth[k][iy, ix] for k in ("q0", "fwhm_q", "azimuth_deg", "fwhm_phi_deg", "amplitude")}
        return self._pixels.expected(self.truth["background"][iy, ix], spots)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (raster order): (H, W) Poisson counts; uint32 with gaps and bad pixels
        2^32 - 1, or (``signed``) int32 with gaps -1 and bad pixels -2."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(1, i)))
        counts = rng.poisson(self.expected(i)).astype(self.dtype)
        if self.signed:
            counts[self._pixels.masked], counts[self.bad] = GAP_INT32, BAD_INT32
        else:
            counts[self._pixels.masked | self.bad] = DUMMY_UINT32
        return counts

    def frames(self) -> Iterator[np.ndarray]:
        """All frames in raster order, generated one at a time."""
        return (self.frame(i) for i in range(self.n_frames))

    def stack(self) -> np.ndarray:
        """All frames as one (n, H, W) array: for small scans only."""
        return np.stack(list(self.frames()))

    def write_frames(self, directory: str | Path, fmt: str = "edf", prefix: str = "frame") -> list[Path]:
        """Write one EDF or CBF file per frame (fabio) as ``prefix_00000.fmt``; returns the paths."""
        from fabio.cbfimage import CbfImage
        from fabio.edfimage import EdfImage

        writers = {"edf": EdfImage, "cbf": CbfImage}
        if fmt not in writers:
            raise ValueError(f"fmt must be one of {sorted(writers)}, got {fmt!r}")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        digits = max(5, len(str(self.n_frames - 1)))
        paths = []
        for i, data in enumerate(self.frames()):
            path = directory / f"{prefix}_{i:0{digits}d}.{fmt}"
            writers[fmt](data=data).write(str(path))
            paths.append(path)
        return paths

    def write_hdf5(self, path: str | Path, dataset: str = "entry/data/data", compression: str | None = None) -> Path:
        """Write the scan as one HDF5 dataset (n, H, W) of :attr:`dtype`, chunked per frame; returns the path."""
        import h5py

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            dset = f.create_dataset(dataset, shape=(self.n_frames, *self.frame_shape), dtype=self.dtype,
                                    chunks=(1, *self.frame_shape), compression=compression)
            dset.attrs["scan_shape"] = self.shape
            for i, data in enumerate(self.frames()):
                dset[i] = data
        return path

    def write_poni(self, path: str | Path) -> Path:
        """Write the geometry as a pyFAI PONI file; returns the path."""
        path = Path(path)
        path.unlink(missing_ok=True)  # pyFAI appends to an existing file
        self.ai.write(str(path))
        return path

    def write_truth(self, path: str | Path) -> Path:
        """Write the ground truth (``.npz``: maps, per-reflection arrays, units and reflections)."""
        path = Path(path)
        meta = {"units": TRUTH_UNITS, "reflections": [r.to_dict() for r in self.reflections]}
        np.savez_compressed(path, **self.truth, meta=np.array(json.dumps(meta)))
        return path


def make_waxs_scan(shape: tuple[int, int] = (8, 8), detector: str = "Pilatus100k", seed: int = 0, *,
                   model: TruthModel = TruthModel(), wavelength: float = 1.0, distance: float | None = None,
                   q_max: float = 2.35, saxs: bool | None = None, peak_counts: float = 300.0,
                   saxs_counts: float = 1000.0, background_counts: float = 5.0, signed: bool = False,
                   bad_pixels: float = 0.0) -> SyntheticScan:
    """A synthetic WAXS/SAXS scan with ground truth (see the module docstring for the model).

    Parameters
    ----------
    shape : (ny, nx)
        Scan positions.
    detector : str
        pyFAI detector name: "Pilatus1M" or "Eiger1M" for realistic frames, "Pilatus100k" or
        "Pilatus300k" (gaps) for fast tests (:data:`gpuproc.synth.SYNTH_DETECTORS`).
    seed : int
        Seed of the ground truth and of every frame's noise.
    model : TruthModel
        Parameters of the ground-truth maps.
    wavelength : float
        X-ray wavelength (A).
    distance : float, optional
        Sample-detector distance (m). By default the largest distance at which ``q_max`` still
        reaches the nearest detector edge from the centred beam.
    q_max : float
        Highest q (A^-1) that must be on the detector in all directions.
    saxs : bool, optional
        Render the SAXS peaks. None: when the geometry resolves them (their window starts at least
        3 pixels from the beam centre); True raises if it does not.
    peak_counts, saxs_counts, background_counts : float
        Peak height of the 100 spot, of the SAXS peaks, and the background level at high q
        (expected counts before the solid-angle/polarisation gain).
    signed : bool
        int32 frames with the Dectris flags (gaps -1, bad pixels -2) instead of uint32 frames
        with 2^32 - 1 on invalid pixels.
    bad_pixels : float
        Fraction of the non-gap pixels that are bad in every frame (drawn once from ``seed``).

    Returns
    -------
    SyntheticScan
    """
    ai = _geometry(detector, wavelength, distance, q_max)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    maps = truth_maps(shape, model, rng)
    maps["background"] = background_counts * maps["scattering"]
    maps["disorder_deg"] = np.degrees(maps["disorder_rad"])  # as the results store it
    visible = _saxs_visible(ai, maps["a_sc"], model.saxs_fwhm_q)
    render_saxs = visible if saxs is None else saxs
    if render_saxs and not visible:
        raise ValueError(f"the SAXS peaks are too close to the beam centre on {detector} at "
                         f"{ai.dist * 1e3:.0f} mm; use a larger detector/distance or saxs=False")
    spots = [(n, hkl, "waxs") for n, hkl in WAXS_SPOTS]
    if render_saxs:
        spots += [(n, hkl, "saxs") for n, hkl in SAXS_SPOTS]
    maps.update(spot_truth(maps, spots, model, peak_counts, saxs_counts))
    return SyntheticScan(tuple(shape), ai, spots, maps, seed, signed=signed, bad_pixels=bad_pixels)


def truth_maps(shape: tuple[int, int], model: TruthModel, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Ground-truth maps (ny, nx): size_nm, strain, phi0_deg, disorder_rad, a, b, a_sc, scattering."""
    r = _radius(shape)
    size = model.size_center_nm - (model.size_center_nm - model.size_edge_nm) * r**model.size_exponent
    a, b = lattice_from_size(size, model)
    scatter = model.lattice_scatter * rng.standard_normal((2, *shape))
    return {
        "size_nm": size,
        "strain": np.maximum(model.strain_mean + model.strain_std * _smooth_field(shape, model, rng),
                             0.2 * model.strain_mean),
        "phi0_deg": model.orientation_deg + _domains(shape, model, rng),
        "disorder_rad": model.disorder_center_rad + (model.disorder_edge_rad - model.disorder_center_rad) * r**2,
        "a": a + scatter[0],
        "b": b + scatter[1],
        "a_sc": model.a_sc + model.a_sc_per_nm * (size - 12.6),
        "scattering": np.maximum(1.0 + model.scattering_std * _smooth_field(shape, model, rng), 0.3),
    }


def lattice_from_size(size_nm: Any, model: TruthModel = TruthModel()) -> tuple[np.ndarray, np.ndarray]:
    """Lattice parameters a, b (A) of the size law, without scatter.

    ``a = a_m + C (s^-alpha - s_z^-alpha)``, ``b = a_m - C (s^-alpha - s_z^-alpha)``, s in nm, with
    C chosen so that ``a - b = split`` at ``split_size_nm`` (so ``a - a0 = C s^-alpha`` with
    ``a0 = a_m - C s_z^-alpha``).
    """
    alpha, s_z = model.split_exponent, model.split_zero_nm
    c = 0.5 * model.split / (model.split_size_nm**-alpha - s_z**-alpha)
    d = c * (np.asarray(size_nm, dtype=float) ** -alpha - s_z**-alpha)
    return model.a_mean + d, model.a_mean - d


def spot_truth(maps: dict[str, np.ndarray], spots: list[tuple[str, tuple[int, int, int], str]], model: TruthModel,
               peak_counts: float, saxs_counts: float) -> dict[str, np.ndarray]:
    """Per-spot truth (ny, nx, n_spots): q0, fwhm_q (A^-1), azimuth_deg, fwhm_phi_deg, amplitude."""
    columns = [_waxs_spot(maps, hkl, model, peak_counts) if kind == "waxs" else _saxs_spot(maps, hkl, model, saxs_counts)
               for _, hkl, kind in spots]
    return {k: np.stack([c[k] for c in columns], axis=-1) for k in columns[0]}


def _waxs_spot(maps: dict[str, np.ndarray], hkl: tuple[int, int, int], model: TruthModel,
               peak_counts: float) -> dict[str, np.ndarray]:
    """One Bragg spot: WH radial width, size/strain/disorder azimuthal width."""
    h, k, _ = hkl
    a, b, eps = maps["a"], maps["b"], maps["strain"]
    q0 = TWO_PI * np.sqrt((h / a) ** 2 + (k / b) ** 2)
    dq0 = TWO_PI * model.shape_factor / (10.0 * maps["size_nm"])
    dphi = np.sqrt(maps["disorder_rad"] ** 2 + (dq0 / q0) ** 2 + eps**2)
    return {
        "q0": q0,
        "fwhm_q": np.sqrt((eps * q0) ** 2 + dq0**2),
        "azimuth_deg": wrap_deg(maps["phi0_deg"] + np.degrees(np.arctan2(k / b, h / a))),
        "fwhm_phi_deg": np.degrees(dphi),
        "amplitude": peak_counts * RELATIVE_INTENSITY[h * h + k * k] * maps["scattering"],
    }


def _saxs_spot(maps: dict[str, np.ndarray], hkl: tuple[int, int, int], model: TruthModel,
               saxs_counts: float) -> dict[str, np.ndarray]:
    """One first-order superlattice peak with fixed widths."""
    h, k, _ = hkl
    ones = np.ones_like(maps["a_sc"])
    return {
        "q0": TWO_PI / maps["a_sc"],
        "fwhm_q": model.saxs_fwhm_q * ones,
        "azimuth_deg": wrap_deg(maps["phi0_deg"] + math.degrees(math.atan2(k, h))),
        "fwhm_phi_deg": model.saxs_fwhm_phi_deg * ones,
        "amplitude": saxs_counts * maps["scattering"],
    }


def _reflections(spots: list[tuple[str, tuple[int, int, int], str]], truth: dict[str, np.ndarray]) -> list[Reflection]:
    """Fit windows covering every position's spot to SPOT_EXTENT_SIGMA standard deviations."""
    out = []
    for j, (name, hkl, kind) in enumerate(spots):
        q0, az = truth["q0"][..., j], truth["azimuth_deg"][..., j]
        half_q = SPOT_EXTENT_SIGMA * truth["fwhm_q"][..., j] / FWHM_PER_SIGMA
        half_az = SPOT_EXTENT_SIGMA * truth["fwhm_phi_deg"][..., j] / FWHM_PER_SIGMA
        ref = float(az.flat[0])
        d = wrap_deg(az - ref)
        lo = float(wrap_deg(ref + (d - half_az).min()))
        out.append(Reflection(name, hkl, (float((q0 - half_q).min()), float((q0 + half_q).max())),
                              (lo, lo + float((d + half_az).max() - (d - half_az).min())), kind))
    return out


class _PixelModel:
    """Detector-side precomputation: gain, background and, per spot, the pixels of its window."""

    def __init__(self, ai: AzimuthalIntegrator, reflections: list[Reflection]):
        mask = ai.detector.mask
        self.masked = np.zeros(ai.detector.shape, bool) if mask is None else mask.astype(bool)
        q = ai.center_array(unit="q_A^-1")
        chi = ai.center_array(unit="chi_deg")
        self.gain = (ai.solidAngleArray() * ai.polarization(factor=0.99)).astype(np.float32)
        self.background = (self.gain * _background_profile(q)).astype(np.float32)
        self.windows = [self._window(q, chi, r) for r in reflections]
        #: per reflection, the fraction of the detector pixels inside its window that are not gaps
        self.coverage = [w[0].size / max(1, w[4]) for w in self.windows]

    def _window(self, q: np.ndarray, chi: np.ndarray, r: Reflection) -> tuple[np.ndarray, ...]:
        """Flat indices, q, chi and gain of the unmasked pixels inside a reflection's window, and the
        number of all its pixels (gaps included)."""
        (q_lo, q_hi), (a_lo, a_hi) = r.q_range, r.azimuth_range
        off_centre = np.abs(wrap_deg(chi - 0.5 * (a_lo + a_hi)))
        window = (q >= q_lo) & (q <= q_hi) & (off_centre <= 0.5 * (a_hi - a_lo))
        idx = np.flatnonzero(window & ~self.masked)
        return idx, q.flat[idx], chi.flat[idx], self.gain.flat[idx], int(window.sum())

    def expected(self, background: float, spots: dict[str, np.ndarray]) -> np.ndarray:
        """Expected counts of one frame, float32 (H, W), 0 in the gaps."""
        expected = background * self.background
        flat = expected.reshape(-1)
        sig_q = spots["fwhm_q"] / FWHM_PER_SIGMA
        sig_phi = spots["fwhm_phi_deg"] / FWHM_PER_SIGMA
        for j, (idx, q, chi, gain, _) in enumerate(self.windows):
            u = (q - spots["q0"][j]) / sig_q[j]
            v = wrap_deg(chi - spots["azimuth_deg"][j]) / sig_phi[j]
            flat[idx] += spots["amplitude"][j] * gain * np.exp(-0.5 * (u * u + v * v))
        expected[self.masked] = 0.0
        return expected


def _geometry(detector: str, wavelength: float, distance: float | None, q_max: float) -> AzimuthalIntegrator:
    """Untilted geometry with the beam near the detector centre but clear of module gaps; the
    default distance puts q_max at the nearest detector edge."""
    det = pyFAI.detectors.detector_factory(detector)
    iy, ix = _beam_pixel(det.mask, det.shape)
    poni1, poni2 = (iy + 0.5) * det.pixel1, (ix + 0.5) * det.pixel2
    if distance is None:
        reach = min(poni1, poni2, det.shape[0] * det.pixel1 - poni1, det.shape[1] * det.pixel2 - poni2)
        distance = reach / math.tan(2.0 * math.asin(q_max * wavelength / (4.0 * math.pi)))
    return AzimuthalIntegrator(dist=distance, poni1=poni1, poni2=poni2, detector=det, wavelength=wavelength * 1e-10)


def _beam_pixel(mask: np.ndarray | None, shape: tuple[int, int], clearance: float = 30.0) -> tuple[int, int]:
    """Pixel nearest the detector centre at least ``clearance`` pixels (or as far as the modules
    allow) from any masked pixel, so the small-angle region falls on one module."""
    centre = ((shape[0] - 1) // 2, (shape[1] - 1) // 2)
    if mask is None or not mask.any():
        return centre
    gap_distance = ndimage.distance_transform_edt(~mask.astype(bool))
    ok = gap_distance >= min(clearance, float(gap_distance.max()))
    y, x = np.indices(shape)
    d2 = np.where(ok, (y - centre[0]) ** 2 + (x - centre[1]) ** 2, np.iinfo(np.int64).max)
    return np.unravel_index(int(np.argmin(d2)), shape)


def _saxs_visible(ai: AzimuthalIntegrator, a_sc_map: np.ndarray, fwhm_q: float,
                  min_pixels: float = 3.0) -> bool:
    """True when the SAXS window starts at least ``min_pixels`` pixels from the beam centre."""
    q_inner = TWO_PI / float(a_sc_map.max()) - SPOT_EXTENT_SIGMA * fwhm_q / FWHM_PER_SIGMA
    wavelength = ai.wavelength * 1e10
    radius = ai.dist * math.tan(2.0 * math.asin(q_inner * wavelength / (4.0 * math.pi)))
    return radius >= min_pixels * max(ai.detector.pixel1, ai.detector.pixel2)


def _background_profile(q: np.ndarray) -> np.ndarray:
    """Smooth background shape in q (A^-1): diffuse small-angle decay plus an amorphous hump."""
    return 1.0 + 3.0 * np.exp(-q / 0.15) + 0.5 * np.exp(-(((q - 1.9) / 0.6) ** 2))


def _radius(shape: tuple[int, int]) -> np.ndarray:
    """Distance from the scan centre, 0 at the centre and 1 at the corners."""
    v, u = (np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1) for n in shape)
    return np.sqrt((u[None, :] ** 2 + v[:, None] ** 2) / 2.0)


def _smooth_field(shape: tuple[int, int], model: TruthModel, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with zero mean and unit standard deviation, smooth over the
    correlation length."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), model.correlation_length * max(shape), mode="reflect")
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def _domains(shape: tuple[int, int], model: TruthModel, rng: np.random.Generator) -> np.ndarray:
    """Orientation offsets (degrees) of Voronoi domains: nearest of n random seeds."""
    seeds = rng.uniform(0.0, 1.0, (model.n_domains, 2)) * np.array(shape)
    offsets = rng.uniform(-model.domain_deg, model.domain_deg, model.n_domains)
    y, x = np.indices(shape)
    d2 = (y[..., None] - seeds[:, 0]) ** 2 + (x[..., None] - seeds[:, 1]) ** 2
    return offsets[np.argmin(d2, axis=-1)]

