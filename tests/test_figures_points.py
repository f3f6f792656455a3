"""PL example spectra at the job's ``[figures] points`` (um): the key's checks (one line naming
it), the default at the energy quartiles, spectra labelled in um with data, fitted sum,
components and residuals, redrawn from the results store; a resume ignores the section."""

from __future__ import annotations

import math

import numpy as np
import pytest
import zarr
from test_figures_defects import captured  # noqa: F401  (the fixture)

from gpuproc.config import ConfigError
from gpuproc.pl.job import job_from_dict
from gpuproc.pl.pipeline import run_pl
from gpuproc.report.pl_spectra import example_spectra
from gpuproc.run.blocks import finished
from gpuproc.synth.pl import BIAS_COUNTS, STRAY_COUNTS, pl_map

SHAPE, STEP = (8, 10), (0.5, 0.25)  #: map rows x columns; (dy, dx) um
POINTS = [[1.0, 2.0], [2.2, 0.5]]  #: [x, y] um: pixels (4, 4) and (1, 9)


def _job(tmp, **sections):
    return {"job": {"output": str(tmp / "pl.zarr"), "device": "cpu", "batch_rows": 8},
            "input": {"source": str(tmp / "map.npz"), "step_um": list(STEP)},
            "spectra": {"dark": BIAS_COUNTS + STRAY_COUNTS}, "fit": {"max_peaks": 2}, **sections}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pl")
    m = pl_map(SHAPE, 128, seed=5)
    np.savez(tmp / "map.npz", data=m.counts, axis=m.wavelength)
    return tmp


@pytest.fixture(scope="module")
def with_points(source):
    return run_pl(job_from_dict(_job(source, figures={"points": POINTS})), progress=False)


@pytest.mark.parametrize(("points", "message"), [
    ([[1.0, 2.0, 3.0]], "points[0]: expected 2 values"),
    ([[1.0, math.nan]], "points[0] = [1.0, nan] um must be finite"),
    ([[0.0, 0.0]] * 10, "points: 1 to 9 positions"),
    ([], "points: 1 to 9 positions"),
])
def test_points_key_checked(tmp_path, points, message):
    with pytest.raises(ConfigError, match=r"^job figures") as err:
        job_from_dict(_job(tmp_path, figures={"points": points}))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_points_need_a_map(tmp_path):
    job = _job(tmp_path, figures={"points": POINTS})
    job["input"]["mode"] = "timeseries"
    with pytest.raises(ConfigError, match=r"\[figures\] points needs \[input\] mode = 'map'"):
        job_from_dict(job)


def test_point_off_the_map_fails_before_the_fits(source, tmp_path):
    job = _job(source, figures={"points": [[1.0, 2.0], [2.5, 1.0]]})  # x beyond 9 * 0.25 + 0.125 um
    job["job"]["output"] = str(tmp_path / "off.zarr")
    with pytest.raises(ValueError, match=r"^\[figures\] points\[1\] = \[2.5, 1\] um is outside the map "
                                         r"\(x 0 to 2.25 um, y 0 to 3.5 um\)$"):
        run_pl(job_from_dict(job), progress=False)
    assert not (tmp_path / "off.zarr").exists()


def test_spectra_at_the_points_labelled_in_um_with_their_fits(with_points, captured, tmp_path):  # noqa: F811
    group = zarr.open_group(with_points, mode="r")
    assert group.attrs["figure_points_um"] == POINTS
    assert example_spectra(group, tmp_path).name == "spectra_examples.png"
    axes = captured[-1].axes
    assert len(axes) == 2 * len(POINTS)  # a spectrum and its residuals per point
    energy = np.asarray(group["energy"][...])
    ys, xs = group["y"][...], group["x"][...]
    for (top, bottom), (r, c) in zip(zip(axes[::2], axes[1::2]), [(4, 4), (1, 9)]):  # the nearest pixels
        assert f"(x, y) = ({xs[c]:g}, {ys[r]:g}) \u00b5m" in top.get_title()
        assert f"E = {energy[r, c]:.4g} eV" in top.get_title()
        labels = [t.get_text() for t in top.get_legend().get_texts()]
        assert labels[0] == "data" and labels[-1] == "fitted sum" and "peaks" in labels
        n_components = int(np.isfinite(group["peak_energy"][r, c]).sum())
        assert len(top.lines) == 2 + n_components >= 3
        data, residual = top.lines[0].get_ydata(), bottom.lines[0].get_ydata()
        assert np.nanstd(residual) < 0.1 * np.ptp(data)  # the stored fit of this very spectrum


def test_default_spectra_at_the_energy_quartiles(source, captured, tmp_path):  # noqa: F811
    job = _job(source)
    job["job"]["output"] = str(tmp_path / "q.zarr")
    group = zarr.open_group(run_pl(job_from_dict(job), progress=False), mode="r")
    assert "figure_points_um" not in group.attrs
    example_spectra(group, tmp_path)
    titles = [ax.get_title() for ax in captured[-1].axes[::2]]
    assert [t.split(":")[0] for t in titles] == ["Q1 energy", "median energy", "Q3 energy"]
    shown = [float(t.rsplit("E = ", 1)[1].split()[0]) for t in titles]
    assert shown == sorted(shown) and shown[0] < shown[-1]


def test_resume_ignores_the_figures_section(with_points, source):
    assert finished(job_from_dict(_job(source, figures={"points": [[0.5, 0.5]]})))
    assert finished(job_from_dict(_job(source)))


def test_unreadable_spectra_store_says_so(with_points, captured, tmp_path):  # noqa: F811
    from test_report_html import _copy_with_attrs

    copy = _copy_with_attrs(with_points, tmp_path, spectra_store=str(tmp_path / "moved.spectra.zarr"))
    assert example_spectra(zarr.open_group(copy, mode="r"), tmp_path).name == "spectra_examples.png"
    texts = [t.get_text() for t in captured[-1].texts]
    assert texts[0] == "example spectra" and texts[1].startswith("spectra not readable: ") and "moved" in texts[1]
