"""The WAXS job file (TOML). Example: examples/waxs_scan.toml; keys documented in the README.

::

    [job]          output, figures, nexus, device, batch_frames, save_cakes, resume, overwrite,
                   executor, n_workers, scheduler_address (where it runs: gpuproc.run.settings)
    [input]        source (scan store; or frames: "file.h5[::/node]", fabio files, glob, list),
                   scan_shape (required unless a scan store), scan_order, step_um
    [integration]  poni or pyfai_config, npt_q, npt_azimuth, q_range, unit, mask, dark, flat,
                   polarization_factor, solid_angle, split, dummy, delta_dummy, saturation
    [fit]          max_iter, min_significance, min_coverage, warn_coverage, min_fwhm_bins
    [derive]       shape_factor, orientation_reflection, orientation_period, instrumental_fwhm,
                   saxs_groups
    [[reflections]] name, hkl, q_range, azimuth_range, kind ("waxs" | "saxs"), instrumental_fwhm,
                   model ("gauss2d_polar" | "pvoigt2d_polar")
    [slurm]        partition, cores, memory, walltime, gpus, n_jobs, array_size, ... (SLURM runs)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gpuproc.config import ConfigError, from_dict, load_toml
from gpuproc.run.settings import ExecutionKeys, SlurmSection
from gpuproc.run.validate import at_least, positive


@dataclass
class JobSection(ExecutionKeys):
    output: Path  #: results store (Zarr v3 directory)
    figures: Path | None = None  #: directory for PNG figures; none when omitted
    nexus: Path | None = None  #: also write the results as this NeXus/HDF5 file at the end (gpuproc.io.nexus)
    device: Literal["auto", "cpu", "gpu"] = "auto"
    batch_frames: int = 64  #: frames per processing block (memory bound): whole scan rows, or parts of a row below one
    save_cakes: bool = False  #: also store every frame's cake (y, x, azimuth, q)
    resume: bool = True  #: continue an interrupted run of the same job instead of starting over
    overwrite: bool = False  #: replace an existing results store this job does not resume (only one gpuproc wrote)

    def __post_init__(self) -> None:
        at_least("[job] batch_frames", self.batch_frames, 1)
        super().__post_init__()


@dataclass
class InputSection:
    #: scan store directory, or frames: "file.h5" / "file.h5::/node" (HDF5, NeXus, Eiger master),
    #: fabio files (multi-frame ones give all their frames), a glob or a list of files
    source: str | list[str]
    scan_shape: tuple[int, int] | None = None  #: (ny, nx) positions; required unless a scan store
    scan_order: Literal["row", "snake"] | None = None  #: the store's, else "row"
    step_um: tuple[float, float] | None = None  #: (dy, dx) in micrometres; the store's, else (1, 1)


@dataclass
class IntegrationSection:
    """The cake: geometry, bins, corrections and invalid-pixel rules (gpuproc.waxs.integrate).

    ``pyfai_config`` (a pyFAI-integrate / pyFAI-calib2 JSON) supplies the geometry and any of the
    other keys the job does not give itself (gpuproc.waxs.pyfai_config); ``poni`` is then optional.
    """

    q_range: tuple[float, float]  #: fixed radial range of the cake, in ``unit``
    poni: Path | None = None  #: pyFAI geometry file (required without pyfai_config)
    pyfai_config: Path | None = None  #: pyFAI integration JSON; the job's own keys win over it
    npt_q: int = 500
    npt_azimuth: int = 360
    unit: Literal["q_A^-1", "q_nm^-1"] = "q_A^-1"
    mask: Path | None = None  #: user mask image (non-zero = masked), merged with the detector's gaps
    dark: Path | None = None
    flat: Path | None = None
    polarization_factor: float | None = None
    solid_angle: bool = True
    split: Literal["bbox", "no", "full"] = "bbox"
    #: invalid value in a frame: "auto" the detector's dummy/delta_dummy as pyFAI's integrate2d uses
    #: them (Pilatus/Eiger: -2 +- 1.5), a number (counts), or "none"
    dummy: float | Literal["auto", "none"] = "auto"
    delta_dummy: float | None = None  #: |value - dummy| <= delta_dummy is invalid; default exact
    saturation: float | None = None  #: counts above this are invalid in that frame

    def __post_init__(self) -> None:
        if self.poni is None and self.pyfai_config is None:
            raise ValueError("[integration] needs poni or pyfai_config (the geometry)")
        if self.delta_dummy is not None and isinstance(self.dummy, str):
            raise ValueError(f"[integration] delta_dummy needs a numeric dummy, got dummy = {self.dummy!r}")
        at_least("[integration] npt_q", self.npt_q, 1)
        at_least("[integration] npt_azimuth", self.npt_azimuth, 1)
        positive("[integration] saturation", self.saturation, "counts")


@dataclass
class FitSection:
    """Spot fits and the checks that decide whether a fit is a measurement (gpuproc.fit.Status)."""

    max_iter: int = 100
    min_significance: float = 3.0  #: amplitude / its standard error below this: NO_PEAK
    min_coverage: float = 0.5  #: a window with a smaller fraction of valid bins is refused; a fit: LOW_COVERAGE
    warn_coverage: float = 0.9  #: a window with a smaller fraction of valid bins gives a warning
    min_fwhm_bins: float = 1.0  #: lower bound of both FWHM, in cake bins; a width reaching it: AT_BOUND

    def __post_init__(self) -> None:
        for key in ("min_coverage", "warn_coverage"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"[fit] {key} must lie in [0, 1], got {getattr(self, key)}")
        if self.min_significance < 0:
            raise ValueError(f"[fit] min_significance must be >= 0, got {self.min_significance}")
        if self.min_fwhm_bins <= 0:
            raise ValueError(f"[fit] min_fwhm_bins must be > 0, got {self.min_fwhm_bins}")


@dataclass
class DeriveSection:
    shape_factor: float = 0.85  #: Scherrer K for FWHM widths
    orientation_reflection: str | None = None  #: name of the reflection whose phi0 is the orientation
    orientation_period: float = 360.0  #: symmetry period of the orientation map (degrees)
    saxs_groups: list[list[str]] | None = None  #: SAXS reflections averaged into a1, a2 (e.g. Friedel pairs)


@dataclass
class ReflectionSpec:
    name: str
    hkl: tuple[int, int, int]
    q_range: tuple[float, float]  #: in the unit of [integration]
    azimuth_range: tuple[float, float]  #: degrees (pyFAI chi); hi may pass 180 to cross the seam
    kind: Literal["waxs", "saxs"] = "waxs"
    instrumental_fwhm: float | None = None  #: instrumental radial FWHM, subtracted before Williamson-Hall
    #: spot model (README model table): Gaussian in q and azimuth, or pseudo-Voigt in q (own
    #: Lorentzian fraction eta_q) times a Gaussian in azimuth; Williamson-Hall takes either's FWHM
    model: Literal["gauss2d_polar", "pvoigt2d_polar"] = "gauss2d_polar"

    def __post_init__(self) -> None:
        if not self.q_range[0] < self.q_range[1]:
            raise ValueError(f"reflection {self.name!r}: q_range must be increasing, got {self.q_range}")
        if not 0 < self.azimuth_range[1] - self.azimuth_range[0] <= 360:
            raise ValueError(f"reflection {self.name!r}: azimuth_range must span (0, 360] degrees, "
                             f"got {self.azimuth_range}")


@dataclass
class WaxsJob:
    job: JobSection
    input: InputSection
    integration: IntegrationSection
    reflections: list[ReflectionSpec]
    fit: FitSection = field(default_factory=FitSection)
    derive: DeriveSection = field(default_factory=DeriveSection)
    slurm: SlurmSection = field(default_factory=SlurmSection)
    kind: Literal["waxs"] = "waxs"

    def __post_init__(self) -> None:
        names = [r.name for r in self.reflections]
        if not names:
            raise ValueError("no [[reflections]] listed")
        if len(set(names)) != len(names):
            raise ValueError(f"reflection names must be unique, got {names}")
        refs = [self.derive.orientation_reflection] + sum(self.derive.saxs_groups or [], [])
        for ref in refs:
            if ref is not None and ref not in names:
                raise ValueError(f"[derive] refers to reflection {ref!r}, not among {names}")


def load_job(source: str | Path | dict[str, Any]) -> WaxsJob:
    """A WAXS job from a TOML file or an already parsed dict; relative paths are taken relative to
    the job file's directory."""
    if isinstance(source, dict):
        return from_dict(WaxsJob, _with_pyfai_config(source, Path.cwd(), "job"), "job")
    path = Path(source)
    data = load_toml(path)
    if data.get("kind", "waxs") != "waxs":
        raise ConfigError(f"{path}: kind = {data.get('kind')!r}, expected 'waxs'")
    job = from_dict(WaxsJob, _with_pyfai_config(data, path.parent.resolve(), str(path)), str(path))
    return _relative_to(job, path.parent.resolve())


def _with_pyfai_config(data: dict[str, Any], base: Path, where: str) -> dict[str, Any]:
    """The job dict with its [integration] filled from ``pyfai_config`` (relative to ``base``)."""
    section = data.get("integration")
    if not isinstance(section, dict) or "pyfai_config" not in section:
        return data
    from gpuproc.waxs.pyfai_config import merge_into  # pyFAI: only a job that names such a file pays

    try:
        return {**data, "integration": merge_into(section, base)}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: [integration] {exc}") from None


def _relative_to(job: WaxsJob, base: Path) -> WaxsJob:
    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else base / p

    job.job.output = fix(job.job.output)
    job.job.figures = fix(job.job.figures)
    job.job.nexus = fix(job.job.nexus)
    job.slurm.log_directory = fix(job.slurm.log_directory)
    integ = job.integration
    integ.poni, integ.mask, integ.dark, integ.flat = (fix(p) for p in (integ.poni, integ.mask, integ.dark, integ.flat))
    src = job.input.source
    job.input.source = [str(base / s) for s in src] if isinstance(src, list) else str(base / src)
    return job
