"""One engine call per group of windows with the same number of points
(gpuproc.waxs.spot_fits.fit_windows) gives every window the results of fitting it alone, bit for bit."""

import numpy as np
from run_helpers import job_with_output

from gpuproc.fit import fit
from gpuproc.waxs import spot_checks
from gpuproc.waxs.pipeline import WaxsBlocks, intensity_and_weight, read_frames
from gpuproc.waxs.spot_fits import WindowProblem, fit_windows


def test_grouped_fits_equal_one_call_per_window(job_file):
    runner = WaxsBlocks(job_with_output(job_file, job_file.with_name("spots.zarr")), create=True)
    ctx = runner.ctx
    signal, norm = ctx.integrator.integrate_sums(read_frames(runner.scan, 0, 12, "test"))
    problems = []
    for w in ctx.windows:
        y, weight = intensity_and_weight(w.take(signal), w.take(norm), None)
        valid = w.valid(w.take(norm))
        valid[::5, ::7] = False  # masked bins that differ from frame to frame
        problems.append(WindowProblem(spot_checks.MODEL, y, weight, valid, np.stack([w.q, w.phi]),
                                      *spot_checks.spot_bounds(w, ctx.job.fit.min_fwhm_bins)))
    sizes = [p.y.shape[1] for p in problems]
    assert len(set(sizes)) < len(sizes)  # some windows share a size: grouped calls are exercised
    grouped = dict(fit_windows(problems, device="cpu", max_iter=ctx.job.fit.max_iter))
    assert sorted(grouped) == list(range(len(problems)))
    for i, p in enumerate(problems):
        g = grouped[i]
        alone = fit(p.model, p.y, tuple(p.x), weights=p.weight, mask=~p.valid, bounds=(p.lower, p.upper),
                    absolute_sigma=True, device="cpu", max_iter=ctx.job.fit.max_iter).get()
        for name in ("params", "errors", "chi2", "n_iter", "status"):
            np.testing.assert_array_equal(getattr(g, name), getattr(alone, name), err_msg=name)
