"""A ready-to-run synthetic WAXS job: scan store, PONI, job file and ground truth on disk.

Used by ``gpuproc demo``, the tests and the benchmarks.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from gpuproc.io.store import write_scan
from gpuproc.synth.waxs import Reflection, SyntheticScan, make_waxs_scan

Q_MARGIN = 0.01  #: q_range reaches this fraction of its span beyond the outermost windows
MIN_BINS_PER_WINDOW = 8  #: q bins across the narrowest reflection window, at least
MIN_WINDOW_COVERAGE = 0.55  #: fraction of a window's pixels off the module gaps for it to be in the job
#: (the job's [fit] min_coverage, 0.5 of the cake bins, refuses less; a margin above it)


def write_demo_job(directory: str | Path, shape: tuple[int, int] = (12, 16), detector: str = "Pilatus100k",
                   seed: int = 0, *, npt_q: int = 300, npt_azimuth: int = 360, step_um: float = 0.3,
                   figures: bool = True, job_overrides: dict[str, Any] | None = None,
                   distinct_frames: int | None = None, **synth: Any) -> tuple[Path, SyntheticScan]:
    """Render a synthetic scan into ``directory`` and write ``job.toml`` that processes it.

    Returns the job file path and the :class:`~gpuproc.synth.waxs.SyntheticScan` (its ``truth``
    holds the ground-truth maps). Frames are rendered and written one at a time. The job lists the
    reflections whose windows are at least :data:`MIN_WINDOW_COVERAGE` on the detector's pixels
    (spots in module gaps are left out), and a cake q axis that holds all of them.
    ``distinct_frames``: render only the first that many frames and repeat them over the scan
    (large detectors and scans for memory and throughput benchmarks; the truth is then that of
    the first frames only).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    scan = make_waxs_scan(shape, detector=detector, seed=seed, **synth)
    distinct = scan.n_frames if distinct_frames is None else max(1, min(distinct_frames, scan.n_frames))
    rendered = [scan.frame(i)[None] for i in range(distinct)] if distinct < scan.n_frames else None
    frames = (scan.frame(i)[None] if rendered is None else rendered[i % distinct] for i in range(scan.n_frames))
    write_scan(frames, d / "scan.zarr", n_frames=scan.n_frames,
               frame_shape=scan.frame_shape, dtype=scan.dtype, scan_shape=scan.shape, step_um=(step_um, step_um),
               sources=[f"synthetic:{detector}:seed={seed}"], overwrite=True)
    scan.write_poni(d / "geometry.poni")
    scan.write_truth(d / "truth.npz")
    reflections = [r for r, c in zip(scan.reflections, scan.window_coverage) if c >= MIN_WINDOW_COVERAGE]
    job = {
        "job": {"output": "results.zarr", **({"figures": "figures"} if figures else {}), **(job_overrides or {})},
        "input": {"source": "scan.zarr"},
        "integration": {"poni": "geometry.poni", **cake_q_axis(reflections, npt_q), "npt_azimuth": npt_azimuth,
                        "polarization_factor": 0.99, "unit": "q_A^-1"},
        "reflections": [r.to_dict() for r in reflections],
    }
    path = d / "job.toml"
    path.write_text(_toml(job))
    return path, scan


def cake_q_axis(reflections: list[Reflection], npt_q: int) -> dict[str, Any]:
    """``q_range`` (A^-1) holding every reflection window with a margin of
    :data:`Q_MARGIN` of the span, and ``npt_q`` raised (if needed) so that the narrowest window
    spans at least :data:`MIN_BINS_PER_WINDOW` bins (SAXS windows on a 1M detector are ~0.03 A^-1)."""
    lo = min(r.q_range[0] for r in reflections)
    hi = max(r.q_range[1] for r in reflections)
    margin = Q_MARGIN * (hi - lo)
    q_range = [max(0.0, lo - margin), hi + margin]
    narrowest = min(r.q_range[1] - r.q_range[0] for r in reflections)
    bins = math.ceil(MIN_BINS_PER_WINDOW * (q_range[1] - q_range[0]) / narrowest)
    return {"q_range": q_range, "npt_q": max(npt_q, bins)}


def _toml(job: dict[str, Any]) -> str:
    """TOML text of a job dict (tables, arrays of tables, scalars and flat lists)."""
    import tomli_w

    return tomli_w.dumps(job)
