// Forward-mode dual numbers: a value and its derivatives with respect to N parameters.
//
// Dual<N> carries f and df/dp_0 .. df/dp_{N-1}; every operation applies the chain rule, so a model
// written once as a function template of its scalar type T gives its value with T = float and its
// value and exact gradient with T = Dual<N> (user_model.cuh).  Usable on the host and the device
// (GP_HD), in single (the default, as the kernels compute models) or double precision.
//
// Operations and functions are hidden friends: a user's template finds them by argument-dependent
// lookup when it calls them unqualified (exp(x), not std::exp(x)).  Scalars of any arithmetic type
// mix with duals as constants; comparisons compare values, so branches follow the value.
#pragma once
#include "common.cuh"

namespace gp_math {
// The scalar functions the dual rules need, in float (the kernels' own exp and log) and double.
GP_HD float exp(float x) { return gp_exp(x); }
GP_HD float log(float x) { return gp_log(x); }
GP_HD float sqrt(float x) { return sqrtf(x); }
GP_HD float sin(float x) { return sinf(x); }
GP_HD float cos(float x) { return cosf(x); }
GP_HD float tan(float x) { return tanf(x); }
GP_HD float atan(float x) { return atanf(x); }
GP_HD float atan2(float y, float x) { return atan2f(y, x); }
GP_HD float tanh(float x) { return tanhf(x); }
GP_HD float erf(float x) { return erff(x); }
GP_HD float pow(float x, float y) { return powf(x, y); }
GP_HD float floor(float x) { return floorf(x); }
GP_HD float fabs(float x) { return fabsf(x); }
GP_HD double exp(double x) { return ::exp(x); }
GP_HD double log(double x) { return ::log(x); }
GP_HD double sqrt(double x) { return ::sqrt(x); }
GP_HD double sin(double x) { return ::sin(x); }
GP_HD double cos(double x) { return ::cos(x); }
GP_HD double tan(double x) { return ::tan(x); }
GP_HD double atan(double x) { return ::atan(x); }
GP_HD double atan2(double y, double x) { return ::atan2(y, x); }
GP_HD double tanh(double x) { return ::tanh(x); }
GP_HD double erf(double x) { return ::erf(x); }
GP_HD double pow(double x, double y) { return ::pow(x, y); }
GP_HD double floor(double x) { return ::floor(x); }
GP_HD double fabs(double x) { return ::fabs(x); }
}  // namespace gp_math

template <int N, class S = float>
struct Dual {
    S v;     // value
    S d[N];  // derivatives with respect to the N parameters

    GP_HD Dual() : v(S(0)) {
#pragma unroll
        for (int i = 0; i < N; ++i) d[i] = S(0);
    }
    // A constant (all derivatives 0); implicit, so scalars enter expressions as constants.
    GP_HD Dual(S value) : v(value) {
#pragma unroll
        for (int i = 0; i < N; ++i) d[i] = S(0);
    }
    // The independent variable number i with the given value (derivative 1 in slot i).
    GP_HD static Dual variable(S value, int i) {
        Dual r(value);
        r.d[i] = S(1);
        return r;
    }

    // Chain rule of a one-argument function: value fv, derivative dfdv at v.
    GP_HD Dual chain(S fv, S dfdv) const {
        Dual r(fv);
#pragma unroll
        for (int i = 0; i < N; ++i) r.d[i] = dfdv * d[i];
        return r;
    }

    friend GP_HD Dual operator+(const Dual& a) { return a; }
    friend GP_HD Dual operator-(const Dual& a) { return a.chain(-a.v, S(-1)); }

    friend GP_HD Dual operator+(const Dual& a, const Dual& b) {
        Dual r(a.v + b.v);
#pragma unroll
        for (int i = 0; i < N; ++i) r.d[i] = a.d[i] + b.d[i];
        return r;
    }
    friend GP_HD Dual operator-(const Dual& a, const Dual& b) {
        Dual r(a.v - b.v);
#pragma unroll
        for (int i = 0; i < N; ++i) r.d[i] = a.d[i] - b.d[i];
        return r;
    }
    friend GP_HD Dual operator*(const Dual& a, const Dual& b) {
        Dual r(a.v * b.v);
#pragma unroll
        for (int i = 0; i < N; ++i) r.d[i] = a.d[i] * b.v + a.v * b.d[i];
        return r;
    }
    friend GP_HD Dual operator/(const Dual& a, const Dual& b) {
        const S inv = S(1) / b.v;
        const S q = a.v * inv;
        Dual r(q);
#pragma unroll
        for (int i = 0; i < N; ++i) r.d[i] = (a.d[i] - q * b.d[i]) * inv;
        return r;
    }
    // With a scalar constant (cheaper than promoting it to a Dual).
    friend GP_HD Dual operator+(const Dual& a, S b) { return a.chain(a.v + b, S(1)); }
    friend GP_HD Dual operator+(S a, const Dual& b) { return b.chain(a + b.v, S(1)); }
    friend GP_HD Dual operator-(const Dual& a, S b) { return a.chain(a.v - b, S(1)); }
    friend GP_HD Dual operator-(S a, const Dual& b) { return b.chain(a - b.v, S(-1)); }
    friend GP_HD Dual operator*(const Dual& a, S b) { return a.chain(a.v * b, b); }
    friend GP_HD Dual operator*(S a, const Dual& b) { return b.chain(a * b.v, a); }
    friend GP_HD Dual operator/(const Dual& a, S b) { return a.chain(a.v / b, S(1) / b); }
    friend GP_HD Dual operator/(S a, const Dual& b) {
        const S inv = S(1) / b.v;
        return b.chain(a * inv, -a * inv * inv);
    }

    GP_HD Dual& operator+=(const Dual& b) { return *this = *this + b; }
    GP_HD Dual& operator-=(const Dual& b) { return *this = *this - b; }
    GP_HD Dual& operator*=(const Dual& b) { return *this = *this * b; }
    GP_HD Dual& operator/=(const Dual& b) { return *this = *this / b; }

    // Comparisons look at values only.
    friend GP_HD bool operator<(const Dual& a, const Dual& b) { return a.v < b.v; }
    friend GP_HD bool operator>(const Dual& a, const Dual& b) { return a.v > b.v; }
    friend GP_HD bool operator<=(const Dual& a, const Dual& b) { return a.v <= b.v; }
    friend GP_HD bool operator>=(const Dual& a, const Dual& b) { return a.v >= b.v; }
    friend GP_HD bool operator==(const Dual& a, const Dual& b) { return a.v == b.v; }
    friend GP_HD bool operator!=(const Dual& a, const Dual& b) { return a.v != b.v; }

    friend GP_HD Dual exp(const Dual& a) {
        const S e = gp_math::exp(a.v);
        return a.chain(e, e);
    }
    friend GP_HD Dual log(const Dual& a) { return a.chain(gp_math::log(a.v), S(1) / a.v); }
    friend GP_HD Dual sqrt(const Dual& a) {
        const S s = gp_math::sqrt(a.v);
        return a.chain(s, S(0.5) / s);
    }
    friend GP_HD Dual sin(const Dual& a) { return a.chain(gp_math::sin(a.v), gp_math::cos(a.v)); }
    friend GP_HD Dual cos(const Dual& a) { return a.chain(gp_math::cos(a.v), -gp_math::sin(a.v)); }
    friend GP_HD Dual tan(const Dual& a) {
        const S t = gp_math::tan(a.v);
        return a.chain(t, S(1) + t * t);
    }
    friend GP_HD Dual atan(const Dual& a) { return a.chain(gp_math::atan(a.v), S(1) / (S(1) + a.v * a.v)); }
    friend GP_HD Dual atan2(const Dual& y, const Dual& x) {
        const S inv = S(1) / (x.v * x.v + y.v * y.v);
        Dual r(gp_math::atan2(y.v, x.v));
#pragma unroll
        for (int i = 0; i < N; ++i) r.d[i] = (x.v * y.d[i] - y.v * x.d[i]) * inv;
        return r;
    }
    friend GP_HD Dual tanh(const Dual& a) {
        const S t = gp_math::tanh(a.v);
        return a.chain(t, S(1) - t * t);
    }
    friend GP_HD Dual erf(const Dual& a) {
        const S two_over_sqrt_pi = S(1.1283791670955126);
        return a.chain(gp_math::erf(a.v), two_over_sqrt_pi * gp_math::exp(-a.v * a.v));
    }
    // x^y for a constant exponent y.
    friend GP_HD Dual pow(const Dual& a, S y) {
        const S p = gp_math::pow(a.v, y);
        return a.chain(p, y * gp_math::pow(a.v, y - S(1)));
    }
    friend GP_HD Dual pow(const Dual& a, const Dual& b) { return exp(b * log(a)); }
    // Piecewise-constant and kinked functions: the derivative of the piece the value lies on.
    friend GP_HD Dual floor(const Dual& a) { return a.chain(gp_math::floor(a.v), S(0)); }
    friend GP_HD Dual fabs(const Dual& a) { return a.chain(gp_math::fabs(a.v), a.v < S(0) ? S(-1) : S(1)); }
    friend GP_HD Dual abs(const Dual& a) { return fabs(a); }
    friend GP_HD Dual fmin(const Dual& a, const Dual& b) { return b.v < a.v ? b : a; }
    friend GP_HD Dual fmax(const Dual& a, const Dual& b) { return b.v > a.v ? b : a; }
};
