// The list of compiled models: X(id, name, C++ type).  fit.cu and fit_cpu.cpp expand it into their
// kernels; gpuproc/fit/models/ maps Python model objects onto these ids.
#pragma once
#include "models/gauss1d.cuh"
#include "models/gauss2d_polar.cuh"
#include "models/peaks1d.cuh"
#include "models/pvoigt2d_polar.cuh"

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
using Peaks1D_1_0 = Peaks1D<1, 0>;
using Peaks1D_1_1 = Peaks1D<1, 1>;
using Peaks1D_1_2 = Peaks1D<1, 2>;
using Peaks1D_2_0 = Peaks1D<2, 0>;
using Peaks1D_2_1 = Peaks1D<2, 1>;
using Peaks1D_2_2 = Peaks1D<2, 2>;
using Peaks1D_3_0 = Peaks1D<3, 0>;
using Peaks1D_3_1 = Peaks1D<3, 1>;
using Peaks1D_3_2 = Peaks1D<3, 2>;
using Peaks1D_4_0 = Peaks1D<4, 0>;
using Peaks1D_4_1 = Peaks1D<4, 1>;
using Peaks1D_4_2 = Peaks1D<4, 2>;

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
    X(12, gauss2d_polar, Gauss2DPolar)           \
    X(13, pvoigt2d_polar, PVoigt2DPolar)         \
    X(14, peaks1d_1_0, Peaks1D_1_0)          \
    X(15, peaks1d_1_1, Peaks1D_1_1)          \
    X(16, peaks1d_1_2, Peaks1D_1_2)          \
    X(17, peaks1d_2_0, Peaks1D_2_0)          \
    X(18, peaks1d_2_1, Peaks1D_2_1)          \
    X(19, peaks1d_2_2, Peaks1D_2_2)          \
    X(20, peaks1d_3_0, Peaks1D_3_0)          \
    X(21, peaks1d_3_1, Peaks1D_3_1)          \
    X(22, peaks1d_3_2, Peaks1D_3_2)          \
    X(23, peaks1d_4_0, Peaks1D_4_0)          \
    X(24, peaks1d_4_1, Peaks1D_4_1)          \
    X(25, peaks1d_4_2, Peaks1D_4_2)
