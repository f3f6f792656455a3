// Estimators: what one data point adds to the objective and to the normal equations.
//
// Both are written as (iteratively re-)weighted least squares: the point contributes
// weight * J J^T to the normal matrix and weight * (y - f) * J to the right-hand side.
//  - LeastSquares: objective sum w (y - f)^2, weight w.
//  - Poisson: objective is the deviance 2 sum w (f - y - y ln(f / y)) and the weight w / f, so the
//    normal matrix is the Fisher information and the right-hand side the score (Fisher scoring);
//    it needs f > 0 at every valid point.
#pragma once
#include "common.cuh"

struct LeastSquares {
    // Returns false if the model value is not admissible for this estimator.
    GP_HD static bool point(float y, float w, float f, float& weight, float& objective) {
        const float r = y - f;
        weight = w;
        objective = w * r * r;
        return true;
    }
};

struct Poisson {
    GP_HD static bool point(float y, float w, float f, float& weight, float& objective) {
        const bool ok = f > 0.0f;
        const float fs = ok ? f : 1.0f;
        const float ylog = y > 0.0f ? y * gp_log(fs / (y > 0.0f ? y : 1.0f)) : 0.0f;
        weight = w / fs;
        objective = 2.0f * w * (fs - y - ylog);
        return ok;
    }
};
