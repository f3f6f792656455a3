"""How long do all figures and report.html of a finished run take? (issue 12: goal < 3 s)

Writes two synthetic results stores with the layout the pipelines write (a 200 x 200 PL map
with its spectra store for the example spectra, a 2,000-position WAXS scan with 12
reflections, a 360 x 500 mean cake and a Pilatus-1M-sized mean detector image), then times
:func:`gpuproc.report.html.write_report` on each with benchmarks/common.py (one warm-up that
pays for the imports, then the median, min and max of ``--repeats`` runs). Prints the wall and
CPU times (the process's: on a shared machine the wall time grows with the load, the CPU time
much less) and writes ``benchmarks/results/figures.json`` with the load record (refused on a
busy machine; ``--force`` writes a development run to a scratch folder).

    .venv/bin/python benchmarks/bench_figures.py [--repeats 5] [--force]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Contender, Session, add_arguments, compare  # noqa: E402

from gpuproc.fit import Status  # noqa: E402
from gpuproc.report.html import write_report  # noqa: E402


def _put(g: zarr.Group, name: str, values: np.ndarray, dims: tuple[str, ...], units: str = "") -> None:
    values = np.asarray(values)
    text = values.dtype.kind in "US"
    a = g.create_array(name, shape=values.shape, dtype=str if text else values.dtype, dimension_names=dims,
                       fill_value=None)
    a[...] = values.astype(object) if text else values
    a.attrs.update({"units": units, "long_name": name})


def _common(g: zarr.Group, pipeline: str, config: dict, ny: int, nx: int, step: float) -> None:
    g.attrs.update({"gpuproc_results": pipeline, "complete": True, "step_um": [step, step],
                    "config": json.dumps(config), "versions": {"numpy": np.__version__}, "inputs": {}})
    _put(g, "y", np.arange(ny) * step, ("y",), "um")
    _put(g, "x", np.arange(nx) * step, ("x",), "um")


PL_CHANNELS = 128  #: channels of the synthetic spectra (a 480..540 nm axis)


def _pl_spectra(path: Path, energy: np.ndarray, area: np.ndarray, fwhm_mev: float, rng: np.random.Generator) -> Path:
    """The spectra store of the map: one Gaussian per pixel (counts per channel), Poisson noise."""
    from gpuproc.pl.ingest import ingest_spectra

    wavelength = np.linspace(480.0, 540.0, PL_CHANNELS)
    e_axis = 1239.84198 / wavelength
    sigma = fwhm_mev * 1e-3 / 2.3548
    width = np.abs(np.gradient(e_axis))  # eV per channel
    e0 = np.nan_to_num(energy, nan=2.54)[..., None]
    mean = 20.0 + area[..., None] * width / (sigma * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((e_axis - e0) / sigma) ** 2)
    source = path.with_name(path.stem + ".spectra.npz")
    np.savez(source, data=rng.poisson(mean).astype(np.uint16), axis=wavelength)
    return ingest_spectra(source, path.with_name(path.stem + ".spectra.zarr"), overwrite=True)


def pl_store(path: Path, n: int = 200, seed: int = 0) -> Path:
    """A 200 x 200 PL map store: a disc of emission with a red-shifted edge, dark pixels around;
    its spectra store beside it."""
    rng = np.random.default_rng(seed)
    g = zarr.open_group(path, mode="w", zarr_format=3)
    source = path.with_name(path.stem + ".spectra.npz")
    config = {"job": {"output": str(path)}, "input": {"source": str(source)}, "spectra": {"dark": 20.0},
              "fit": {"max_peaks": 3}}
    _common(g, "pl", config, n, n, 0.5)
    g.attrs.update({"mode": "map", "noise_gain": 1.0, "noise_read_noise": 0.0, "noise_bias": 0.0,
                    "noise_source": "given"})
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - n / 2, xx - n / 2) / (n / 2)
    sample = r < 0.8
    energy = 2.54 + 0.003 * np.sin(xx / 9.0) - 0.03 * np.clip(r - 0.7, 0, None) / 0.1 + rng.normal(0, 3e-4, (n, n))
    n_peaks = np.where(sample, rng.integers(1, 4, (n, n)), 0).astype(np.int8)
    area = np.where(sample, 5e4 * (1.2 - r), rng.uniform(0, 50, (n, n)))
    for name, v, u in (("energy", np.where(n_peaks > 0, energy, np.nan), "eV"),
                       ("fwhm_mev", 80 + rng.normal(0, 2, (n, n)), "meV"), ("total_area", area, "counts"),
                       ("n_peaks", n_peaks, ""), ("sample", sample, ""),
                       ("status", np.where(sample, Status.CONVERGED, Status.NO_PEAK).astype(np.uint8), "")):
        _put(g, name, v.astype(np.float32) if v.dtype.kind == "f" else v, ("y", "x"), u)
    _put(g, "quantile", np.array([0.25, 0.5, 0.75]), ("quantile",))
    _put(g, "energy_quartiles", np.quantile(energy[sample], [0.25, 0.5, 0.75]), ("quantile",), "eV")
    fwhm = 80.0
    per_peak = np.full((n, n, 3), np.nan, np.float32)
    for name, v, u in (("peak_energy", energy, "eV"), ("peak_fwhm_mev", np.full((n, n), fwhm), "meV"),
                       ("peak_amplitude", area / (fwhm * 1e-3 * 1.0645), "counts/eV")):
        values = per_peak.copy()
        values[..., 0] = np.where(sample, v, np.nan)
        _put(g, name, values, ("y", "x", "peak"), u)
    g.attrs["spectra_store"] = str(_pl_spectra(path, np.where(sample, energy, np.nan), np.where(sample, area, 0.0),
                                               fwhm, rng))
    return path


def waxs_store(path: Path, shape: tuple[int, int] = (40, 50), seed: int = 0) -> Path:
    """A 2,000-position WAXS store: 12 reflections (Friedel pairs of 100, 010, 110, 1-10, 200, 020)."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    hkls = [(1, 0, 0), (0, 1, 0), (1, 1, 0), (1, -1, 0), (2, 0, 0), (0, 2, 0)]
    hkls += [tuple(-h for h in k) for k in hkls]
    names = ["".join(str(v) for v in k) for k in hkls]
    a = 5.87
    q = np.array([2 * np.pi * np.sqrt(sum(v * v for v in k)) / a for k in hkls])
    phi = np.array([np.degrees(np.arctan2(k[1], k[0])) for k in hkls])
    refl = [{"name": nm, "hkl": list(k), "kind": "waxs", "q_range": [qq - 0.15, qq + 0.15],
             "azimuth_range": [p - 12, p + 12]} for nm, k, qq, p in zip(names, hkls, q, phi)]
    g = zarr.open_group(path, mode="w", zarr_format=3)
    _common(g, "waxs", {"reflections": refl}, ny, nx, 0.25)
    _put(g, "reflection", np.array(names), ("reflection",))
    _put(g, "hkl", np.array(hkls, np.int32), ("reflection", "miller"))
    per = (len(names), ny, nx)
    dims = ("reflection", "y", "x")
    _put(g, "q0", (q[:, None, None] + rng.normal(0, 2e-3, per)).astype(np.float32), dims, "A^-1")
    _put(g, "fwhm_q", np.sqrt((0.018 * q[:, None, None]) ** 2 + 0.042**2 + rng.normal(0, 3e-4, per) ** 2)
         .astype(np.float32), dims, "A^-1")
    _put(g, "phi0", (phi[:, None, None] + rng.normal(0, 0.3, per)).astype(np.float32), dims, "deg")
    _put(g, "fwhm_phi", np.full(per, 3.0, np.float32), dims, "deg")
    _put(g, "fit_status", np.full(per, Status.CONVERGED, np.uint8), dims)
    size = rng.uniform(8.5, 17.0, shape)
    maps = {"a": (a + 0.9 * size**-1.2 + rng.normal(0, 0.005, shape), "A"),
            "b": (a + 0.01 + rng.normal(0, 0.005, shape), "A"), "c": (np.full(shape, np.nan), "A"),
            "strain": (0.018 + rng.normal(0, 0.002, shape), "1"), "size": (size, "nm"),
            "orientation": (np.where(np.arange(nx) < nx // 2, 174.0, 182.0) + rng.normal(0, 0.3, shape), "deg"),
            "disorder": (0.04 + rng.normal(0, 0.005, shape), "rad"), "a_sc": (np.full(shape, np.nan), "A")}
    for name, (v, u) in maps.items():
        _put(g, name, v.astype(np.float32), ("y", "x"), u)
    _put(g, "quantity", np.array(list(maps)), ("quantity",))
    _put(g, "statistic", np.array(["mean", "q1", "median", "q3", "n"]), ("statistic",))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rows = [[np.nanmean(v), *np.nanpercentile(v, [25, 50, 75]), np.isfinite(v).sum()] for v, _ in maps.values()]
    _put(g, "summary", np.array(rows, np.float64), ("quantity", "statistic"))
    az, qq = np.linspace(-179.5, 179.5, 360), np.linspace(0.8, 2.4, 500)
    cake = 5.0 + sum(50 * np.exp(-((qq[None] - qi) ** 2) / 2e-4 - ((az[:, None] - p) ** 2) / 20) for qi, p in zip(q, phi))
    _put(g, "cake_q", qq, ("cake_q",), "A^-1")
    _put(g, "cake_azimuth", az, ("cake_azimuth",), "deg")
    _put(g, "mean_cake", cake.astype(np.float32), ("cake_azimuth", "cake_q"), "intensity (cake units)")
    h, w = 1043, 981  # Pilatus 1M: 5 x 2 modules of 195 x 487 with 17 / 7 pixel gaps
    rows, cols = np.mgrid[:h, :w]
    radius = np.hypot(rows - 520.5, cols - 490.5)
    frame = 3.0 + 2e3 * np.exp(-radius / 60.0) + 40 * np.exp(-0.5 * ((radius - 300) / 4.0) ** 2)
    frame[(rows % 212 >= 195) | (cols % 494 >= 487)] = np.nan
    _put(g, "mean_frame", frame.astype(np.float32), ("detector_y", "detector_x"), "count")
    g["mean_frame"].attrs["beam_centre_px"] = [521.0, 491.0]
    g.attrs["statistics"] = json.dumps({
        "global_williamson_hall": {"size_nm": 12.7, "strain": 0.018, "slope": 0.018**2, "intercept": 0.042**2,
                                   "flag": 0},
        "pearson": {"a": {"r": -0.6, "p_value": 1e-9, "n": ny * nx}, "b": {"r": 0.01, "p_value": 0.6, "n": ny * nx}}})
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = add_arguments(parser).parse_args()
    session = Session("figures", force=args.force)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = itertools.count()

        def report(store: Path, name: str):
            def run() -> float:
                c = time.process_time()
                write_report(store, tmp / f"{name}_{next(runs)}")
                return time.process_time() - c

            return run

        contenders = [Contender(name, report(store, name), 1, after=float)
                      for name, store in (("pl_200x200", pl_store(tmp / "pl.zarr")),
                                          ("waxs_2000", waxs_store(tmp / "waxs.zarr")))]
        out = compare(contenders, args.repeats)
        for name, row in out.items():
            cpu = row.pop("per_run")
            row.update(cpu_s=cpu, median_cpu_s=statistics.median(cpu),
                       figures=len(list(next(tmp.glob(f"{name}_*")).glob("*.png"))))
            print(f"{name}: {row['figures']} figures + report.html in {row['median_s']:.2f} s wall "
                  f"({row['min_s']:.2f}-{row['max_s']:.2f}), {row['median_cpu_s']:.2f} s CPU (median of {args.repeats})")
    session.write(out)


if __name__ == "__main__":
    main()
