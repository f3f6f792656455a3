"""Monitor (I0) scale per frame: relative to the mean of the usable values, NaN for unusable ones
(the pipeline's behaviour with such frames: tests/test_waxs_paths.py)."""

import numpy as np
import pytest

from gpuproc.waxs.monitor import monitor_scale


def test_scale_relative_to_mean_of_usable_values():
    with pytest.warns(UserWarning, match=r"2 frame\(s\) .*\(frames \[1, 3\]\)"):
        scale = monitor_scale(np.array([1.0, np.nan, 3.0, 0.0]), "scan")
    np.testing.assert_array_equal(scale, [0.5, np.nan, 1.5, np.nan])


def test_no_usable_monitor_refused():
    with pytest.raises(ValueError, match="scan: monitor has no finite positive value"):
        monitor_scale(np.array([np.nan, 0.0, -1.0]), "scan")
