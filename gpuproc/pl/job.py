"""PL job files: one TOML file describes a hyperspectral PL map or time-series job.

Sections and keys (defaults in brackets)::

    [job]       kind ["pl"], device ["auto"|"cpu"|"gpu"], output (results Zarr, required),
                figures (folder for PNG figures, none if absent), nexus (NeXus/HDF5 copy of the
                results written at the end, none if absent), batch_rows [16] (rows of the
                map, or spectra of a time series, fitted per block), resume [true], overwrite [false],
                executor ["threads"|"local-cluster"|"cuda"|"slurm"|"scheduler:ADDRESS"],
                n_workers, scheduler_address (where the blocks run: gpuproc.run.settings)
    [input]     source (spectra file or ingested store, required), data_path ["data"],
                axis_path ["axis"], axis_unit ("nm"|"eV"|"cm-1"; default: the file's, else nm),
                axis (the spectral axis, for sources without one such as .npy: a list of values
                or a .npy/text file), laser_nm (excitation wavelength, nm, for Raman-shift
                axes; default the file's),
                store (where a raw source is ingested; default <output stem>.spectra.zarr),
                mode ["map"|"timeseries"], shape ([ny, nx] for flat spectra lists),
                step_um ([dy, dx] um; default the file's, else [1, 1]),
                time_step_s (s per spectrum of a time series; default the file's, else 1),
                second (a second map of the same sample for a shift map), events (list of
                {time = s, label = "..."} tables; default the file's)
    [spectra]   dark (counts per channel, or a file in any reader's syntax, "file.h5::/dark"
                for a dataset, e.g. in the map's own file; checked against the spectra's
                channels, axis and order: gpuproc.io.dark),
                per_channel [true] (data are counts per channel -> counts per eV),
                jacobian [true], medium ["vacuum"|"air"], n_air, energy_range ([e_min, e_max] eV),
                remove_spikes [true], weights ["poisson"|"none"] ("poisson": 1 / the detector
                variance gain x signal + read_noise^2), gain (ADU per photoelectron), read_noise
                (ADU rms), bias (ADU, subtracted when there is no dark) -- each a number or
                ["auto"]: estimated from the dark and the spectra (gpuproc.pl.noise)
    [fit]       max_peaks [3], background ["linear"|"constant"|"none"], estimator ["lsq"|"poisson"],
                min_significance [3.0], peak_shape ["gauss"|"lorentz"|"pvoigt"|"split_gauss", or a
                list of max_peaks of them: one per peak, in the order the peaks are added]
    [maps]      intensity_threshold [0.2]: pixels whose integrated intensity exceeds this fraction
                of the 99th percentile count as sample (quartiles, figures)
    [figures]   points (map positions [[x, y], ...] in um whose spectra are drawn with their fits,
                at most 9; default: the pixels at the peak-energy quartiles; maps only; not part of
                the results: a resume ignores it)
    [timeseries] response_model ["auto"|"none"|"single"|"double", or a list: one per event]
    [slurm]     partition, cores, memory, walltime, gpus, n_jobs, array_size, ... (SLURM runs;
                gpuproc.run.settings.SlurmSection)

Relative paths are relative to the job file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gpuproc.config import ConfigError, from_dict, load_toml
from gpuproc.pl.peaks import PeakShape
from gpuproc.pl.timeseries import ResponseChoice
from gpuproc.run.settings import ExecutionKeys, SlurmSection
from gpuproc.run.validate import at_least


@dataclass
class JobSection(ExecutionKeys):
    """``[job]``: where results go and how the job runs."""

    output: Path
    kind: Literal["pl"] = "pl"
    device: Literal["auto", "cpu", "gpu"] = "auto"
    figures: Path | None = None
    nexus: Path | None = None  #: also write the results as this NeXus/HDF5 file at the end (gpuproc.io.nexus)
    batch_rows: int = 16
    resume: bool = True
    overwrite: bool = False  #: replace an existing results store this job does not resume (only one gpuproc wrote)

    def __post_init__(self) -> None:
        at_least("[job] batch_rows", self.batch_rows, 1)
        super().__post_init__()


@dataclass
class EventConfig:
    """One stimulus event of a time series."""

    time: float  #: s
    label: str = ""


@dataclass
class InputSection:
    """``[input]``: the spectra and what the file does not say about them."""

    source: Path
    data_path: str = "data"
    axis_path: str = "axis"
    axis_unit: Literal["nm", "eV", "cm-1"] | None = None
    axis: Path | list[float] | None = None
    laser_nm: float | None = None
    store: Path | None = field(default=None, metadata={"output": True})  #: written by the run, not an input
    mode: Literal["map", "timeseries"] = "map"
    shape: tuple[int, int] | None = None
    step_um: tuple[float, float] | None = None
    time_step_s: float | None = None
    second: Path | None = None
    events: list[EventConfig] | None = None


@dataclass
class SpectraSection:
    """``[spectra]``: preprocessing before the fits."""

    dark: Path | float | None = None
    per_channel: bool = True
    jacobian: bool = True
    medium: Literal["vacuum", "air"] = "vacuum"
    n_air: float | None = None
    energy_range: tuple[float, float] | None = None
    remove_spikes: bool = True
    weights: Literal["poisson", "none"] = "poisson"
    gain: float | Literal["auto"] = "auto"
    read_noise: float | Literal["auto"] = "auto"
    bias: float | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        for key in ("gain", "read_noise"):
            value = getattr(self, key)
            if value != "auto" and not value > (0 if key == "gain" else -1e-300):
                raise ValueError(f"{key} must be 'auto' or a number > {'0' if key == 'gain' else '= 0'}, got {value}")


@dataclass
class FitSection:
    """``[fit]``: peak model and model selection (see :func:`gpuproc.pl.peaks.fit_peaks`)."""

    max_peaks: int = 3
    background: Literal["linear", "constant", "none"] = "linear"
    estimator: Literal["lsq", "poisson"] = "lsq"
    min_significance: float = 3.0
    #: profile of every peak (README model table), or one per peak: the first for the 1-peak fit's
    #: peak, the second for the peak the 2-peak fit adds, ...
    peak_shape: PeakShape | list[PeakShape] = "gauss"

    def __post_init__(self) -> None:
        if not 1 <= self.max_peaks <= 4:
            raise ValueError(f"max_peaks must be 1..4, got {self.max_peaks}")
        if isinstance(self.peak_shape, list) and len(self.peak_shape) != self.max_peaks:
            raise ValueError(f"peak_shape lists {len(self.peak_shape)} shapes; max_peaks = {self.max_peaks} "
                             "needs one per peak (or a single shape for all)")


@dataclass
class MapsSection:
    """``[maps]``: which pixels count as sample."""

    intensity_threshold: float = 0.2


MAX_FIGURE_POINTS = 9  #: example spectra in one figure (a 3 x 3 grid)


@dataclass
class FiguresSection:
    """``[figures]``: what the figures show; the results do not depend on it."""

    #: map positions [x, y] (um, the scan coordinates) whose spectra are drawn with their fits;
    #: None: the pixels at the peak-energy quartiles (gpuproc.report.pl.quartile_pixels)
    points: list[tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        if self.points is None:
            return
        if not 1 <= len(self.points) <= MAX_FIGURE_POINTS:
            raise ValueError(f"points: 1 to {MAX_FIGURE_POINTS} positions [x, y] um, got {len(self.points)}")
        for i, point in enumerate(self.points):
            if not all(math.isfinite(v) for v in point):
                raise ValueError(f"points[{i}] = {list(point)} um must be finite")

    def pixels(self, y_um: np.ndarray, x_um: np.ndarray, step_um: Sequence[float]) -> list[tuple[int, int]]:
        """The map pixels (row, column) nearest :attr:`points`.

        Parameters
        ----------
        y_um, x_um : 1-D arrays
            Pixel-centre coordinates of the map rows and columns, um.
        step_um : (dy, dx)
            Pixel size, um: a point may lie up to half a pixel outside the outer centres.

        Raises
        ------
        ValueError
            A point outside the map, naming ``[figures] points[i]`` and the map's extent.
        """
        y_um, x_um = np.asarray(y_um, dtype=float), np.asarray(x_um, dtype=float)
        half = (abs(float(step_um[0])) / 2, abs(float(step_um[1])) / 2)
        out = []
        for i, (x, y) in enumerate(self.points or []):
            inside = (y_um.min() - half[0] <= y <= y_um.max() + half[0]
                      and x_um.min() - half[1] <= x <= x_um.max() + half[1])
            if not inside:
                raise ValueError(f"[figures] points[{i}] = [{x:g}, {y:g}] um is outside the map (x {x_um.min():g} to "
                                 f"{x_um.max():g} um, y {y_um.min():g} to {y_um.max():g} um)")
            out.append((int(np.argmin(np.abs(y_um - y))), int(np.argmin(np.abs(x_um - x)))))
        return out


@dataclass
class TimeSeriesSection:
    """``[timeseries]``: the response model fitted after each event (gpuproc.pl.timeseries):
    "auto" (BIC among the admissible none / single / double fits), one of those, or a list with
    one choice per event."""

    response_model: ResponseChoice | list[ResponseChoice] = "auto"


@dataclass
class PLJob:
    """A whole PL job (see the module docstring for every key)."""

    job: JobSection
    input: InputSection
    spectra: SpectraSection = field(default_factory=SpectraSection)
    fit: FitSection = field(default_factory=FitSection)
    maps: MapsSection = field(default_factory=MapsSection)
    timeseries: TimeSeriesSection = field(default_factory=TimeSeriesSection)
    figures: FiguresSection = field(default_factory=FiguresSection)
    slurm: SlurmSection = field(default_factory=SlurmSection)


def load_job(path: str | Path) -> PLJob:
    """Read and check a PL job file; relative paths become relative to its folder.

    Raises
    ------
    ConfigError
        Missing file, invalid TOML, unknown or mistyped key (the message names file, section, key).
    """
    path = Path(path)
    return job_from_dict(load_toml(path), where=path.name, base=path.parent)


def job_from_dict(data: dict[str, Any], where: str = "job", base: Path | None = None) -> PLJob:
    """Build a :class:`PLJob` from parsed TOML; ``base`` resolves relative paths."""
    job = from_dict(PLJob, data, where)
    if job.job.kind != "pl":
        raise ConfigError(f"{where}: [job] kind must be 'pl'")
    if job.figures.points is not None and job.input.mode != "map":
        raise ConfigError(f"{where}: [figures] points needs [input] mode = 'map' (they are map positions)")
    return _resolved(job, base) if base is not None else job


def _resolved(job: PLJob, base: Path) -> PLJob:
    """Paths made absolute against ``base``."""

    def fix(p: Any) -> Any:
        return base / p if isinstance(p, Path) and not p.is_absolute() else p

    return replace(
        job,
        job=replace(job.job, output=fix(job.job.output), figures=fix(job.job.figures),
                    nexus=fix(job.job.nexus)),
        input=replace(job.input, source=fix(job.input.source), store=fix(job.input.store),
                      second=fix(job.input.second), axis=fix(job.input.axis)),
        spectra=replace(job.spectra, dark=fix(job.spectra.dark)),
        slurm=replace(job.slurm, log_directory=fix(job.slurm.log_directory)),
    )
