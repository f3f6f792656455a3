"""Per-fit status codes, shared with the kernels (kernels/common.cuh)."""

from enum import IntEnum


class Status(IntEnum):
    """Outcome of one fit. Anything but ``CONVERGED`` should be treated as a missing value."""

    CONVERGED = 0  #: converged to a minimum
    MAX_ITERATIONS = 1  #: stopped at ``max_iter`` before converging
    SINGULAR = 2  #: normal matrix singular: parameters not determined by the data (flat, no peak)
    INVALID_INPUT = 3  #: too few valid points, non-finite start, or start the estimator rejects
    OUT_OF_BOUNDS = 4  #: diverged: non-finite parameters or a peak position outside the data window
