"""``gpuproc demo``: synthetic data with known answers, analysed, recovered versus true.

1. The fitting engine on its two problems: PL spectra (a Gaussian in photon energy on a
   non-uniform axis) and Bragg spots in a cake window across the 0/360 degree seam (Poisson noise).
2. The WAXS pipeline on a synthetic scan rendered through a pyFAI geometry on a Pilatus detector:
   ingest, cakes, spot fits, maps, statistics and figures, compared with the ground-truth maps.
3. The PL pipeline on two synthetic maps of the same crystal (recorded against wavelength, the
   second one moved and red-shifted at the edges): peak energies, widths, number of peaks and the
   registered shift map, compared with the truth.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gpuproc.fit import FitResult, fit

HC_EV_NM = 1239.84198  # h c in eV nm


def pl_spectra(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """PL spectra recorded on a 1024-channel wavelength grid (450-530 nm), fitted in energy."""
    energy = (HC_EV_NM / np.linspace(450.0, 530.0, 1024)).astype(np.float32)
    truth = {
        "center1": rng.normal(2.54, 0.003, n) - 0.13 * (rng.random(n) < 0.1),  # a few red-shifted edge pixels
        "sigma1": rng.uniform(0.03, 0.045, n) / 2.3548,
        "amplitude1": rng.uniform(300.0, 3000.0, n),
        "c0": np.full(n, 20.0),
    }
    mean = truth["amplitude1"][:, None] * np.exp(
        -0.5 * ((energy - truth["center1"][:, None]) / truth["sigma1"][:, None]) ** 2) + truth["c0"][:, None]
    return energy, rng.poisson(mean).astype(np.float32), truth


def bragg_spots(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """100-reflection spots (q ~ 1.07 A^-1) in a 40 x 60 cake window across the azimuth seam."""
    qg, pg = np.meshgrid(np.linspace(0.99, 1.15, 40), np.linspace(-30.0, 30.0, 60), indexing="ij")
    x = np.stack([qg.ravel(), np.mod(pg.ravel(), 360.0)]).astype(np.float32)
    truth = {
        "q0": 2 * np.pi / rng.normal(5.87, 0.01, n),
        "sigma_q": rng.uniform(0.008, 0.012, n),
        "phi0": np.mod(rng.normal(0.0, 5.0, n), 360.0),  # orientation domains of +-5 degrees
        "sigma_phi": rng.uniform(3.0, 6.0, n),
        "amplitude": rng.uniform(100.0, 400.0, n),
    }
    dphi = x[1] - truth["phi0"][:, None]
    dphi -= 360.0 * np.floor(dphi / 360.0 + 0.5)
    mean = truth["amplitude"][:, None] * np.exp(
        -0.5 * ((x[0] - truth["q0"][:, None]) / truth["sigma_q"][:, None]) ** 2
        - 0.5 * (dphi / truth["sigma_phi"][:, None]) ** 2) + 10.0
    return x, rng.poisson(mean).astype(np.float32), truth


def _report(title: str, res: FitResult, truth: dict[str, np.ndarray], seconds: float, unit: dict[str, str],
            periodic: tuple[str, ...] = ()) -> None:
    res = res.get()
    ok = res.ok
    print(f"\n{title}: {ok.size} fits in {seconds:.2f} s ({ok.size / seconds:,.0f} fits/s on {res.device}), "
          f"{ok.mean():.1%} converged")
    print(f"  {'parameter':<12}{'median |fit - true|':>22}{'median error':>16}{'pull sd':>10}")
    for name, true in truth.items():
        d = res[name][ok].astype(np.float64) - true[ok]
        if name in periodic:
            d -= 360.0 * np.round(d / 360.0)
        err = res.error(name)[ok]
        u = unit.get(name, "")
        print(f"  {name:<12}{np.median(np.abs(d)):>16.3g} {u:<5}{np.median(err):>10.3g} {u:<5}{np.std(d / err):>8.2f}")


def run(device: str = "auto", n: int = 20000, seed: int = 0, out: str | Path = "demo-output",
        scan_shape: tuple[int, int] = (12, 16)) -> None:
    """Generate, analyse and print recovered versus true (pull sd ~ 1 means errors are honest)."""
    engine(device, n, seed)
    waxs(Path(out) / "waxs", device, seed, scan_shape)
    pl(Path(out) / "pl", device, seed)


def engine(device: str, n: int, seed: int) -> None:
    """The engine on PL-like and Bragg-like problems."""
    rng = np.random.default_rng(seed)
    energy, spectra, truth = pl_spectra(rng, n)
    t = time.perf_counter()
    res = fit("gauss1d", spectra, energy, estimator="poisson", device=device)
    _report("PL spectra, gauss1d + constant, Poisson likelihood", res, truth, time.perf_counter() - t,
            {"center1": "eV", "sigma1": "eV"})
    x, cakes, truth = bragg_spots(rng, max(n // 4, 1))
    t = time.perf_counter()
    res = fit("gauss2d_polar", cakes, x, estimator="poisson", device=device)
    _report("Bragg spots, gauss2d_polar across the 0/360 seam, Poisson likelihood", res, truth,
            time.perf_counter() - t, {"q0": "A^-1", "sigma_q": "A^-1", "phi0": "deg", "sigma_phi": "deg"},
            periodic=("phi0",))


def waxs(directory: Path, device: str, seed: int, scan_shape: tuple[int, int]) -> None:
    """The WAXS pipeline on a synthetic scan; prints maps recovered versus true."""
    from gpuproc.io.results import open_results
    from gpuproc.waxs.demo_data import write_demo_job
    from gpuproc.waxs.job import load_job
    from gpuproc.waxs.pipeline import run_waxs

    print(f"\nWAXS pipeline: rendering a {scan_shape[0]} x {scan_shape[1]} synthetic scan (Pilatus100k) in {directory}")
    job_path, scan = write_demo_job(directory, scan_shape, "Pilatus100k", seed, job_overrides={"device": device,
                                                                                                "resume": False,
                                                                                                "overwrite": True})
    t = time.perf_counter()
    ds = open_results(run_waxs(load_job(job_path), progress=True))
    dt = time.perf_counter() - t
    n = scan.n_frames
    print(f"  {n} frames, {len(scan.reflections)} reflections: {dt:.1f} s ({n / dt:.1f} frames/s incl. figures), "
          f"{float((ds.fit_status.values == 0).mean()):.1%} fits converged")
    truth = scan.truth
    rows = [("a", "a", "A"), ("b", "b", "A"), ("size", "size_nm", "nm"), ("strain", "strain", ""),
            ("orientation", "phi0_deg", "deg"), ("disorder", "disorder_deg", "deg"), ("a_sc", "a_sc", "A")]
    print(f"  {'map':<12}{'true range':>24}{'median |fit - true|':>22}{'median error':>15}")
    for name, key, unit in rows:
        if key not in truth or not np.isfinite(ds[name].values).any():
            continue
        fitv, true = ds[name].values, truth[key]
        d = fitv - true
        if name == "orientation":
            d -= 360.0 * np.round(d / 360.0)
        print(f"  {name:<12}{np.min(true):>11.4g} ..{np.max(true):>9.4g} {unit:<3}{np.nanmedian(np.abs(d)):>14.3g} "
              f"{unit:<5}{np.nanmedian(ds[name + '_err'].values):>10.3g}")
    import json

    st = json.loads(ds.attrs["statistics"])
    g = st["global_williamson_hall"]
    print(f"  global Williamson-Hall: size {g['size_nm']:.2f} nm, strain {100 * g['strain']:.2f} % "
          f"(truth: median size {np.median(truth['size_nm']):.2f} nm, mean strain {100 * np.mean(truth['strain']):.2f} %)")
    print(f"  Pearson r(a, s) = {st['pearson']['a']['r']:+.2f}, r(b, s) = {st['pearson']['b']['r']:+.2f}")
    print(f"  results: {directory / 'results.zarr'} (xarray.open_zarr); figures: {directory / 'figures'}")


def pl(directory: Path, device: str, seed: int, shape: tuple[int, int] = (32, 32)) -> None:
    """The PL pipeline on a synthetic map pair; prints recovered versus true."""
    import h5py

    from gpuproc.io.results import open_results
    from gpuproc.pl.job import job_from_dict
    from gpuproc.pl.pipeline import run_pl
    from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map_pair

    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nPL pipeline: two synthetic {shape[0]} x {shape[1]} x 512 maps of one crystal in {directory}")
    pair = pl_map_pair(shape, 512, seed=seed)
    for name, m in (("first", pair.first), ("second", pair.second)):
        with h5py.File(directory / f"{name}.h5", "w") as f:
            f["data"], f["axis"] = m.counts, m.wavelength
            f["axis"].attrs["units"] = "nm"
            f.attrs["step_um"] = [0.5, 0.5]
    job = job_from_dict({
        "job": {"output": str(directory / "results.zarr"), "figures": str(directory / "figures"), "device": device,
                "resume": False, "overwrite": True},
        "input": {"source": str(directory / "first.h5"), "second": str(directory / "second.h5")},
        "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS},
    })
    t = time.perf_counter()
    ds = open_results(run_pl(job, progress=True))
    dt = time.perf_counter() - t
    truth = pair.first.truth
    one = truth.inside & (truth.n_peaks == 1)
    two = truth.inside & (truth.n_peaks == 2)
    n = shape[0] * shape[1]
    print(f"  {2 * n} spectra (two maps) in {dt:.1f} s incl. ingest and figures")
    print(f"  peak energy, one-peak pixels: median |fit - true| {1e3 * np.median(np.abs(ds.energy.values - truth.energy)[one]):.2f} meV")
    print(f"  FWHM, one-peak pixels:        median |fit - true| {np.median(np.abs(ds.fwhm_mev.values - truth.fwhm_mev)[one]):.2f} meV")
    print(f"  n_peaks right: {np.mean(ds.n_peaks.values[one] == 1):.1%} of one-peak, "
          f"{np.mean(ds.n_peaks.values[two] == 2):.1%} of two-peak pixels")
    q1, med, q3 = ds.energy_quartiles.values
    print(f"  peak energy quartiles over the crystal: {q1:.4f} / {med:.4f} / {q3:.4f} eV "
          f"(truth median {np.median(truth.energy[truth.inside]):.4f} eV)")
    shift = np.asarray(ds.attrs["registration_shift_px"])
    ok = np.isfinite(ds.shift_mev.values) & np.isfinite(pair.shift_mev) & (truth.n_peaks == 1)
    print(f"  registration shift {shift.round(2).tolist()} px (truth {[-o for o in pair.offset]}); shift map "
          f"median |fit - true| {np.median(np.abs(ds.shift_mev.values - pair.shift_mev)[ok]):.2f} meV")
    print(f"  results: {directory / 'results.zarr'}; figures: {directory / 'figures'}")
