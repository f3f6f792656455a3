"""The synthetic PL map renders for any map size: its random fields are zero-mean with the stated
spread (a 6 x 5 map used to blow the near-constant field up to negative widths and fail in
Generator.poisson)."""

import numpy as np
import pytest

from gpuproc.synth import pl


@pytest.mark.parametrize("shape", [(1, 8), (3, 3), (6, 5), (12, 9)])
@pytest.mark.parametrize("seed", range(4))
def test_small_maps_render(shape, seed):
    m = pl.pl_map(shape=shape, seed=seed)
    assert m.counts.shape[:2] == shape and np.isfinite(m.counts).all()
    width = m.truth.fwhm_mev[m.truth.inside]
    assert np.all(width > 0)


def test_smooth_field_zero_mean_with_its_spread():
    f = pl._smooth_field(np.random.default_rng(0), (64, 64), 4.0, 3.0)
    assert abs(f.mean()) < 1e-9 and f.std() == pytest.approx(4.0)
    flat = pl._smooth_field(np.random.default_rng(0), (5, 6), 4.0, 4.0)   # near-constant before
    assert abs(flat.mean()) < 1e-9 and flat.std() == pytest.approx(4.0)
