// A test user model: one Gaussian on a linear background, written by hand as a value function
// only (the Jacobian comes from dual numbers).  Parameters: amplitude, center, sigma, c0, c1.
#pragma once

template <class T>
GP_HD T gauss_linear(const float* x, const T* p) {
    const T d = (x[0] - p[1]) / p[2];
    return p[0] * exp(-0.5f * d * d) + p[3] + p[4] * x[0];
}
