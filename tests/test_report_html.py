"""``gpuproc report RESULTS -o DIR`` on stored results of both pipelines: every figure redrawn and
embedded, the statistics, fit-status and provenance tables; a store with no pixel fitted."""

from __future__ import annotations

import base64
import json
import re
import shutil

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from matplotlib.image import imread
from test_figures_defects import _bench

from gpuproc.cli import main
from gpuproc.io.results import consolidate
from gpuproc.pl.job import job_from_dict
from gpuproc.pl.pipeline import run_pl
from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map
from gpuproc.waxs.demo_data import write_demo_job
from gpuproc.waxs.pipeline import run_waxs

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)">')


def _report(results, out):
    r = CliRunner().invoke(main, ["report", str(results), "-o", str(out)])
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text(encoding="utf-8")
    images = {name: data for data, name in IMG.findall(page)}
    for name, data in images.items():  # each embedded image is the PNG written next to it
        raw = base64.b64decode(data)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw == (out / name).read_bytes()
        assert imread(out / name).shape[0] > 50
    return page, images


@pytest.fixture(scope="module")
def waxs_results(tmp_path_factory):
    d = tmp_path_factory.mktemp("waxs")
    job, _ = write_demo_job(d, (4, 5), "Pilatus100k", seed=4, figures=False)
    return run_waxs(job)


def _pl_job(tmp, counts, wavelength):
    np.savez(tmp / "map.npz", data=counts, axis=wavelength)
    return job_from_dict({"job": {"output": str(tmp / "pl.zarr"), "device": "cpu", "batch_rows": 8},
                          "input": {"source": str(tmp / "map.npz"), "step_um": [0.5, 0.5]},
                          "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS}, "fit": {"max_peaks": 2}})


def test_report_of_a_waxs_store(waxs_results, tmp_path):
    page, images = _report(waxs_results, tmp_path / "rep")
    assert {"williamson_hall.png", "mean_cake.png", "detector_image.png", "map_a.png", "map_orientation.png"} <= set(images)
    assert "Global Williamson" in page and "Pearson r" in page
    for status in ("CONVERGED",):
        assert f"<th class=\"\">{status}</th>" in page
    config = json.loads(__import__("zarr").open_group(waxs_results, mode="r").attrs["config"])
    assert config["reflections"][0]["name"] in page  # the job, in the provenance
    assert "numpy" in page  # versions


@pytest.mark.filterwarnings("ignore:noise model")  # the all-dark map has no signal for the gain
def test_report_of_a_pl_store_and_no_pixel_fitted(tmp_path):
    m = pl_map((10, 12), 256, seed=3)
    (tmp_path / "ok").mkdir()
    results = run_pl(_pl_job(tmp_path / "ok", m.counts, m.wavelength), progress=False)
    page, images = _report(results, tmp_path / "ok" / "rep")
    assert {"energy_weighted.png", "fwhm_mev.png", "n_peaks.png", "intensity.png", "spectra_examples.png"} <= set(images)
    assert "quantile 0.5" in page and "all spectra" in page

    (tmp_path / "dark").mkdir()
    dark = np.random.default_rng(0).poisson(BIAS_COUNTS + STRAY_COUNTS, m.counts.shape).astype(np.uint16)
    results = run_pl(_pl_job(tmp_path / "dark", dark, m.wavelength), progress=False)
    page, images = _report(results, tmp_path / "dark" / "rep")
    assert list(images) == ["energy_weighted.png"]  # says so instead of a figure
    assert "NaN" in page  # the quartiles of an empty sample


def test_report_refuses_what_is_not_a_results_store(tmp_path):
    r = CliRunner().invoke(main, ["report", str(tmp_path / "missing.zarr")])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "missing.zarr" in r.output


def _copy_with_attrs(results, folder, **attrs):
    """A copy of a results store with root attributes set (None: removed), metadata reconsolidated."""
    copy = shutil.copytree(results, folder / "copy.zarr")
    group = zarr.open_group(copy, mode="r+", use_consolidated=False)
    for key, value in attrs.items():
        if value is None:
            group.attrs.pop(key, None)
        else:
            group.attrs[key] = value
    consolidate(copy)
    return copy


def test_report_timings_table_and_not_recorded(tmp_path):
    store = _bench().waxs_store(tmp_path / "w.zarr", shape=(4, 5))
    stages = {"setup": 0.5, "read": 1.25, "integrate": 2.0, "preprocess": 0.0, "fit": 3.0, "derive": 0.25,
              "write": 0.5, "finalize": 0.75, "figures": 1.75}
    timings = {"stages_s": dict(reversed(stages.items())), "wall_s": 10.0, "blocks": 4, "items": 20, "unit": "s",
               "background_s": {"read": 1.5}, "workers": 1}  # as gpuproc.run.timings stores it
    page, _ = _report(_copy_with_attrs(store, tmp_path, timings=timings), tmp_path / "rep")
    table = page.split("<h2>Timings</h2>", 1)[1].split("<h2>", 1)[0]
    rows = re.findall(r'<tr><td class="l">([\w ()]+)</td><td class="">([^<]+)</td><td class="">([^<]+)</td></tr>',
                      table)
    assert [r[0] for r in rows] == [*stages, "read (background)", "wall"]  # in the order the stages run
    assert {r[0]: float(r[1]) for r in rows} == {**stages, "read (background)": 1.5, "wall": 10.0}
    assert float(dict((r[0], r[2]) for r in rows)["fit"]) == pytest.approx(30.0)  # % of the wall time
    assert "4 blocks" in table and "20 frames, 2 per s" in table

    (tmp_path / "old").mkdir()
    page, _ = _report(_copy_with_attrs(store, tmp_path / "old", timings=None), tmp_path / "old" / "rep")
    assert "timings not recorded" in page.split("<h2>Timings</h2>", 1)[1].split("<h2>", 1)[0]
