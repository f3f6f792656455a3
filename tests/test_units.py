"""Results datasets of both pipelines as a user opens them: every ``units`` attribute parses
with pint (pint-xarray quantifies the whole Dataset), quantities have the dimensions they should
(angles in degrees, lengths in angstrom / nm / um), and only science is visible."""

import warnings

import pint
import pint_xarray  # noqa: F401  (registers the .pint accessor)
import pytest
import xarray as xr
from result_runs import pl_map_run, pl_series_run, waxs_run

from gpuproc.io.results import open_results

UREG = pint.UnitRegistry(force_ndarray_like=True)
#: variable -> a unit of the dimensions it must have
DIMENSIONS = {
    "waxs": {"y": "um", "x": "um", "a": "m", "size": "m", "a_sc": "m", "q0": "1/m", "fwhm_q": "1/m",
             "cake_q": "1/m", "strain": "1", "valid_fraction": "1"},
    "pl": {"y": "um", "x": "um", "energy": "J", "fwhm_mev": "J", "peak_energy": "J"},
    "timeseries": {"time": "s", "photon_energy": "J", "energy": "J", "event_tau_fast": "s", "event_e0": "J"},
}
#: angles are stored in degrees, every one of them
ANGLES = ("orientation", "orientation_err", "disorder", "disorder_err", "phi0", "fwhm_phi", "cake_fwhm_phi",
          "cake_azimuth")


@pytest.fixture(scope="module", params=["waxs", "pl", "timeseries"])
def results(request, tmp_path_factory):
    run = {"waxs": waxs_run, "pl": pl_map_run, "timeseries": pl_series_run}[request.param]
    store, _ = run(tmp_path_factory.mktemp(f"units_{request.param}"))
    return request.param, open_results(store)


def test_every_unit_parses_and_quantifies(results):
    kind, ds = results
    for name, var in ds.variables.items():
        if "units" in var.attrs:
            UREG.parse_units(var.attrs["units"])  # raises on free text
    quantified = ds.pint.quantify(unit_registry=UREG)
    for name, reference in DIMENSIONS[kind].items():
        units = quantified[name].pint.units if name in quantified.data_vars else UREG.parse_units(ds[name].attrs["units"])
        assert units.dimensionality == UREG.parse_units(reference).dimensionality, name
    for name in ANGLES:
        if name in ds.variables:
            assert UREG.parse_units(ds[name].attrs["units"]) == UREG.degree, name


def test_only_science_is_visible(results):
    """No bookkeeping (done marks, block dimension); labelled miller and event coordinates; a
    scan step only where there is a scan; the spectra store opens without a warning."""
    kind, ds = results
    assert "done" not in ds.variables and "block" not in ds.dims
    if kind == "waxs":
        assert list(ds.hkl.miller.values) == ["h", "k", "l"] and "miller" in ds.coords
    else:
        assert ("step_um" in ds.attrs) == (kind == "pl")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            spectra = xr.open_zarr(ds.attrs["spectra_store"])
        assert "spectra" in spectra
    if kind == "timeseries":
        assert {"event_time", "event_label"} <= set(ds.event_e0.coords)
        assert str(ds.event_e0.event_label.values[0]) == str(ds.event_label.values[0]) != ""
