"""What a finished run did: fits attempted, converged and per status, positions flagged, wall time.

:func:`gpuproc.run.executor.execute` (``run_waxs``, ``run_pl``) and the array route's finalize
step count the statuses in the finished results store, record the summary in its ``run_summary``
attribute (JSON), and return the store's path as a :class:`RunResult`: a :class:`pathlib.Path`
(so existing code keeps working) whose ``summary`` is the :class:`RunSummary`.
:func:`read_summary` reads it back from any finished store.

A fit *failed* when its status is neither ``CONVERGED`` nor ``NO_PEAK`` (a significant absence of
a peak is a measurement). In a PL store a spectrum without an admissible peak (``n_peaks`` 0: a
dark pixel) is such an absence whatever its one-peak fit's status, unless its counts were not
finite (``flag`` bit 1): PL cannot tell a failed fit of a peak from no peak. More than ``[job] allow_failed_fraction`` failed fits (default
:data:`DEFAULT_ALLOWED_FAILED_FRACTION`) make the run raise :class:`TooManyFailedFits` after the
results are written; the CLI then exits with status 1.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from gpuproc.fit import Status

#: default ``[job] allow_failed_fraction``: a run with more failed fits than this is an error
DEFAULT_ALLOWED_FAILED_FRACTION = 0.5
#: the store variable holding one status per fit: WAXS ``fit_status`` (reflection, y, x), PL ``status``
STATUS_VARIABLES = ("fit_status", "status")
#: statuses that are measurements (everything else counts as failed)
MEASURED = (Status.CONVERGED, Status.NO_PEAK)
#: dimensions that index scan positions (maps) or time points (time series)
#: PL ``flag`` bit of a spectrum with non-finite counts (gpuproc.pl.pipeline.FLAG_NONFINITE): failed
FLAG_NONFINITE = 1
POSITION_DIMS = ("y", "x", "time")
ATTRIBUTE = "run_summary"  #: group attribute of the results store holding the summary (JSON)


@dataclass(frozen=True)
class RunSummary:
    """Counts over the fits of a finished run.

    Attributes
    ----------
    fits : int
        Fits attempted (WAXS: reflections x positions; PL: spectra, the chosen fit of each).
    converged : int
        Fits with status ``CONVERGED``.
    by_status : dict of str to int
        Fits per :class:`gpuproc.fit.Status` name (only statuses that occur).
    failed : int
        Fits whose status is not in :data:`MEASURED` (PL: see the module docstring).
    positions : int
        Scan positions (or time points).
    positions_flagged : int
        Positions with at least one fit not ``CONVERGED`` or a non-zero ``flag`` (PL).
    wall_s : float
        Wall time of the invocation that finished the run, s (a resumed run: the last part only).
    """

    fits: int
    converged: int
    by_status: dict[str, int]
    failed: int
    positions: int
    positions_flagged: int
    wall_s: float

    @property
    def failed_fraction(self) -> float:
        """``failed / fits`` (0 for a run without fits)."""
        return self.failed / self.fits if self.fits else 0.0

    def text(self) -> str:
        """The summary as the CLI prints it (a few lines)."""
        statuses = ", ".join(f"{k} {v}" for k, v in self.by_status.items())
        return (f"fits: {self.fits} attempted, {self.converged} converged, {self.failed} failed "
                f"({100 * self.failed_fraction:.1f} %)\n"
                f"status: {statuses}\n"
                f"positions: {self.positions}, {self.positions_flagged} flagged\n"
                f"wall time: {self.wall_s:.1f} s")


class RunResult(type(Path())):  # type: ignore[misc]  # the concrete Path class of this OS (3.11 has no Path subclassing)
    """The results store's path, carrying the run's :class:`RunSummary` as ``summary``.

    Paths derived from it (``result / "x"``, ``result.parent``) are plain paths without a summary.
    """

    summary: RunSummary

    @classmethod
    def of(cls, path: str | Path, summary: RunSummary) -> RunResult:
        """``path`` as a RunResult with ``summary``."""
        out = cls(path)
        out.summary = summary
        return out


class TooManyFailedFits(RuntimeError):
    """More fits failed than ``[job] allow_failed_fraction`` allows; raised after the results are
    written. ``result`` is the :class:`RunResult`."""

    def __init__(self, result: RunResult, allowed: float) -> None:
        s = result.summary
        super().__init__(f"{result}: {s.failed} of {s.fits} fits failed ({100 * s.failed_fraction:.1f} %), more "
                         f"than [job] allow_failed_fraction = {allowed}; the results are written, raise "
                         "allow_failed_fraction to accept such a run")
        self.result = result


def summarize(path: str | Path, wall_s: float) -> RunSummary:
    """Count the statuses in the results store ``path``.

    Parameters
    ----------
    path : str or Path
        A results store whose blocks are all written.
    wall_s : float
        Wall time to record, s.
    """
    g = zarr.open_group(str(path), mode="r", use_consolidated=False)
    name = next((n for n in STATUS_VARIABLES if n in g), None)
    if name is None:
        raise ValueError(f"{path}: no fit status variable ({' or '.join(STATUS_VARIABLES)}) in the results store")
    status = np.asarray(g[name][...])
    fit_axes = _non_position_axes(g[name])
    not_converged = status != Status.CONVERGED
    flagged = not_converged.any(axis=fit_axes) if fit_axes else not_converged
    failed = ~np.isin(status, [int(s) for s in MEASURED])
    if "n_peaks" in g:  # PL: one fit per spectrum, the same shape
        failed &= np.asarray(g["n_peaks"][...]) != 0
    if "flag" in g:
        flag = np.asarray(g["flag"][...])
        flagged = flagged | (flag != 0)
        failed |= (flag & FLAG_NONFINITE) != 0
    codes, counts = np.unique(status, return_counts=True)
    by_status = {_status_name(c): int(n) for c, n in zip(codes, counts)}
    return RunSummary(fits=int(status.size), converged=int((~not_converged).sum()), by_status=by_status,
                      failed=int(failed.sum()), positions=int(flagged.size), positions_flagged=int(flagged.sum()),
                      wall_s=float(wall_s))


def _non_position_axes(array: Any) -> tuple[int, ...]:
    dims = array.metadata.dimension_names or ()
    return tuple(i for i, d in enumerate(dims) if d not in POSITION_DIMS)


def _status_name(code: int) -> str:
    try:
        return Status(int(code)).name
    except ValueError:
        return "NOT_WRITTEN" if code == 255 else str(int(code))


def record(path: str | Path, summary: RunSummary) -> RunResult:
    """Store ``summary`` in the ``run_summary`` attribute of ``path`` (metadata reconsolidated)."""
    g = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    g.attrs[ATTRIBUTE] = json.dumps(asdict(summary))
    with warnings.catch_warnings():  # consolidated metadata is a zarr-python v3 extension xarray reads
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(str(path))
    return RunResult.of(path, summary)


def read_summary(path: str | Path) -> RunSummary:
    """The :class:`RunSummary` recorded in a finished results store.

    Raises
    ------
    ValueError
        If the store has none (not finished, or written before summaries were recorded).
    """
    text = zarr.open_group(str(path), mode="r").attrs.get(ATTRIBUTE)
    if text is None:
        raise ValueError(f"{path}: no run summary recorded (the run has not finished)")
    return RunSummary(**json.loads(text))


def stored_result(path: str | Path) -> RunResult:
    """A finished store as a :class:`RunResult`: its recorded summary, or (a store written before
    summaries were recorded) its statuses counted now, with wall time 0."""
    try:
        return RunResult.of(path, read_summary(path))
    except ValueError:
        return record(path, summarize(path, 0.0))


def check_failed_fraction(result: RunResult, allowed: float) -> RunResult:
    """``result``, or :class:`TooManyFailedFits` if its failed fraction exceeds ``allowed``."""
    if result.summary.failed_fraction > allowed:
        raise TooManyFailedFits(result, allowed)
    return result
