// gauss1d: sum of NPEAK Gaussians plus a polynomial background of NBG terms (0, 1 or 2).
//
// f(x) = sum_k A_k exp(-(x - mu_k)^2 / (2 s_k^2)) + c0 + c1 x
// parameters: A_1, mu_1, s_1, ..., A_N, mu_N, s_N, [c0, [c1]]; one coordinate x.
#pragma once
#include "profiles.cuh"

template <int NPEAK, int NBG>
struct Gauss1D {
    static constexpr int NP = 3 * NPEAK + NBG;
    static constexpr int NDIM = 1;
    static constexpr int NPOS = NPEAK;  // parameters that locate a peak in the data window

    // Value at coordinate x[0]; writes df/dp into g[NP].
    GP_HD static float eval(const float* x, const float* p, float* g) {
        float f = 0.0f;
#pragma unroll
        for (int k = 0; k < NPEAK; ++k) {
            const float a = p[3 * k], mu = p[3 * k + 1], inv_s = 1.0f / p[3 * k + 2];
            const float d = (x[0] - mu) * inv_s;
            const float e = gp_exp(-0.5f * d * d);
            const float ae = a * e;
            g[3 * k] = e;
            g[3 * k + 1] = ae * d * inv_s;
            g[3 * k + 2] = ae * d * d * inv_s;
            f += ae;
        }
        return f + gp_background<NBG>(x[0], p + 3 * NPEAK, g + 3 * NPEAK);
    }

    // The same function for any scalar type T (float, Dual<NP>): tests/test_dual_jacobians.py checks
    // eval's hand-written gradient against the dual numbers' through it.
    template <class T>
    GP_HD static T value(const float* x, const T* p) {
        T f = T(0.0f);
        for (int k = 0; k < NPEAK; ++k) {
            const T d = (x[0] - p[3 * k + 1]) / p[3 * k + 2];
            f = f + p[3 * k] * exp(-0.5f * d * d);
        }
        if (NBG > 0) f = f + p[3 * NPEAK];
        if (NBG > 1) f = f + p[3 * NPEAK + 1] * x[0];
        return f;
    }

    // The k-th peak position: parameter index, coordinate index, period (0 = not periodic).
    GP_HD static void position(int k, int& param, int& dim, float& period) {
        param = 3 * k + 1;
        dim = 0;
        period = 0.0f;
    }
};
