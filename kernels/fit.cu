// CUDA kernel of the batched fitting engine: one warp per fit.
//
// The 32 lanes of a warp share the points of one fit, sum the normal equations in registers and
// reduce them with shuffles.  The LM driver (lm.cuh) keeps its whole state (normal equations,
// Cholesky factor, parameters) in the warp's slot of shared memory and advances on lane 0 alone,
// from one request of the data to the next, while the other lanes wait at __syncwarp; then the
// whole warp serves the request from the same code.  So the double-precision state exists once
// per warp, not once per lane in registers.  Lane 0 writes the results.  The whole LM loop runs
// on the device, with no host round-trip per iteration.
#include "lm.cuh"
#include "estimators.cuh"
#include "models.cuh"

#ifndef GP_TILED_SUMS
#define GP_TILED_SUMS 64  // more sums per fit than this: the tiled accumulation (tests lower it)
#endif

template <class M, class E>
struct WarpAccumulator {
    const float* x;  // coordinates of this fit: x[d * x_dim_stride + i]
    long long x_dim_stride;
    const float* y;
    const float* w;
    int n;
    int lane;
    float* partial;  // this warp's PARTIAL floats of shared memory

    static constexpr int NP = M::NP;
    static constexpr int NA = Normal<NP>::NA;
    static constexpr int NSUM = NA + NP + 1;  // sums: J^T W J (packed), J^T W r, objective
    // Few sums: each lane keeps its partial sums in registers, reduced through shared memory,
    // CHUNK sums at a time in rows of ROW floats (odd: the lanes' rows start in different banks).
    // Many sums (they would not fit in registers): the lanes put each point's gradient into a
    // tile of 32 points in shared memory, and each lane sums its share of the entries over it.
    static constexpr bool TILED = NSUM > GP_TILED_SUMS;
    static constexpr int CHUNK = NSUM < 32 ? NSUM : 32;
    static constexpr int ROW = CHUNK | 1;
    static constexpr int WROW = NP | 1, GROW = (NP + 1) | 1;  // tile rows: w g_k; g_k and r
    static constexpr int PARTIAL = TILED ? 32 * (WROW + GROW) : 32 * ROW;  // floats per warp

    __device__ static double warp_sum(double v) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        return v;
    }

    __device__ void normal(const float* p, Normal<NP>& out) const {
        if constexpr (TILED) normal_tiled(p, out);
        else normal_in_registers(p, out);
    }

    __device__ void normal_in_registers(const float* p, Normal<NP>& out) const {
        float sum[NSUM];  // this lane's partial sums over its points
        int nvalid = 0, nbad = 0;
#pragma unroll
        for (int k = 0; k < NSUM; ++k) sum[k] = 0.0f;
        for (int i = lane; i < n; i += 32) {
            float xs[M::NDIM], g[NP], wt, ob, r;
            bool bad;
#pragma unroll
            for (int d = 0; d < M::NDIM; ++d) xs[d] = x[d * x_dim_stride + i];
            nvalid += gp_point<M, E>(xs, y[i], w[i], p, g, wt, ob, r, bad);
            nbad += bad;
            sum[NA + NP] += ob;
#pragma unroll
            for (int k = 0; k < NP; ++k) {
                const float wg = wt * g[k];
                sum[NA + k] += wg * r;
#pragma unroll
                for (int l = k; l < NP; ++l) sum[gp_tri(k, l, NP)] += wg * g[l];
            }
        }
        // Reduction through shared memory, CHUNK sums at a time: each lane writes its partials as a
        // row, then lane l adds up column l over the 32 rows in lane order, in double.
        const int nv = __reduce_add_sync(0xffffffffu, nvalid), nb = __reduce_add_sync(0xffffffffu, nbad);
#pragma unroll
        for (int c = 0; c < NSUM; c += CHUNK) {
#pragma unroll
            for (int j = 0; j < CHUNK && c + j < NSUM; ++j) partial[lane * ROW + j] = sum[c + j];
            __syncwarp();
            const int e = c + lane;
            if (lane < CHUNK && e < NSUM) {
                double total = 0.0;
                for (int l = 0; l < 32; ++l) total += partial[l * ROW + lane];
                if (e < NA) out.a[e] = total;
                else if (e < NA + NP) out.b[e - NA] = total;
                else out.obj = total;
            }
            __syncwarp();
        }
        if (lane == 0) {
            out.nvalid = nv;
            out.nbad = nb;
        }
    }

    __device__ void normal_tiled(const float* p, Normal<NP>& out) const {
        constexpr int NT = NA + NP;  // tile sums: J^T W J (packed), then J^T W r
        constexpr int EPL = (NT + 31) / 32;  // per lane: sums lane, lane + 32, ...
        float* wg_tile = partial;            // [32][WROW]
        float* g_tile = partial + 32 * WROW;  // [32][GROW], r in column NP
        int kk[EPL], ll[EPL];
        double total[EPL];
#pragma unroll
        for (int j = 0; j < EPL; ++j) {
            const int e = lane + 32 * j;
            int k = 0, first = 0;  // row k of the packed triangle holds entries first .. first + NP - k - 1
            while (e < NA && e >= first + NP - k) first += NP - k++;
            kk[j] = e < NA ? k : e - NA;
            ll[j] = e < NA ? k + e - first : NP;
            total[j] = 0.0;
        }
        float obj = 0.0f;
        int nvalid = 0, nbad = 0;
        for (int i0 = 0; i0 < n; i0 += 32) {
            const int i = i0 + lane;
            float g[NP], wt = 0.0f, r = 0.0f;
#pragma unroll
            for (int k = 0; k < NP; ++k) g[k] = 0.0f;
            if (i < n) {
                float xs[M::NDIM], ob;
                bool bad;
#pragma unroll
                for (int d = 0; d < M::NDIM; ++d) xs[d] = x[d * x_dim_stride + i];
                nvalid += gp_point<M, E>(xs, y[i], w[i], p, g, wt, ob, r, bad);
                nbad += bad;
                obj += ob;
            }
#pragma unroll
            for (int k = 0; k < NP; ++k) {
                wg_tile[lane * WROW + k] = wt * g[k];
                g_tile[lane * GROW + k] = g[k];
            }
            g_tile[lane * GROW + NP] = r;
            __syncwarp();
#pragma unroll
            for (int j = 0; j < EPL; ++j) {
                if (lane + 32 * j < NT) {
                    float part = 0.0f;
                    for (int t = 0; t < 32; ++t) part += wg_tile[t * WROW + kk[j]] * g_tile[t * GROW + ll[j]];
                    total[j] += part;
                }
            }
            __syncwarp();
        }
#pragma unroll
        for (int j = 0; j < EPL; ++j) {
            const int e = lane + 32 * j;
            if (e < NA) out.a[e] = total[j];
            else if (e < NT) out.b[e - NA] = total[j];
        }
        const double ob = warp_sum(obj);
        const int nv = __reduce_add_sync(0xffffffffu, nvalid), nb = __reduce_add_sync(0xffffffffu, nbad);
        if (lane == 0) {
            out.obj = ob;
            out.nvalid = nv;
            out.nbad = nb;
        }
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
            if (lane == 0) {
                lo[k] = l;
                hi[k] = h;
            }
        }
    }
};

// Threads per block the kernel is built for (its shared memory holds one LMState per warp);
// gpuproc.fit.gpu.THREADS_PER_BLOCK launches it so, and a larger block fails to launch.
constexpr int GP_FIT_THREADS = 64;

// A warp's shared memory: the driver's state, the addresses of this fit's data and results, and
// the accumulator's scratch.  The addresses, sizes and options are read from here at each request
// rather than kept in registers (with whatever the compiler derives from them, such as loop trip
// counts), where they would stay live across the driver's calls into the slow paths of double
// division and square root, and spill.
template <class M, class E>
struct WarpShared {
    LMState<M> lm;
    FitOptions o;
    const float *x, *y, *w, *p0, *lo, *hi;
    unsigned fixed;
    int n;
    float partial[WarpAccumulator<M, E>::PARTIAL];
};

// One fit per warp.  cov_out: n_fits x NP x NP floats of covariance, or null (not computed).
template <class M, class E>
__global__ void __launch_bounds__(GP_FIT_THREADS)
    gp_fit_kernel(long long n_fits, int n_points, const float* x, long long x_fit_stride, long long x_dim_stride,
                  const float* y, long long y_stride, const float* w, long long w_stride, const float* p0,
                  const float* lo, const float* hi, long long bound_stride, const unsigned* fixed,
                  long long fixed_stride, int max_iter, float ftol, float xtol, float gtol, float lambda0,
                  int scale_errors, float* p_out, float* err_out, float* cov_out, float* chi2_out,
                  int* iter_out, unsigned char* status_out) {
    constexpr int NP = M::NP;
    __shared__ WarpShared<M, E> warps[GP_FIT_THREADS / 32];
    const long long fit = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (fit >= n_fits) return;  // whole warps leave together
    WarpShared<M, E>& s = warps[threadIdx.x / 32];
    if (lane == 0) {
        s.x = x + fit * x_fit_stride;
        s.y = y + fit * y_stride;
        s.w = w + fit * w_stride;
        s.p0 = p0 + fit * NP;
        s.lo = lo + fit * bound_stride;
        s.hi = hi + fit * bound_stride;
        s.fixed = fixed[fit * fixed_stride];
        s.n = n_points;
        s.o = FitOptions{max_iter, ftol, xtol, gtol, lambda0, scale_errors};
        s.lm.phase = GP_PHASE_START;
    }
    for (;;) {
        if (lane == 0) gp_lm_step<M>(s.lm, s.p0, s.lo, s.hi, s.fixed, s.o);
        __syncwarp();  // lane 0's request (and its arguments in s) visible to the warp
        const int request = s.lm.request;
        if (request == GP_REQ_DONE) break;
        const WarpAccumulator<M, E> acc{s.x, x_dim_stride, s.y, s.w, s.n, lane, s.partial};
        if (request == GP_REQ_NORMAL) acc.normal(s.lm.pf, s.lm.n[s.lm.target]);
        else acc.window(s.lm.p, s.lm.wlo, s.lm.whi);
        __syncwarp();  // every lane done reading the request before lane 0 moves on
    }
    if (lane == 0)
        gp_lm_write(s.lm, s.fixed, p_out + fit * NP, err_out + fit * NP,
                    cov_out == nullptr ? nullptr : cov_out + fit * NP * NP, chi2_out + fit, iter_out + fit,
                    status_out + fit);
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
        float, float, int, float*, float*, float*, float*, int*, unsigned char*
GP_MODELS(GP_INSTANTIATE)
#endif
