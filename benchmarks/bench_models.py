"""What automatic derivatives cost: a dual-number user model against the hand-derived built-in
that computes the same function, in fits per second through the same engine.

Pairs (Poisson noise, seeded; the user models are the test headers of tests/user_models/):
  PL-like    : 1024 channels, gauss1d (1 peak, linear background) vs user ``gauss_linear`` (5 parameters)
  Bragg-like : 40 x 60 (q, azimuth) window, gauss2d_polar vs user ``spot_polar`` (7 parameters)
Both fit the same data from the same starting values (the built-in's guess). Set-up is timed
apart: the user model's compilation (system C++ compiler, into an empty cache) and the first call.
Timing by benchmarks/common.py (one untimed warm-up each, median of ``--repeats`` alternating runs).
CPU always, GPU too when CuPy sees one. Writes benchmarks/results/models_<device>.json.

    python benchmarks/bench_models.py [--quick] [--repeats 5] [--force]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "user_models"))
import models as user_models  # noqa: E402
from common import Contender, Session, add_arguments, compare, fresh_cache, ratio, timed_setup  # noqa: E402
from fit_problems import bragg_problem, pl_problem  # noqa: E402

from gpuproc.backend import gpu_available  # noqa: E402
from gpuproc.fit import fit, get_model  # noqa: E402


def bench(name: str, builtin, user, x: Any, y: np.ndarray, device: str, repeats: int) -> dict[str, Any]:
    """Built-in and user model on the same problems, timed alike; their agreement in sigma."""
    xs = np.stack(x) if isinstance(x, tuple) else x[None]
    p0 = builtin.guess(xs, y, np.ones(y.shape[1], np.float32))
    sync = None
    if device == "gpu":
        import cupy

        y, p0, x = cupy.asarray(y), cupy.asarray(p0), tuple(cupy.asarray(c) for c in x) if isinstance(x, tuple) \
            else cupy.asarray(x)
        sync = cupy.cuda.Device().synchronize
    _, compile_s = timed_setup(user.compile)

    def run(model):
        return lambda: fit(model, y, x, p0=p0, estimator="poisson", device=device)

    contenders = []
    for label, model in (("builtin", builtin), ("dual", user)):
        _, setup = timed_setup(lambda m=model: fit(m, y[:64], x, p0=p0[:64], estimator="poisson", device=device))
        contenders.append(Contender(label, run(model), len(y), setup, sync))
    timing = compare(contenders, repeats)
    ours, theirs = contenders[1].last.get(), contenders[0].last.get()
    ok = ours.ok & theirs.ok
    sigmas = np.abs(ours.params[ok] - theirs.params[ok]) / np.where(theirs.errors[ok] > 0, theirs.errors[ok], 1)
    cost = ratio(timing["builtin"], timing["dual"])  # dual's time per fit over the built-in's
    row = {
        "problem": name, "device": device, "n_points": int(y.shape[1]), "n_params": builtin.n_params,
        "builtin": timing["builtin"], "dual": timing["dual"],
        "user_model_compile_s": compile_s,
        "dual_time_over_builtin": cost,
        "same_status_fraction": float(np.mean(ours.status == theirs.status)),
        "max_param_difference_in_sigma": float(sigmas.max()) if ok.any() else None,
    }
    print(f"{name:6s} {device}: built-in {timing['builtin']['items_per_s']:10.0f} fits/s   dual {timing['dual']['items_per_s']:10.0f}"
          f" fits/s   dual/built-in time {cost['median']:.2f}x ({cost['low']:.2f}-{cost['high']:.2f})   compile {compile_s:.1f} s   "
          f"same status {row['same_status_fraction']:.4f}   max |diff| {row['max_param_difference_in_sigma']:.3f} sigma",
          flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = add_arguments(ap).parse_args()
    fresh_cache()  # the user models compile from scratch (their set-up)
    rng = np.random.default_rng(2026)
    devices = ["cpu"] + (["gpu"] if gpu_available() else [])
    scale = 0.05 if args.quick else 1.0
    sessions = {d: Session(f"models_{d}" + ("_quick" if args.quick else ""), force=args.force or args.quick)
                for d in devices}
    for device in devices:
        n_pl = int((1_000_000 if device == "gpu" else 20_000) * scale)
        n_br = int((250_000 if device == "gpu" else 5_000) * scale)
        x, y, _ = pl_problem(rng, n_pl, n_points=1024, slope=3.0)
        rows = [bench("PL", get_model("gauss1d", n_peaks=1, background="linear"), user_models.gauss_linear, x, y,
                      device, args.repeats)]
        (q, phi), y, _ = bragg_problem(rng, n_br, phi_center=0.0)
        rows.append(bench("Bragg", get_model("gauss2d_polar"), user_models.spot_polar, (q, phi), y, device,
                          args.repeats))
        sessions[device].write({"benchmark": "bench_models.py", "results": rows})


if __name__ == "__main__":
    main()
