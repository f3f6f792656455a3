"""pyFAI integration configurations (the JSON that pyFAI-integrate and pyFAI-calib2 write).

``[integration] pyfai_config = "integrate.json"`` takes the geometry (PONI with detector) and
the integration settings from such a file instead of listing them. The file may be of any
version pyFAI reads (1: PONI path and flat keys, 2: detector + detector_config, 3: method as a
3-tuple, 4: ``poni`` inline, 5: ``polarization_description``, ``integrator_method``); pyFAI's own
``integration_config.normalize`` upgrades it to the current version first.

What is taken, as gpuproc ``[integration]`` keys (keys the job gives itself win):

=================================== =====================================================
pyFAI key                           gpuproc
=================================== =====================================================
``poni`` (dict, or v1 PONI path)    the geometry (:func:`pyfai_geometry`)
``nbpt_rad``, ``nbpt_azim``         ``npt_q``, ``npt_azimuth``
``unit``, ``radial_range``          ``unit``, ``q_range`` (q units only: ``q_A^-1``, ``q_nm^-1``)
``mask_file``, ``dark_current``,    ``mask``, ``dark``, ``flat`` (one file each; relative paths
``flat_field``                      are relative to the JSON file)
``polarization_description``        ``polarization_factor`` (offset must be 0)
``correct_solid_angle``             ``solid_angle``
``method`` (split)                  ``split``, resolved as pyFAI resolves it ("pseudo" -> "full")
``val_dummy``, ``delta_dummy``      ``dummy``, ``delta_dummy`` (none: the detector's, as pyFAI)
=================================== =====================================================

The azimuthal range, chi discontinuity and error model are not used (gpuproc's cake spans the
full circle; fit weights are Poisson). A normalisation factor other than 1 is an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from pyFAI.io.integration_config import normalize
from pyFAI.method_registry import IntegrationMethod, Method

Q_UNITS = ("q_A^-1", "q_nm^-1")


def read_pyfai_config(path: str | Path) -> dict[str, Any]:
    """The configuration in ``path``, upgraded to pyFAI's current version (a dict).

    Raises
    ------
    FileNotFoundError, ValueError
        One line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pyfai_config {path}: file not found")
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"pyfai_config {path}: not a pyFAI integration JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"pyfai_config {path}: not a pyFAI integration JSON (top level is not an object)")
    poni = config.get("poni")
    if isinstance(poni, str) and not Path(poni).is_absolute():  # v1: path of the PONI file
        config["poni"] = str(path.parent / poni)
    try:
        return normalize(config, inplace=False, do_raise=True)
    except Exception as exc:
        raise ValueError(f"pyfai_config {path}: {exc}") from None


def pyfai_geometry(path: str | Path) -> AzimuthalIntegrator:
    """The geometry (distance, PONI, rotations, wavelength, detector with its mask) of ``path``."""
    poni = read_pyfai_config(path).get("poni")
    if not poni:
        raise ValueError(f"pyfai_config {path}: no geometry ('poni')")
    try:
        return AzimuthalIntegrator.sload(poni)
    except Exception as exc:
        raise ValueError(f"pyfai_config {path}: bad geometry ({exc})") from None


def integration_keys(path: str | Path) -> dict[str, Any]:
    """gpuproc ``[integration]`` keys defined by the pyFAI configuration in ``path``.

    Paths are absolute; keys the file does not set are left out; ``unit`` may be a unit gpuproc
    does not take (2th_deg, ...), which :func:`merge_into` sorts out. See the module docstring.
    """
    path = Path(path)
    config = read_pyfai_config(path)
    keys: dict[str, Any] = {}
    if config.get("nbpt_rad"):
        keys["npt_q"] = int(config["nbpt_rad"])
    if config.get("nbpt_azim") and int(config["nbpt_azim"]) > 1:
        keys["npt_azimuth"] = int(config["nbpt_azim"])
    if config.get("unit") is not None:
        keys["unit"] = str(getattr(config["unit"], "name", config["unit"]))
        radial = _pair(config, "radial_range")
        if radial is not None:
            keys["q_range"] = radial  # in the file's unit
    for key, ours in (("mask_file", "mask"), ("dark_current", "dark"), ("flat_field", "flat")):
        image = _one_file(path, key, config.get(key))
        if image is not None:
            keys[ours] = image
    polarization = _polarization(path, config)
    if polarization is not None:
        keys["polarization_factor"] = polarization
    if config.get("correct_solid_angle") is not None:
        keys["solid_angle"] = bool(config["correct_solid_angle"])
    if config.get("method") is not None:
        keys["split"] = _split(config["method"])
    if config.get("val_dummy") is not None:  # without it pyFAI ignores delta_dummy too
        keys["dummy"] = float(config["val_dummy"])
        if config.get("delta_dummy") is not None:
            keys["delta_dummy"] = float(config["delta_dummy"])
    factor = config.get("normalization_factor")
    if factor is not None and float(factor) != 1.0:
        raise ValueError(f"pyfai_config {path}: normalization_factor {factor} is not supported (only 1)")
    return keys


def merge_into(section: dict[str, Any], base: Path) -> dict[str, Any]:
    """An ``[integration]`` table with the keys of its ``pyfai_config`` filled in.

    Keys given in the table win over the file's (as options on a command line win over a
    configuration file). ``pyfai_config`` is made absolute against ``base`` (the job file's
    folder).
    """
    if section.get("pyfai_config") is None:
        return section
    path = Path(section["pyfai_config"])
    path = path if path.is_absolute() else base / path
    keys = integration_keys(path)
    unit = keys.get("unit")
    if unit is not None and unit not in Q_UNITS and not {"unit", "q_range"} <= set(section):
        raise ValueError(f"pyfai_config {path}: radial unit {unit} is not a q unit ({', '.join(Q_UNITS)}); "
                         "set [integration] unit and q_range")
    if section.get("unit", unit) != unit:
        keys.pop("q_range", None)  # the file's range is in its own unit
    merged = {**keys, **section, "pyfai_config": str(path)}
    if "dummy" in section and "delta_dummy" not in section:
        merged.pop("delta_dummy", None)  # the job's dummy takes its own tolerance
    return merged


def _pair(config: dict[str, Any], key: str) -> tuple[float, float] | None:
    """``key`` as (lo, hi): the list itself or its ``_min``/``_max`` keys (older files)."""
    value = config.get(key)
    if value is None and config.get(key + "_min") is not None and config.get(key + "_max") is not None:
        value = (config[key + "_min"], config[key + "_max"])
    return None if value is None else (float(value[0]), float(value[1]))


def _one_file(path: Path, key: str, value: Any) -> str | None:
    """A single image file named by ``key`` (a string or a one-element list), made absolute."""
    if value in (None, "", []):
        return None
    files = [value] if isinstance(value, str) else list(value)
    if len(files) != 1:
        raise ValueError(f"pyfai_config {path}: {key} lists {len(files)} files; gpuproc takes one "
                         f"(average them into one image)")
    name = Path(files[0])
    return str(name if name.is_absolute() else path.parent / name)


def _polarization(path: Path, config: dict[str, Any]) -> float | None:
    """The polarisation factor, or None (no correction)."""
    description = config.get("polarization_description", config.get("polarization_factor"))
    if description is None:
        return None
    if isinstance(description, (list, tuple)):
        factor, offset = float(description[0]), float(description[1]) if len(description) > 1 else 0.0
    else:
        factor, offset = float(description), 0.0
    if offset != 0:
        raise ValueError(f"pyfai_config {path}: polarization offset {offset} is not supported (only 0)")
    return factor


def _split(method: Any) -> str:
    """The pixel splitting pyFAI would use for ``method`` in 2D ("pseudo" is "full" in CSR)."""
    method = Method.parsed(method) if isinstance(method, str) else Method(2, *tuple(method)[:3], None)
    chosen = IntegrationMethod.select_one_available(method, dim=2, default=AzimuthalIntegrator.DEFAULT_METHOD_2D)
    split = chosen.split_lower
    return "full" if split == "pseudo" else split
