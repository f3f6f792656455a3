"""The WAXS pipeline: scan frames -> pyFAI cakes -> Bragg-spot fits -> structural maps.

Data flow, one block of whole scan rows (or of part of a row, when ``[job] batch_frames`` is below
a row) at a time, so memory is bounded by ``batch_frames`` frames::

    frames (Zarr / HDF5, lazy) --CakeIntegrator--> signal, norm (frame, azimuth, q)
      --windows--> per reflection (frame, point) --gpuproc.fit gauss2d_polar--> parameters
      --derive--> lattice, Williamson-Hall, orientation, disorder, SAXS --> results store block

then, once every block is written: statistics over the maps, the scan-averaged cake, figures.
Fits are weighted least squares with the Poisson variance of the summed counts,
var(I) = max(signal, 1) / norm^2, so errors are absolute.
"""

from __future__ import annotations

import contextlib
import glob
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gpuproc.backend import array_namespace, get_xp, to_numpy
from gpuproc.fit import Status
from gpuproc.fit.models.gauss2d_polar import wrap_deg
from gpuproc.io.results import ResultLayout, ResultStore, Variable
from gpuproc.io.store import Scan, open_frames_scan, open_scan
from gpuproc.run.blocks import RunSpec, StoreBlocks
from gpuproc.run.device_upload import Uploader
from gpuproc.run.executor import execute
from gpuproc.run.oom import split_on_oom
from gpuproc.run.settings import execution_of
from gpuproc.run.summary import RunResult
from gpuproc.run.timings import stage
from gpuproc.waxs import broadening, derive, spot_checks, stats
from gpuproc.waxs.integrate import CakeIntegrator
from gpuproc.waxs.job import InputSection, WaxsJob, load_job
from gpuproc.waxs.mean_frame import store_mean_frame
from gpuproc.waxs.monitor import monitor_scale
from gpuproc.waxs.scan_average import FRAMES as MEAN_CAKE_FRAMES
from gpuproc.waxs.scan_average import ScanAverage
from gpuproc.waxs.spot_fits import WindowProblem, fit_windows
from gpuproc.waxs.windows import Window, make_window

FIT_PARAMS = ("amplitude", "q0", "fwhm_q", "eta_q", "phi0", "fwhm_phi")


@dataclass
class Context:
    """Everything a block needs, built once per run."""

    job: WaxsJob
    integrator: CakeIntegrator
    windows: list[Window]
    monitor_scale: np.ndarray | None  #: (n_frames,) monitor / mean of the usable ones (NaN: unusable), or None
    length_unit: str  #: "A" or "nm": unit of real-space lengths from the q unit
    q_unit: str
    #: (n_reflections, 2) sigma of the cake's own broadening in q (q unit) and azimuth (degrees),
    #: removed from the fitted widths (gpuproc.waxs.broadening)
    cake_sigma: np.ndarray | None = None
    #: per window, (2, n_points) float32 (q, phi) of its points at their bins' mean pixel positions
    #: (where spots are fitted), on the fitting device like the windows' gather indices
    fit_points: list[Any] | None = None

    @property
    def waxs(self) -> list[int]:
        return [i for i, r in enumerate(self.job.reflections) if r.kind == "waxs"]

    @property
    def saxs(self) -> list[int]:
        return [i for i, r in enumerate(self.job.reflections) if r.kind == "saxs"]


def run_waxs(job: WaxsJob | str | Path, *, progress: bool = False) -> RunResult:
    """Run a WAXS job (a :class:`WaxsJob` or the path of its TOML file); returns the results path
    as a :class:`gpuproc.run.summary.RunResult` (a Path whose ``summary`` counts the fits per status).

    Blocks run where ``[job] executor`` says (:mod:`gpuproc.run`). An interrupted run resumes
    (``[job] resume = true``, the default): blocks already written are skipped. The results open
    with :func:`gpuproc.io.results.open_results` / ``xarray.open_zarr``.
    """
    job = job if isinstance(job, WaxsJob) else load_job(job)
    return execute(run_spec(job), execution_of(job), progress=progress)


def run_spec(job: WaxsJob) -> RunSpec:
    """What executors and array tasks need to run ``job`` block by block."""
    return RunSpec(WaxsBlocks, job)


class WaxsBlocks(StoreBlocks):
    """A WAXS run as independent blocks of scan rows (a :class:`gpuproc.run.blocks.BlockRunner`).

    Parameters
    ----------
    job : WaxsJob
    create : bool
        Create the results store (or reopen it to resume); otherwise attach to the store that
        the run's client created (workers, array tasks, the finalize step).
    """

    def __init__(self, job: WaxsJob, create: bool) -> None:
        self.scan = open_source(job)
        job = used_input(job, self.scan)
        self.ctx = make_context(job, self.scan)
        self.job = self.ctx.job
        self.open_results(job, layout(self.ctx, self.scan), create)
        self._index = self.scan.frame_index()
        frame_bytes = self.scan.dtype.itemsize * int(np.prod(self.scan.shape[1:]))
        self._upload = Uploader(get_xp(self.job.job.device), self.job.job.batch_frames * frame_bytes)
        # the overview cake's frames from the blocks that hold them (the finalize reads the others)
        self._average = ScanAverage(self.scan.shape[0], self.job.job.batch_frames)

    def read_block(self, block: int) -> tuple[np.ndarray, int, Any]:
        """The frames of ``block`` (one consecutive range, whatever the scan order), read and
        decoded: (position grid of each frame relative to the first, first frame, frames). On the
        GPU the frames' upload in their stored dtype starts here (gpuproc.run.device_upload)."""
        region = self.results.layout.block_region(block)
        grid = self._index[region["y"], region.get("x", slice(None))]
        k0, k1 = int(grid.min()), int(grid.max()) + 1
        return grid - k0, k0, self._upload.put(read_frames(self.scan, k0, k1, self.ctx.job.input.source))

    def compute_block(self, block: int, data: tuple[np.ndarray, int, Any]) -> dict[str, np.ndarray]:
        """Integrate, fit and derive the frames of ``block``: its results on the scan grid.

        On device out-of-memory the frames are processed in halves (with a warning).
        """
        grid, k0, staged = data
        frames = self._upload.take(staged)  # on the GPU: work waits for the frames' copy
        values = split_on_oom(lambda lo, hi: process_block(self.ctx, frames[lo - k0:hi - k0], slice(lo, hi),
                                                           self._average), k0, k0 + len(frames), self._merge)
        with stage("derive"):
            return to_grid(values, grid, self.results.layout)

    def finalize(self) -> None:
        finalize(self.ctx, self.scan, self.results, self._average)

    def _merge(self, parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Consecutive frame ranges joined along the frame axis (after the reflection axis, if any)."""
        variables = self.results.layout.variables
        return {k: np.concatenate([p[k] for p in parts], axis=int(variables[k].dims[0] == "reflection"))
                for k in parts[0]}


def open_source(job: WaxsJob) -> Scan:
    """The scan named by ``[input] source``: a scan store, or frames read lazily from files
    (:func:`gpuproc.io.frames.open_frames`: HDF5/NeXus, Eiger masters, fabio files, globs)."""
    inp = job.input
    source = inp.source
    if isinstance(source, str) and Path(source).is_dir():
        scan = open_scan(source)
        _check_store_keys(inp, scan)
        if inp.step_um is not None:
            scan.attrs["step_um"] = [float(s) for s in inp.step_um]
        return scan
    if isinstance(source, str) and not glob.has_magic(source) and not Path(source.split("::")[0]).exists():
        raise FileNotFoundError(f"[input] source {source} does not exist (expected a scan store from "
                                "`gpuproc waxs ingest`, frame files, a glob, or file.h5[::/node])")
    if inp.scan_shape is None:
        raise ValueError(f"[input] scan_shape is required for the frame source {source} (only a scan store "
                         "carries its own)")
    return open_frames_scan(source, scan_shape=inp.scan_shape, scan_order=inp.scan_order or "row",
                            step_um=inp.step_um or (1.0, 1.0))


def read_frames(scan: Scan, k0: int, k1: int, source: Any) -> np.ndarray:
    """Frames ``k0:k1`` of ``scan`` as one NumPy array (from a scan store's zarr array directly,
    else through dask); OSError naming the frames and ``source`` when they cannot be read or
    decoded (a truncated file, a corrupt chunk)."""
    try:
        return scan.read(slice(k0, k1))
    except Exception as exc:  # h5py, fabio, zarr and Blosc raise many kinds; all mean "unreadable"
        raise OSError(f"[input] source {source}: cannot read frames {k0} to {k1 - 1}: "
                      f"{type(exc).__name__}: {exc}") from exc


def used_input(job: WaxsJob, scan: Scan) -> WaxsJob:
    """``job`` with ``[input]`` scan shape, order and step as used (the scan's): what results record."""
    a = scan.attrs
    used = replace(job.input, scan_shape=tuple(int(n) for n in a["scan_shape"]),
                               scan_order=a["scan_order"], step_um=tuple(float(d) for d in a["step_um"]))
    return replace(job, input=used)


def _check_store_keys(inp: InputSection, scan: Scan) -> None:
    """ValueError when the job's scan_shape or scan_order contradicts the scan store's."""
    stored = {"scan_shape": list(scan.attrs["scan_shape"]), "scan_order": scan.attrs["scan_order"]}
    given = {"scan_shape": None if inp.scan_shape is None else list(inp.scan_shape), "scan_order": inp.scan_order}
    for key, value in given.items():
        if value is not None and value != stored[key]:
            raise ValueError(f"[input] {key} = {value} differs from {stored[key]} in the scan store "
                             f"{inp.source}; remove it from the job (the store's is used) or re-ingest")


def make_context(job: WaxsJob, scan: Scan) -> Context:
    integ = job.integration
    integrator = CakeIntegrator(
        integ.poni or _pyfai_config_geometry(integ.pyfai_config), npt_q=integ.npt_q, npt_azimuth=integ.npt_azimuth,
        q_range=integ.q_range, unit=integ.unit,
        shape=scan.shape[1:], mask=_image(integ.mask), dark=_image(integ.dark),
        flat=_image(integ.flat), polarization_factor=integ.polarization_factor, solid_angle=integ.solid_angle,
        split=integ.split, dummy=None if integ.dummy == "none" else integ.dummy, delta_dummy=integ.delta_dummy,
        saturation=integ.saturation, device=job.job.device,
    )
    invalid = integrator.shared_invalid(_probe_frames(scan))  # flags every frame carries
    norm = integrator.typical_norm(invalid)  # what a frame's windows and broadening see
    xp = get_xp(job.job.device)  # the windows' arrays read by every block go to the device once
    windows = [make_window(r, integrator.q, integrator.azimuth, norm, min_coverage=job.fit.min_coverage,
                           warn_coverage=job.fit.warn_coverage).on(xp) for r in job.reflections]
    monitor = scan.read_monitor()
    if monitor is not None:
        monitor = monitor_scale(monitor, f"[input] source {job.input.source}")
    length = "A" if integ.unit == "q_A^-1" else "nm"
    offsets = integrator.bin_spread(invalid)
    cake_sigma = np.array([[broadening.window_broadening(v, norm, w.azimuth_index, w.q_index)
                            for v in (offsets.var_q, offsets.var_chi)] for w in windows])
    points = [xp.asarray(np.stack(broadening.window_coordinates(offsets, w.azimuth_index, w.q_index, w.q, w.phi)))
              for w in windows]
    # pyFAI keeps every per-pixel array it computed (polarisation, solid angle, chi, q: ~150 MB on an
    # Eiger 4M); the integrator holds what it needs, so they go
    integrator.release_geometry_arrays()
    return Context(job, integrator, windows, monitor, length, "A^-1" if length == "A" else "nm^-1", cake_sigma,
                   points)


def _pyfai_config_geometry(path: Path) -> Any:
    """The geometry of a pyFAI integration JSON (imports pyFAI; a PONI file's geometry need not)."""
    from gpuproc.waxs.pyfai_config import pyfai_geometry

    return pyfai_geometry(path)


def _probe_frames(scan: Scan) -> np.ndarray:
    """The first, middle and last frames of the scan: pixels invalid in all of them are the
    detector's flags, left out of the set-up statistics (window coverage, cake broadening)."""
    n = scan.shape[0]
    # read here, not as a task graph on a cluster: a worker's set-up would wait on its own threads
    # (a scan store's zarr array is read without dask)
    with contextlib.nullcontext() if scan.stored is not None else _dask_synchronous():
        return np.stack([scan.read(k) for k in sorted({0, n // 2, n - 1})])


def _dask_synchronous() -> Any:
    """dask's synchronous scheduler for the ``with`` body."""
    import dask

    return dask.config.set(scheduler="synchronous")


def _image(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    import fabio

    try:
        return np.asarray(fabio.open(str(path)).data)
    except Exception as exc:
        raise OSError(f"cannot read image {path}: {exc}") from None


# ---- layout of the results --------------------------------------------------------------------


#: units as the results store spells them (pint / UDUNITS parse them) of Context.length_unit, q_unit
STORED_UNITS = {"A": "angstrom", "nm": "nm", "A^-1": "1/angstrom", "nm^-1": "1/nm"}


def layout(ctx: Context, scan: Scan) -> ResultLayout:
    ny, nx = scan.scan_shape
    dy, dx = ctx.job.input.step_um
    names = np.array([r.name for r in ctx.job.reflections])
    lu, qu = STORED_UNITS[ctx.length_unit], STORED_UNITS[ctx.q_unit]
    per_refl = ("reflection", "y", "x")
    units = {"amplitude": "count", "q0": qu, "fwhm_q": qu, "eta_q": "1", "phi0": "degree", "fwhm_phi": "degree"}
    long = {"amplitude": "peak amplitude", "q0": "radial peak position", "fwhm_q": "radial FWHM",
            "eta_q": "Lorentzian fraction of the radial profile (0: Gaussian, spot_model gauss2d_polar)",
            "phi0": "azimuthal peak position (pyFAI chi)", "fwhm_phi": "azimuthal FWHM"}
    variables: dict[str, Variable] = {}
    for p in FIT_PARAMS:
        variables[p] = Variable(per_refl, units=units[p], long_name=long[p])
        variables[p + "_err"] = Variable(per_refl, units=units[p], long_name="standard error of " + long[p])
    codes = ", ".join(f"{s.value} {s.name}" for s in Status)
    variables["fit_status"] = Variable(per_refl, np.uint8, long_name=f"gpuproc.fit.Status code: {codes}", fill=255)
    variables["chi2"] = Variable(per_refl, long_name="reduced chi-square of the fit")
    variables["valid_fraction"] = Variable(per_refl, units="1",
                                           long_name="fraction of the window's bins valid in this frame")
    maps = {
        "a": (lu, "lattice parameter a (least squares over hkl)"),
        "b": (lu, "lattice parameter b"),
        "c": (lu, "lattice parameter c (NaN without 00l reflections)"),
        "strain": ("1", "Williamson-Hall microstrain eps (radial FWHM of each spot's fitted profile, spot_model)"),
        "size": ("nm", "Williamson-Hall crystallite size s = 2 pi K / dq0"),
        "orientation": ("degree", "in-plane orientation (phi0 of the orientation reflection, from every in-plane spot)"),
        "disorder": ("degree", "orientational disorder sqrt(dphi^2 - (dq0/q0)^2 - eps^2), error-weighted mean over WAXS spots"),
        "a_sc": (lu, "superlattice parameter <a_SC> (mean over SAXS directions)"),
    }
    for name, (u, text) in maps.items():
        variables[name] = Variable(("y", "x"), units=u, long_name=text)
        variables[name + "_err"] = Variable(("y", "x"), units=u, long_name="standard error of " + text)
    variables["wh_flag"] = Variable(("y", "x"), np.uint8, long_name="Williamson-Hall flags (gpuproc.waxs.derive.WHFlag)",
                                    fill=255)
    coords = {
        "y": (np.arange(ny) * dy, {"units": "um", "long_name": "scan position y"}),
        "x": (np.arange(nx) * dx, {"units": "um", "long_name": "scan position x"}),
        "reflection": (names, {"long_name": "reflection name"}),
        "miller": (np.array(["h", "k", "l"]), {"long_name": "Miller index"}),
    }
    statics = {"hkl": (np.array([r.hkl for r in ctx.job.reflections], np.int32), ("reflection", "miller"),
                       {"long_name": "Miller indices (h, k, l)", "units": ""}),
               "cake_fwhm_q": (derive.FWHM_PER_SIGMA * ctx.cake_sigma[:, 0], ("reflection",),
                               {"units": qu, "long_name": "radial FWHM the cake adds (removed from fwhm_q)"}),
               "cake_fwhm_phi": (derive.FWHM_PER_SIGMA * ctx.cake_sigma[:, 1], ("reflection",),
                                 {"units": "degree", "long_name": "azimuthal FWHM the cake adds (removed from fwhm_phi)"}),
               "spot_model": (np.array([r.model for r in ctx.job.reflections]), ("reflection",),
                              {"units": "", "long_name": "fitted spot model (gpuproc.fit.models; README model table)"})}
    sizes = {"y": ny, "x": nx, "reflection": len(names)}
    if ctx.job.job.save_cakes:
        integ = ctx.integrator
        coords["q"] = (integ.q, {"units": qu, "long_name": "scattering vector"})
        coords["azimuth"] = (integ.azimuth, {"units": "degree", "long_name": "azimuth (pyFAI chi)"})
        sizes.update({"q": integ.q.size, "azimuth": integ.azimuth.size})
        variables["cake"] = Variable(("y", "x", "azimuth", "q"), units="count",
                                     long_name="azimuthally regrouped frame")
    attrs = {"pipeline": "waxs", "step_um": [float(dy), float(dx)], "q_unit": qu, "length_unit": lu, "fwhm_convention": "all widths are FWHM, with the cake's broadening (cake_fwhm_q, cake_fwhm_phi) removed in quadrature",
             "shape_factor": ctx.job.derive.shape_factor}
    return ResultLayout(sizes, coords, variables, block_dim="y", attrs=attrs, statics=statics,
                        **block_shape(ctx.job.job.batch_frames, nx))


def block_shape(batch_frames: int, nx: int) -> dict[str, Any]:
    """How ``[job] batch_frames`` cuts the scan into blocks (:class:`ResultLayout` keys): whole
    rows while a row fits (``batch_frames // nx`` of them), else each row in the fewest equal
    parts of at most ``batch_frames`` positions, so a block never holds more frames than asked."""
    if batch_frames >= nx:
        return {"block_size": batch_frames // nx}
    parts = -(-nx // batch_frames)
    return {"block_size": 1, "sub_dim": "x", "sub_size": -(-nx // parts)}


# ---- one block -------------------------------------------------------------------------------


def process_block(ctx: Context, frames: np.ndarray, frame_range: slice,
                  average: ScanAverage | None = None) -> dict[str, np.ndarray]:
    """Integrate, fit and derive consecutive frames; arrays in frame order (frame axis first, or
    second after the reflection axis). The frames among them that ``average`` picks are added to it."""
    with stage("integrate"):
        signal, norm = ctx.integrator.integrate_sums(frames)
        if average is not None:
            average.add_block(frame_range.start, frames, signal, norm, ctx.integrator)
    scale = None
    if ctx.monitor_scale is not None:
        scale = array_namespace(signal).asarray(ctx.monitor_scale[frame_range], dtype=np.float32)[:, None]
    with stage("fit"):
        out = fit_reflections(ctx, signal, norm, scale)
    with stage("derive"):
        out.update(derive_maps(ctx, out))
    if ctx.job.job.save_cakes:
        with stage("integrate"):
            out["cake"] = to_numpy(intensity_and_weight(signal, norm, None if scale is None else scale[..., None])[0])
    return out


def intensity_and_weight(signal: Any, norm: Any, scale: Any | None) -> tuple[Any, Any]:
    """Cake intensity signal / norm (divided by the monitor scale) and its weight in a Poisson
    fit: the summed counts are Poisson with mean norm x scale x intensity, so the multiplicity is
    norm x scale. (Least squares weighted by the data, 1 / counts, made the widths ~1 % narrower:
    gpuproc.waxs.broadening.)"""
    with np.errstate(divide="ignore", invalid="ignore"):
        intensity = signal / norm
    if scale is not None:
        return intensity / scale, norm * scale
    return intensity, norm


def to_grid(values: dict[str, np.ndarray], grid: np.ndarray, lay: ResultLayout) -> dict[str, np.ndarray]:
    """Frame-order arrays onto scan positions: ``grid`` (rows, nx) holds each position's frame."""
    out = {}
    for name, v in values.items():
        if lay.variables[name].dims[0] == "reflection":
            out[name] = v[:, grid]
        else:
            out[name] = v[grid]
    return out


def fit_reflections(ctx: Context, signal: Any, norm: Any, scale: Any | None) -> dict[str, Any]:
    """Fit every window of every frame (intensities and weights computed on the window's valid
    bins only); arrays (n_reflections, n_frames), NaN where a fit is not a measurement
    (``fit_status`` != CONVERGED after :func:`gpuproc.waxs.spot_checks.classify`)."""
    n = signal.shape[0]
    f = ctx.job.fit
    out = {k: np.full((len(ctx.windows), n), np.nan, np.float32) for k in FIT_PARAMS}
    out.update({k + "_err": np.full((len(ctx.windows), n), np.nan, np.float32) for k in FIT_PARAMS})
    out["fit_status"] = np.zeros((len(ctx.windows), n), np.uint8)
    out["chi2"] = np.full((len(ctx.windows), n), np.nan, np.float32)
    out["valid_fraction"] = np.zeros((len(ctx.windows), n), np.float32)
    problems = []
    for w, refl, points in zip(ctx.windows, ctx.job.reflections, ctx.fit_points):
        window_norm = w.take(norm)
        y, weight = intensity_and_weight(w.take(signal), window_norm, scale)
        problems.append(WindowProblem(refl.model, y, weight, w.valid(window_norm), points,
                                      *spot_checks.spot_bounds(w, f.min_fwhm_bins, refl.model)))
    for i, res in fit_windows(problems, device=ctx.job.job.device, max_iter=f.max_iter, estimator="poisson"):
        valid, lower = problems[i].valid, problems[i].lower  # while the later groups fit
        fraction = to_numpy(valid.sum(axis=1) / valid.shape[1]).astype(np.float32)
        status = spot_checks.classify(res, fraction, lower, min_significance=f.min_significance,
                                      min_coverage=f.min_coverage)
        fwhm_q, fwhm_phi = spot_checks.spot_fwhm(res, ctx.cake_sigma[i])
        # a spot not resolved beyond the cake's own broadening is not a width measurement
        unresolved = ~((fwhm_q[1] < fwhm_q[0]) & (fwhm_phi[1] < fwhm_phi[0]))
        status = np.where((status == Status.CONVERGED) & unresolved, Status.AT_BOUND, status).astype(np.uint8)
        ok = status == Status.CONVERGED
        values = {
            "amplitude": (res["amplitude"], res.error("amplitude")),
            "q0": (res["q0"], res.error("q0")),
            "fwhm_q": fwhm_q,
            "eta_q": spot_checks.radial_eta(res),
            "phi0": (derive.orientation(res["phi0"], reference=float(np.mean(ctx.job.reflections[i].azimuth_range)),
                                        period=360.0).value, res.error("phi0")),
            "fwhm_phi": fwhm_phi,
        }
        for k, (v, err) in values.items():
            out[k][i] = np.where(ok, v, np.nan)
            out[k + "_err"][i] = np.where(ok, err, np.nan)
        out["fit_status"][i] = status
        out["chi2"][i] = np.where(ok, res.chi2, np.nan)
        out["valid_fraction"][i] = fraction
    return out


def derive_maps(ctx: Context, fits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Lattice, Williamson-Hall, orientation, disorder and SAXS maps per frame (arrays (n_frames,))."""
    refl = ctx.job.reflections
    d = ctx.job.derive
    wx = ctx.waxs
    q0, q0e = fits["q0"][wx].T, fits["q0_err"][wx].T
    fw, fwe = fits["fwhm_q"][wx].T, fits["fwhm_q_err"][wx].T
    n = q0.shape[0]
    out: dict[str, np.ndarray] = {}
    lat = derive.lattice_parameters(q0, [refl[i].hkl for i in wx], q0e)
    out.update(a=lat.a, a_err=lat.a_err, b=lat.b, b_err=lat.b_err, c=lat.c, c_err=lat.c_err)
    inst = np.array([refl[i].instrumental_fwhm or 0.0 for i in wx])
    wh = derive.williamson_hall(q0, fw, fwe, shape_factor=d.shape_factor, instrumental=inst)
    to_nm = 0.1 if ctx.length_unit == "A" else 1.0
    out.update(strain=wh.strain, strain_err=wh.strain_err, size=wh.size * to_nm, size_err=wh.size_err * to_nm,
               wh_flag=np.asarray(wh.flag, np.uint8))
    out["orientation"], out["orientation_err"] = _orientation(ctx, fits, lat.a, lat.b, n)
    out["disorder"], out["disorder_err"] = np.degrees(derive.disorder_over_reflections(
        fits["fwhm_phi"][wx].T, fits["fwhm_phi_err"][wx].T, q0, wh, q0_err=q0e))
    sx = ctx.saxs
    if sx:
        names = [refl[i].name for i in sx]
        groups = [[names.index(g) for g in grp] for grp in d.saxs_groups] if d.saxs_groups else None
        sl = derive.superlattice(fits["q0"][sx].T, fits["q0_err"][sx].T, groups=groups)
        out.update(a_sc=sl.a_mean, a_sc_err=sl.a_mean_err)
    else:
        out.update(a_sc=np.full(n, np.nan), a_sc_err=np.full(n, np.nan))
    return {k: np.asarray(v, dtype=np.uint8 if k == "wh_flag" else np.float32) for k, v in out.items()}


def _orientation(ctx: Context, fits: dict[str, np.ndarray], a: np.ndarray, b: np.ndarray,
                 n: int) -> tuple[np.ndarray, np.ndarray]:
    """In-plane orientation per position: the error-weighted mean over every in-plane WAXS spot
    (l = 0) of its phi0 minus its angle from the orientation reflection, atan2(k/b, h/a) with the
    position's a and b (Friedel mates at 180 degrees, 110-type spots near 45); the sense of the
    angles is taken from the job's windows (a mirrored detector flips it). Error: the combined
    phi0 errors (the a, b uncertainty of the angles is negligible: < 0.01 degree)."""
    o = _orientation_index(ctx)
    if o is None:
        return np.full(n, np.nan), np.full(n, np.nan)
    refl, period = ctx.job.reflections, ctx.job.derive.orientation_period
    h0, k0 = refl[o].hkl[:2]
    centre = {i: float(np.mean(r.azimuth_range)) for i, r in enumerate(refl)}
    with np.errstate(all="ignore"):
        aa, bb = np.where(np.isfinite(a), a, np.nanmedian(a)), np.where(np.isfinite(b), b, np.nanmedian(b))
        values, weights = [], []
        for i in ctx.waxs:
            h, k, l = refl[i].hkl
            if l != 0 or (h, k) == (0, 0):
                continue
            nominal = np.degrees(np.arctan2(k, h) - np.arctan2(k0, h0))
            seen = centre[i] - centre[o]
            sense = 1.0 if abs(wrap_deg(seen - nominal)) <= abs(wrap_deg(seen + nominal)) else -1.0
            angle = np.degrees(np.arctan2(k / bb, h / aa) - np.arctan2(k0 / bb, h0 / aa))
            est = derive.orientation(fits["phi0"][i] - sense * angle, period=period, reference=centre[o])
            err = fits["phi0_err"][i]
            ok = np.isfinite(est.value) & np.isfinite(err) & (err > 0)
            values.append(np.where(ok, est.value, 0.0))
            weights.append(np.where(ok, err**-2.0, 0.0))
        v, w = np.array(values), np.array(weights)
        # every estimate onto the branch (mod period) of the best-measured one at that position
        anchor = np.take_along_axis(v, np.argmax(w, axis=0)[None], axis=0)
        v = anchor + (v - anchor) - period * np.round((v - anchor) / period)
        total = w.sum(axis=0)
        mean = derive.orientation((w * v).sum(axis=0) / total, period=period, reference=centre[o]).value
    return np.where(total > 0, mean, np.nan), np.where(total > 0, total**-0.5, np.nan)


def _orientation_index(ctx: Context) -> int | None:
    refl = ctx.job.reflections
    name = ctx.job.derive.orientation_reflection
    if name is not None:
        return [r.name for r in refl].index(name)
    for i, r in enumerate(refl):
        if r.kind == "waxs" and tuple(abs(h) for h in r.hkl) == (1, 0, 0):
            return i
    return None


# ---- after the last block ----------------------------------------------------------------------


def finalize(ctx: Context, scan: Scan, store: ResultStore, average: ScanAverage | None = None) -> None:
    """Statistics over the maps and the scan-averaged cake (from ``average``, which the blocks of
    this process may have begun); then mark the store complete."""
    maps = {k: store.read(k) for k in ("a", "b", "c", "strain", "size", "orientation", "disorder", "a_sc")}
    summary = stats.summarize_maps(maps)
    fields = ("mean", "q1", "median", "q3", "n")
    store.add_coord("quantity", np.array(list(summary)), {"long_name": "map summarised"})
    store.add_coord("statistic", np.array(fields), {"long_name": "mean, quartiles and count of finite values"})
    store.add_array("summary", np.array([[getattr(s, f) for f in fields] for s in summary.values()], np.float64),
                    ("quantity", "statistic"), long_name="statistics of each map over the scan (units of the map)")
    wx = ctx.waxs
    q0_all = store.read("q0")[wx].reshape(len(wx), -1).T
    fw_all = store.read("fwhm_q")[wx].reshape(len(wx), -1).T
    inst = np.array([ctx.job.reflections[i].instrumental_fwhm or 0.0 for i in wx])
    gwh = stats.global_williamson_hall(q0_all, fw_all, shape_factor=ctx.job.derive.shape_factor, instrumental=inst)
    to_nm = 0.1 if ctx.length_unit == "A" else 1.0
    corr = stats.size_correlations(maps["a"], maps["b"], maps["size"])
    extra: dict[str, Any] = {
        "global_williamson_hall": {"size_nm": float(gwh.size) * to_nm, "strain": float(gwh.strain),
                                   "slope": float(gwh.slope), "intercept": float(gwh.intercept),
                                   "flag": int(gwh.flag)},
        "pearson": {k: {"r": c.r, "p_value": c.p_value, "n": c.n} for k, c in corr.items()},
        "fit_status_counts": {s.name: int((store.read("fit_status") == s).sum()) for s in Status},
        "fit_status_by_reflection": spot_checks.status_counts(store.read("fit_status"),
                                                              [r.name for r in ctx.job.reflections]),
    }
    spot_checks.warn_failing(extra["fit_status_by_reflection"])
    extra["power_law"] = _binned_and_power_law(store, maps)
    average = average or ScanAverage(scan.shape[0], ctx.job.job.batch_frames)
    mean_cake, mean_frame, n_mean = average.finish(scan.read, ctx.integrator)
    store_mean_frame(store, mean_frame, ctx.integrator.beam_centre_px, n_mean)
    store.add_coord("cake_q", ctx.integrator.q, {"units": STORED_UNITS[ctx.q_unit], "long_name": "q of the mean cake"})
    store.add_coord("cake_azimuth", ctx.integrator.azimuth, {"units": "degree", "long_name": "azimuth of the mean cake"})
    store.add_array("mean_cake", mean_cake, ("cake_azimuth", "cake_q"), "count",
                    f"cake averaged over up to {MEAN_CAKE_FRAMES} frames spread over the scan")
    store.finish({"statistics": json.dumps(extra, default=float)})


def _binned_and_power_law(store: ResultStore, maps: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("a", "b"):
        binned = stats.binned_medians(maps["size"], maps[name])
        store.add_coord("size_bin", binned.centers, {"units": "nm", "long_name": "centre of a 0.5 nm size bin"})
        store.add_array(f"{name}_binned_median", binned.medians, ("size_bin",), store.group[name].attrs["units"],
                        f"median of {name} per size bin")
        ok = np.isfinite(binned.medians)
        if ok.sum() >= 4:
            try:
                pl = stats.fit_power_law(binned.centers[ok], binned.medians[ok], binned.errors[ok])
                out[name] = pl._asdict()
            except (RuntimeError, ValueError) as exc:
                out[name] = {"error": str(exc)}
    return out
