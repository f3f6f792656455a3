// CUDA kernel of the batched fitting engine: one warp per fit.
//
// The 32 lanes of a warp share the points of one fit, sum the normal equations in registers and
// reduce them with shuffles; every lane then runs the same small LM step (lm.cuh) on identical
// numbers, so no shared memory or block synchronisation is needed, and lane 0 writes the result.
// The whole LM loop runs on the device, with no host round-trip per iteration.
#include "lm.cuh"
#include "estimators.cuh"
#include "models.cuh"

template <class M, class E>
struct WarpAccumulator {
    const float* x;  // coordinates of this fit: x[d * x_dim_stride + i]
    long long x_dim_stride;
    const float* y;
    const float* w;
    int n;
    int lane;

    __device__ static double warp_sum(double v) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        return v;
    }

    __device__ void normal(const float* p, Normal<M::NP>& out) const {
        constexpr int NP = M::NP;
        float a[Normal<NP>::NA], b[NP], obj = 0.0f;
        int nvalid = 0, nbad = 0;
#pragma unroll
        for (int k = 0; k < Normal<NP>::NA; ++k) a[k] = 0.0f;
#pragma unroll
        for (int k = 0; k < NP; ++k) b[k] = 0.0f;
        for (int i = lane; i < n; i += 32) {
            float xs[M::NDIM], g[NP], wt, ob, r;
            bool bad;
#pragma unroll
            for (int d = 0; d < M::NDIM; ++d) xs[d] = x[d * x_dim_stride + i];
            nvalid += gp_point<M, E>(xs, y[i], w[i], p, g, wt, ob, r, bad);
            nbad += bad;
            obj += ob;
#pragma unroll
            for (int k = 0; k < NP; ++k) {
                const float wg = wt * g[k];
                b[k] += wg * r;
#pragma unroll
                for (int l = k; l < NP; ++l) a[gp_tri(k, l, NP)] += wg * g[l];
            }
        }
#pragma unroll
        for (int k = 0; k < Normal<NP>::NA; ++k) out.a[k] = warp_sum(a[k]);
#pragma unroll
        for (int k = 0; k < NP; ++k) out.b[k] = warp_sum(b[k]);
        out.obj = warp_sum(obj);
        out.nvalid = __reduce_add_sync(0xffffffffu, nvalid);
        out.nbad = __reduce_add_sync(0xffffffffu, nbad);
    }

    __device__ void window(const double* p, float* lo, float* hi) const {
        for (int k = 0; k < M::NPOS; ++k) {
            int param, dim;
            float period;
            M::position(k, param, dim, period);
            const float ref = static_cast<float>(p[param]);
            float l = 3.0e38f, h = -3.0e38f;
            for (int i = lane; i < n; i += 32) {
                float xs[M::NDIM];
                bool valid = w[i] > 0.0f && gp_isfinite(y[i]);
                for (int d = 0; d < M::NDIM; ++d) {
                    xs[d] = x[d * x_dim_stride + i];
                    valid &= gp_isfinite(xs[d]);
                }
                float v = xs[dim] - ref;
                if (period > 0.0f) v -= period * floorf(v / period + 0.5f);
                l = valid && v < l ? v : l;
                h = valid && v > h ? v : h;
            }
            for (int o = 16; o > 0; o >>= 1) {
                l = fminf(l, __shfl_xor_sync(0xffffffffu, l, o));
                h = fmaxf(h, __shfl_xor_sync(0xffffffffu, h, o));
            }
            lo[k] = l;
            hi[k] = h;
        }
    }
};

// One fit per warp; launch with a block size that is a multiple of 32.
template <class M, class E>
__global__ void gp_fit_kernel(long long n_fits, int n_points, const float* x, long long x_fit_stride,
                              long long x_dim_stride, const float* y, long long y_stride, const float* w,
                              long long w_stride, const float* p0, const float* lo, const float* hi,
                              long long bound_stride, const unsigned* fixed, long long fixed_stride,
                              int max_iter, float ftol, float xtol, float gtol, float lambda0, int scale_errors,
                              float* p_out, float* err_out, float* chi2_out, int* iter_out,
                              unsigned char* status_out) {
    constexpr int NP = M::NP;
    const long long fit = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (fit >= n_fits) return;  // whole warps leave together
    const FitOptions o{max_iter, ftol, xtol, gtol, lambda0, scale_errors};
    WarpAccumulator<M, E> acc{x + fit * x_fit_stride, x_dim_stride, y + fit * y_stride, w + fit * w_stride,
                              n_points, lane};
    float pr[NP], er[NP], chi2;
    int it;
    unsigned char st;
    gp_fit_one<M>(acc, p0 + fit * NP, lo + fit * bound_stride, hi + fit * bound_stride,
                  fixed[fit * fixed_stride], o, pr, er, &chi2, &it, &st);
    if (lane == 0) {
        for (int k = 0; k < NP; ++k) {
            p_out[fit * NP + k] = pr[k];
            err_out[fit * NP + k] = er[k];
        }
        chi2_out[fit] = chi2;
        iter_out[fit] = it;
        status_out[fit] = st;
    }
}

// CuPy asks NVRTC for the one instance a run needs (name_expressions); nvcc, as in the CI compile
// test, builds them all.
#ifndef __CUDACC_RTC__
#define GP_INSTANTIATE(id, name, T)                                                                      \
    template __global__ void gp_fit_kernel<T, LeastSquares>(GP_KERNEL_PARAMS);                           \
    template __global__ void gp_fit_kernel<T, Poisson>(GP_KERNEL_PARAMS);
#define GP_KERNEL_PARAMS                                                                                 \
    long long, int, const float*, long long, long long, const float*, long long, const float*, long long,  \
        const float*, const float*, const float*, long long, const unsigned*, long long, int, float, float, \
        float, float, int, float*, float*, float*, int*, unsigned char*
GP_MODELS(GP_INSTANTIATE)
#endif
