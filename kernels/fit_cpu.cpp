// CPU path of the batched fitting engine: the same model, estimator and LM code as fit.cu,
// compiled for the host.  One call fits a contiguous range of problems on the calling thread;
// gpuproc.fit.cpu runs ranges on a thread pool (ctypes releases the GIL).  The point loop works
// on tiles of 64 points so that the compiler vectorises the model and the sums.
#include "lm.cuh"
#include "estimators.cuh"
#include "models.cuh"

// The models this library is built for: every built-in, unless a user model's library
// (user_model_cpu.cpp) names its own one.
#ifndef GP_MODEL_LIST
#define GP_MODEL_LIST GP_MODELS
#endif

template <class M, class E>
struct HostAccumulator {
    static constexpr int T = 64;
    const float* x;
    long long x_dim_stride;
    const float* y;
    const float* w;
    int n;

    void normal(const float* p, Normal<M::NP>& out) const {
        constexpr int NP = M::NP;
        static_assert(M::NDIM <= 2, "the host accumulator reads at most two coordinate axes");
        alignas(64) float wg[NP][T];
        alignas(64) float g[NP][T];
        alignas(64) float rr[T];
        for (int k = 0; k < Normal<NP>::NA; ++k) out.a[k] = 0.0;
        for (int k = 0; k < NP; ++k) out.b[k] = 0.0;
        out.obj = 0.0;
        out.nvalid = 0;
        out.nbad = 0;
        // Locals, not members: the compiler must see that the tile stores cannot change them,
        // or it reloads them per point and gives up vectorising the point loop.
        const float* __restrict__ x0 = x;
        const float* __restrict__ x1 = x + (M::NDIM > 1 ? x_dim_stride : 0);
        const float* __restrict__ yl = y;
        const float* __restrict__ wl = w;
        float pl[NP];
        for (int k = 0; k < NP; ++k) pl[k] = p[k];
        alignas(64) float ob[T];
        alignas(64) int sv[T], sn[T];
        for (int i0 = 0; i0 < n; i0 += T) {
            const int m = n - i0 < T ? n - i0 : T;
            // No `omp simd` here: under it gcc keeps the per-point arrays (xs, gg) in memory as
            // per-lane "simd arrays" and the loop runs 5-7x slower; plain -O3 vectorises it with
            // everything in registers. The sums over the tile follow in separate loops.
            for (int t = 0; t < m; ++t) {
                const int i = i0 + t;
                float xs[M::NDIM], gg[NP], wt, o, r;
                bool bad;
                xs[0] = x0[i];
                if (M::NDIM > 1) xs[M::NDIM - 1] = x1[i];
                sv[t] = gp_point<M, E>(xs, yl[i], wl[i], pl, gg, wt, o, r, bad);
                sn[t] = bad;
                ob[t] = o;
                rr[t] = r;
                for (int k = 0; k < NP; ++k) {
                    g[k][t] = gg[k];
                    wg[k][t] = wt * gg[k];
                }
            }
            float obj = 0.0f;
            int nvalid = 0, nbad = 0;
#pragma omp simd reduction(+ : obj, nvalid, nbad)
            for (int t = 0; t < m; ++t) {
                obj += ob[t];
                nvalid += sv[t];
                nbad += sn[t];
            }
            for (int k = 0; k < NP; ++k) {
                float sb = 0.0f;
#pragma omp simd reduction(+ : sb)
                for (int t = 0; t < m; ++t) sb += wg[k][t] * rr[t];
                out.b[k] += sb;
                for (int l = k; l < NP; ++l) {
                    float sa = 0.0f;
#pragma omp simd reduction(+ : sa)
                    for (int t = 0; t < m; ++t) sa += wg[k][t] * g[l][t];
                    out.a[gp_tri(k, l, NP)] += sa;
                }
            }
            out.obj += obj;
            out.nvalid += nvalid;
            out.nbad += nbad;
        }
    }

    void window(const double* p, float* lo, float* hi) const {
        for (int k = 0; k < M::NPOS; ++k) {
            int param, dim;
            float period;
            M::position(k, param, dim, period);
            const float ref = static_cast<float>(p[param]);
            float l = 3.0e38f, h = -3.0e38f;
            for (int i = 0; i < n; ++i) {
                bool valid = w[i] > 0.0f && gp_isfinite(y[i]);
                for (int d = 0; d < M::NDIM; ++d) valid &= gp_isfinite(x[d * x_dim_stride + i]);
                float v = x[dim * x_dim_stride + i] - ref;
                if (period > 0.0f) v -= period * floorf(v / period + 0.5f);
                l = valid && v < l ? v : l;
                h = valid && v > h ? v : h;
            }
            lo[k] = l;
            hi[k] = h;
        }
    }
};

template <class M, class E>
static void fit_range(long long first, long long count, int n_points, const float* x, long long x_fit_stride,
                      long long x_dim_stride, const float* y, long long y_stride, const float* w,
                      long long w_stride, const float* p0, const float* lo, const float* hi,
                      long long bound_stride, const unsigned* fixed, long long fixed_stride, const FitOptions& o,
                      float* p_out, float* err_out, float* cov_out, float* chi2_out, int* iter_out,
                      unsigned char* status_out) {
    constexpr int NP = M::NP;
    for (long long f = first; f < first + count; ++f) {
        HostAccumulator<M, E> acc{x + f * x_fit_stride, x_dim_stride, y + f * y_stride, w + f * w_stride, n_points};
        gp_fit_one<M>(acc, p0 + f * NP, lo + f * bound_stride, hi + f * bound_stride, fixed[f * fixed_stride], o,
                      p_out + f * NP, err_out + f * NP, cov_out == nullptr ? nullptr : cov_out + f * NP * NP,
                      chi2_out + f, iter_out + f, status_out + f);
    }
}

extern "C" {

// Fits problems [first, first + count).  cov_out: NP x NP floats of covariance per fit, or null (not
// computed).  Returns 0, or -1 for an unknown model or estimator.
int gp_fit_cpu(int model, int estimator, long long first, long long count, int n_points, const float* x,
               long long x_fit_stride, long long x_dim_stride, const float* y, long long y_stride, const float* w,
               long long w_stride, const float* p0, const float* lo, const float* hi, long long bound_stride,
               const unsigned* fixed, long long fixed_stride, int max_iter, float ftol, float xtol, float gtol,
               float lambda0, int scale_errors, float* p_out, float* err_out, float* cov_out, float* chi2_out,
               int* iter_out, unsigned char* status_out) {
    const FitOptions o{max_iter, ftol, xtol, gtol, lambda0, scale_errors};
#define GP_ARGS                                                                                             \
    first, count, n_points, x, x_fit_stride, x_dim_stride, y, y_stride, w, w_stride, p0, lo, hi, bound_stride, \
        fixed, fixed_stride, o, p_out, err_out, cov_out, chi2_out, iter_out, status_out
#define GP_CASE(id, name, T)                                                   \
    case id:                                                                   \
        if (estimator == GP_LSQ) fit_range<T, LeastSquares>(GP_ARGS);          \
        else if (estimator == GP_POISSON) fit_range<T, Poisson>(GP_ARGS);      \
        else return -1;                                                        \
        return 0;
    switch (model) {
        GP_MODEL_LIST(GP_CASE)
        default:
            return -1;
    }
}

// Number of parameters of a compiled model, or -1: lets Python check its model table.
int gp_model_nparams(int model) {
#define GP_NP(id, name, T) \
    case id:               \
        return T::NP;
    switch (model) {
        GP_MODEL_LIST(GP_NP)
        default:
            return -1;
    }
}
}

#ifdef GP_PYTHON_MODULE
// A module object so that the library installs and imports like any extension; the functions
// above are reached through ctypes.
#include <Python.h>
static struct PyModuleDef gp_module = {PyModuleDef_HEAD_INIT, "_fitcpu", "gpuproc CPU fitting kernels", -1, nullptr};
PyMODINIT_FUNC PyInit__fitcpu(void) { return PyModule_Create(&gp_module); }
#endif
