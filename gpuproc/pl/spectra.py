"""Spectral preprocessing of PL spectra: photon-energy axis, Jacobian, dark, crop, cosmic rays.

Spectra are arrays of shape ``(..., n_channels)`` (a map ``(ny, nx, n_channels)``, a time series
``(nt, n_channels)`` or one spectrum); the spectral axis is always the last one. Every function
takes NumPy or CuPy arrays and returns arrays of the same kind (the ``xp`` idiom). NaN spectra are
allowed and stay NaN; they become flagged pixels in the peak fits.

Energy axes returned here are always **ascending** in eV: a wavelength axis, whose energies
descend, is flipped together with the data along the last axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from gpuproc.backend import array_namespace
from gpuproc.pl.noise import NoiseModel

#: h c in eV nm (CODATA 2018, exact): E[eV] = HC_EV_NM / lambda[nm] in vacuum
HC_EV_NM = 1239.84198
#: refractive index of standard dry air at visible wavelengths (about 500 nm)
N_AIR_DEFAULT = 1.000277

AxisUnit = Literal["nm", "eV"]
Medium = Literal["vacuum", "air"]


@dataclass
class EnergySpectra:
    """Spectra on an ascending photon-energy axis.

    Attributes
    ----------
    energy : array, shape (n_channels,)
        Photon energy in eV, ascending, generally non-uniform.
    intensity : array, shape (..., n_channels)
        Intensity per unit energy (when the Jacobian was applied) on ``energy``.
    scale : array, shape (n_channels,)
        Factor each input channel was multiplied by (1 without the Jacobian), reordered like
        ``energy``; the variance of ``intensity`` is the input variance times ``scale**2``.
    """

    energy: Any
    intensity: Any
    scale: Any


def edlen_air_index(wavelength_nm: Any) -> Any:
    """Refractive index of standard dry air (15 degC, 101.325 kPa, Edlen 1966).

    Parameters
    ----------
    wavelength_nm : array
        Wavelength in air, nm (the formula's small difference between air and vacuum wavelength
        changes n by < 1e-9 here).

    Returns
    -------
    array
        n(lambda), about 1.000279 at 500 nm.
    """
    xp = array_namespace(wavelength_nm)
    s2 = (1e3 / xp.asarray(wavelength_nm, dtype=np.float64)) ** 2  # wavenumber squared, um^-2
    return 1.0 + 1e-8 * (8342.54 + 2406147.0 / (130.0 - s2) + 15998.0 / (38.9 - s2))


def wavelength_to_energy(wavelength_nm: Any, medium: Medium = "vacuum", n_air: float | None = None) -> Any:
    """Photon energy in eV of a wavelength in nm, ``E = 1239.84198 / (n lambda)``.

    Parameters
    ----------
    wavelength_nm : array
        Wavelength in nm.
    medium : {"vacuum", "air"}
        Whether ``wavelength_nm`` was measured in vacuum (n = 1, the default) or in air.
    n_air : float, optional
        Refractive index of air for ``medium="air"``; default: the Edlen (1966) dispersion
        formula of standard air (:func:`edlen_air_index`, ~1.000279 at 500 nm). In air, 2.5 eV
        moves by about -0.7 meV relative to the vacuum conversion.

    Returns
    -------
    array
        Photon energy in eV.
    """
    xp = array_namespace(wavelength_nm)
    lam = xp.asarray(wavelength_nm, dtype=np.float64)
    if medium == "vacuum":
        n = 1.0
    elif medium == "air":
        n = edlen_air_index(lam) if n_air is None else float(n_air)
    else:
        raise ValueError(f"medium must be 'vacuum' or 'air', got {medium!r}")
    return HC_EV_NM / (n * lam)


def check_axis(axis: Any, n_channels: int | None = None, name: str = "axis") -> int:
    """Validate a spectral axis: 1D, finite, strictly monotonic, length ``n_channels``.

    Returns
    -------
    int
        +1 for an ascending axis, -1 for a descending one.

    Raises
    ------
    ValueError
        Naming both lengths on a mismatch, or the first index where monotonicity breaks.
    """
    xp = array_namespace(axis)
    a = xp.asarray(axis)
    if a.ndim != 1 or a.shape[0] < 2:
        raise ValueError(f"{name}: expected a 1D axis with >= 2 channels, got shape {tuple(a.shape)}")
    if n_channels is not None and a.shape[0] != n_channels:
        raise ValueError(
            f"{name} has {a.shape[0]} channels but the spectra have {n_channels} (last data dimension)"
        )
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name}: contains NaN or infinite values")
    d = xp.diff(a)
    if bool(xp.all(d > 0)):
        return 1
    if bool(xp.all(d < 0)):
        return -1
    first = int(xp.argmax(d <= 0) if bool(d[0] > 0) else xp.argmax(d >= 0))
    raise ValueError(
        f"{name}: not strictly monotonic (direction changes or repeats at index {first + 1}); "
        "sort the channels or remove the duplicates first"
    )


def jacobian_scale(wavelength_nm: Any) -> Any:
    """Factor turning intensity per nm into intensity per eV: ``lambda^2 / (h c)``, in nm/eV.

    From I(E) |dE| = I(lambda) |d lambda| with E = hc / lambda. ``wavelength_nm`` is the vacuum
    wavelength.
    """
    xp = array_namespace(wavelength_nm)
    lam = xp.asarray(wavelength_nm, dtype=np.float64)
    return lam**2 / HC_EV_NM


@dataclass
class EnergyAxis:
    """How spectra on one spectral axis go onto the ascending photon-energy axis.

    Computed once per axis (:func:`energy_axis`) and applied to every block of spectra (the
    pipeline keeps it on the fitting device for the whole run).

    Attributes
    ----------
    energy : array, shape (n_channels,)
        Photon energy in eV, ascending.
    scale : array, shape (n_channels,)
        Factor of each channel, in the order of ``energy`` (:attr:`EnergySpectra.scale`).
    order : array of int, shape (n_channels,)
        Input channel of each entry of ``energy``.
    """

    energy: Any
    scale: Any
    order: Any

    def apply(self, data: Any) -> EnergySpectra:
        """Spectra (..., n_channels) on the input axis as :class:`EnergySpectra` on :attr:`energy`."""
        return EnergySpectra(self.energy, data[..., self.order] * self.scale, self.scale)


def energy_axis(
    axis: Any,
    unit: AxisUnit = "nm",
    *,
    jacobian: bool = True,
    per_channel: bool = False,
    medium: Medium = "vacuum",
    n_air: float | None = None,
    n_channels: int | None = None,
) -> EnergyAxis:
    """The photon-energy axis, channel order and channel scale of :func:`to_energy` for ``axis``.

    Parameters are those of :func:`to_energy`; ``n_channels``: the spectra's channels (checked).
    """
    if unit not in ("nm", "eV"):
        raise ValueError(f"unit must be 'nm' or 'eV', got {unit!r}")
    check_axis(axis, n_channels)
    xp = array_namespace(axis)
    axis = xp.asarray(axis, dtype=np.float64)
    energy = axis if unit == "eV" else wavelength_to_energy(axis, medium, n_air)
    scale = _channel_scale(axis, energy, unit, jacobian, per_channel, xp)
    order = xp.argsort(energy)
    return EnergyAxis(energy[order], scale[order], order)


def to_energy(
    data: Any,
    axis: Any,
    unit: AxisUnit = "nm",
    *,
    jacobian: bool = True,
    per_channel: bool = False,
    medium: Medium = "vacuum",
    n_air: float | None = None,
) -> EnergySpectra:
    """Put spectra on an ascending photon-energy axis, intensity per unit energy.

    Parameters
    ----------
    data : array, shape (..., n_channels)
        Spectra; NaN spectra stay NaN.
    axis : array, shape (n_channels,)
        Spectral axis in ``unit``, strictly ascending or strictly descending.
    unit : {"nm", "eV"}
        Unit of ``axis``. An eV axis is only reordered (and ``per_channel`` applied).
    jacobian : bool
        Convert intensity per unit wavelength to intensity per unit energy,
        ``I(E) = I(lambda) lambda^2 / (h c)`` (default). Then the integral of I(lambda) over
        lambda equals the integral of I(E) over E. Ignored for an eV axis.
    per_channel : bool
        ``data`` are counts per channel (raw detector counts), not a density: divide by the
        channel width in energy, ``|dE/dchannel|`` (central differences). The result is counts
        per eV, with or without ``jacobian`` (which is then implied and not applied twice).
    medium, n_air
        Wavelength in vacuum or air, see :func:`wavelength_to_energy`. In air, the Jacobian uses
        the vacuum wavelength ``n lambda`` and the density per vacuum nm (I / n); the dispersion
        dn/dlambda (~1e-5 relative) is neglected.

    Returns
    -------
    EnergySpectra
    """
    xp = array_namespace(data, axis)
    data = xp.asarray(data)
    return energy_axis(xp.asarray(axis), unit, jacobian=jacobian, per_channel=per_channel, medium=medium,
                       n_air=n_air, n_channels=data.shape[-1] if data.ndim else None).apply(data)


def _channel_scale(axis: Any, energy: Any, unit: str, jacobian: bool, per_channel: bool,
                   xp: ModuleType) -> Any:
    """Per-channel factor of :func:`to_energy`."""
    if per_channel:
        return 1.0 / xp.abs(xp.gradient(energy))
    if unit == "eV" or not jacobian:
        return xp.ones_like(energy)
    lam_vac = HC_EV_NM / energy
    return jacobian_scale(lam_vac) * (energy * axis / HC_EV_NM)  # second factor: 1 / n


def poisson_weights(counts: Any, scale: Any = 1.0) -> Any:
    """Least-squares weights 1/variance of ``counts * scale`` for pure Poisson counts.

    The detector noise model with gain 1 and no read noise (:class:`gpuproc.pl.noise.NoiseModel`,
    which the pipeline uses with the detector's values): each channel's variance comes from its
    neighbours' mean count, at least 1.

    Parameters
    ----------
    counts : array, shape (..., n_channels)
        Photon counts per channel above the detector bias (dark-subtracted), in the channel
        order of ``scale``.
    scale : array, shape (n_channels,) or float
        :attr:`EnergySpectra.scale`.

    Returns
    -------
    array
        ``1 / (scale^2 max(neighbour mean, 1))``; 0 where ``counts`` is not finite.
    """
    return NoiseModel().weights(counts, scale)


def subtract_dark(data: Any, dark: Any) -> Any:
    """Subtract a dark/background spectrum (or a per-pixel stack of them).

    Parameters
    ----------
    data : array, shape (..., n_channels)
    dark : array, shape (n_channels,) or broadcastable to ``data``
        Same units and channel order as ``data``.

    Returns
    -------
    array
        ``data - dark`` as floating point.
    """
    xp = array_namespace(data, dark)
    data = xp.asarray(data)
    dark = xp.asarray(dark)
    if dark.shape[-1:] != data.shape[-1:]:
        raise ValueError(
            f"dark spectrum has {dark.shape[-1] if dark.ndim else 'no'} channels but the spectra have "
            f"{data.shape[-1]} (last dimension)"
        )
    return data.astype(np.float64) - dark


def crop(energy: Any, data: Any, e_min: float | None = None, e_max: float | None = None) -> tuple[Any, Any]:
    """Keep the channels with ``e_min <= energy <= e_max`` (eV).

    Parameters
    ----------
    energy : array, shape (n_channels,)
        Monotonic energy axis in eV.
    data : array, shape (..., n_channels)
    e_min, e_max : float, optional
        Limits in eV; None leaves that side open.

    Returns
    -------
    energy, data
        The cropped axis and spectra (views where possible).
    """
    xp = array_namespace(energy, data)
    energy = xp.asarray(energy)
    check_axis(energy, xp.asarray(data).shape[-1], "energy")
    keep = xp.ones(energy.shape, dtype=bool)
    if e_min is not None:
        keep &= energy >= e_min
    if e_max is not None:
        keep &= energy <= e_max
    idx = xp.nonzero(keep)[0]
    if idx.size < 2:
        raise ValueError(
            f"crop [{e_min}, {e_max}] eV keeps {int(idx.size)} channels of an axis spanning "
            f"{float(energy.min()):.4f}..{float(energy.max()):.4f} eV"
        )
    sl = slice(int(idx[0]), int(idx[-1]) + 1)  # the kept channels are contiguous on a monotonic axis
    return energy[sl], xp.asarray(data)[..., sl]


def remove_spikes(data: Any, width: int = 7, threshold: float = 8.0, scale_width: int = 41) -> tuple[Any, Any]:
    """Replace cosmic-ray spikes by the running median along the spectral axis.

    A channel is a spike where it exceeds the running median (``width`` channels) by more than
    ``threshold`` local noise standard deviations. The noise comes from channel-to-channel
    differences, which spikes of 1-2 channels barely affect: 1.4826 / sqrt(2) x their running
    median over ``scale_width`` channels, but at least 1.2533 / sqrt(2) x their mean over the
    spectrum (discrete low counts can make the median 0). Only positive outliers count (cosmic
    rays add charge). Spikes up to ``width // 2`` channels wide are removed; peaks much wider than
    ``width`` are untouched.

    Both running medians (edges: nearest channel repeated) are only evaluated at candidate
    channels: the running median is at least the running minimum and the noise at least its
    spectrum-wide floor, so a channel that exceeds the running minimum by at most ``threshold``
    floors cannot be a spike. The result equals evaluating them everywhere.

    Parameters
    ----------
    data : array, shape (..., n_channels)
    width : int
        Odd window of the running median, channels.
    threshold : float
        Detection threshold in noise standard deviations.
    scale_width : int
        Window of the local noise estimate, channels.

    Returns
    -------
    cleaned, spikes
        The cleaned spectra (float64) and a boolean array marking the replaced channels.
    """
    if width < 3 or width % 2 == 0:
        raise ValueError(f"width must be an odd number >= 3, got {width}")
    xp = array_namespace(data)
    y = xp.asarray(data, dtype=np.float64)
    step = xp.abs(xp.diff(y, axis=-1, append=y[..., -1:]))
    floor = 1.2533 * _finite_mean(step, xp)[..., None] / np.sqrt(2.0)
    low = ndimage_module(xp).minimum_filter1d(y, width, axis=-1, mode="nearest")
    at = xp.nonzero(y - low > threshold * floor)  # candidates: every spike is among them
    med = _running_median_at(y, at, width, xp)
    noise = xp.maximum(1.4826 * _running_median_at(step, at, scale_width, xp) / np.sqrt(2.0),
                       floor[at[:-1] + (0,)])
    hit = y[at] - med > threshold * noise
    spikes = xp.zeros(y.shape, dtype=bool)
    spikes[tuple(i[hit] for i in at)] = True
    cleaned = y.copy()
    cleaned[spikes] = med[hit]
    return cleaned, spikes


def _running_median_at(a: Any, at: tuple[Any, ...], size: int, xp: ModuleType) -> Any:
    """``scipy.ndimage.median_filter`` of ``a`` along the last axis (``size`` channels, mode
    "nearest"), evaluated only at the indices ``at`` (as from ``nonzero``); shape (len(at[0]),)."""
    channels = xp.clip(at[-1][:, None] + xp.arange(size)[None, :] - size // 2, 0, a.shape[-1] - 1)
    windows = a[tuple(i[:, None] for i in at[:-1]) + (channels,)]
    return xp.sort(windows, axis=-1)[:, size // 2]


def _finite_mean(a: Any, xp: ModuleType) -> Any:
    """Mean over the finite channels of each spectrum (0 for an all-NaN spectrum)."""
    finite = xp.isfinite(a)
    return xp.where(finite, a, 0.0).sum(axis=-1) / xp.maximum(finite.sum(axis=-1), 1)


def ndimage_module(xp: ModuleType) -> ModuleType:
    """``scipy.ndimage`` for NumPy arrays, ``cupyx.scipy.ndimage`` for CuPy arrays."""
    if xp is np:
        import scipy.ndimage

        return scipy.ndimage
    import cupyx.scipy.ndimage

    return cupyx.scipy.ndimage
