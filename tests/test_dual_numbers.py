"""kernels/dual.cuh: every operation and function gives the derivative central differences give
(Dual<2, double> to 1e-6, Dual<2, float> to float rounding), at points away from kinks; the same
expressions compile for the device with NVRTC, in float and double (tests/dual/rules.cuh)."""

import ctypes
from pathlib import Path

import numpy as np
import pytest
from nvrtc import compile_kernels, require_nvrtc

from gpuproc.backend import kernel_dir
from gpuproc.fit.compile_cpu import build_library
from gpuproc.fit.user_model import kernel_digest

HERE = Path(__file__).resolve().parent / "dual"
POINTS = [(0.7, 1.3), (1.6, 0.9), (1.3, 1.7), (2.4, 0.8)]  # x, y: no kink (x = y, integer x) nearby


@pytest.fixture(scope="module")
def rules():
    source = f"// kernels {kernel_digest()}\n#line 1 \"{HERE / 'rules.cpp'}\"\n{(HERE / 'rules.cpp').read_text()}"
    lib = ctypes.CDLL(str(build_library(source, "dual_rules", [kernel_dir(), HERE], what="tests/dual/rules.cpp")))
    lib.gp_rule_value.restype = ctypes.c_double
    lib.gp_rule_value.argtypes = [ctypes.c_int, ctypes.c_double, ctypes.c_double]
    lib.gp_rule_dual.restype = None
    lib.gp_rule_dual.argtypes = [ctypes.c_int, ctypes.c_double, ctypes.c_double, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_double)]
    return lib


def dual(lib, k, x, y, precision):
    out = (ctypes.c_double * 3)()
    lib.gp_rule_dual(k, x, y, precision, out)
    return np.array(out[:])


def central(lib, k, x, y, h=1e-6):
    f = lib.gp_rule_value
    return np.array([f(k, x, y), (f(k, x + h, y) - f(k, x - h, y)) / (2 * h), (f(k, x, y + h) - f(k, x, y - h)) / (2 * h)])


def test_every_rule_gives_the_finite_difference_derivatives(rules):
    n = rules.gp_n_rules()
    assert n >= 26
    for k in range(n):
        for x, y in POINTS:
            expected = central(rules, k, x, y)
            np.testing.assert_allclose(dual(rules, k, x, y, 1), expected, rtol=1e-6, atol=1e-8,
                                       err_msg=f"rule {k} in double at ({x}, {y})")
            np.testing.assert_allclose(dual(rules, k, x, y, 0), expected, rtol=3e-6, atol=3e-6,
                                       err_msg=f"rule {k} in float at ({x}, {y})")


def test_the_rules_compile_for_the_device(tmp_path):
    require_nvrtc()
    source = tmp_path / "rules.cu"
    source.write_text((HERE / "rules.cuh").read_text() + """
template <class S>
__global__ void gp_rules(const S* x, const S* y, S* out) {
    const int i = threadIdx.x;
    for (int k = 0; k < GP_N_RULES; ++k) {
        const Dual<2, S> r = gp_rule(k, Dual<2, S>::variable(x[i], 0), Dual<2, S>::variable(y[i], 1));
        out[3 * (k * blockDim.x + i)] = r.v;
        out[3 * (k * blockDim.x + i) + 1] = r.d[0];
        out[3 * (k * blockDim.x + i) + 2] = r.d[1];
    }
}
""")
    names = ["gp_rules<float>", "gp_rules<double>"]
    lowered, cubin, _ = compile_kernels(source, names, "sm_90", include_dir=kernel_dir())
    assert all(lowered[n].encode() in cubin for n in names)
