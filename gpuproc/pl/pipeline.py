"""The PL pipeline: spectra store -> photon energy -> per-pixel peak fits -> results, maps, figures.

:func:`run_pl` reads the spectra store a block of ``batch_rows`` map rows (or time points) at a
time, preprocesses each block on the fitting device (dark or bias, cosmic rays, energy axis and
Jacobian, crop, detector-noise weights), fits it with :func:`gpuproc.pl.peaks.fit_peaks` and writes it
to the results store (:class:`gpuproc.io.results.ResultStore`), so memory stays bounded by one
block. Then it adds the statistics (peak-energy quartiles over the sample), the shift map
against a second map, or the event responses of a time series, writes the figures and marks the
store complete. An interrupted run resumes at its unwritten blocks. Blocks are independent
(:class:`PlBlocks`), so they run where ``[job] executor`` says (:mod:`gpuproc.run`: local
threads, dask.distributed workers, SLURM) or as SLURM job-array tasks, with the same results.

Results layout (``xarray.open_zarr``; see :func:`result_variables` for every variable)::

    map:         dims (y, x, peak), coords y, x [um], peak [1..max_peaks]
    time series: dims (time, peak, photon_energy), coords time [s], photon_energy [eV];
                 ``intensity`` (time, photon_energy) holds the preprocessed spectra (the kymograph)
    statistics:  energy_quartiles (quantile) [eV], sample (y, x) mask; shift_mev and
                 registered_energy (y, x) with a second map; event_* (event) for time series
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import zarr

from gpuproc.backend import get_xp, to_numpy
from gpuproc.config import ConfigError
from gpuproc.io.results import ResultLayout, ResultStore, Variable
from gpuproc.io.dark import Dark, read_dark
from gpuproc.pl import spectra as sp
from gpuproc.pl.ingest import SpectraStore, ingest_spectra, is_spectra_store, open_spectra
from gpuproc.pl.job import PLJob, load_job
from gpuproc.pl.noise import NoiseModel, estimate_noise
from gpuproc.pl.peaks import fit_peaks
from gpuproc.pl.register import shift_map
from gpuproc.pl.timeseries import event_responses, response_curve
from gpuproc.run.blocks import RunSpec, StoreBlocks, finished
from gpuproc.run.device_upload import Uploader
from gpuproc.run.executor import execute
from gpuproc.run.oom import split_on_oom
from gpuproc.run.fingerprint import fingerprint
from gpuproc.run.settings import execution_of
from gpuproc.run.summary import RunResult, check_failed_fraction, stored_result
from gpuproc.run.timings import stage

QUANTILES = (0.25, 0.5, 0.75)
FLAG_NONFINITE = 1  #: the spectrum holds NaN or infinite counts
FLAG_NO_PEAK = 2  #: no admissible fit (dark pixel or failed fit)
NOISE_SAMPLE = 16  #: map rows (x 16 time points) read to estimate the "auto" noise model
#: results in units of the data, scaled back from the shifted-Poisson counts of the Poisson estimator
COUNT_RESULTS = ("amplitude", "amplitude_err", "area", "area_err", "total_area", "peak_amplitude", "peak_area")


@dataclass
class Preprocessor:
    """Per-block spectral processing with everything that depends only on the axis precomputed.

    Attributes
    ----------
    axis : ndarray, shape (n_channels,)
        Raw spectral axis (nm or eV).
    unit : {"nm", "eV"}
    dark : ndarray, shape (n_channels,) or None
        Dark spectrum in counts per channel, raw channel order; without one ``noise.bias`` is
        subtracted.
    options : SpectraSection
        The job's ``[spectra]`` settings.
    noise : NoiseModel
        Detector noise of the dark-subtracted counts: the least-squares weights.
    poisson : bool
        The Poisson estimator fits: spectra become shifted-Poisson counts (:meth:`NoiseModel.poisson_counts`).
    energy : ndarray, shape (n_energy,)
        Ascending, cropped photon-energy axis the fits use, eV.

    The arrays every block uses (dark, energy axis, channel order and scale) are NumPy arrays;
    :meth:`on` gives the preprocessor with them on the fitting device, uploaded once per run.
    """

    axis: np.ndarray
    unit: str
    dark: np.ndarray | None
    options: Any  # SpectraSection
    noise: NoiseModel
    poisson: bool
    energy: np.ndarray
    _order: np.ndarray  #: input channel of each energy, ascending (:attr:`gpuproc.pl.spectra.EnergyAxis.order`)
    _scale: np.ndarray  #: factor of each channel in that order (:attr:`gpuproc.pl.spectra.EnergyAxis.scale`)
    _keep: slice

    @classmethod
    def build(cls, axis: np.ndarray, unit: str, dark: np.ndarray | None, options: Any, noise: NoiseModel,
              poisson: bool = False) -> Preprocessor:
        """Energy axis, channel order and scale, and crop window of ``axis``."""
        o = options
        full = sp.energy_axis(axis, unit, jacobian=o.jacobian, per_channel=o.per_channel, medium=o.medium,
                              n_air=o.n_air)
        lo, hi = options.energy_range or (None, None)
        energy, _ = sp.crop(full.energy, full.energy[None], lo, hi)
        start = int(np.searchsorted(full.energy, energy[0]))
        return cls(axis, unit, dark, options, noise, poisson, energy, full.order, full.scale,
                   slice(start, start + energy.size))

    def on(self, xp: ModuleType) -> Preprocessor:
        """This preprocessor with the arrays of every block on ``xp``'s device (NumPy: itself)."""
        if xp is np:
            return self
        return dataclasses.replace(self, dark=None if self.dark is None else xp.asarray(self.dark),
                                   energy=xp.asarray(self.energy), _order=xp.asarray(self._order),
                                   _scale=xp.asarray(self._scale))

    def __call__(self, counts: Any, xp: ModuleType) -> tuple[Any, Any, Any, Any]:
        """Process (n, n_channels) counts of any dtype (on the GPU: converted to float64 there).

        Returns
        -------
        intensity, weights, n_spikes, nonfinite
            (n, n_energy) intensity on :attr:`energy`, noise-model weights (or None), spikes
            removed per spectrum, and True where the raw spectrum had non-finite counts.
        """
        o = self.options
        if counts.shape[-1] != self._order.shape[0]:
            raise ValueError(f"spectra have {counts.shape[-1]} channels, the spectral axis {self._order.shape[0]}")
        y = xp.asarray(counts).astype(np.float64, copy=False)  # the stored dtype travels, float64 here
        nonfinite = ~xp.all(xp.isfinite(y), axis=-1)
        y = sp.subtract_dark(y, self.dark) if self.dark is not None else y - self.noise.bias
        n_spikes = xp.zeros(y.shape[0], dtype=np.int16)
        if o.remove_spikes:
            y, spikes = sp.remove_spikes(y)
            n_spikes = spikes.sum(axis=-1).astype(np.int16)
        if self.poisson:
            y = self.noise.poisson_counts(y)
        y = y[..., self._order]  # ascending energy
        w = self.noise.weights(y, self._scale) if o.weights == "poisson" else None
        crop = (Ellipsis, self._keep)
        return (y * self._scale)[crop], None if w is None else w[crop], n_spikes, nonfinite


def result_variables(job: PLJob, mode: str) -> dict[str, Variable]:
    """Every per-pixel (or per-time) result variable with its dimensions and units."""
    lead = ("y", "x") if mode == "map" else ("time",)
    per_peak = lead + ("peak",)
    density = job.spectra.per_channel or job.spectra.jacobian
    amp, area = ("counts/eV", "counts") if density else ("counts", "counts eV")
    spec = {
        "energy": ("eV", "peak energy (dominant peak)"), "energy_err": ("eV", "standard error of energy"),
        "fwhm_mev": ("meV", "FWHM (dominant peak)"), "fwhm_err_mev": ("meV", "standard error of FWHM"),
        "amplitude": (amp, "peak height (dominant peak)"), "amplitude_err": (amp, "standard error of amplitude"),
        "area": (area, "peak area (dominant peak)"), "area_err": (area, "standard error of area"),
        "total_area": (area, "integrated PL intensity (all peaks)"),
        "centroid": ("eV", "background-subtracted centroid energy (model-free)"),
        "chi2": ("", "reduced chi-square of the chosen fit"),
    }
    out = {k: Variable(lead, np.float32, u, n) for k, (u, n) in spec.items()}
    out["n_peaks"] = Variable(lead, np.int8, "", "number of peaks chosen by BIC (0: none)", 0)
    out["status"] = Variable(lead, np.uint8, "", "fit status of the chosen fit (0: converged, 5: no peak)", 255)
    out["flag"] = Variable(lead, np.uint8, "", "1: non-finite counts, 2: no admissible fit", 0)
    out["n_spikes"] = Variable(lead, np.int16, "", "cosmic-ray channels replaced", 0)
    out["bic"] = Variable(per_peak, np.float32, "", "BIC of the fit with `peak` peaks (inf: inadmissible)")
    for k, (u, n) in {"peak_energy": ("eV", "energy of each peak (ascending)"),
                      "peak_energy_err": ("eV", "standard error of peak_energy"),
                      "peak_fwhm_mev": ("meV", "FWHM of each peak"),
                      "peak_amplitude": (amp, "height of each peak"),
                      "peak_area": (area, "area of each peak"),
                      "peak_eta": ("", "Lorentzian fraction of each peak's profile (0: Gaussian)"),
                      "peak_asymmetry": ("", "asymmetry of each peak (half widths FWHM (1 -+ alpha) / 2)")}.items():
        out[k] = Variable(per_peak, np.float32, u, n)
    if mode == "timeseries":
        out["intensity"] = Variable(("time", "photon_energy"), np.float32, amp, "preprocessed spectra (kymograph)")
    return out


def run_pl(job_or_path: PLJob | str | Path, progress: bool = True) -> RunResult:
    """Run a PL job: ingest if needed, fit block by block, statistics, figures.

    Blocks run where ``[job] executor`` says (:mod:`gpuproc.run`): in this process, or on
    dask.distributed workers.

    Parameters
    ----------
    job_or_path
        A :class:`gpuproc.pl.job.PLJob` or the path of its TOML file.
    progress
        Show a progress bar (tqdm) over the blocks.

    Returns
    -------
    gpuproc.run.summary.RunResult
        The completed results store, a :class:`pathlib.Path` (open it with
        :func:`gpuproc.io.results.open_results`) whose ``summary`` counts the fits per status.
        With ``resume`` (the default) a complete store of the same configuration is returned
        as it is, and an incomplete one is continued at its first unwritten block.
    """
    job = job_or_path if isinstance(job_or_path, PLJob) else load_job(job_or_path)
    _check(job)
    if job.job.resume and finished(job):
        return check_failed_fraction(stored_result(job.job.output), job.job.allow_failed_fraction)
    if job.input.second is not None:
        run_pl(second_job(job), progress)  # here, with progress; the finalize step then finds it complete
    return execute(run_spec(job), execution_of(job), progress=progress)


def run_spec(job: PLJob) -> RunSpec:
    """What executors and array tasks need to run ``job`` block by block."""
    return RunSpec(PlBlocks, job)


class PlBlocks(StoreBlocks):
    """A PL run as independent blocks of map rows or time points (a
    :class:`gpuproc.run.blocks.BlockRunner`).

    Parameters
    ----------
    job : PLJob
    create : bool
        Ingest the source if needed and create the results store (or reopen it to resume);
        otherwise attach to the spectra and results stores that the run's client created
        (workers, array tasks, the finalize step).
    """

    def __init__(self, job: PLJob, create: bool) -> None:
        _check(job)
        self.job = job
        self.spectra = spectra_store(job) if create else open_spectra(spectra_path(job))
        if create and job.figures.points is not None:  # a point off the map fails before the fits
            job.figures.pixels(*self.spectra.coords().values(), self.spectra.attrs["step_um"])
        self.prep = preprocessor(job, self.spectra)
        self.open_results(job, _layout(job, self.spectra, self.prep), create)
        xp = get_xp(job.job.device)
        self._device_prep = self.prep.on(xp)  # its arrays uploaded once per run
        s = self.spectra.spectra
        self._upload = Uploader(xp, job.job.batch_rows * s.dtype.itemsize * int(np.prod(s.shape[1:])))

    def read_block(self, block: int) -> Any:
        """The raw spectra of ``block`` (rows or time points, n_channels) in their stored dtype; on
        the GPU their upload starts here (gpuproc.run.device_upload)."""
        sl = self.results.layout.block_slice(block)
        try:
            counts = np.asarray(self.spectra.spectra[sl])
        except Exception as exc:  # zarr and its codecs raise many kinds; all mean "unreadable"
            raise OSError(f"{self.spectra.path}: cannot read spectra {sl.start} to {sl.stop - 1} along "
                          f"{self.results.layout.block_dim}: {type(exc).__name__}: {exc}") from exc
        return self._upload.put(counts)

    def compute_block(self, block: int, staged: Any) -> dict[str, np.ndarray]:
        """Preprocess and fit the spectra of ``block``.

        On device out-of-memory the rows (time points) are fitted in halves (with a warning).
        """
        counts = self._upload.take(staged)  # on the GPU: work waits for the spectra's copy
        keep = "intensity" in self.results.layout.variables
        return split_on_oom(lambda lo, hi: fit_block(counts[lo:hi], self._device_prep, self.job, keep), 0,
                            len(counts), _concatenate)

    def finalize(self) -> None:
        """Statistics, shift map or event responses; then mark the store complete."""
        job, store, results = self.job, self.spectra, self.results
        attrs = _statistics(job, results) | self.prep.noise.attrs()
        if job.figures.points is not None:  # the example spectra `gpuproc report` redraws
            attrs["figure_points_um"] = [list(p) for p in job.figures.points]
        if store.mode == "map" and job.input.second is not None:
            attrs.update(_shift(job, results))
        if store.mode == "timeseries":
            attrs.update(_responses(job, store, results))
        results.finish(attrs)


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Results of consecutive rows (time points) joined along the block axis (every variable's first)."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def spectra_path(job: PLJob) -> Path:
    """Where the job's spectra store is: the source itself, or where the source is ingested."""
    src = job.input.source
    if is_spectra_store(src):
        return Path(src)
    return job.input.store or job.job.output.with_name(job.job.output.stem + ".spectra.zarr")


def spectra_store(job: PLJob) -> SpectraStore:
    """The job's spectra store: the source itself, or the source ingested (once) next to the output;
    re-ingested when the source changed (its fingerprint, recorded in the store, differs). A
    store ingested from another source is replaced only with ``[job] overwrite``."""
    i, target = job.input, spectra_path(job)
    if target == Path(i.source):
        return open_spectra(target)
    source_fingerprint, own = fingerprint(i.source), False
    if is_spectra_store(target):
        existing = open_spectra(target)
        own = existing.attrs.get("sources") == [str(i.source)]
        if own and existing.mode == i.mode and existing.attrs.get("source_fingerprint") == source_fingerprint:
            return existing
    events = None if i.events is None else [dataclasses.asdict(e) for e in i.events]
    ingest_spectra(i.source, target, data_path=i.data_path, axis_path=i.axis_path, axis=i.axis, axis_unit=i.axis_unit,
                   laser_nm=i.laser_nm, mode=i.mode,
                   shape=i.shape, step_um=i.step_um, time_step_s=i.time_step_s, events=events,
                   overwrite=own or job.job.overwrite)
    zarr.open_group(str(target), mode="r+").attrs["source_fingerprint"] = source_fingerprint
    return open_spectra(target)


def _check(job: PLJob) -> None:
    """Combinations of keys that cannot work."""
    s = job.spectra
    if job.fit.estimator == "poisson" and (s.per_channel or s.jacobian or s.weights != "none"):
        raise ConfigError("[fit] estimator = 'poisson' fits raw counts: set [spectra] per_channel = false, "
                          "jacobian = false and weights = 'none'")
    if job.fit.estimator == "poisson" and job.fit.background == "none":
        raise ConfigError("[fit] estimator = 'poisson' needs a background (it holds the read-noise offset "
                          "read_noise^2 / gain of the shifted-Poisson counts)")
    if job.input.second is not None and job.input.mode != "map":
        raise ConfigError("[input] second (shift map) needs mode = 'map'")


def preprocessor(job: PLJob, store: SpectraStore, noise: NoiseModel | None = None) -> Preprocessor:
    """The job's preprocessing of the spectra in ``store``, with the job's dark.

    ``noise``: the detector noise model to use (e.g. the one a results store recorded); by
    default the job's, its "auto" values estimated (:func:`noise_model`).
    """
    dark = read_dark(job.spectra.dark, store.axis, store.attrs["axis_unit"], spectra=store.spectra,
                     map_source=job.input.source, laser_nm=job.input.laser_nm)
    mean = None if dark is None else dark.mean
    return Preprocessor.build(store.axis, store.attrs["axis_unit"], mean, job.spectra,
                              noise or noise_model(job, store, dark), job.fit.estimator == "poisson")


def noise_model(job: PLJob, store: SpectraStore, dark: Dark | None) -> NoiseModel:
    """The job's detector noise model, its "auto" values estimated from the dark (its frames when
    it has several) and a sample of the spectra (NOISE_SAMPLE evenly spaced map rows, or 16 x as
    many time points)."""
    s = job.spectra
    given = {"gain": s.gain, "read_noise": s.read_noise, "bias": s.bias}
    if "auto" not in given.values():
        return NoiseModel(**given)
    n0 = store.spectra.shape[0]
    limit = NOISE_SAMPLE if store.mode == "map" else 16 * NOISE_SAMPLE
    rows = np.unique(np.linspace(0, n0 - 1, min(n0, limit)).round().astype(int))
    sample = np.asarray(store.spectra.oindex[rows], dtype=np.float64)
    mean, frames = (None, None) if dark is None else (dark.mean, dark.frames)
    return estimate_noise(sample.reshape(-1, sample.shape[-1]), mean, frames, **given)


def _layout(job: PLJob, store: SpectraStore, prep: Preprocessor) -> ResultLayout:
    coords = {k: (v, {"units": "um" if k in "yx" else "s", "long_name": f"position {k}" if k in "yx" else "time"})
              for k, v in store.coords().items()}
    n = job.fit.max_peaks
    coords["peak"] = (np.arange(1, n + 1), {"units": "", "long_name": "peak index (ascending energy)"})
    sizes = {k: v[0].size for k, v in coords.items()}
    if store.mode == "timeseries":
        coords["photon_energy"] = (prep.energy, {"units": "eV", "long_name": "photon energy"})
        sizes["photon_energy"] = prep.energy.size
    block_dim = "y" if store.mode == "map" else "time"
    rows = job.job.batch_rows
    return ResultLayout(sizes, coords, result_variables(job, store.mode), block_dim, rows,
                        attrs={"mode": store.mode, "spectra_store": str(store.path), "peak_shape": job.fit.peak_shape,
                               "width_convention": "FWHM and area (integral) of each peak's fitted profile "
                                                   "(peak_shape; README model table)",
                               **({"step_um": store.attrs["step_um"]} if store.mode == "map" else {})})


def fit_block(counts: Any, prep: Preprocessor, job: PLJob, keep_spectra: bool = False) -> dict[str, np.ndarray]:
    """Preprocess and fit one block of spectra (..., n_channels), host or device arrays of any
    dtype (``prep`` with its arrays on the device: :meth:`Preprocessor.on`); NumPy arrays shaped
    like the block.

    ``keep_spectra`` adds the preprocessed spectra as ``intensity`` (time series: the kymograph).
    """
    xp = get_xp(job.job.device)
    lead = counts.shape[:-1]
    with stage("preprocess"):
        intensity, weights, n_spikes, nonfinite = prep(counts.reshape(-1, counts.shape[-1]), xp)
    f = job.fit
    with stage("fit"):
        maps = fit_peaks(intensity, prep.energy, max_peaks=f.max_peaks, background=f.background,
                         weights=weights, estimator=f.estimator, min_significance=f.min_significance,
                         device=job.job.device, peak_shape=f.peak_shape).as_dict()
    if prep.poisson:
        maps.update({k: maps[k] * prep.noise.gain for k in COUNT_RESULTS})
    maps["n_spikes"], maps["flag"] = n_spikes, (nonfinite * FLAG_NONFINITE + (maps["n_peaks"] == 0) * FLAG_NO_PEAK)
    out = {k: to_numpy(v).reshape(lead + v.shape[1:]) for k, v in maps.items()}
    if keep_spectra:  # the Poisson estimator's shifted counts back in ADU
        out["intensity"] = to_numpy(prep.noise.gain * intensity - prep.noise.shift if prep.poisson else intensity)
    return out


def sample_mask(total_area: np.ndarray, n_peaks: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels with a peak and an integrated intensity above ``threshold`` x its 99th percentile."""
    fitted = (n_peaks > 0) & np.isfinite(total_area)
    if not fitted.any():
        return fitted
    return fitted & (total_area > threshold * np.percentile(total_area[fitted], 99))


def _statistics(job: PLJob, results: ResultStore) -> dict[str, Any]:
    """Quartiles of the peak energy over the sample pixels; counts of flagged pixels."""
    energy, area, n_peaks = (results.read(k) for k in ("energy", "total_area", "n_peaks"))
    sample = sample_mask(area, n_peaks, job.maps.intensity_threshold)
    q = np.quantile(energy[sample], QUANTILES) if sample.any() else np.full(len(QUANTILES), np.nan)
    results.add_coord("quantile", np.asarray(QUANTILES), {"units": "", "long_name": "quantile"})
    results.add_array("energy_quartiles", q, ("quantile",), "eV", "peak-energy quartiles over the sample")
    dims = results.layout.variables["energy"].dims
    results.add_array("sample", sample, dims, "", f"n_peaks > 0 and intensity > {job.maps.intensity_threshold} x p99")
    flag = results.read("flag")
    return {"energy_q1_ev": float(q[0]), "energy_median_ev": float(q[1]), "energy_q3_ev": float(q[2]),
            "n_sample": int(sample.sum()), "n_nonfinite": int(((flag & FLAG_NONFINITE) > 0).sum()),
            "n_no_peak": int(((flag & FLAG_NO_PEAK) > 0).sum())}


def second_job(job: PLJob) -> PLJob:
    """The job of the second map (shift map): same settings, its own results next to the first's."""
    out = job.job.output
    return dataclasses.replace(
        job,
        job=dataclasses.replace(job.job, output=out.with_name(out.stem + "_second.zarr"), figures=None),
        input=dataclasses.replace(job.input, source=job.input.second, second=None, store=None),
    )


def _shift(job: PLJob, results: ResultStore) -> dict[str, Any]:
    """Fit the second map with the same settings (unless done), register it onto the first, store the shift map."""
    second = second_job(job)
    second.job.resume = True  # run_pl already computed it (afresh if asked); an array's finalize computes it here
    other = zarr.open_group(str(run_pl(second, progress=False)), mode="r")
    s = shift_map(results.read("energy"), results.read("total_area"), other["energy"][...], other["total_area"][...])
    results.add_array("shift_mev", s.shift_mev, ("y", "x"), "meV", "peak energy second map - first (registered)")
    results.add_array("registered_energy", s.registered_energy, ("y", "x"), "eV", "second map's energy, registered")
    return {"second_results": str(second.job.output), "registration_shift_px": [float(v) for v in s.shift],
            "registration_error": s.error}


def _responses(job: PLJob, store: SpectraStore, results: ResultStore) -> dict[str, Any]:
    """Fit the peak-energy response to every stimulus event; store each event's parameters, the
    model chosen, its chi2 and flags, and the fitted curve over the whole series."""
    events = _events(job, store)
    if not events:
        return {"n_events": 0}
    time = results.read("time")
    r = event_responses(time, results.read("energy"), [e["time"] for e in events], [e["label"] for e in events],
                        errors=results.read("energy_err"), model=job.timeseries.response_model)
    results.add_coord("event", np.arange(len(r)), {"units": "", "long_name": "stimulus event"})
    results.add_array("event_time", np.array([e.time for e in r]), ("event",), "s", "time of the event")
    results.add_array("event_label", np.array([e.label for e in r]), ("event",), "", "event label")
    results.add_array("event_model", np.array([e.model or "failed" for e in r]), ("event",), "",
                      "response model reported (none / single / double)")
    results.add_array("event_flag", np.array([e.flag or e.message for e in r]), ("event",), "",
                      "degenerate models rejected or fit failures")
    results.add_array("event_chi2", np.array([e.chi2 for e in r]), ("event",), "", "reduced chi-square of the response")
    for name, units in (("e0", "eV"), ("shift_fast_mev", "meV"), ("tau_fast", "s"), ("shift_slow_mev", "meV"),
                        ("tau_slow", "s")):
        results.add_array(f"event_{name}", np.array([getattr(e, name) for e in r]), ("event",), units,
                          f"fitted {name} after the event")
        results.add_array(f"event_{name}_err", np.array([e.errors[name] for e in r]), ("event",), units,
                          f"standard error of event_{name}")
    for name in results.group.array_keys():  # each event labelled by its time and label (coordinates)
        if name.startswith("event_") and name not in ("event_time", "event_label"):
            results.group[name].attrs["coordinates"] = "event_time event_label"
    results.add_array("response_fit", response_curve(r, time), ("time",), "eV",
                      "fitted peak-energy response (each event's model over its segment)")
    return {"n_events": len(r), "response_model": job.timeseries.response_model}


def _events(job: PLJob, store: SpectraStore) -> list[dict[str, Any]]:
    """Stimulus events ``{"time": s, "label": str}``: the job's, else the store's."""
    if job.input.events is None:
        return list(store.attrs.get("events", []))
    return [dataclasses.asdict(e) for e in job.input.events]
