// The list of compiled models: X(id, name, C++ type).  fit.cu and fit_cpu.cpp expand it into their
// kernels; gpuproc/fit/models/ maps Python model objects onto these ids.
#pragma once
#include "models/gauss1d.cuh"
#include "models/gauss2d_polar.cuh"

// Template instances get plain names (a comma inside a macro argument would split it).
using Gauss1D_1_0 = Gauss1D<1, 0>;
using Gauss1D_1_1 = Gauss1D<1, 1>;
using Gauss1D_1_2 = Gauss1D<1, 2>;
using Gauss1D_2_0 = Gauss1D<2, 0>;
using Gauss1D_2_1 = Gauss1D<2, 1>;
using Gauss1D_2_2 = Gauss1D<2, 2>;
using Gauss1D_3_0 = Gauss1D<3, 0>;
using Gauss1D_3_1 = Gauss1D<3, 1>;
using Gauss1D_3_2 = Gauss1D<3, 2>;
using Gauss1D_4_0 = Gauss1D<4, 0>;
using Gauss1D_4_1 = Gauss1D<4, 1>;
using Gauss1D_4_2 = Gauss1D<4, 2>;

#define GP_MODELS(X)                        \
    X(0, gauss1d_1_0, Gauss1D_1_0)        \
    X(1, gauss1d_1_1, Gauss1D_1_1)        \
    X(2, gauss1d_1_2, Gauss1D_1_2)        \
    X(3, gauss1d_2_0, Gauss1D_2_0)        \
    X(4, gauss1d_2_1, Gauss1D_2_1)        \
    X(5, gauss1d_2_2, Gauss1D_2_2)        \
    X(6, gauss1d_3_0, Gauss1D_3_0)        \
    X(7, gauss1d_3_1, Gauss1D_3_1)        \
    X(8, gauss1d_3_2, Gauss1D_3_2)        \
    X(9, gauss1d_4_0, Gauss1D_4_0)        \
    X(10, gauss1d_4_1, Gauss1D_4_1)       \
    X(11, gauss1d_4_2, Gauss1D_4_2)       \
    X(12, gauss2d_polar, Gauss2DPolar)
