"""Synthetic hyperspectral PL data with ground truth: maps, a registered map pair, time series.

The sample is a CsPbBr2.4Cl0.6-like supercrystal: a rounded-square emitting region near 2.54 eV
(+-3 meV smooth scatter) on a dark background, a second emission peak (2.47 eV, and 2.64 eV) in
two patches, and, optionally, the field-induced red shift of the edges parallel to the field
(the x axis) by up to -130 meV with a few meV blue shift elsewhere. Spectra are recorded like a
real spectrometer: detector counts per channel against a slightly nonlinear wavelength axis
(grating dispersion), a constant detector bias, Poisson photon noise and a few cosmic-ray spikes.
With a :class:`CCD` they are recorded like a scientific CCD: uint16 ADU = bias + gain x
photoelectrons (photons, stray light and a channel-dependent dark current) + Gaussian read
noise, saturating at the full scale, and a separate stack of dark frames.

All energies are in eV, widths and shifts in meV unless named otherwise. Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from gpuproc.pl.spectra import HC_EV_NM

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
E_MAIN = 2.54  # eV, main emission
SECOND_PEAKS = ((2.47, 0.4), (2.64, 0.3))  # (energy eV, fraction of the photons) in two patches
BIAS_COUNTS = 300.0  # detector bias per channel
STRAY_COUNTS = 2.0  # mean stray-light photons per channel everywhere


@dataclass(frozen=True)
class CCD:
    """Readout of a scientific CCD spectrometer (defaults: a typical deep-depletion camera)."""

    bias: float = 600.0  #: offset, ADU
    gain: float = 0.8  #: ADU per photoelectron
    read_noise: float = 5.0  #: ADU rms
    dark_current: float = 4.0  #: mean photoelectrons per channel per exposure (varies 0.5-1.5x over channels)
    n_dark_frames: int = 20  #: dark frames recorded with the map
    full_scale: int = 65535  #: saturation, ADU (uint16)

    def dark_electrons(self, n_channels: int) -> np.ndarray:
        """Mean dark-current electrons of each channel: a smooth pattern over the detector."""
        u = np.linspace(0.0, 1.0, n_channels)
        return self.dark_current * (1.0 + 0.5 * np.sin(2 * np.pi * 1.5 * u))

    def dark(self, n_channels: int) -> np.ndarray:
        """Expected dark spectrum (bias + dark current), ADU."""
        return self.bias + self.gain * self.dark_electrons(n_channels)

    def read(self, electrons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """ADU of ``electrons``: bias, gain, read noise, rounded and clipped to 0..full_scale, uint16."""
        adu = self.bias + self.gain * electrons + rng.normal(0.0, self.read_noise, electrons.shape)
        return np.clip(np.rint(adu), 0, self.full_scale).astype(np.uint16)

    def dark_frames(self, n_channels: int, rng: np.random.Generator) -> np.ndarray:
        """``n_dark_frames`` dark frames (shutter closed), (n_frames, n_channels) uint16."""
        shape = (self.n_dark_frames, n_channels)
        return self.read(rng.poisson(np.broadcast_to(self.dark_electrons(n_channels), shape)).astype(float), rng)


@dataclass
class MapTruth:
    """Ground truth of a map, per pixel (NaN / 0 outside the crystal)."""

    energy: np.ndarray  #: (ny, nx) energy of the dominant (largest-area) peak, eV
    fwhm_mev: np.ndarray  #: (ny, nx) FWHM of the dominant peak, meV
    n_peaks: np.ndarray  #: (ny, nx) number of emission peaks (0 outside)
    second_energy: np.ndarray  #: (ny, nx) energy of the second peak, eV (NaN where 1 peak)
    brightness: np.ndarray  #: (ny, nx) photons per pixel in all peaks (expected)
    inside: np.ndarray  #: (ny, nx) bool, pixel centre inside the crystal by >= 1 pixel
    spikes: np.ndarray  #: (ny, nx, n_channels) bool, channels hit by a cosmic ray


@dataclass
class PLMap:
    """A synthetic map: counts per channel against wavelength, and its truth."""

    counts: np.ndarray  #: (ny, nx, n_channels) detector counts (bias included), float32 (CCD: uint16 ADU)
    wavelength: np.ndarray  #: (n_channels,) nm, ascending, slightly nonlinear
    dark: np.ndarray  #: (n_channels,) expected dark spectrum (bias + stray light; CCD: bias + dark current)
    truth: MapTruth
    dark_frames: np.ndarray | None = None  #: CCD: (n_frames, n_channels) uint16 dark frames


@dataclass
class PLMapPair:
    """Two maps of the same crystal: before and after a field, moved by ``offset`` pixels."""

    first: PLMap
    second: PLMap
    offset: tuple[float, float]  #: (dy, dx): the crystal in ``second`` sits at first + offset
    shift_mev: np.ndarray  #: (ny, nx) energy change second - first in the frame of ``first``


@dataclass
class StimulusEvent:
    """One stimulus and the true response of the peak energy to it."""

    time: float  #: s
    label: str
    shift_fast_mev: float
    tau_fast: float  #: s
    shift_slow_mev: float
    tau_slow: float  #: s


@dataclass
class PLTimeSeries:
    """Spectra at one spot, one per second, with stimulus events."""

    counts: np.ndarray  #: (nt, n_channels) detector counts (bias included)
    time: np.ndarray  #: (nt,) s
    wavelength: np.ndarray  #: (n_channels,) nm
    dark: np.ndarray  #: (n_channels,) counts
    energy: np.ndarray  #: (nt,) true peak energy, eV
    fwhm_mev: float
    events: list[StimulusEvent] = field(default_factory=list)


def spectrometer_axis(n_channels: int = 1024, lam_min: float = 430.0, lam_max: float = 560.0,
                      curvature: float = 0.03) -> np.ndarray:
    """Wavelength (nm) of each channel of a grating spectrometer: a quadratic pixel-to-wavelength
    map with exact end points, its dispersion changing by ``2 * curvature`` across the detector."""
    u = np.linspace(0.0, 1.0, n_channels)
    return lam_min + (lam_max - lam_min) * (u + curvature * u * (1.0 - u))


def channel_counts(wavelength: np.ndarray, peaks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Expected photons per channel of a sum of Gaussians in energy.

    Parameters
    ----------
    wavelength : (n_channels,) nm
    peaks : list of (photons, center eV, sigma eV), arrays of any common shape S

    Returns
    -------
    (*S, n_channels)
        Photons per channel: the energy density times the channel width in energy.
    """
    e = HC_EV_NM / wavelength
    width = np.abs(np.gradient(e))
    total = 0.0
    for photons, mu, sigma in peaks:
        mu, sigma = mu[..., None], sigma[..., None]
        density = photons[..., None] / (np.sqrt(2 * np.pi) * sigma) * np.exp(-0.5 * ((e - mu) / sigma) ** 2)
        total = total + density * width
    return total


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], std: float, corr: float) -> np.ndarray:
    """Zero-mean Gaussian random field with standard deviation ``std`` and correlation length ``corr``
    px (zero where the map is too small to vary over ``corr``)."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), corr, mode="wrap")
    f -= f.mean()
    spread = f.std()
    return f * (std / spread) if spread > 1e-6 else np.zeros(shape)


def _rounded_square_distance(yy: np.ndarray, xx: np.ndarray, center: tuple[float, float], half: float,
                             radius: float) -> np.ndarray:
    """Signed distance (px) to a rounded square, negative inside."""
    qy = np.abs(yy - center[0]) - (half - radius)
    qx = np.abs(xx - center[1]) - (half - radius)
    outside = np.hypot(np.maximum(qy, 0), np.maximum(qx, 0))
    return outside + np.minimum(np.maximum(qy, qx), 0) - radius


@dataclass
class _Crystal:
    """The sample in its own (first map's) pixel frame: fields that move with the crystal."""

    shape: tuple[int, int]
    center: tuple[float, float]
    half: float
    radius: float
    energy_scatter: np.ndarray  # eV
    texture: np.ndarray  # relative brightness
    fwhm_mev: np.ndarray

    def distance(self, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        yy, xx = np.indices(self.shape, dtype=float)
        c = (self.center[0] + offset[0], self.center[1] + offset[1])
        return _rounded_square_distance(yy, xx, c, self.half, self.radius)

    def moved(self, a: np.ndarray, offset: tuple[float, float]) -> np.ndarray:
        """A field of the crystal, displayed at the crystal's position moved by ``offset``."""
        return ndimage.shift(a, offset, order=1, mode="nearest")

    def edge_shift(self, red_mev: float, blue_mev: float, decay: float = 2.5) -> np.ndarray:
        """Field-induced shift (meV): red shift ``red_mev`` (< 0) decaying over ``decay`` px from the
        edges parallel to the field (top and bottom), ``blue_mev`` elsewhere inside."""
        yy, _ = np.indices(self.shape, dtype=float)
        to_edge = self.half - np.abs(yy - self.center[0])
        return red_mev * np.exp(-np.clip(to_edge, 0, None) / decay) + blue_mev

    def patches(self) -> list[np.ndarray]:
        """Boolean patches with a second peak (one per entry of SECOND_PEAKS)."""
        yy, xx = np.indices(self.shape, dtype=float)
        cy, cx, h = self.center[0], self.center[1], self.half
        return [np.hypot(yy - (cy - 0.15 * h), xx - (cx - 0.45 * h)) < 0.3 * h,
                np.hypot(yy - (cy + 0.2 * h), xx - (cx + 0.45 * h)) < 0.25 * h]


def _make_crystal(rng: np.random.Generator, shape: tuple[int, int]) -> _Crystal:
    ny, nx = shape
    half = 0.36 * min(ny, nx)
    return _Crystal(
        shape=shape,
        center=((ny - 1) / 2 + rng.uniform(-1, 1), (nx - 1) / 2 + rng.uniform(-1, 1)),
        half=half,
        radius=0.3 * half,
        energy_scatter=_smooth_field(rng, shape, 0.003, 1.5),
        texture=1.0 + _smooth_field(rng, shape, 0.15, 3.0),
        fwhm_mev=82.0 + _smooth_field(rng, shape, 4.0, 4.0),
    )


def _render(crystal: _Crystal, wavelength: np.ndarray, shift_mev: np.ndarray, offset: tuple[float, float],
            photons: float, n_spikes: int, rng: np.random.Generator, ccd: CCD | None = None) -> PLMap:
    """Counts of the crystal (with ``shift_mev`` in its own frame) displayed at ``offset``."""
    inside_crystal = crystal.distance(offset)
    coverage = 1.0 / (1.0 + np.exp(inside_crystal / 0.5))  # soft edge, 0.5 px

    def mv(a: np.ndarray) -> np.ndarray:
        return crystal.moved(a, offset)

    energy = mv(E_MAIN + crystal.energy_scatter + 1e-3 * shift_mev)
    sigma = mv(crystal.fwhm_mev) / 1e3 / FWHM_PER_SIGMA
    brightness = photons * coverage * mv(crystal.texture)
    patches = [mv(p.astype(float)) > 0.5 for p in crystal.patches()]
    peaks, second = [], np.full(crystal.shape, np.nan)
    main_fraction = np.ones(crystal.shape)
    for (e2, frac), patch in zip(SECOND_PEAKS, patches):
        f = np.where(patch, frac, 0.0)
        main_fraction -= f
        peaks.append((brightness * f, np.full(crystal.shape, e2), sigma))
        second = np.where(patch, e2, second)
    peaks.insert(0, (brightness * main_fraction, energy, sigma))
    counts, spikes = _detect(channel_counts(wavelength, peaks), n_spikes, rng, ccd)
    inside = inside_crystal < -1.0
    truth = MapTruth(
        energy=np.where(inside, energy, np.nan),
        fwhm_mev=np.where(inside, sigma * 1e3 * FWHM_PER_SIGMA, np.nan),
        n_peaks=np.where(inside, 1 + np.any(patches, axis=0), 0).astype(np.int8),
        second_energy=np.where(inside, second, np.nan),
        brightness=brightness,
        inside=inside,
        spikes=spikes,
    )
    if ccd is None:
        return PLMap(counts, wavelength, np.full(wavelength.shape, BIAS_COUNTS + STRAY_COUNTS), truth)
    return PLMap(counts, wavelength, ccd.dark(wavelength.size), truth, ccd.dark_frames(wavelength.size, rng))


def _detect(expected: np.ndarray, n_spikes: int, rng: np.random.Generator,
            ccd: CCD | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Poisson photon counts + stray light + bias, and ``n_spikes`` cosmic rays (1-2 channels);
    with ``ccd`` read out by it (the cosmic rays' charge in electrons)."""
    if ccd is None:
        counts = rng.poisson(expected + STRAY_COUNTS).astype(np.float32) + BIAS_COUNTS
    else:
        counts = rng.poisson(expected + STRAY_COUNTS + ccd.dark_electrons(expected.shape[-1])).astype(np.float64)
    flat = counts.reshape(-1, counts.shape[-1])
    spikes = np.zeros(flat.shape, dtype=bool)
    rows = rng.choice(flat.shape[0], size=min(n_spikes, flat.shape[0]), replace=False)
    cols = rng.integers(5, flat.shape[1] - 6, size=rows.size)
    for r, c in zip(rows, cols):
        w = rng.integers(1, 3)
        spikes[r, c:c + w] = True
        flat[r, c:c + w] += rng.uniform(1000.0, 5000.0)
    if ccd is not None:
        counts = ccd.read(counts, rng)
    return counts, spikes.reshape(counts.shape)


def pl_map(shape: tuple[int, int] = (24, 24), n_channels: int = 512, *, photons: float = 5e4,
           edge_shift_mev: float = -130.0, n_spikes: int = 5, ccd: CCD | None = None, seed: int = 0) -> PLMap:
    """One synthetic PL map.

    Parameters
    ----------
    shape : (ny, nx)
        Map size in pixels.
    n_channels : int
        Spectrometer channels over 430-560 nm.
    photons : float
        Expected photons per fully covered pixel (about 740 counts per channel at the peak for
        512 channels).
    edge_shift_mev : float
        Red shift at the crystal edges parallel to the field (top/bottom), meV; 0 for none.
    n_spikes : int
        Cosmic rays in the whole map.
    ccd : CCD, optional
        Record like this CCD (uint16 ADU, read noise, dark frames); default: float counts with
        Poisson noise and a constant bias.
    seed : int

    Returns
    -------
    PLMap
    """
    rng = np.random.default_rng(seed)
    crystal = _make_crystal(rng, shape)
    shift = crystal.edge_shift(edge_shift_mev, 0.0) if edge_shift_mev else np.zeros(shape)
    return _render(crystal, spectrometer_axis(n_channels), shift, (0.0, 0.0), photons, n_spikes, rng, ccd)


def pl_map_pair(shape: tuple[int, int] = (24, 24), n_channels: int = 512, *, offset: tuple[float, float] = (2.4, -1.7),
                red_mev: float = -130.0, blue_mev: float = 5.0, photons: float = 5e4, n_spikes: int = 5,
                seed: int = 0) -> PLMapPair:
    """Two maps of one crystal: pristine, then under a field with the crystal moved by ``offset``.

    The field red-shifts the edges parallel to it by up to ``red_mev`` and blue-shifts the rest by
    ``blue_mev``; the true shift map (meV, frame of the first map, NaN outside) is returned.
    """
    rng = np.random.default_rng(seed)
    crystal = _make_crystal(rng, shape)
    axis = spectrometer_axis(n_channels)
    first = _render(crystal, axis, np.zeros(shape), (0.0, 0.0), photons, n_spikes, rng)
    shift = crystal.edge_shift(red_mev, blue_mev)
    second = _render(crystal, axis, shift, offset, photons, n_spikes, rng)
    return PLMapPair(first, second, offset, np.where(first.truth.inside, shift, np.nan))


DEFAULT_EVENTS = (
    StimulusEvent(20.0, "+200 V on", -8.0, 3.0, -12.0, 30.0),
    StimulusEvent(170.0, "0 V (off)", 6.0, 3.0, 10.0, 30.0),
    StimulusEvent(320.0, "-200 V on", -10.0, 3.0, -8.0, 30.0),
)


def event_response(time: np.ndarray, events: tuple[StimulusEvent, ...] | list[StimulusEvent]) -> np.ndarray:
    """Peak-energy change (eV) at ``time`` (s): each event adds a fast and a slow exponential
    approach, starting at the event."""
    de = np.zeros_like(time, dtype=float)
    for ev in events:
        dt = np.clip(time - ev.time, 0.0, None)
        fast = ev.shift_fast_mev * -np.expm1(-dt / ev.tau_fast)
        de += 1e-3 * (fast + ev.shift_slow_mev * -np.expm1(-dt / ev.tau_slow))
    return de


def pl_timeseries(duration: float = 470.0, n_channels: int = 512, *,
                  events: tuple[StimulusEvent, ...] | list[StimulusEvent] = DEFAULT_EVENTS,
                  photons: float = 5e4, fwhm_mev: float = 82.0, seed: int = 0) -> PLTimeSeries:
    """Spectra at one spot, one per second for ``duration`` s, with stimulus ``events``.

    Returns
    -------
    PLTimeSeries
        The true energy trace is ``2.54 eV + event_response(time, events)``.
    """
    rng = np.random.default_rng(seed)
    time = np.arange(0.0, duration, 1.0)
    energy = E_MAIN + event_response(time, events)
    sigma = np.full(time.shape, fwhm_mev / 1e3 / FWHM_PER_SIGMA)
    axis = spectrometer_axis(n_channels)
    counts, _ = _detect(channel_counts(axis, [(np.full(time.shape, photons), energy, sigma)]), 0, rng)
    return PLTimeSeries(counts, time, axis, np.full(axis.shape, BIAS_COUNTS + STRAY_COUNTS), energy, fwhm_mev,
                        list(events))
