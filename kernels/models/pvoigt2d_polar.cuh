// pvoigt2d_polar: a Bragg spot in a (q, azimuth) cake, pseudo-Voigt in q times a Gaussian in azimuth.
//
// f(q, phi) = A P(2 (q - q0) / Gq; eta_q) exp(-4 ln2 w(phi - phi0)^2 / Gphi^2) + b0 + b1 q
// with P the pseudo-Voigt of profiles.cuh, Gq and Gphi the radial and azimuthal FWHM, and w()
// wrapping an angle difference into [-180, 180) degrees (a spot may sit across the 0/360 seam).
// parameters: A, q0, fwhm_q, eta_q, phi0, fwhm_phi, b0, b1; coordinates q and phi (degrees).
#pragma once
#include "gauss2d_polar.cuh"
#include "profiles.cuh"

struct PVoigt2DPolar {
    static constexpr int NP = 8;
    static constexpr int NDIM = 2;
    static constexpr int NPOS = 2;

    GP_HD static float eval(const float* x, const float* p, float* g) {
        const float inv_hq = 2.0f / p[2], inv_hp = 2.0f / p[5];
        const float t = (x[0] - p[1]) * inv_hq;
        const float u = Gauss2DPolar::wrap_deg(x[1] - p[4]) * inv_hp;
        const PVoigtTerms v = gp_pvoigt(t, p[3]);
        const float e = gp_exp(-GP_LN2 * u * u);        // azimuthal Gaussian
        const float ga = p[0] * e;
        const float dd = 2.0f * ga * t * v.k;           // -dF/dt
        const float da = 2.0f * GP_LN2 * ga * v.p * u;  // -dF/du
        g[0] = v.p * e;
        g[1] = dd * inv_hq;
        g[2] = dd * t / p[2];
        g[3] = ga * (v.l - v.g);
        g[4] = da * inv_hp;
        g[5] = da * u / p[5];
        g[6] = 1.0f;
        g[7] = x[0];
        return ga * v.p + p[6] + p[7] * x[0];
    }

    // The same function for any scalar type T (float, Dual<NP>): tests/test_dual_jacobians.py checks
    // eval's hand-written gradient against the dual numbers' through it.
    template <class T>
    GP_HD static T value(const float* x, const T* p) {
        const T t = 2.0f * (x[0] - p[1]) / p[2];
        const T dphi = x[1] - p[4];
        const T u = 2.0f * (dphi - 360.0f * floor(dphi * (1.0f / 360.0f) + 0.5f)) / p[5];
        const T t2 = t * t;
        const T radial = p[3] / (1.0f + t2) + (1.0f - p[3]) * exp(-GP_LN2 * t2);
        return p[0] * radial * exp(-GP_LN2 * u * u) + p[6] + p[7] * x[0];
    }

    GP_HD static void position(int k, int& param, int& dim, float& period) {
        Gauss2DPolar::position(k, param, dim, period);
        param = k == 0 ? 1 : 4;
    }
};
