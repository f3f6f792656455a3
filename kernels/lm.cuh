// The per-fit Levenberg-Marquardt driver, shared verbatim by the CUDA kernels and the CPU path.
//
// The driver never touches data points itself: an accumulator object (a warp of 32 lanes on the
// GPU, a SIMD tile loop on the CPU) sums the normal equations over the points of one fit.  It needs
//   void normal(const float* p, Normal<NP>& out) const;   // objective, J^T W J, J^T W r
//   void window(const double* p, float* lo, float* hi) const;  // data range around each position
// Everything else (damping, solve, bounds, fixed parameters, convergence, errors, status) is here.
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
    for (int i = 0; i < NP; ++i) {
        for (int j = i; j < NP; ++j) {
            double s = u[gp_tri(i, j, NP)];
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
    for (int i = 0; i < NP; ++i) {
        double s = x[i];
        for (int k = 0; k < i; ++k) s -= u[gp_tri(k, i, NP)] * x[k];
        x[i] = s / u[gp_tri(i, i, NP)];
    }
    for (int i = NP - 1; i >= 0; --i) {
        double s = x[i];
        for (int k = i + 1; k < NP; ++k) s -= u[gp_tri(i, k, NP)] * x[k];
        x[i] = s / u[gp_tri(i, i, NP)];
    }
}

// Factorises the damped normal matrix A + lambda diag(A) with fixed parameters removed.
template <int NP>
GP_HD bool gp_factor(const Normal<NP>& n, double lambda, unsigned fixed, double* u) {
    for (int i = 0; i < NP; ++i) {
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
// decrement b^T A^-1 b over the error scale); negative if A is singular.
template <int NP>
GP_HD double gp_remaining_step(const Normal<NP>& n, unsigned held, double error_scale, double* u) {
    if (!gp_factor<NP>(n, 0.0, held, u)) return -1.0;
    double z[NP];
    for (int i = 0; i < NP; ++i) z[i] = ((held >> i) & 1u) ? 0.0 : n.b[i];
    gp_cholesky_solve<NP>(u, z);
    double d = 0.0;
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

// Fits one problem.  p0, lo, hi: NP values; fixed: bit i set = parameter i held at p0[i].
// Writes NP parameters and standard errors, the reduced objective, the iteration count and status.
template <class M, class Acc>
GP_HD void gp_fit_one(const Acc& acc, const float* p0, const float* lo, const float* hi, unsigned fixed,
                      const FitOptions& o, float* p_out, float* err_out, float* chi2_out, int* iter_out,
                      unsigned char* status_out) {
    constexpr int NP = M::NP;
    double p[NP], trial[NP], u[Normal<NP>::NA];
    float pf[NP];
    Normal<NP> cur, nxt;
    int nfree = 0, status = GP_MAX_ITERATIONS, it = 0;
    bool bad_start = false;
    for (int i = 0; i < NP; ++i) {
        double v = p0[i];
        bad_start |= !gp_isfinite(p0[i]);
        v = v < lo[i] ? lo[i] : (v > hi[i] ? hi[i] : v);
        p[i] = v;
        pf[i] = static_cast<float>(v);
        nfree += ((fixed >> i) & 1u) ? 0 : 1;
    }
    float wlo[M::NPOS], whi[M::NPOS];
    double ref[M::NPOS];
    acc.window(p, wlo, whi);
    for (int k = 0; k < M::NPOS; ++k) {
        int param, dim;
        float period;
        M::position(k, param, dim, period);
        ref[k] = p[param];
    }
    acc.normal(pf, cur);
    if (bad_start || cur.nvalid <= nfree || !gp_admissible(cur)) {
        status = GP_INVALID_INPUT;
    } else {
        double lambda = o.lambda0, nu = 2.0;
        unsigned held = gp_active<NP>(cur, p, lo, hi, fixed);
        while (it < o.max_iter) {
            ++it;
            bool stepped = gp_factor<NP>(cur, lambda, held, u);
            if (stepped) {
                double dp[NP];
                for (int i = 0; i < NP; ++i) dp[i] = ((held >> i) & 1u) ? 0.0 : cur.b[i];
                gp_cholesky_solve<NP>(u, dp);
                bool small = true;
                for (int i = 0; i < NP; ++i) {
                    double v = p[i] + dp[i];
                    v = v < lo[i] ? lo[i] : (v > hi[i] ? hi[i] : v);
                    small &= fabs(v - p[i]) <= o.xtol * (fabs(p[i]) + o.xtol);
                    trial[i] = v;
                    pf[i] = static_cast<float>(v);
                }
                acc.normal(pf, nxt);
                // decrease predicted by the linear model: dp . (b + lambda diag(A) dp)
                double predicted = 0.0;
                for (int i = 0; i < NP; ++i)
                    predicted += (trial[i] - p[i]) * (cur.b[i] + lambda * cur.a[gp_tri(i, i, NP)] * (trial[i] - p[i]));
                stepped = gp_admissible(nxt) && nxt.obj <= cur.obj;
                if (stepped) {
                    const double decrease = (cur.obj - nxt.obj) / (cur.obj > 1e-300 ? cur.obj : 1e-300);
                    const bool gauss_newton = lambda <= o.lambda0;  // this step was (almost) undamped
                    const double cur_obj_before = cur.obj;
                    for (int i = 0; i < NP; ++i) p[i] = trial[i];
                    cur = nxt;
                    held = gp_active<NP>(cur, p, lo, hi, fixed);
                    // Nielsen's update: shrink the damping by how well the linear model predicted
                    const double rho = predicted > 0.0 ? (cur_obj_before - cur.obj) / predicted : 0.0;
                    const double t = 2.0 * rho - 1.0;
                    const double f = 1.0 - t * t * t;
                    lambda *= f > 1.0 / 3.0 ? f : 1.0 / 3.0;
                    lambda = lambda > 1e-12 ? lambda : 1e-12;
                    nu = 2.0;
                    const int dof = cur.nvalid - nfree;
                    const double scale = o.scale_errors && dof > 0 ? cur.obj / dof : 1.0;
                    const double rest = gp_remaining_step<NP>(cur, held, scale, u);
                    // Converged: the remaining step is below gtol standard errors; or the objective
                    // stopped falling (relative ftol) under a small or an undamped step, which also
                    // ends fits with flat directions (a peak fading to zero amplitude).
                    const bool stalled = decrease <= o.ftol && (small || gauss_newton);
                    if (stalled || cur.obj <= 0.0 || (rest >= 0.0 && rest <= o.gtol * o.gtol)) {
                        status = GP_CONVERGED;
                        break;
                    }
                }
            }
            if (!stepped) {
                lambda *= nu;
                nu *= 2.0;
                if (lambda > 1e12) {  // no descent left at working precision: a minimum
                    status = GP_CONVERGED;
                    break;
                }
            }
        }
    }

    // Standard errors from the inverse of the (undamped) normal matrix at the solution.
    const int dof = cur.nvalid - nfree;
    const double red = dof > 0 ? cur.obj / dof : gp_nan();
    const bool invertible = status != GP_INVALID_INPUT && gp_factor<NP>(cur, 0.0, fixed, u);
    for (int i = 0; i < NP; ++i) {
        double e = 0.0;
        if (!((fixed >> i) & 1u)) {
            double col[NP];
            for (int j = 0; j < NP; ++j) col[j] = j == i ? 1.0 : 0.0;
            if (invertible) gp_cholesky_solve<NP>(u, col);
            e = invertible ? sqrt(col[i] * (o.scale_errors ? red : 1.0)) : gp_nan();
        }
        err_out[i] = static_cast<float>(e);
        p_out[i] = static_cast<float>(p[i]);
    }
    if (status != GP_INVALID_INPUT) {
        bool inside = true;
        for (int k = 0; k < M::NPOS; ++k) {
            int param, dim;
            float period;
            M::position(k, param, dim, period);
            double v = p[param] - ref[k];
            if (period > 0.0f) v -= period * floor(v / period + 0.5);
            inside &= v >= wlo[k] && v <= whi[k];
        }
        bool finite = true;
        for (int i = 0; i < NP; ++i) finite &= gp_isfinite(p[i]);
        if (!invertible) status = GP_SINGULAR;
        else if (!finite || !inside) status = GP_OUT_OF_BOUNDS;
    }
    *chi2_out = static_cast<float>(red);
    *iter_out = it;
    *status_out = static_cast<unsigned char>(status);
}
