"""Spectra in delimited text: vendor exports with preambles, headers and metadata footers.

The table is the longest run of consecutive numeric rows with the same number of fields
(tab, semicolon, comma or whitespace separated; a trailing separator is ignored; decimal commas
are read unless the comma separates). What comes
before it (a preamble: LightField, Ocean Optics, a SPE-to-text export) and after it (a footer:
Andor Solis ``.asc``) is read as ``Key: value`` metadata. A non-numeric line right before the
table with one name per column is the header; its axis name gives the unit (``energy_eV``,
``Wavelength (nm)``, ``Raman Shift (cm-1)``, ``#Wave``; a bare ``Energy`` is eV, a bare
``Raman shift`` cm^-1).

Orientation: the axis is the first column (one spectrum per further column) or, when only the
first row is strictly monotonic or it is the longer candidate, the first row (one spectrum per
further row, as in LumiSpy's ``Background-*.txt``). Rows that start with a label (``Wavelength
w1 w2 ...``, ``Frame 1 c1 c2 ...``: SPE_Handler's export) are read the same way, the first row's
label giving the unit. WiRE's long map exports (``#X #Y #Wave #Intensity``, one line per
channel) become a map with the X/Y steps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from gpuproc.io.axis_units import spectral_unit

_SEPARATORS = ("\t", ";", ",", None)
_NAMED_UNITS = (("raman", "cm-1"), ("shift", "cm-1"), ("wavenumber", "cm-1"), ("energy", "eV"),
                ("wavelength", "nm"), ("lambda", "nm"))


def read_text(p: Path, data_path: str, axis_path: str) -> tuple[np.ndarray, np.ndarray, str | None, dict[str, Any]]:
    """Delimited text (see the module docstring): ``(data, axis, unit, metadata)``."""
    lines = p.read_text(errors="replace").splitlines()
    sep = _separator(lines)
    start, stop, table = _table(lines, sep)
    labels, rest = zip(*(_label(ln, sep) for ln in lines)) if lines else ((), ())
    l_start, l_stop, l_table = _table(list(rest), sep)
    if l_table is not None and (table is None or l_table.size > table.size):
        return _labelled_rows(p, l_table, list(labels[l_start:l_stop]), lines[:l_start] + lines[l_stop:])
    if table is None:
        raise ValueError(f"{p}: no numeric table (rows of numbers) found")
    header = _header(lines[:start], sep, table.shape[1])
    meta: dict[str, Any] = {"vendor": _key_values(lines[:start] + lines[stop:])}
    if header is not None:
        meta["columns"] = header
    long = _long_map(p, table, header)
    if long is not None:
        data, axis, step = long
        meta["step_um"] = step
        return data, axis, _unit_of(header[2]), _standard(meta)
    axis_first_row = _row_oriented(table)
    if axis_first_row:
        axis, data = table[0], table[1:]
        unit = None
    else:
        axis, data = table[:, 0], table[:, 1:].T
        unit = _unit_of(header[0]) if header else None
    if data.shape[0] == 1:
        data = data.reshape(1, 1, -1)
    return data, axis, unit, _standard(meta)


def _labelled_rows(p: Path, table: np.ndarray, labels: list[str],
                   other: list[str]) -> tuple[np.ndarray, np.ndarray, str | None, dict[str, Any]]:
    """Rows ``label value value ...``: the first row (``Wavelength``, ``Energy (eV)``) the axis,
    each further row one spectrum (SPE_Handler's and similar row exports)."""
    unit = _unit_of(labels[0])
    if unit is None and not any(w in labels[0].lower() for w in ("wave", "axis", "x")):
        raise ValueError(f"{p}: rows labelled {labels[:3]}...: the first row is not a spectral axis")
    data = table[1:]
    meta = _standard({"vendor": _key_values(other), "rows": labels[1:]})
    return (data.reshape(1, 1, -1) if data.shape[0] == 1 else data), table[0], unit, meta


def _label(line: str, sep: str | None) -> tuple[str, str]:
    """``(label, rest)`` of a row whose first field is a name and the rest numbers, else ``("", line)``."""
    head, _, rest = line.strip().partition(sep or " ")
    if sep is None and head and not head[0].isdigit():  # "Frame 1 ..." with whitespace: a two-word label
        word, _, after = rest.strip().partition(" ")
        if word.isdigit() and _numbers(after, sep) is not None:
            return f"{head} {word}", after
    if head and _numbers(head, sep) is None and _numbers(rest, sep) is not None:
        return head.strip(), rest
    return "", line


def _separator(lines: list[str]) -> str | None:
    sample = [ln for ln in lines if ln.strip() and ln.strip()[0] in "+-.0123456789"][:50] or lines[:50]
    for sep in _SEPARATORS[:-1]:
        if sep in "".join(sample):
            return sep
    return None


def _numbers(line: str, sep: str | None) -> list[float] | None:
    """The numbers of a row, or None; decimal commas are read where the separator is not a comma."""
    fields = line.strip().strip(sep or " ").split(sep)
    try:
        return [float(f) for f in fields]
    except ValueError:
        if sep == ",":
            return None
    try:
        return [float(f.replace(",", ".")) for f in fields]
    except ValueError:
        return None


def _table(lines: list[str], sep: str | None) -> tuple[int, int, np.ndarray | None]:
    """Start and stop line of the longest run of numeric rows of one width, and the rows."""
    best: tuple[int, int, int] = (0, 0, 0)  # size, start, stop
    run_start, width, rows = 0, -1, 0
    for i, line in enumerate([*lines, ""]):
        values = _numbers(line, sep) if line.strip() else None
        if values is not None and len(values) == width:
            rows += 1
            continue
        if rows * width > best[0]:
            best = (rows * width, run_start, run_start + rows)
        run_start, width, rows = i, (len(values) if values is not None else -1), (1 if values is not None else 0)
    size, start, stop = best
    if size == 0:
        return 0, 0, None
    return start, stop, np.array([_numbers(ln, sep) for ln in lines[start:stop]], dtype=np.float64)


def _header(before: list[str], sep: str | None, width: int) -> list[str] | None:
    """Column names: the last non-empty line before the table, if it has one name per column."""
    for line in reversed(before):
        if line.strip():
            names = [n.strip() for n in line.strip().strip(sep or " ").split(sep) if n.strip()]
            return names if len(names) == width else None
    return None


def _key_values(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        key, colon, value = line.partition(":")
        if colon and key.strip() and value.strip():
            out[key.strip()] = value.strip()
    return out


def _unit_of(name: str) -> str | None:
    """Unit of an axis column named ``name`` (None when it names none)."""
    tokens = [t for t in re.split(r"[\s_()\[\]{}#,;=]+", name.lower()) if t]
    for token in reversed(tokens):
        if spectral_unit(token) is not None:
            return token
    for word, unit in _NAMED_UNITS:
        if word in name.lower():
            return unit
    return None


def _monotonic(v: np.ndarray) -> bool:
    d = np.diff(v)
    return v.size >= 2 and bool(np.all(d > 0) or np.all(d < 0))


def _row_oriented(table: np.ndarray) -> bool:
    col, row = _monotonic(table[:, 0]) and table.shape[1] >= 2, _monotonic(table[0]) and table.shape[0] >= 2
    return row and (not col or table.shape[1] > table.shape[0])


def _long_map(p: Path, table: np.ndarray,
              header: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[float]] | None:
    """WiRE long export ``X Y Wave Intensity``: (ny, nx, n_channels) counts, axis, [dy, dx] um."""
    if header is None or len(header) != 4:
        return None
    names = [h.lstrip("#").strip().lower() for h in header]
    if names[:2] != ["x", "y"] or not names[3].startswith("intens"):
        return None
    xs, ys = np.unique(table[:, 0]), np.unique(table[:, 1])
    n_ch = table.shape[0] // (xs.size * ys.size)
    if n_ch * xs.size * ys.size != table.shape[0]:
        raise ValueError(f"{p}: X/Y/Wave/Intensity export: {table.shape[0]} lines do not fill a {ys.size} x {xs.size} "
                         "map with one spectrum per position")
    order = np.lexsort((table[:, 2], table[:, 0], table[:, 1]))  # y, then x, then wave
    t = table[order]
    data = t[:, 3].reshape(ys.size, xs.size, n_ch)
    axis = t[:n_ch, 2]
    raw_axis = table[:n_ch, 2]
    if raw_axis[0] > raw_axis[-1]:  # keep the file's channel order
        data, axis = data[..., ::-1], axis[::-1]
    step = [float(np.diff(ys).mean()) if ys.size > 1 else 1.0, float(np.diff(xs).mean()) if xs.size > 1 else 1.0]
    return data, axis, step


def _standard(meta: dict[str, Any]) -> dict[str, Any]:
    """The vendor keys gpuproc uses, under its own names (laser_nm, exposure_s, time_step_s)."""
    for key, value in meta["vendor"].items():
        k = key.lower()
        number = _leading_float(value)
        if number is None:
            continue
        if "laser" in k and ("wavelength" in k or "nm" in k) or "excitation wavelength" in k:
            meta.setdefault("laser_nm", number)
        elif k.startswith("exposure time"):
            meta.setdefault("exposure_s", number * (1e-3 if "(ms)" in k else 1.0))
        elif "kinetic cycle time" in k:
            meta.setdefault("time_step_s", number)
    return meta


def _leading_float(text: str) -> float | None:
    m = re.match(r"\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", text)
    return float(m.group(1)) if m else None
