"""Example spectra of a PL map, redrawn from its results store: the spectra at the job's
``[figures] points`` (recorded as the attribute ``figure_points_um``) or, by default, at the
pixels nearest the peak-energy quartiles, each with the stored fit (:func:`gpuproc.report.pl.plot_spectra`).

The spectra come from the spectra store the results name (``attrs["spectra_store"]``),
preprocessed as the run did: the job recorded in ``attrs["config"]`` and the detector noise
model recorded in ``attrs["noise_*"]``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from gpuproc.report.no_data import plot_no_data
from gpuproc.report.pl import plot_spectra, quartile_pixels

FIGURE = "spectra_examples.png"
QUARTILE_NAMES = ("Q1", "median", "Q3")


def example_spectra(group: Any, folder: str | Path) -> Path | None:
    """Draw the example spectra of a PL map results store into ``folder/spectra_examples.png``.

    Parameters
    ----------
    group : zarr.Group
        A finished PL map results store (read only).
    folder : path
        Output folder.

    Returns
    -------
    Path or None
        The PNG; a figure that says why when the spectra store cannot be read; None when no
        pixel has a peak and no points were given (the energy map says so already).
    """
    from gpuproc.pl.ingest import open_spectra
    from gpuproc.pl.job import FiguresSection, job_from_dict
    from gpuproc.pl.noise import NoiseModel
    from gpuproc.pl.pipeline import preprocessor

    path = Path(folder) / FIGURE
    y, x = np.asarray(group["y"][...], dtype=float), np.asarray(group["x"][...], dtype=float)
    points = group.attrs.get("figure_points_um")
    if points is not None:
        pixels = FiguresSection([tuple(p) for p in points]).pixels(y, x, group.attrs["step_um"])
        names = [f"point {i + 1}" for i in range(len(pixels))]
    else:
        pixels = quartile_pixels(np.asarray(group["energy"][...]), np.asarray(group["sample"][...], dtype=bool))
        names = [f"{q} energy" for q in QUARTILE_NAMES[:len(pixels)]]
    if not pixels:
        return None
    source = Path(group.attrs.get("spectra_store", ""))
    try:
        store = open_spectra(source)
        job = job_from_dict(json.loads(group.attrs["config"]))
        noise = NoiseModel(**{f.name: group.attrs[f"noise_{f.name}"] for f in dataclasses.fields(NoiseModel)})
        prep = preprocessor(job, store, noise)
    except (OSError, ValueError, KeyError) as exc:  # moved or deleted inputs: say so, draw the rest
        return plot_no_data(path, "example spectra", f"spectra not readable: {exc}"[:120])
    spectra, _, _, _ = prep(np.stack([np.asarray(store.spectra[p]) for p in pixels]), np)
    if prep.poisson:  # the Poisson estimator's shifted counts back in ADU, like the stored peaks
        spectra = prep.noise.gain * spectra - prep.noise.shift
    shapes = [k for k in ("eta", "asymmetry") if f"peak_{k}" in group]  # older stores: Gaussians
    per_peak = {k: np.asarray(group[f"peak_{k}"][...]) for k in ("energy", "fwhm_mev", "amplitude", *shapes)}
    peaks = [{k: v[p] for k, v in per_peak.items()} for p in pixels]
    energy = np.asarray(group["energy"][...])
    labels = [f"{name}: (x, y) = ({x[c]:g}, {y[r]:g}) \u00b5m, E = {energy[r, c]:.4g} eV"
              for name, (r, c) in zip(names, pixels)]
    return plot_spectra(prep.energy, spectra, peaks, labels, path, background=job.fit.background,
                        intensity_unit=group["peak_amplitude"].attrs["units"])
