"""Mutation check (issue 15): plant one-line bugs, one at a time, in a temporary copy of the tree
and run the tests that should catch them; writes ``benchmarks/results/mutations.json``.

    python -m tests.mutate            # every mutation (~15-20 minutes on 2 cores)
    python -m tests.mutate -k monitor # those whose name contains a word

Not part of the CI run. The copy holds gpuproc/ (with its compiled extensions), kernels/, tests/,
examples/ and pyproject.toml; pytest runs there with ``PYTHONPATH=<copy>``, and the script
checks that the copy's package is the one imported (the first mutation is a sanity mutation
that any run must catch). A mutation whose old text is not found exactly once is an error, so
the list stays in sync with the code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutations.json"
COPY = ("gpuproc", "kernels", "tests", "examples", "pyproject.toml")
TIMEOUT_S = 600


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  #: file, relative to the repository root
    old: str  #: exact text, found exactly once
    new: str
    tests: tuple[str, ...]  #: pytest arguments (files, -k expressions)
    listed: bool = False  #: named in issue 15


PULLS_SPOT = ("tests/test_pulls_waxs.py", "-k", "per_reflection")
MUTATIONS = (
    Mutation("sanity: FWHM per sigma 10 % off", "gpuproc/waxs/derive.py",
             "FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))",
             "FWHM_PER_SIGMA = 2.2 * math.sqrt(2.0 * math.log(2.0))", ("tests/test_waxs_derive.py",)),
    # the "weights norm/signal instead of norm^2/signal": the spots are now Poisson fits
    # with multiplicity norm, so the same bug is a wrong multiplicity
    Mutation("WAXS weights (Poisson multiplicity) norm/signal instead of norm", "gpuproc/waxs/pipeline.py",
             "    return intensity, norm\n", "    return intensity, norm / np.maximum(signal, 1.0)\n", PULLS_SPOT, True),
    Mutation("WAXS spots fitted by least squares with the Poisson multiplicities", "gpuproc/waxs/pipeline.py",
             'max_iter=f.max_iter, estimator="poisson")', 'max_iter=f.max_iter, estimator="lsq")', PULLS_SPOT),
    Mutation("WAXS spots fitted at the bin centres, not their pixels' mean position",
             "gpuproc/waxs/broadening.py", "return ((q + offsets.mean_q[ix].ravel()).astype(np.float32),",
             "return ((q + 0.0 * offsets.mean_q[ix].ravel()).astype(np.float32),",
             ("tests/test_pulls_waxs.py", "-k", "superlattice")),
    Mutation("cake spread about the bin centre, not the bins' mean", "gpuproc/waxs/broadening.py",
             "var = np.bincount(dest, w * d * d, n_bins) / total - mean**2",
             "var = np.bincount(dest, w * d * d, n_bins) / total", ("tests/test_pulls_waxs.py", "tests/test_waxs_broadening.py")),
    Mutation("FWHM errors not scaled by 2.3548", "gpuproc/waxs/spot_checks.py",
             "k * np.asarray(res.errors)[:, j],", "np.asarray(res.errors)[:, j],", PULLS_SPOT, True),
    Mutation("a_err and b_err swapped", "gpuproc/waxs/pipeline.py",
             "a_err=lat.a_err, b=lat.b, b_err=lat.b_err", "a_err=lat.b_err, b=lat.b, b_err=lat.a_err",
             ("tests/test_pulls_waxs.py", "-k", "unequal_errors"), True),
    Mutation("disorder without its strain term", "gpuproc/waxs/derive.py",
             "return dq_size2 / q0**2 + strain2", "return dq_size2 / q0**2",
             ("tests/test_pulls_waxs.py", "-k", "map_pulls and disorder"), True),
    Mutation("disorder without the slope-intercept covariance", "gpuproc/waxs/derive.py",
             "shared = wh.slope_err**2 + 2.0 * m * wh.slope_intercept_cov + m**2 * wh.intercept_err**2",
             "shared = wh.slope_err**2 + m**2 * wh.intercept_err**2",
             ("tests/test_pulls_waxs.py", "-k", "map_pulls and disorder")),
    Mutation("disorder: one square root per reflection, then the mean", "gpuproc/waxs/derive.py",
             "value = xp.sqrt(xp.where(ok, mean_u, xp.nan))",
             "value = (w * xp.sqrt(xp.where(w > 0, xp.maximum(u, 0.0), 0.0))).sum(axis=-1) / total\n"
             "    value = xp.where(ok, value, xp.nan)", ("tests/test_waxs_disorder.py",)),
    Mutation("PL energy_err x 1.9", "gpuproc/pl/peaks.py",
             '"energy": pick(mu), "energy_err": pick(dmu),', '"energy": pick(mu), "energy_err": pick(1.9 * dmu),',
             ("tests/test_pulls_pl.py", "-k", "map_pulls and energy"), True),
    Mutation("PL area error without the amplitude-width covariance", "gpuproc/pl/peaks.py",
             "r.covariance if correlated else None)", "None)", ("tests/test_pulls_pl.py", "-k", "map_pulls and area")),
    Mutation("PL centroid background sign flipped", "gpuproc/pl/peaks.py",
             "xp.where(xp.isfinite(y), y - bg, 0.0)", "xp.where(xp.isfinite(y), y + bg, 0.0)",
             ("tests/test_pulls_pl.py", "-k", "centroid"), True),
    Mutation("binned-median centres on the bin edges", "gpuproc/waxs/stats.py",
             "return BinnedMedians(0.5 * (edges[:-1] + edges[1:]), medians, errors, counts)",
             "return BinnedMedians(edges[:-1], medians, errors, counts)",
             ("tests/test_statistics.py", "-k", "binned"), True),
    Mutation("resume ignoring a changed job", "gpuproc/io/results.py",
             "for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]",
             "for k in sorted(set(old) | set(new)) if False]", ("tests/test_safety_resume.py",), True),
    Mutation("snake scan order ignored", "gpuproc/io/store.py",
             'return scan_index(self.scan_shape, self.attrs["scan_order"])',
             'return scan_index(self.scan_shape, "row")', ("tests/test_waxs_paths.py", "-k", "snake"), True),
    Mutation("monitor multiplying instead of dividing", "gpuproc/waxs/pipeline.py",
             "return intensity / scale, norm * scale", "return intensity * scale, norm / scale",
             ("tests/test_waxs_paths.py", "-k", "monitor"), True),
    Mutation("PL pipeline without the Jacobian", "gpuproc/pl/pipeline.py",
             "jacobian=o.jacobian, per_channel=o.per_channel,", "jacobian=False, per_channel=False,",
             ("tests/test_pulls_pl.py", "-k", "map_pulls and energy"), True),
    # ---- own ----
    Mutation("cake broadening not removed from the widths", "gpuproc/waxs/spot_checks.py",
             "FWHM_PER_SIGMA * s) for j, s in zip(width_indices(res.model), cake_sigma)]",
             "0.0 * s) for j, s in zip(width_indices(res.model), cake_sigma)]", PULLS_SPOT),
    Mutation("orientation sense of the other spots flipped", "gpuproc/waxs/pipeline.py",
             "sense = 1.0 if abs(wrap_deg(seen - nominal)) <= abs(wrap_deg(seen + nominal)) else -1.0",
             "sense = -1.0 if abs(wrap_deg(seen - nominal)) <= abs(wrap_deg(seen + nominal)) else 1.0",
             ("tests/test_pulls_waxs.py", "-k", "map_pulls and orientation")),
    Mutation("dummy rule ignored (invalid pixels)", "gpuproc/waxs/invalid_pixels.py",
             "    if rule is not None:\n        lo, hi = rule.float32_interval()",
             "    if False:\n        lo, hi = rule.float32_interval()", ("tests/test_waxs_integrate.py",)),
    Mutation("lock not checked", "gpuproc/run/lock.py",
             "        if _link(path, holder):\n            break",
             "        if True:\n            break", ("tests/test_safety_lock.py",)),
    Mutation("noise model read noise dropped", "gpuproc/pl/noise.py",
             "v = self.gain * xp.maximum(signal, 0.0) + self.read_noise**2",
             "v = self.gain * xp.maximum(signal, 0.0)", ("tests/test_pl_noise.py",)),
    Mutation("instrumental width added instead of removed", "gpuproc/waxs/derive.py",
             "y = width**2 - instrumental_width(q0, instrumental) ** 2",
             "y = width**2 + instrumental_width(q0, instrumental) ** 2", ("tests/test_waxs_derive.py",)),
    Mutation("Pearson r of a with b's map", "gpuproc/waxs/pipeline.py",
             'corr = stats.size_correlations(maps["a"], maps["b"], maps["size"])',
             'corr = stats.size_correlations(maps["b"], maps["a"], maps["size"])',
             ("tests/test_statistics.py", "-k", "pearson")),
    Mutation("binned-median error without sqrt(pi/2)", "gpuproc/waxs/stats.py",
             "errors[i] = _MEDIAN_SE * group.std(ddof=1) / np.sqrt(group.size)",
             "errors[i] = group.std(ddof=1) / np.sqrt(group.size)",
             ("tests/test_waxs_derive.py", "tests/test_statistics.py", "-k", "binned")),
    Mutation("amplitude error halved", "gpuproc/waxs/pipeline.py",
             '"amplitude": (res["amplitude"], res.error("amplitude")),',
             '"amplitude": (res["amplitude"], 0.5 * res.error("amplitude")),', PULLS_SPOT),
    Mutation("SAXS a_i = pi / q", "gpuproc/waxs/derive.py", "    a = TWO_PI / q_dir", "    a = math.pi / q_dir",
             ("tests/test_pulls_waxs.py", "-k", "superlattice")),
    Mutation("PL FWHM reported as sigma", "gpuproc/pl/peaks.py",
             '"peak_energy": mu, "peak_energy_err": dmu, "peak_fwhm_mev": 1e3 * fwhm,',
             '"peak_energy": mu, "peak_energy_err": dmu, "peak_fwhm_mev": 1e3 * fwhm / FWHM_PER_SIGMA,',
             ("tests/test_pulls_pl.py", "-k", "per_peak")),
    Mutation("PL time-series errors are variances", "gpuproc/pl/timeseries.py",
             "err = np.sqrt(np.diag(cov)) if np.all(np.isfinite(cov)) else np.full(n_par, np.inf)",
             "err = np.diag(cov) if np.all(np.isfinite(cov)) else np.full(n_par, np.inf)",
             ("tests/test_pulls_pl.py", "-k", "time_constant")),
)


def make_copy(dest: Path) -> None:
    """The parts of the tree the tests need, without caches or build folders."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    env.pop("CI", None)
    return env


def check_imports_copy(copy: Path) -> None:
    """The copy's gpuproc (not the editable install of the checkout) is what runs there."""
    out = subprocess.run([sys.executable, "-c", "import gpuproc; print(gpuproc.__file__)"], cwd=copy,
                         env=environment(copy), capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(copy.resolve()):
        raise RuntimeError(f"the copy imports {out}, not its own package")


def apply(copy: Path, m: Mutation) -> str:
    """Plant ``m`` in the copy; returns the original text of the file."""
    path = copy / m.path
    text = path.read_text()
    if text.count(m.old) != 1:
        raise ValueError(f"{m.path}: the old text of {m.name!r} is found {text.count(m.old)} times, not once: "
                         f"{m.old!r}")
    path.write_text(text.replace(m.old, m.new))
    return text


def run_tests(copy: Path, m: Mutation) -> tuple[bool, str | None, str]:
    """(caught, the test that caught it, output tail)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-W", "ignore", *m.tests]
    try:
        r = subprocess.run(cmd, cwd=copy, env=environment(copy), capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return True, "timeout", ""
    out = r.stdout + r.stderr
    if r.returncode in (4, 5):  # usage error, no tests collected: the list is out of sync
        raise RuntimeError(f"{m.name}: pytest {' '.join(m.tests)} collected nothing or failed to start:\n{out[-2000:]}")
    hit = re.search(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    return r.returncode != 0, hit.group(1) if hit else None, out[-1500:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", default="", help="run only the mutations whose name contains this text")
    args = ap.parse_args()
    chosen = [m for m in MUTATIONS if args.k.lower() in m.name.lower()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpuproc-mutate-") as tmp:
        copy = Path(tmp)
        make_copy(copy)
        check_imports_copy(copy)
        for m in chosen:
            original = apply(copy, m)
            t0 = time.perf_counter()
            try:
                caught, by, tail = run_tests(copy, m)
            finally:
                (copy / m.path).write_text(original)
            seconds = round(time.perf_counter() - t0, 1)
            rows.append({"mutation": m.name, "file": m.path, "old": m.old, "new": m.new, "listed_in_issue": m.listed,
                         "tests": " ".join(m.tests), "caught": caught, "caught_by": by, "seconds": seconds})
            print(f"{'caught ' if caught else 'MISSED '} {seconds:6.1f} s  {m.name}  ({by})", flush=True)
            if not caught:
                print(tail)
    if not rows[0]["caught"] and chosen[0] is MUTATIONS[0]:
        raise SystemExit("the sanity mutation was not caught: the copy's package is not the one tested")
    if not args.k:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from common import machine  # benchmarks/common.py: date, packages, git commit of the checkout

        RESULTS.write_text(json.dumps({"machine": machine(), "tree": "the checkout's working tree, copied",
                                       "caught": sum(r["caught"] for r in rows), "total": len(rows),
                                       "mutations": rows}, indent=2) + "\n")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
