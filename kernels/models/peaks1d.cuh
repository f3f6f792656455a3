// peaks1d: sum of NPEAK split pseudo-Voigt peaks plus a polynomial background of NBG terms.
//
// f(x) = sum_k A_k P(t_k; eta_k) + c0 + c1 x,   t_k = (x - mu_k) / h_k,
// h_k = FWHM_k / 2 * (1 + alpha_k sign(x - mu_k))   (half width at half maximum on each side)
//
// parameters per peak: A (height), mu, FWHM (left + right half widths), eta (Lorentzian fraction,
// 0..1), alpha (asymmetry, -1..1); then [c0, [c1]]; one coordinate x.  Holding eta and alpha gives
// the plain shapes: Gaussian (eta = 0, alpha = 0), Lorentzian (1, 0), pseudo-Voigt (alpha = 0),
// split Gaussian (eta = 0); gpuproc.fit.models.peaks1d holds them per peak.  Profiles: profiles.cuh.
#pragma once
#include "profiles.cuh"

template <int NPEAK, int NBG>
struct Peaks1D {
    static constexpr int NPP = 5;  // parameters per peak
    static constexpr int NP = NPP * NPEAK + NBG;
    static constexpr int NDIM = 1;
    static constexpr int NPOS = NPEAK;

    GP_HD static float eval(const float* x, const float* p, float* g) {
        float f = 0.0f;
#pragma unroll
        for (int k = 0; k < NPEAK; ++k) {
            const float* q = p + NPP * k;
            const float a = q[0], fwhm = q[2], eta = q[3], alpha = q[4];
            const float d = x[0] - q[1];
            const float s = d >= 0.0f ? 1.0f : -1.0f;
            const float side = 1.0f + alpha * s;
            const float inv_h = 2.0f / (fwhm * side);
            const float t = d * inv_h;
            const PVoigtTerms v = gp_pvoigt(t, eta);
            const float dd = 2.0f * a * t * v.k;  // -A dP/dt
            float* gk = g + NPP * k;
            gk[0] = v.p;
            gk[1] = dd * inv_h;
            gk[2] = dd * t / fwhm;
            gk[3] = a * (v.l - v.g);
            gk[4] = dd * t * s / side;
            f += a * v.p;
        }
        return f + gp_background<NBG>(x[0], p + NPP * NPEAK, g + NPP * NPEAK);
    }

    // The same function for any scalar type T (float, Dual<NP>): tests/test_dual_jacobians.py checks
    // eval's hand-written gradient against the dual numbers' through it.
    template <class T>
    GP_HD static T value(const float* x, const T* p) {
        T f = T(0.0f);
        for (int k = 0; k < NPEAK; ++k) {
            const T* q = p + NPP * k;
            const T d = x[0] - q[1];
            const float s = d >= T(0.0f) ? 1.0f : -1.0f;
            const T t = 2.0f * d / (q[2] * (1.0f + q[4] * s));
            const T t2 = t * t;
            f = f + q[0] * (q[3] / (1.0f + t2) + (1.0f - q[3]) * exp(-GP_LN2 * t2));
        }
        if (NBG > 0) f = f + p[NPP * NPEAK];
        if (NBG > 1) f = f + p[NPP * NPEAK + 1] * x[0];
        return f;
    }

    GP_HD static void position(int k, int& param, int& dim, float& period) {
        param = NPP * k + 1;
        dim = 0;
        period = 0.0f;
    }
};
