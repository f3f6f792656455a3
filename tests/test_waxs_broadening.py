"""The cake's sampling offsets per bin (gpuproc.waxs.broadening) on a hand-built integration
matrix: each bin's mean pixel position and spread, the window's fit coordinates and broadening."""

import numpy as np
import pytest
import scipy.sparse

from gpuproc.waxs import broadening


@pytest.fixture
def offsets():
    """Two azimuth bins (centres 0 and 179.5 deg) x two q bins (1.0, 1.1); three pixels:
    pixel 0 (q 1.02, chi 0.4) all in bin (0, 0); pixel 1 (q 1.08, chi -179.8) split 1/4 : 3/4
    between bins (1, 0) and (1, 1); pixel 2 (q 1.12, chi 179.0) all in bin (1, 1), with twice the
    normalisation. Bin (0, 1) is empty."""
    rows, cols, data = [0, 1, 2, 2], [0, 1, 1, 2], [1.0, 0.25, 0.75, 1.0]
    matrix = scipy.sparse.csr_matrix((data, (rows, cols)), shape=(3, 3))
    bin_of_row = np.array([0, 2, 3])  # flat (azimuth, q) positions of the rows
    return broadening.bin_spread(matrix, bin_of_row, np.array([1.02, 1.08, 1.12]), np.array([0.4, -179.8, 179.0]),
                                 np.array([1.0, 1.1]), np.array([0.0, 179.5]), np.array([1.0, 1.0, 2.0]))


def test_bin_means_and_spreads(offsets):
    np.testing.assert_allclose(offsets.mean_q, [[0.02, 0.0], [0.08, (0.75 * -0.02 + 2.0 * 0.02) / 2.75]])
    # azimuth offsets wrap: -179.8 deg is 0.7 deg above 179.5
    np.testing.assert_allclose(offsets.mean_chi, [[0.4, 0.0], [0.7, (0.75 * 0.7 + 2.0 * -0.5) / 2.75]])
    m = (0.75 * 0.7 + 2.0 * -0.5) / 2.75
    np.testing.assert_allclose(offsets.var_chi[1, 1], (0.75 * (0.7 - m) ** 2 + 2.0 * (-0.5 - m) ** 2) / 2.75)
    assert offsets.var_q[0, 0] == 0.0 and offsets.var_q[1, 0] == 0.0  # one pixel: no spread
    assert offsets.var_q[0, 1] == 0.0 and offsets.mean_q[0, 1] == 0.0  # empty bin


def test_window_coordinates_and_broadening(offsets):
    az, qi = np.array([1]), np.array([0, 1])
    q, phi = broadening.window_coordinates(offsets, az, qi, np.array([1.0, 1.1]), np.array([179.5, 179.5]))
    np.testing.assert_allclose(q, [1.08, 1.1 + offsets.mean_q[1, 1]], rtol=1e-6)
    np.testing.assert_allclose(phi, [180.2, 179.5 + offsets.mean_chi[1, 1]], rtol=1e-6)
    assert q.dtype == np.float32
    norm = np.array([[1.0, 0.0], [0.25, 2.75]])
    expected = np.sqrt((0.25 * offsets.var_chi[1, 0] + 2.75 * offsets.var_chi[1, 1]) / 3.0)
    assert broadening.window_broadening(offsets.var_chi, norm, az, qi) == pytest.approx(expected)
    assert broadening.window_broadening(offsets.var_chi, np.zeros((2, 2)), az, qi) == 0.0
