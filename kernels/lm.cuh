// The per-fit Levenberg-Marquardt driver, shared verbatim by the CUDA kernels and the CPU path.
//
// The driver never touches data points itself: an accumulator object (a warp of 32 lanes on the
// GPU, a SIMD tile loop on the CPU) sums the normal equations over the points of one fit.  It needs
//   void normal(const float* p, Normal<NP>& out) const;   // objective, J^T W J, J^T W r
//   void window(const double* p, float* lo, float* hi) const;  // data range around each position
// Everything else (damping, solve, bounds, fixed parameters, convergence, errors, status) is here,
// written as a state machine (gp_lm_step) whose whole state is one struct (LMState): the GPU keeps
// it in shared memory, once per warp instead of once per lane in registers.
#pragma once
#include "common.cuh"

struct FitOptions {
    int max_iter;        // maximum number of LM iterations (accepted or rejected steps)
    float ftol;          // relative decrease of the objective that counts as converged ...
    float xtol;          // ... together with a relative step smaller than this
    float gtol;          // remaining Gauss-Newton step, in standard errors, that counts as converged
    float lambda0;       // initial damping
    int scale_errors;    // 1: scale the covariance by the reduced objective (unknown noise level)
};

template <int NP>
struct Normal {
    static constexpr int NA = NP * (NP + 1) / 2;
    double a[NA];  // packed upper triangle of J^T W J, row by row
    double b[NP];  // J^T W r
    double obj;    // objective (chi-square or Poisson deviance)
    int nvalid;    // number of points that count
    int nbad;      // valid points where the model was not admissible (Poisson f <= 0)
};

GP_HD int gp_tri(int i, int j, int n) { return i * n - i * (i - 1) / 2 + (j - i); }

// In-place Cholesky U^T U = A of a packed upper-triangular matrix.  Fails (returns false) when a
// pivot falls below rtol times its diagonal, i.e. the columns are linearly dependent to that level.
template <int NP>
GP_HD bool gp_cholesky(double* u, double rtol) {
    GP_ROLLED
    for (int i = 0; i < NP; ++i) {
        GP_ROLLED
        for (int j = i; j < NP; ++j) {
            double s = u[gp_tri(i, j, NP)];
            GP_ROLLED
            for (int k = 0; k < i; ++k) s -= u[gp_tri(k, i, NP)] * u[gp_tri(k, j, NP)];
            if (i == j) {
                if (!(s > rtol * u[gp_tri(i, i, NP)])) return false;
                u[gp_tri(i, i, NP)] = sqrt(s);
            } else {
                u[gp_tri(i, j, NP)] = s / u[gp_tri(i, i, NP)];
            }
        }
    }
    return true;
}

// Solves U^T U x = b in place.
template <int NP>
GP_HD void gp_cholesky_solve(const double* u, double* x) {
    GP_ROLLED
    for (int i = 0; i < NP; ++i) {
        double s = x[i];
        GP_ROLLED
        for (int k = 0; k < i; ++k) s -= u[gp_tri(k, i, NP)] * x[k];
        x[i] = s / u[gp_tri(i, i, NP)];
    }
    GP_ROLLED
    for (int i = NP - 1; i >= 0; --i) {
        double s = x[i];
        GP_ROLLED
        for (int k = i + 1; k < NP; ++k) s -= u[gp_tri(i, k, NP)] * x[k];
        x[i] = s / u[gp_tri(i, i, NP)];
    }
}

// Factorises the damped normal matrix A + lambda diag(A) with fixed parameters removed.
template <int NP>
GP_HD bool gp_factor(const Normal<NP>& n, double lambda, unsigned fixed, double* u) {
    GP_ROLLED
    for (int i = 0; i < NP; ++i) {
        GP_ROLLED
        for (int j = i; j < NP; ++j) {
            const bool fix = ((fixed >> i) & 1u) || ((fixed >> j) & 1u);
            double v = fix ? 0.0 : n.a[gp_tri(i, j, NP)];
            if (i == j) v = fix ? 1.0 : v * (1.0 + lambda);
            u[gp_tri(i, j, NP)] = v;
        }
    }
    return gp_cholesky<NP>(u, 1e-10);
}

// Parameters held still in the next step: fixed ones, free ones sitting on a bound while the
// descent direction (J^T W r) points out of the box (a projected active set), and ones that have
// no influence on the model here (zero diagonal, e.g. the centre of a peak whose amplitude is 0).
// Held parameters keep the step solvable; the final covariance, computed without the held set,
// still reports a parameter without influence as SINGULAR.
template <int NP>
GP_HD unsigned gp_active(const Normal<NP>& n, const double* p, const float* lo, const float* hi, unsigned fixed) {
    unsigned held = fixed;
    for (int i = 0; i < NP; ++i) {
        const bool out = (p[i] <= lo[i] && n.b[i] < 0.0) || (p[i] >= hi[i] && n.b[i] > 0.0);
        const bool idle = !(n.a[gp_tri(i, i, NP)] > 0.0);
        held |= (out || idle) ? (1u << i) : 0u;
    }
    return held;
}

// Squared length of the remaining Gauss-Newton step in units of the standard errors (the Newton
// decrement b^T A^-1 b over the error scale); negative if A is singular.  u, z: workspace.
template <int NP>
GP_HD double gp_remaining_step(const Normal<NP>& n, unsigned held, double error_scale, double* u, double* z) {
    if (!gp_factor<NP>(n, 0.0, held, u)) return -1.0;
    GP_ROLLED
    for (int i = 0; i < NP; ++i) z[i] = ((held >> i) & 1u) ? 0.0 : n.b[i];
    gp_cholesky_solve<NP>(u, z);
    double d = 0.0;
    GP_ROLLED
    for (int i = 0; i < NP; ++i) d += ((held >> i) & 1u) ? 0.0 : z[i] * n.b[i];
    return d / error_scale;
}

// One data point: model value and gradient, the estimator's weight and objective term, validity.
// A point counts when its weight is positive and its value and coordinates are finite; a point
// that does not count contributes exact zeros, whatever NaN or inf it holds.
template <class M, class E>
GP_HD bool gp_point(const float* x, float y, float w, const float* p, float* g, float& weight, float& obj,
                    float& r, bool& bad) {
    bool valid = w > 0.0f && gp_isfinite(y);
    for (int d = 0; d < M::NDIM; ++d) valid &= gp_isfinite(x[d]);
    float xs[M::NDIM];
    for (int d = 0; d < M::NDIM; ++d) xs[d] = valid ? x[d] : 0.0f;
    const float f = M::eval(xs, p, g);
    const bool ok = E::point(valid ? y : 0.0f, w, f, weight, obj);
    bad = valid && !ok;
    r = valid && ok ? y - f : 0.0f;
    weight = valid && ok ? weight : 0.0f;
    obj = valid && ok ? obj : 0.0f;
    for (int k = 0; k < M::NP; ++k) g[k] = valid ? g[k] : 0.0f;
    return valid;
}

template <int NP>
GP_HD bool gp_admissible(const Normal<NP>& n) { return n.nbad == 0 && gp_isfinite(n.obj); }

// The driver as a state machine: gp_lm_step advances one fit to its next request of the data
// (GP_REQ_WINDOW: acc.window(s.p, s.wlo, s.whi); GP_REQ_NORMAL: acc.normal(s.pf, s.n[s.target]))
// or to its end (GP_REQ_DONE, results written).  All of its arrays live in LMState, so the CUDA
// kernel keeps them in shared memory and runs the steps on one lane while the whole warp serves
// the requests; gp_fit_one below serves them on the calling thread.
#define GP_REQ_DONE 0
#define GP_REQ_WINDOW 1
#define GP_REQ_NORMAL 2

#define GP_PHASE_START 0   // nothing done yet
#define GP_PHASE_WINDOW 1  // waiting for the data window
#define GP_PHASE_FIRST 2   // waiting for the normal equations at the start
#define GP_PHASE_TRIAL 3   // waiting for the normal equations at a trial step
#define GP_PHASE_DONE 4

template <class M>
struct LMState {
    static constexpr int NP = M::NP;
    Normal<NP> n[2];            // normal equations at the current point (n[cur]) and at a trial point
    double u[Normal<NP>::NA];   // Cholesky factor of the (damped) normal matrix
    double p[NP], trial[NP];    // current and trial parameters
    double v[NP];               // a right-hand side / solution of the Cholesky solves
    float err[NP], chi2;        // results: standard errors, reduced objective
    float pf[NP];               // parameters of the next GP_REQ_NORMAL
    float wlo[M::NPOS], whi[M::NPOS];  // data window around each position at the start
    double ref[M::NPOS];        // the positions at the start
    double lambda, nu;
    double scale;               // of the covariance: reduced objective, or 1 (gp_lm_finish)
    bool invertible;            // the final normal matrix was factorised into u (gp_lm_finish)
    unsigned held;
    int cur, target, nfree, it, status, phase, request;
    bool bad_start, small;
};

// Validates the start and initialises the damping; false when the fit cannot start.
template <class M>
GP_HD bool gp_lm_start(LMState<M>& s, const float* lo, const float* hi, unsigned fixed, const FitOptions& o) {
    const Normal<M::NP>& cur = s.n[s.cur];
    if (s.bad_start || cur.nvalid <= s.nfree || !gp_admissible(cur)) {
        s.status = GP_INVALID_INPUT;
        return false;
    }
    s.lambda = o.lambda0;
    s.nu = 2.0;
    s.held = gp_active<M::NP>(cur, s.p, lo, hi, fixed);
    return true;
}

// A rejected step (or an unsolvable damped system): more damping; false once no descent is left
// at working precision (a minimum: converged).
template <class M>
GP_HD bool gp_lm_damp(LMState<M>& s) {
    s.lambda *= s.nu;
    s.nu *= 2.0;
    if (s.lambda > 1e12) {
        s.status = GP_CONVERGED;
        return false;
    }
    return true;
}

// Proposes the next trial step into s.trial / s.pf; false when the iterations end without one.
template <class M>
GP_HD bool gp_lm_propose(LMState<M>& s, const float* lo, const float* hi, const FitOptions& o) {
    constexpr int NP = M::NP;
    while (s.it < o.max_iter) {
        ++s.it;
        const Normal<NP>& cur = s.n[s.cur];
        if (gp_factor<NP>(cur, s.lambda, s.held, s.u)) {
            double* dp = s.v;
            GP_ROLLED
            for (int i = 0; i < NP; ++i) dp[i] = ((s.held >> i) & 1u) ? 0.0 : cur.b[i];
            gp_cholesky_solve<NP>(s.u, dp);
            bool small = true;
            GP_ROLLED
            for (int i = 0; i < NP; ++i) {
                double v = s.p[i] + dp[i];
                v = v < lo[i] ? lo[i] : (v > hi[i] ? hi[i] : v);
                small &= fabs(v - s.p[i]) <= o.xtol * (fabs(s.p[i]) + o.xtol);
                s.trial[i] = v;
                s.pf[i] = static_cast<float>(v);
            }
            s.small = small;
            return true;
        }
        if (!gp_lm_damp(s)) return false;
    }
    s.status = GP_MAX_ITERATIONS;
    return false;
}

// Accepts or rejects the trial step whose normal equations arrived; false when the fit converged.
template <class M>
GP_HD bool gp_lm_judge(LMState<M>& s, const float* lo, const float* hi, unsigned fixed, const FitOptions& o) {
    constexpr int NP = M::NP;
    const Normal<NP>& cur = s.n[s.cur];
    const Normal<NP>& nxt = s.n[s.target];
    // decrease predicted by the linear model: dp . (b + lambda diag(A) dp)
    double predicted = 0.0;
    for (int i = 0; i < NP; ++i)
        predicted += (s.trial[i] - s.p[i]) * (cur.b[i] + s.lambda * cur.a[gp_tri(i, i, NP)] * (s.trial[i] - s.p[i]));
    if (!(gp_admissible(nxt) && nxt.obj <= cur.obj)) return gp_lm_damp(s);
    const double decrease = (cur.obj - nxt.obj) / (cur.obj > 1e-300 ? cur.obj : 1e-300);
    const bool gauss_newton = s.lambda <= o.lambda0;  // this step was (almost) undamped
    const double cur_obj_before = cur.obj;
    for (int i = 0; i < NP; ++i) s.p[i] = s.trial[i];
    s.cur = s.target;
    const Normal<NP>& now = s.n[s.cur];
    s.held = gp_active<NP>(now, s.p, lo, hi, fixed);
    // Nielsen's update: shrink the damping by how well the linear model predicted
    const double rho = predicted > 0.0 ? (cur_obj_before - now.obj) / predicted : 0.0;
    const double t = 2.0 * rho - 1.0;
    const double f = 1.0 - t * t * t;
    s.lambda *= f > 1.0 / 3.0 ? f : 1.0 / 3.0;
    s.lambda = s.lambda > 1e-12 ? s.lambda : 1e-12;
    s.nu = 2.0;
    const int dof = now.nvalid - s.nfree;
    const double scale = o.scale_errors && dof > 0 ? now.obj / dof : 1.0;
    const double rest = gp_remaining_step<NP>(now, s.held, scale, s.u, s.v);
    // Converged: the remaining step is below gtol standard errors; or the objective stopped
    // falling (relative ftol) under a small or an undamped step, which also ends fits with flat
    // directions (a peak fading to zero amplitude).
    const bool stalled = decrease <= o.ftol && (s.small || gauss_newton);
    if (stalled || now.obj <= 0.0 || (rest >= 0.0 && rest <= o.gtol * o.gtol)) {
        s.status = GP_CONVERGED;
        return false;
    }
    return true;
}

// Column i of the covariance of a finished fit into s.v: column i of the inverse of the normal
// matrix that gp_lm_finish factorised into s.u, scaled as the errors; false (s.v untouched) where
// there is none: parameter i fixed, or the matrix singular.
template <class M>
GP_HD bool gp_lm_covariance_column(LMState<M>& s, int i, unsigned fixed) {
    constexpr int NP = M::NP;
    if (((fixed >> i) & 1u) || !s.invertible) return false;
    GP_ROLLED
    for (int j = 0; j < NP; ++j) s.v[j] = j == i ? 1.0 : 0.0;
    gp_cholesky_solve<NP>(s.u, s.v);
    GP_ROLLED
    for (int j = 0; j < NP; ++j) s.v[j] *= s.scale;
    return true;
}

// Standard errors from the inverse of the (undamped) normal matrix at the solution (s.err; 0 for
// fixed parameters, NaN where it is singular), the reduced objective (s.chi2) and the final status.
template <class M>
GP_HD void gp_lm_finish(LMState<M>& s, unsigned fixed, const FitOptions& o) {
    constexpr int NP = M::NP;
    const Normal<NP>& cur = s.n[s.cur];
    const int dof = cur.nvalid - s.nfree;
    const double red = dof > 0 ? cur.obj / dof : gp_nan();
    s.scale = o.scale_errors ? red : 1.0;
    s.invertible = s.status != GP_INVALID_INPUT && gp_factor<NP>(cur, 0.0, fixed, s.u);
    const bool invertible = s.invertible;
    GP_ROLLED
    for (int i = 0; i < NP; ++i) {
        const bool free_i = !((fixed >> i) & 1u);
        const bool known = gp_lm_covariance_column(s, i, fixed);
        s.err[i] = static_cast<float>(known ? sqrt(s.v[i]) : (free_i ? gp_nan() : 0.0));
    }
    if (s.status != GP_INVALID_INPUT) {
        bool inside = true;
        for (int k = 0; k < M::NPOS; ++k) {
            int param, dim;
            float period;
            M::position(k, param, dim, period);
            double v = s.p[param] - s.ref[k];
            if (period > 0.0f) v -= period * floor(v / period + 0.5);
            inside &= v >= s.wlo[k] && v <= s.whi[k];
        }
        bool finite = true;
        for (int i = 0; i < NP; ++i) finite &= gp_isfinite(s.p[i]);
        if (!invertible) s.status = GP_SINGULAR;
        else if (!finite || !inside) s.status = GP_OUT_OF_BOUNDS;
    }
    s.chi2 = static_cast<float>(red);
}

// Writes the results of a finished fit: NP parameters and standard errors, the reduced objective,
// the iteration count and the status; and, when cov_out is not null, the NP x NP covariance
// (row-major, scaled as the errors; 0 in the rows and columns of fixed parameters, NaN in the
// others where the normal matrix is singular), one column of the inverse at a time through s.v:
// the matrix itself is never held.
template <class M>
GP_HD void gp_lm_write(LMState<M>& s, unsigned fixed, float* p_out, float* err_out, float* cov_out, float* chi2_out,
                       int* iter_out, unsigned char* status_out) {
    constexpr int NP = M::NP;
    for (int i = 0; i < NP; ++i) {
        p_out[i] = static_cast<float>(s.p[i]);
        err_out[i] = s.err[i];
    }
    *chi2_out = s.chi2;
    *iter_out = s.it;
    *status_out = static_cast<unsigned char>(s.status);
    if (cov_out == nullptr) return;
    GP_ROLLED
    for (int i = 0; i < NP; ++i) {
        const bool known = gp_lm_covariance_column(s, i, fixed);
        GP_ROLLED
        for (int j = 0; j < NP; ++j) {
            const bool free_pair = !(((fixed >> i) | (fixed >> j)) & 1u);
            cov_out[i * NP + j] = static_cast<float>(known && free_pair ? s.v[j] : (free_pair ? gp_nan() : 0.0));
        }
    }
}

// Advances one fit (state s, s.phase = GP_PHASE_START at first) to its next request; returns it
// (also in s.request); at GP_REQ_DONE the results are in s (gp_lm_write).  p0, lo, hi: NP values;
// fixed: bit i set = parameter i held at p0[i].
template <class M>
GP_HD int gp_lm_step(LMState<M>& s, const float* p0, const float* lo, const float* hi, unsigned fixed,
                     const FitOptions& o) {
    constexpr int NP = M::NP;
    bool going = false;
    switch (s.phase) {
        case GP_PHASE_START:
            s.nfree = 0;
            s.it = 0;
            s.cur = 0;
            s.status = GP_MAX_ITERATIONS;
            s.bad_start = false;
            for (int i = 0; i < NP; ++i) {
                double v = p0[i];
                s.bad_start |= !gp_isfinite(p0[i]);
                v = v < lo[i] ? lo[i] : (v > hi[i] ? hi[i] : v);
                s.p[i] = v;
                s.pf[i] = static_cast<float>(v);
                s.nfree += ((fixed >> i) & 1u) ? 0 : 1;
            }
            s.phase = GP_PHASE_WINDOW;
            return s.request = GP_REQ_WINDOW;
        case GP_PHASE_WINDOW:
            for (int k = 0; k < M::NPOS; ++k) {
                int param, dim;
                float period;
                M::position(k, param, dim, period);
                s.ref[k] = s.p[param];
            }
            s.target = s.cur;
            s.phase = GP_PHASE_FIRST;
            return s.request = GP_REQ_NORMAL;
        case GP_PHASE_FIRST:
            going = gp_lm_start(s, lo, hi, fixed, o);
            break;
        case GP_PHASE_TRIAL:
            going = gp_lm_judge(s, lo, hi, fixed, o);
            break;
        default:
            return s.request = GP_REQ_DONE;
    }
    if (going && gp_lm_propose(s, lo, hi, o)) {
        s.target = 1 - s.cur;
        s.phase = GP_PHASE_TRIAL;
        return s.request = GP_REQ_NORMAL;
    }
    gp_lm_finish(s, fixed, o);
    s.phase = GP_PHASE_DONE;
    return s.request = GP_REQ_DONE;
}

// Fits one problem on the calling thread, serving the driver's requests with `acc`; cov_out: NP x NP
// floats of covariance, or null.
template <class M, class Acc>
GP_HD void gp_fit_one(const Acc& acc, const float* p0, const float* lo, const float* hi, unsigned fixed,
                      const FitOptions& o, float* p_out, float* err_out, float* cov_out, float* chi2_out,
                      int* iter_out, unsigned char* status_out) {
    LMState<M> s;
    s.phase = GP_PHASE_START;
    for (;;) {
        const int r = gp_lm_step<M>(s, p0, lo, hi, fixed, o);
        if (r == GP_REQ_WINDOW) acc.window(s.p, s.wlo, s.whi);
        else if (r == GP_REQ_NORMAL) acc.normal(s.pf, s.n[s.target]);
        else return gp_lm_write(s, fixed, p_out, err_out, cov_out, chi2_out, iter_out, status_out);
    }
}
