// Shared definitions for the gpuproc fitting kernels.
//
// Every header in kernels/ compiles three ways: with NVRTC (CuPy RawModule), with nvcc (the CI
// compile test) and as plain C++ for the CPU extension.  GP_HD marks functions that run on both
// the host and the device, so the model and Levenberg-Marquardt arithmetic is one source.
#pragma once

#if defined(__CUDACC__)
#define GP_HD __host__ __device__ __forceinline__
// Keeps a loop over the parameters rolled on the device, so that the driver works on its state in
// shared memory instead of loading all of it into registers (which spills for many parameters).
#define GP_ROLLED _Pragma("unroll 1")
#else
#define GP_HD inline
#define GP_ROLLED
#include <cmath>
#include <cstring>
#endif

// Fit status codes (mirrored by gpuproc.fit.status.Status).
#define GP_CONVERGED 0
#define GP_MAX_ITERATIONS 1
#define GP_SINGULAR 2
#define GP_INVALID_INPUT 3
#define GP_OUT_OF_BOUNDS 4

// Estimators (mirrored by gpuproc.fit.estimators).
#define GP_LSQ 0
#define GP_POISSON 1

GP_HD double gp_nan() {
#if defined(__CUDA_ARCH__)
    return __longlong_as_double(0x7ff8000000000000ULL);
#else
    return NAN;
#endif
}

GP_HD bool gp_isfinite(float v) { return v - v == 0.0f; }
GP_HD bool gp_isfinite(double v) { return v - v == 0.0; }

// exp and log with the same accuracy (< 2 ulp) on host and device.  On the host they are plain
// arithmetic so that the compiler vectorises the point loops (glibc's expf/logf are not
// vectorised without -ffast-math, which would also drop the NaN tests the kernels rely on).
GP_HD float gp_exp(float x) {
#if defined(__CUDA_ARCH__)
    return expf(x);
#else
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    float n = floorf(x * 1.44269504089f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int bits = (static_cast<int>(n) + 127) << 23;
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof(float));
    return p * scale;
#endif
}

GP_HD float gp_log(float x) {
#if defined(__CUDA_ARCH__)
    return logf(x);
#else
    // Cephes logf for normal positive x; callers guarantee x > 0 and finite.
    int bits;
    __builtin_memcpy(&bits, &x, sizeof(float));
    int e = ((bits >> 23) & 0xff) - 126;
    bits = (bits & 0x007fffff) | 0x3f000000;  // mantissa in [0.5, 1)
    float m;
    __builtin_memcpy(&m, &bits, sizeof(float));
    if (m < 0.707106781186547524f) {
        e -= 1;
        m = m + m - 1.0f;
    } else {
        m = m - 1.0f;
    }
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    float fe = static_cast<float>(e);
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return m + y + 0.693359375f * fe;
#endif
}
