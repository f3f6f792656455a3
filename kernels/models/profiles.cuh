// Line profiles (and the polynomial background) shared by the peak models, in a reduced coordinate t = (x - centre) / HWHM, so that
// every profile is 1/2 at t = +-1 whatever its shape (FWHM = 2 HWHM).
//
//   Gaussian    G(t) = exp(-ln2 t^2)
//   Lorentzian  L(t) = 1 / (1 + t^2)
//   pseudo-Voigt P(t) = eta L(t) + (1 - eta) G(t)      (the same FWHM for both parts)
//
// Integral over x of P: HWHM * (eta pi + (1 - eta) sqrt(pi / ln2)), i.e. the integral breadth is
// FWHM * (eta pi / 2 + (1 - eta) sqrt(pi / ln2) / 2) (gpuproc/fit/models/profiles.py).
#pragma once
#include "../common.cuh"

#define GP_LN2 0.693147180559945f

struct PVoigtTerms {
    float p;  // P(t)
    float k;  // -dP/dt / (2 t) = eta L^2 + (1 - eta) ln2 G, finite at t = 0
    float l;  // L(t)
    float g;  // G(t)
};

GP_HD PVoigtTerms gp_pvoigt(float t, float eta) {
    const float t2 = t * t;
    const float l = 1.0f / (1.0f + t2);
    const float g = gp_exp(-GP_LN2 * t2);
    return {eta * l + (1.0f - eta) * g, eta * l * l + (1.0f - eta) * GP_LN2 * g, l, g};
}

// Polynomial background of NBG terms (0, 1 or 2): c0 [+ c1 x], parameters at p[0..NBG), gradient
// written to g[0..NBG).  Returns its value.
template <int NBG>
GP_HD float gp_background(float x, const float* p, float* g) {
    float f = 0.0f;
    if (NBG > 0) {
        f += p[0];
        g[0] = 1.0f;
    }
    if (NBG > 1) {
        f += p[1] * x;
        g[1] = x;
    }
    return f;
}
