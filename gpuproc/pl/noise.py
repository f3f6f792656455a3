"""Detector noise model of a CCD spectrometer: variance = gain x signal + read_noise^2.

Counts (ADU) = bias + dark current + gain x photoelectrons + read noise. After subtracting the
bias (or a dark, which holds the bias and the dark current), a channel with signal ``s`` ADU has
variance ``gain * s + read_noise**2`` (ADU^2); ``gain`` is in ADU per photoelectron and
``read_noise`` in ADU rms. A pure photon counter is ``gain = 1, read_noise = 0``.

Least squares weights each channel by 1 / variance, with the signal taken from the mean of its
``2 * half`` neighbours: a channel's own count would make its weight depend on its own noise
(a downward bias of the fitted signal: low fluctuations weigh more). The Poisson estimator fits
the shifted-Poisson counts ``(s + read_noise^2 / gain) / gain``, whose variance equals their mean.

Unknown values ("auto") are estimated from the data: the read noise from dark frames (their
variance across frames, or a single frame's channel-to-channel scatter), and gain (and, without
dark frames, the read noise) from the photon-transfer relation of the spectra themselves: the
variance of second differences between neighbouring channels against the local signal, a
straight line ``read_noise^2 + gain * s`` fitted to binned, clipped means. Its intercept is the
variance of the emission-free channels.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from gpuproc.backend import array_namespace

Auto = Literal["auto"]
#: variance of a second difference s_i - (s_{i-1} + s_{i+1}) / 2 of independent channels, in units of theirs
SECOND_DIFF_VAR = 1.5
N_BINS = 12  #: geometric signal bins of the photon-transfer fit above the emission-free group
CLIP = 6.0  #: second differences beyond CLIP robust sd of their bin (cosmic rays) are ignored


@dataclass(frozen=True)
class NoiseModel:
    """Detector noise of dark-subtracted counts.

    Attributes
    ----------
    gain : float
        ADU per photoelectron (variance per unit signal).
    read_noise : float
        Read noise (with the dark current's shot noise), ADU rms.
    bias : float
        Bias subtracted when there is no dark, ADU (informational with a dark: its median).
    source : str
        How each value was obtained ("given", "dark frames", "dark spread", "photon transfer").
    """

    gain: float = 1.0
    read_noise: float = 0.0
    bias: float = 0.0
    source: str = "given"

    @property
    def shift(self) -> float:
        """Shifted-Poisson offset read_noise^2 / gain, ADU."""
        return self.read_noise**2 / self.gain

    def variance(self, signal: Any) -> Any:
        """``gain * max(signal, 0) + read_noise^2``, at least ``gain`` (one photoelectron), ADU^2."""
        xp = array_namespace(signal)
        v = self.gain * xp.maximum(signal, 0.0) + self.read_noise**2
        return xp.maximum(v, self.gain)

    def weights(self, signal: Any, scale: Any = 1.0, half: int = 2) -> Any:
        """Least-squares weights 1 / variance of ``signal * scale``.

        Parameters
        ----------
        signal : array, shape (..., n_channels)
            Dark-subtracted counts, ADU, in the channel order of ``scale``.
        scale : array, shape (n_channels,) or float
            Factor the spectra were multiplied by (:attr:`gpuproc.pl.spectra.EnergySpectra.scale`).
        half : int
            The signal of channel i is the mean of channels i-half..i+half without i (edges:
            nearest channel repeated).

        Returns
        -------
        array
            ``1 / (scale^2 variance)``; 0 where ``signal`` is not finite.
        """
        xp = array_namespace(signal, scale)
        s = xp.asarray(signal, dtype=np.float64)
        local = _neighbour_mean(xp.where(xp.isfinite(s), s, 0.0), half, xp)
        w = 1.0 / (xp.asarray(scale) ** 2 * self.variance(local))
        return xp.where(xp.isfinite(s), w, 0.0)

    def poisson_counts(self, signal: Any) -> Any:
        """Shifted-Poisson counts ``(signal + read_noise^2 / gain) / gain`` (variance = mean)."""
        return (signal + self.shift) / self.gain

    def attrs(self) -> dict[str, Any]:
        """The model as results attributes ``noise_gain``, ``noise_read_noise``, ..."""
        return {f"noise_{k}": v for k, v in asdict(self).items()}


def _neighbour_mean(s: Any, half: int, xp: Any) -> Any:
    """Mean of the ``2 half`` neighbours of each channel along the last axis."""
    n = s.shape[-1]
    idx = xp.arange(n)
    total = xp.zeros_like(s)
    for d in range(1, half + 1):
        total = total + s[..., xp.clip(idx - d, 0, n - 1)] + s[..., xp.clip(idx + d, 0, n - 1)]
    return total / (2 * half)


def estimate_noise(
    counts: np.ndarray,
    dark: np.ndarray | None = None,
    dark_frames: np.ndarray | None = None,
    *,
    gain: float | Auto = "auto",
    read_noise: float | Auto = "auto",
    bias: float | Auto = "auto",
) -> NoiseModel:
    """The noise model of raw spectra, estimating what is "auto".

    Parameters
    ----------
    counts : ndarray, shape (n_spectra, n_channels)
        Raw counts (bias included), ADU; a sample of the map (a few hundred spectra, with
        and without emission). Non-finite counts are ignored.
    dark : ndarray, shape (n_channels,), optional
        Dark spectrum subtracted from the data (bias included), ADU.
    dark_frames : ndarray, shape (n_frames, n_channels), optional
        The individual dark frames, for the read noise.
    gain, read_noise, bias : float or "auto"
        ADU per photoelectron, ADU rms, ADU. ``bias`` is subtracted only without a dark; "auto":
        the median of the 10 % channels with the lowest median signal.

    Returns
    -------
    NoiseModel
    """
    y = np.asarray(counts, dtype=np.float64).reshape(-1, np.shape(counts)[-1])
    y = np.where(np.isfinite(y), y, np.nan)
    y = y[~np.all(np.isnan(y), axis=-1)]
    if y.shape[0] == 0:
        raise ValueError("noise model: the sampled spectra hold no finite counts to estimate it from; set "
                         "[spectra] gain, read_noise and bias")
    source = {}
    if bias == "auto":
        bias = float(np.median(dark)) if dark is not None else _emission_free_level(y)
        source["bias"] = "dark" if dark is not None else "emission-free channels"
    signal = y - (np.asarray(dark, dtype=np.float64) if dark is not None else float(bias))
    slope, intercept = _photon_transfer(signal) if "auto" in (gain, read_noise) else (np.nan, np.nan)
    if read_noise == "auto":
        read_noise, source["read_noise"] = _read_noise(dark_frames, intercept, signal)
    if gain == "auto":
        gain, source["gain"] = slope, "photon transfer"
        if not np.isfinite(gain) or gain <= 0:
            warnings.warn("noise model: the spectra hold too little signal to estimate the gain; using 1",
                          stacklevel=2)
            gain, source["gain"] = 1.0, "default (no signal)"
    text = ", ".join(f"{k}: {v}" for k, v in source.items()) or "given"
    return NoiseModel(float(gain), float(read_noise), float(bias), text)


def _emission_free_level(y: np.ndarray) -> float:
    """Median count of the 10 % channels with the lowest median over the spectra."""
    with warnings.catch_warnings():  # channels that are NaN in every spectrum
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(y, axis=0)
    low = np.argsort(np.where(np.isnan(med), np.inf, med))[: max(1, med.size // 10)]
    return float(np.nanmedian(y[:, low]))


def _read_noise(frames: np.ndarray | None, intercept: float, signal: np.ndarray) -> tuple[float, str]:
    """Read noise from dark frames (variance across frames, or one frame's spread), else from the
    photon-transfer intercept, else (too few channels for it) from the median absolute first
    difference of the spectra (robust to their peaks)."""
    if frames is not None:
        f = np.asarray(frames, dtype=np.float64).reshape(-1, np.shape(frames)[-1])
        if f.shape[0] >= 2:
            variance = np.nanmedian(np.nanvar(f, axis=0, ddof=1)) / _chi2_median_ratio(f.shape[0] - 1)
            return float(np.sqrt(variance)), "dark frames"
        step = np.diff(f[0])
        return float(np.sqrt(_clipped_mean((step - np.median(step)) ** 2 / 2.0))), "dark spread"
    if np.isfinite(intercept):
        return float(np.sqrt(max(intercept, 0.0))), "photon transfer (emission-free channels)"
    step = np.diff(signal, axis=-1)
    return float(1.4826 * np.nanmedian(np.abs(step)) / np.sqrt(2.0)), "first differences"


def _chi2_median_ratio(dof: int) -> float:
    """Median of chi2(dof) / dof: (1 - 2 / (9 dof))^3 (Wilson-Hilferty)."""
    return (1.0 - 2.0 / (9.0 * dof)) ** 3


def _photon_transfer(signal: np.ndarray) -> tuple[float, float]:
    """Slope (gain) and intercept (read_noise^2) of the variance against the signal.

    The variance of channel i comes from its second difference, the signal from the mean of the
    three channels (uncorrelated with it). Binning by that noisy mean flattens the relation where
    bins are narrower than its noise, so the points below ``10 x`` the emission-free noise form
    one group and the rest geometric bins (widths >> the noise). Each group's variance is its
    mean clipped at CLIP robust sd (cosmic rays); a line is fitted to the groups weighted by
    their inverse variance. No bin above the first group: slope NaN.
    """
    d = signal[:, 1:-1] - 0.5 * (signal[:, :-2] + signal[:, 2:])
    m = ((signal[:, :-2] + signal[:, 1:-1] + signal[:, 2:]) / 3.0).ravel()
    v = d.ravel() ** 2 / SECOND_DIFF_VAR
    finite = np.isfinite(v) & np.isfinite(m)
    m, v = m[finite], v[finite]
    if m.size == 0:
        return np.nan, np.nan
    low = m <= np.quantile(m, 0.2)
    m0 = 10.0 * np.sqrt(_clipped_mean(v[low]))
    top = m.max()
    edges = np.r_[-np.inf, np.geomspace(m0, top, N_BINS + 1)] if top > 1.5 * m0 else np.r_[-np.inf, np.inf]
    which = np.searchsorted(edges, m, side="right") - 1
    xs, ys, ws = [], [], []
    for b in range(edges.size - 1):
        inside = which == b
        if inside.sum() < 50:
            continue
        mean = _clipped_mean(v[inside])
        xs.append(m[inside].mean())
        ys.append(mean)
        ws.append(inside.sum() / (2.0 * mean**2 + 1e-300))
    if len(xs) < 3:
        return np.nan, float(ys[0]) if ys else np.nan
    a = np.stack([np.ones(len(xs)), np.asarray(xs)], axis=-1)
    sw = np.sqrt(np.asarray(ws))
    (intercept, slope), *_ = np.linalg.lstsq(a * sw[:, None], np.asarray(ys) * sw, rcond=None)
    return float(slope), float(intercept)


def _clipped_mean(v: np.ndarray) -> float:
    """Mean of squared deviations ``v`` below CLIP^2 robust variances (median of chi2(1): 0.4549)."""
    return float(v[v <= CLIP**2 * np.median(v) / 0.4549].mean())
