// Every operation and function of kernels/dual.cuh as one expression of two arguments, for any
// scalar type T: tests/test_dual_numbers.py compares the derivatives Dual<2> gives with finite
// differences of the T = double values, on the host, and compiles them for the device with NVRTC.
#pragma once
#include "dual.cuh"

#define GP_N_RULES 26

template <class T>
GP_HD T gp_rule(int k, const T& x, const T& y) {
    T r = x;
    switch (k) {
        case 0: return x + y;
        case 1: return x - y;
        case 2: return x * y;
        case 3: return x / y;
        case 4: return exp(x);
        case 5: return log(x);
        case 6: return sqrt(x);
        case 7: return sin(x);
        case 8: return cos(x);
        case 9: return tan(x);
        case 10: return atan(x);
        case 11: return atan2(y, x);
        case 12: return tanh(x);
        case 13: return erf(x);
        case 14: return pow(x, 2.5f);
        case 15: return pow(x, y);
        case 16: return fabs(x - y);
        case 17: return fmin(x, y);
        case 18: return fmax(x, y);
        case 19: return floor(x) * y + x;
        case 20: return 3.0f / x + 2.0f * y;
        case 21: return (x - 2.0f) * (1.5f - y) + x / 4.0f + (0.5f + y);
        case 22: return -x + (+y);
        case 23: r += y; r *= y; r -= x; r /= y; return r;
        case 24: return x < y ? x * x : y * y * y;  // comparisons follow the value
        default: return x >= 0.5f && x != y && !(x == y) && x <= 10.0f && y > 0.0f ? exp(-x * y) : T(0.0f);
    }
}
