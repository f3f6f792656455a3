// CPU library of one user model.  The generated source (gpuproc.fit.user_model) defines the
// model type, names it GP_USER_TYPE and includes this file: fit_cpu.cpp then builds its entry
// points (gp_fit_cpu, gp_model_nparams) for that one model, as model id 0.
#ifndef GP_USER_TYPE
#error "GP_USER_TYPE (the generated user model type) must be defined before including user_model_cpu.cpp"
#endif
#define GP_MODEL_LIST(X) X(0, user, GP_USER_TYPE)
#include "fit_cpu.cpp"

extern "C" {

// Value and gradient at every point of every fit, for the Python side of the model:
// x[fit * x_fit_stride + d * n_points + i], p[fit * NP + k] -> f[fit * n_points + i],
// g[(fit * n_points + i) * NP + k].
void gp_user_eval(long long n_fits, int n_points, const float* x, long long x_fit_stride, const float* p, float* f,
                  float* g) {
    using M = GP_USER_TYPE;
    for (long long fit = 0; fit < n_fits; ++fit) {
        for (int i = 0; i < n_points; ++i) {
            float xs[M::NDIM];
            for (int d = 0; d < M::NDIM; ++d) xs[d] = x[fit * x_fit_stride + static_cast<long long>(d) * n_points + i];
            const long long at = fit * n_points + i;
            f[at] = M::eval(xs, p + fit * M::NP, g + at * M::NP);
        }
    }
}

// The compiled model's shape, so that Python can check it against the registration.
void gp_user_shape(int* n_params, int* n_dims, int* n_positions) {
    *n_params = GP_USER_TYPE::NP;
    *n_dims = GP_USER_TYPE::NDIM;
    *n_positions = GP_USER_TYPE::NPOS;
}
}
