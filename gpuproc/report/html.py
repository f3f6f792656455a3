"""A self-contained ``report.html`` of a results store: its figures (redrawn, embedded as base64
PNG), the statistics, the fit-status summary and the provenance, so that it can be mailed or
attached to an e-logbook.

:func:`write_report` works on any finished store of either pipeline (``attrs["gpuproc_results"]``
says which); ``gpuproc report RESULTS -o DIR`` calls it, and so do ``waxs run`` / ``pl run`` when
``[job] figures`` is set.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from gpuproc import __version__
from gpuproc.fit import Status

__all__ = ["draw_figures", "write_report"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}
th{background:#eee}td.l,th.l{text-align:left}figure{display:inline-block;width:47%;margin:0.5em;vertical-align:top}
img{width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:0.6em;overflow-x:auto;font-size:80%}"""


def draw_figures(group: zarr.Group, folder: str | Path) -> list[Path]:
    """Redraw every figure of a results store into ``folder``; returns the PNG paths.

    Parameters
    ----------
    group : zarr.Group
        A finished results store (read only).
    folder : path
        Output folder (created).
    """
    pipeline = group.attrs.get("gpuproc_results", "")
    if pipeline == "waxs":
        from gpuproc.waxs.figures import write_figures

        return write_figures(group, folder)
    if pipeline == "pl":
        from gpuproc.report.pl import store_figures
        from gpuproc.report.pl_spectra import example_spectra

        Path(folder).mkdir(parents=True, exist_ok=True)
        paths = store_figures(group, folder)
        examples = example_spectra(group, folder) if group.attrs.get("mode", "map") == "map" else None
        return paths + ([examples] if examples is not None else [])
    raise ValueError(f"{group.store}: not a gpuproc results store (attribute gpuproc_results is {pipeline!r})")


def write_report(results: str | Path, folder: str | Path) -> Path:
    """Redraw the figures of ``results`` into ``folder`` and write ``folder/report.html``.

    Parameters
    ----------
    results : path
        A finished results store (Zarr folder) of ``waxs run`` or ``pl run``.
    folder : path
        Output folder for the PNGs and ``report.html`` (created).

    Returns
    -------
    Path
        The report written.
    """
    results, folder = Path(results), Path(folder)
    try:
        group = zarr.open_group(results, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise FileNotFoundError(f"{results}: no results store there") from exc
    if not group.attrs.get("complete", False):
        raise ValueError(f"{results}: the run that writes this store has not finished (complete = False)")
    figures = draw_figures(group, folder)
    attrs = dict(group.attrs)
    body = [f"<h1>gpuproc {html.escape(attrs.get('gpuproc_results', ''))} report</h1>",
            f"<p>Results: <code>{html.escape(str(results.resolve()))}</code><br>Report written "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} by gpuproc {html.escape(__version__)}</p>",
            "<h2>Figures</h2>", *(_figure(p) for p in figures),
            "<h2>Statistics</h2>", *_statistics(group),
            "<h2>Fit status</h2>", _status_table(group),
            "<h2>Run</h2>", _run_summary(attrs),
            "<h2>Timings</h2>", _timings(attrs),
            "<h2>Provenance</h2>", *_provenance(attrs)]
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gpuproc report: "
            f"{html.escape(results.name)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    out = folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _figure(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    name = html.escape(Path(path).name)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{name}">'
            f"<figcaption>{name}</figcaption></figure>")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{html.escape(str(h))}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i == 0 else ""}">{html.escape(_fmt(v))}</td>'
                                    for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return "NaN" if not np.isfinite(value) else f"{float(value):.6g}"
    return str(value)


def _statistics(group: zarr.Group) -> list[str]:
    """Tables of the stored statistics: map quartiles, global WH, Pearson r, power law (WAXS);
    energy quartiles, sample counts, event time constants (PL)."""
    stats = json.loads(group.attrs.get("statistics", "{}") or "{}")
    out = []
    if "summary" in group:
        names, fields = group["quantity"][...], group["statistic"][...]
        units = [group[str(n)].attrs.get("units", "") if str(n) in group else "" for n in names]
        out.append(_table(["map", "unit", *map(str, fields)],
                          ([str(n), u, *row] for n, u, row in zip(names, units, np.asarray(group["summary"][...])))))
    if "global_williamson_hall" in stats:
        g = stats["global_williamson_hall"]
        out.append("<h3>Global Williamson\u2013Hall (medians per reflection)</h3>"
                   + _table(["quantity", "value"], [("size (nm)", g["size_nm"]), ("strain (%)", 100 * g["strain"]),
                                                    ("slope", g["slope"]), ("intercept", g["intercept"]),
                                                    ("flag", g["flag"])]))
    if "pearson" in stats:
        out.append("<h3>Pearson r with the crystallite size</h3>" + _table(
            ["parameter", "r", "p value", "n"], ((k, v["r"], v["p_value"], v["n"]) for k, v in stats["pearson"].items())))
    laws = {k: v for k, v in stats.get("power_law", {}).items() if "a0" in v}
    if laws:
        out.append("<h3>Power law a \u2212 a0 = C s^\u2212\u03b1 (binned medians)</h3>" + _table(
            ["parameter", "a0", "\u00b1", "C", "\u00b1", "\u03b1", "\u00b1"],
            ((k, v["a0"], v["a0_err"], v["C"], v["C_err"], v["alpha"], v["alpha_err"]) for k, v in laws.items())))
    if "energy_quartiles" in group:
        q = np.asarray(group["energy_quartiles"][...], dtype=float)
        rows = [(f"peak energy, quantile {qq:g} (eV)", v) for qq, v in zip(group["quantile"][...], q)]
        rows += [(k, group.attrs[k]) for k in ("n_sample", "n_no_peak", "n_nonfinite", "noise_gain",
                                                "noise_read_noise", "noise_bias", "noise_source") if k in group.attrs]
        out.append(_table(["quantity", "value"], rows))
    if "event_time" in group:
        cols = ["event_time", "event_label", "event_model", "event_shift_fast_mev", "event_tau_fast",
                "event_tau_fast_err", "event_shift_slow_mev", "event_tau_slow", "event_tau_slow_err", "event_chi2"]
        data = [group[c][...] for c in cols]
        out.append("<h3>Event responses</h3>" + _table(
            ["time (s)", "label", "model", "fast shift (meV)", "\u03c4 fast (s)", "\u00b1", "slow shift (meV)",
             "\u03c4 slow (s)", "\u00b1", "\u03c7\u00b2"], zip(*data)))
    return out or ["<p>No statistics stored.</p>"]


def _status_table(group: zarr.Group) -> str:
    """Counts per fit status: per reflection (WAXS ``fit_status``) or over the spectra (PL ``status``)."""
    name = "fit_status" if "fit_status" in group else "status"
    codes = np.asarray(group[name][...])
    if name == "fit_status":
        labels = [str(r) for r in group["reflection"][...]]
        per = [codes[i] for i in range(codes.shape[0])]
    else:
        labels, per = ["all spectra"], [codes]
    present = [s for s in Status if any((c == s).any() for c in per)]
    return _table(["", *(s.name for s in present), "total"],
                  ([lab, *(int((c == s).sum()) for s in present), int(c.size)] for lab, c in zip(labels, per)))


def _run_summary(attrs: dict[str, Any]) -> str:
    summary = attrs.get("run_summary")
    if not summary:
        return "<p>No run summary stored (it is recorded when the run returns).</p>"
    data = json.loads(summary) if isinstance(summary, str) else summary
    return _table(["quantity", "value"], ((k, json.dumps(v) if isinstance(v, (dict, list)) else v)
                                          for k, v in data.items()))


#: the stages a run records in ``attrs["timings"]["stages_s"]`` (gpuproc.run.timings), in the order they run
STAGES = ("setup", "read", "integrate", "preprocess", "fit", "derive", "write", "finalize", "figures")
ITEMS = {"waxs": "frames", "pl": "spectra"}  #: what a run's ``items`` count


def _timings(attrs: dict[str, Any]) -> str:
    """Seconds per stage (with its share of the wall time), the work done in background threads,
    wall time and throughput, from the ``timings`` attribute; a note when there is none."""
    timings = attrs.get("timings")
    if not timings:
        return ("<p>Per-stage timings not recorded (a run records them as it returns, after writing its "
                "own report: <code>gpuproc report</code> shows them).</p>")
    data = json.loads(timings) if isinstance(timings, str) else dict(timings)
    stages = dict(data.get("stages_s") or {})
    wall = float(data.get("wall_s", np.nan))

    def share(seconds: float) -> float:
        return 100.0 * seconds / wall if wall > 0 else np.nan

    names = [s for s in STAGES if s in stages] + sorted(set(stages) - set(STAGES))
    rows = [(s, float(stages[s]), share(float(stages[s]))) for s in names]
    rows += [(f"{s} (background)", float(v), share(float(v))) for s, v in (data.get("background_s") or {}).items()]
    rows.append(("wall", wall, share(wall)))
    items, what = data.get("items"), ITEMS.get(attrs.get("gpuproc_results", ""), "items")
    notes = [f"{data['blocks']} blocks" if "blocks" in data else "",
             f"{items} {what}, {float(items) / wall:.4g} per s" if items and wall > 0 else "",
             f"{data['workers']} workers" if data.get("workers", 1) > 1 else ""]
    if "figures" not in stages:  # a run's own report: drawn after the timings were recorded
        notes.append("figures: drawing this report, recorded in the store afterwards")
    note = ", ".join(n for n in notes if n)
    return _table(["stage", "time (s)", "% of wall"], rows) + (f"<p>{html.escape(note)}</p>" if note else "")


def _provenance(attrs: dict[str, Any]) -> list[str]:
    config = attrs.get("config", "{}")
    config = json.loads(config) if isinstance(config, str) else config
    inputs = attrs.get("inputs", {}) or {}
    return ["<h3>Versions</h3>", _table(["package", "version"], sorted((attrs.get("versions") or {}).items())),
            "<h3>Input fingerprints</h3>",
            _table(["input", "fingerprint"], sorted(inputs.items())) if inputs else "<p>None recorded.</p>",
            "<h3>Job</h3>", f"<pre>{html.escape(json.dumps(config, indent=2, sort_keys=True))}</pre>"]
