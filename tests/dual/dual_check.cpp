// Every built-in model's hand-written gradient (M::eval) next to its dual-number gradient: the
// same model's value<T>() evaluated with Dual<NP> through the user-model adapter (user_model.cuh).
// Built by tests/test_dual_jacobians.py with gpuproc.fit.compile_cpu; models come from GP_MODELS.
#include <type_traits>

#include "models.cuh"
#include "user_model.cuh"

template <class M, class = void>
struct HasValue : std::false_type {};
template <class M>
struct HasValue<M, std::void_t<decltype(M::template value<float>(nullptr, nullptr))>> : std::true_type {};

template <class M>
struct DualOf : UserModel<DualOf<M>, M::NP, M::NDIM, M::NPOS> {
    template <class T>
    static T value(const float* x, const T* p) { return M::template value<T>(x, p); }
};

// x[d * n + i]; p[NP]; f[n], g[n * NP].  Returns 0, or 1 when the model has no value<T>().
template <class M>
int check(int n, const float* x, const float* p, float* f_hand, float* g_hand, float* f_dual, float* g_dual) {
    if constexpr (!HasValue<M>::value) {
        return 1;
    } else {
        for (int i = 0; i < n; ++i) {
            float xs[M::NDIM];
            for (int d = 0; d < M::NDIM; ++d) xs[d] = x[d * n + i];
            f_hand[i] = M::eval(xs, p, g_hand + i * M::NP);
            f_dual[i] = DualOf<M>::eval(xs, p, g_dual + i * M::NP);
        }
        return 0;
    }
}

extern "C" {

// Returns 0, 1 (no value<T>()) or -1 (no such model id).
int gp_dual_check(int model, int n, const float* x, const float* p, float* f_hand, float* g_hand, float* f_dual,
                  float* g_dual) {
#define GP_CHECK(id, name, T) \
    case id:                  \
        return check<T>(n, x, p, f_hand, g_hand, f_dual, g_dual);
    switch (model) {
        GP_MODELS(GP_CHECK)
        default:
            return -1;
    }
}

// The k-th position of a model: parameter, coordinate, period (or -1 for no such model).
int gp_dual_position(int model, int k, int* param, int* dim, float* period) {
#define GP_POSITION(id, name, T)                 \
    case id:                                     \
        if (k >= T::NPOS) return -1;             \
        T::position(k, *param, *dim, *period);   \
        return 0;
    switch (model) {
        GP_MODELS(GP_POSITION)
        default:
            return -1;
    }
}
}
