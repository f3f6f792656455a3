// CPU kernels for gpuproc.waxs.integrate.CakeIntegrator (reached through ctypes, which releases
// the GIL, so Python threads run blocks of frames in parallel).
//
// csr_prepare_<type>: frames (n, npix) of <type> -> X (npix, n) float32 = frame - dark, transposed
//   in cache-sized tiles, with invalid pixels (value in one of `n_iv` closed intervals `iv`, above
//   saturation, non-finite: see Rules) set to 0 and, unless unlisted[p] (pixels already masked
//   for good), reported as flat indices f * npix + p (up to `cap` of them; the return value is the
//   total count, so a caller seeing more than `cap` knows the list is incomplete).
// csr_spmm: out[k, dest[i]] = (C @ X)[i, k] for rows i in [row0, row1): C (rows, npix) CSR with
//   int32 indices, X (npix, n), out (n, n_out) row-major; float32 sums in the order of the stored
//   non-zeros. `dest` lets the rows be stored in any order while out is in the caller's order.
#include <cmath>
#include <limits>
#include <cstdint>
#include <type_traits>

namespace {

constexpr long long TILE = 256;  // pixels per tile: TILE * n * 4 bytes of X stay in L1/L2

// Invalid raw values (the rules of gpuproc.waxs.invalid_pixels): up to NIV closed intervals
// [lo, hi] and `v > sat`. Integer frames compare in their own type (integer bounds); floating
// frames compare their float32 conversion with float32 bounds and are invalid when that is not
// finite, as pyFAI converts frames to float32 before testing them.
constexpr int NIV = 2;

template <class T>
struct Rules {
    using C = std::conditional_t<std::is_floating_point_v<T>, float, T>;  // comparison type
    C lo[NIV], hi[NIV];  // unused intervals are empty: lo = max, hi = lowest
    bool has_sat = false, force = false;  // v > sat_t is invalid; force: every value is
    T sat_t{};
    Rules(int n_iv, const double* iv, bool check_sat, double sat) {
        for (int i = 0; i < NIV; ++i) {
            lo[i] = std::numeric_limits<C>::max();
            hi[i] = std::numeric_limits<C>::lowest();
            if (i < n_iv) {  // bounds are exact values of C (the caller clamps them to the type)
                lo[i] = static_cast<C>(iv[2 * i]);
                hi[i] = static_cast<C>(iv[2 * i + 1]);
            }
        }
        if constexpr (std::is_integral_v<T>) {
            const double low = static_cast<double>(std::numeric_limits<T>::lowest());
            const double top = static_cast<double>(std::numeric_limits<T>::max());
            if (check_sat && !(sat >= top)) {  // v > sat <=> v > floor(sat) for integers
                const double s = std::floor(sat);
                if (s < low) {
                    force = true;  // every value is above
                } else {
                    has_sat = true;
                    sat_t = static_cast<T>(s);
                }
            }
        } else {  // the caller passes a saturation exact in T (float32 frames: rounded to float32)
            has_sat = check_sat;
            sat_t = static_cast<T>(sat);
        }
    }
};

template <class T>
inline float to_float(T v) {
    if constexpr (std::is_same_v<T, uint32_t>) {
        // AVX2 has no unsigned conversion: values below 2**31 convert exactly as signed; larger
        // ones are flagged and converted again, exactly, in the scalar fix-up pass.
        return static_cast<float>(static_cast<int32_t>(v & 0x7fffffffu));
    } else {
        return static_cast<float>(v);
    }
}

template <class T>
long long prepare(const T* frames, long long n, long long npix, const float* dark, int n_iv,
                  const double* iv, int check_sat, double sat, const uint8_t* unlisted, float* X,
                  long long* bad, long long cap) {
    long long count = 0;
    const Rules<T> th(n_iv, iv, check_sat, sat);
    using C = typename Rules<T>::C;
    float tmp[TILE * 64];  // (f, p) tile of up to 64 frames, converted and dark-subtracted
    for (long long f0 = 0; f0 < n; f0 += 64) {
        const long long nf = n - f0 < 64 ? n - f0 : 64;
        for (long long p0 = 0; p0 < npix; p0 += TILE) {
            const long long np_ = npix - p0 < TILE ? npix - p0 : TILE;
            for (long long f = 0; f < nf; ++f) {
                const T* src = frames + (f0 + f) * npix + p0;
                float* row = tmp + f * TILE;
                uint8_t invalid[TILE];  // the exact test, vectorised: the frame's type or float32
                const uint8_t* fixed = unlisted + p0;
                // plain reductions, which GCC vectorises (with omp simd's per-lane arrays the loop ran
                // 2.5x slower); any: an invalid pixel to list (not masked for good) in the tile
                int any = 0, high = 0;
                for (long long p = 0; p < np_; ++p) {
                    const T v = src[p];
                    const C c = static_cast<C>(v);
                    int b = th.force;
                    if constexpr (std::is_floating_point_v<T>) b |= !(c - c == 0);  // inf, nan
                    for (int i = 0; i < NIV; ++i) b |= (c >= th.lo[i]) & (c <= th.hi[i]);
                    if (th.has_sat) b |= (v > th.sat_t);
                    if constexpr (std::is_same_v<T, uint32_t>) high |= (v >> 31);
                    invalid[p] = static_cast<uint8_t>(b);
                    row[p] = b ? 0.0f : to_float(v) - dark[p0 + p];
                    any |= b & !fixed[p];
                }
                if constexpr (std::is_same_v<T, uint32_t>) {
                    if (high) {  // rare: values >= 2**31, converted exactly one at a time
                        for (long long p = 0; p < np_; ++p)
                            if ((src[p] >> 31) && !invalid[p]) row[p] = static_cast<float>(src[p]) - dark[p0 + p];
                    }
                }
                if (any) {  // list them (rare: most invalid pixels are the detector's gaps, masked)
                    for (long long p = 0; p < np_; ++p) {
                        if (!invalid[p] || fixed[p]) continue;
                        if (count < cap) bad[count] = (f0 + f) * npix + p0 + p;
                        ++count;
                    }
                }
            }
            // transpose the tile: X[p, f0:f0+nf] is contiguous
            for (long long p = 0; p < np_; ++p) {
                float* dst = X + (p0 + p) * n + f0;
#pragma omp simd
                for (long long f = 0; f < nf; ++f) dst[f] = tmp[f * TILE + p];
            }
        }
    }
    return count;
}

}  // namespace

extern "C" {

#define GP_PREPARE(NAME, T)                                                                      \
    long long NAME(const T* frames, long long n, long long npix, const float* dark,              \
                   int n_iv, const double* iv, int check_sat, double sat, const uint8_t* unlisted, \
                   float* X, long long* bad, long long cap) {                                     \
        return prepare<T>(frames, n, npix, dark, n_iv, iv, check_sat, sat, unlisted, X, bad, cap); \
    }
GP_PREPARE(csr_prepare_u16, uint16_t)
GP_PREPARE(csr_prepare_u32, uint32_t)
GP_PREPARE(csr_prepare_i32, int32_t)
GP_PREPARE(csr_prepare_f32, float)
GP_PREPARE(csr_prepare_f64, double)
#undef GP_PREPARE

void csr_spmm(long long row0, long long row1, long long n, const int32_t* indptr,
              const int32_t* indices, const float* data, const float* X, const int64_t* dest,
              long long n_out, float* out) {
    float y[64];
    for (long long k0 = 0; k0 < n; k0 += 64) {
        const long long nk = n - k0 < 64 ? n - k0 : 64;
        for (long long i = row0; i < row1; ++i) {
#pragma omp simd
            for (long long k = 0; k < nk; ++k) y[k] = 0.0f;
            for (int32_t jj = indptr[i]; jj < indptr[i + 1]; ++jj) {
                const float a = data[jj];
                const float* x = X + static_cast<long long>(indices[jj]) * n + k0;
#pragma omp simd
                for (long long k = 0; k < nk; ++k) y[k] += a * x[k];
            }
            float* o = out + k0 * n_out + dest[i];
            for (long long k = 0; k < nk; ++k) o[k * n_out] = y[k];
        }
    }
}

}  // extern "C"

#ifdef GP_PYTHON_MODULE
// A module object so that the library installs and imports like any extension; the functions
// above are reached through ctypes.
#include <Python.h>
static struct PyModuleDef gp_module = {PyModuleDef_HEAD_INIT, "_csrcpu", "gpuproc CPU caking kernels", -1, nullptr};
PyMODINIT_FUNC PyInit__csrcpu(void) { return PyModule_Create(&gp_module); }
#endif
