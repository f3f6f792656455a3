// A fit model from a user's value function: the Jacobian comes from dual numbers (dual.cuh).
//
// The user writes, in a header of their own, one function template of the scalar type T:
//     template <class T> GP_HD T my_model(const float* x, const T* p);   // value at one point
// (x: the point's NDIM coordinates, p: the NP parameters).  gpuproc.fit.user_model generates
//     struct GpUser_<hash> : UserModel<GpUser_<hash>, NP, NDIM, NPOS> {
//         template <class T> GP_HD static T value(const float* x, const T* p) { return my_model(x, p); }
//         GP_HD static void position(int k, int& param, int& dim, float& period) { ... }
//     };
// and compiles it with fit.cu (NVRTC) or user_model_cpu.cpp (the system C++ compiler), so the user
// model runs through the same LM driver, estimators and statuses as the built-in models.
#pragma once
#include "dual.cuh"

template <class Derived, int NP_, int NDIM_, int NPOS_>
struct UserModel {
    static constexpr int NP = NP_;
    static constexpr int NDIM = NDIM_;
    static constexpr int NPOS = NPOS_;

    // Value at coordinates x[NDIM]; writes df/dp into g[NP] (one forward pass with Dual<NP>).
    // On the host everything it calls is inlined (flatten): the dual arithmetic then reduces to
    // the few nonzero derivative terms and the accumulator's point loop vectorises as for a
    // built-in model (without it gcc calls eval per point: 10-15x slower).
#if defined(__CUDACC__)
    GP_HD static float eval(const float* x, const float* p, float* g) {
#else
    __attribute__((always_inline, flatten)) inline static float eval(const float* x, const float* p, float* g) {
#endif
        Dual<NP> q[NP];
#pragma unroll
        for (int i = 0; i < NP; ++i) q[i] = Dual<NP>::variable(p[i], i);
        const Dual<NP> f = Derived::value(x, q);
#pragma unroll
        for (int i = 0; i < NP; ++i) g[i] = f.d[i];
        return f.v;
    }
};
