// A test user model: a Bragg spot in a (q, azimuth) cake, as the built-in gauss2d_polar, written as
// a value function only.  The azimuth difference wraps into [-180, 180) degrees (floor() of a
// dual has derivative 0), so a spot may sit across the 0/360 seam.
// Parameters: amplitude, q0, sigma_q, phi0, sigma_phi, b0, b1; coordinates q, phi (degrees).
#pragma once

template <class T>
GP_HD T spot_polar(const float* x, const T* p) {
    const T dphi = x[1] - p[3];
    const T wrapped = dphi - 360.0f * floor(dphi * (1.0f / 360.0f) + 0.5f);
    const T dq = (x[0] - p[1]) / p[2];
    const T da = wrapped / p[4];
    return p[0] * exp(-0.5f * (dq * dq + da * da)) + p[5] + p[6] * x[0];
}
