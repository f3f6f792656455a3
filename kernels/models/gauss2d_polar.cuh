// gauss2d_polar: a Bragg spot in a (q, azimuth) cake.
//
// f(q, phi) = A exp(-(q - q0)^2 / (2 sq^2) - w(phi - phi0)^2 / (2 sphi^2)) + b0 + b1 q
// where w() wraps an angle difference into [-180, 180) degrees, so a spot may sit across the
// 0/360 seam.  parameters: A, q0, sq, phi0, sphi, b0, b1; coordinates q and phi (degrees).
#pragma once
#include "../common.cuh"

struct Gauss2DPolar {
    static constexpr int NP = 7;
    static constexpr int NDIM = 2;
    static constexpr int NPOS = 2;

    GP_HD static float wrap_deg(float d) { return d - 360.0f * floorf(d * (1.0f / 360.0f) + 0.5f); }

    GP_HD static float eval(const float* x, const float* p, float* g) {
        const float inv_sq = 1.0f / p[2], inv_sp = 1.0f / p[4];
        const float dq = (x[0] - p[1]) * inv_sq;
        const float dp = wrap_deg(x[1] - p[3]) * inv_sp;
        const float e = gp_exp(-0.5f * (dq * dq + dp * dp));
        const float ae = p[0] * e;
        g[0] = e;
        g[1] = ae * dq * inv_sq;
        g[2] = ae * dq * dq * inv_sq;
        g[3] = ae * dp * inv_sp;
        g[4] = ae * dp * dp * inv_sp;
        g[5] = 1.0f;
        g[6] = x[0];
        return ae + p[5] + p[6] * x[0];
    }

    // The same function for any scalar type T (float, Dual<NP>): tests/test_dual_jacobians.py checks
    // eval's hand-written gradient against the dual numbers' through it.
    template <class T>
    GP_HD static T value(const float* x, const T* p) {
        const T dphi = x[1] - p[3];
        const T dq = (x[0] - p[1]) / p[2];
        const T dp = (dphi - 360.0f * floor(dphi * (1.0f / 360.0f) + 0.5f)) / p[4];
        return p[0] * exp(-0.5f * (dq * dq + dp * dp)) + p[5] + p[6] * x[0];
    }

    GP_HD static void position(int k, int& param, int& dim, float& period) {
        param = k == 0 ? 1 : 3;
        dim = k;
        period = k == 0 ? 0.0f : 360.0f;
    }
};
