"""Per-fit status codes. Codes 0-4 are shared with the kernels (kernels/common.cuh); codes from 5
on are set in Python after a fit, by checks of what a converged fit measured
(:mod:`gpuproc.waxs.spot_checks`)."""

from enum import IntEnum


class Status(IntEnum):
    """Outcome of one fit. Anything but ``CONVERGED`` should be treated as a missing value."""

    CONVERGED = 0  #: converged to a minimum
    MAX_ITERATIONS = 1  #: stopped at ``max_iter`` before converging
    SINGULAR = 2  #: normal matrix singular: parameters not determined by the data (flat, no peak)
    INVALID_INPUT = 3  #: too few valid points, non-finite start, or start the estimator rejects
    OUT_OF_BOUNDS = 4  #: diverged: non-finite parameters or a peak position outside the data window
    #: converged, but the amplitude is below ``min_significance`` standard errors: no peak measured
    NO_PEAK = 5
    #: converged with a width at its lower bound (narrower than the data's bins: not resolved) or a
    #: parameter whose standard error is not finite
    AT_BOUND = 6
    #: too few valid points in this fit's window (masked or invalid pixels) for a measurement
    LOW_COVERAGE = 7
