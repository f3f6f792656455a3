// Host build of kernels/fit.cu under the SIMT emulation (simt.h), with a cuLaunchKernel-like entry:
// kernel parameters arrive as an array of pointers to their values, and their types as a
// signature string that must equal the kernel's own ("null" matching any pointer).
#include "simt.h"
// the kernel source, unchanged
#include "fit.cu"

#include <tuple>
#include <type_traits>

namespace {

template <class T>
std::string type_code() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_pointer_v<U>) return "*" + type_code<std::remove_pointer_t<U>>();
    else if constexpr (std::is_same_v<U, long long>) return "int64";
    else if constexpr (std::is_same_v<U, int>) return "int32";
    else if constexpr (std::is_same_v<U, unsigned>) return "uint32";
    else if constexpr (std::is_same_v<U, unsigned char>) return "uint8";
    else if constexpr (std::is_same_v<U, float>) return "float32";
    else static_assert(sizeof(U) == 0, "parameter type without a code");
}

template <class... A>
struct Launcher {
    using Kernel = void (*)(A...);
    struct Call {
        Kernel kernel;
        std::tuple<A...> args;
    };

    static std::string signature() {
        std::string s;
        ((s += type_code<A>() + ","), ...);
        return s;
    }

    template <size_t... I>
    static std::tuple<A...> unpack(void** args, std::index_sequence<I...>) {
        return std::tuple<A...>(*static_cast<A*>(args[I])...);
    }

    static void body(void* p) {
        Call* c = static_cast<Call*>(p);
        std::apply(c->kernel, c->args);
    }

    static std::string run(Kernel k, unsigned grid, unsigned block, void** args) {
        Call c{k, unpack(args, std::index_sequence_for<A...>{})};
        gp_emu::grid_dim.x = grid;
        gp_emu::block_dim.x = block;
        for (unsigned b = 0; b < grid; ++b) {
            gp_emu::block_idx.x = b;
            for (unsigned w = 0; w < block / 32; ++w) {
                std::string err = gp_emu::run_warp(32 * w, body, &c);
                if (!err.empty()) return "block " + std::to_string(b) + ", warp " + std::to_string(w) + ": " + err;
            }
        }
        return "";
    }
};

template <class... A>
Launcher<A...> launcher_of(void (*)(A...));

// The given argument types match the kernel's: equal codes, or "null" (None) for any pointer.
bool signature_matches(const std::string& kernel, const std::string& given) {
    size_t k = 0, g = 0;
    while (k < kernel.size() && g < given.size()) {
        const size_t ke = kernel.find(',', k), ge = given.find(',', g);
        if (ke == std::string::npos || ge == std::string::npos) return false;  // codes end with ','
        const std::string a = kernel.substr(k, ke - k), b = given.substr(g, ge - g);
        if (a != b && !(b == "null" && a[0] == '*')) return false;
        k = ke + 1;
        g = ge + 1;
    }
    return k == kernel.size() && g == given.size();
}

using FitKernel = decltype(&gp_fit_kernel<Gauss2DPolar, Poisson>);
using FitLauncher = decltype(launcher_of(FitKernel{}));

struct Entry {
    const char* name;
    FitKernel kernel;
};

#define EMU_ENTRY(id, name, T)                                       \
    {"gp_fit_kernel<" #T ", LeastSquares>", &gp_fit_kernel<T, LeastSquares>}, \
        {"gp_fit_kernel<" #T ", Poisson>", &gp_fit_kernel<T, Poisson>},
const Entry entries[] = {GP_MODELS(EMU_ENTRY)};

}  // namespace

extern "C" {

// Launches the kernel named by its CuPy name expression; returns 0, or -1 with a message in `err`.
int emu_launch(const char* name, const char* signature, unsigned grid, unsigned block, void** args, char* err,
               int err_size) {
    std::string msg;
    const Entry* e = nullptr;
    for (const Entry& x : entries)
        if (std::strcmp(x.name, name) == 0) e = &x;
    if (e == nullptr) msg = std::string("no kernel ") + name;
    else if (!signature_matches(FitLauncher::signature(), signature))
        msg = "argument types " + std::string(signature) + " differ from the kernel's " + FitLauncher::signature();
    else if (block % 32 != 0) msg = "block size must be a multiple of 32";
    else if (block > static_cast<unsigned>(GP_FIT_THREADS))
        msg = "block of " + std::to_string(block) + " threads exceeds the kernel's " + std::to_string(GP_FIT_THREADS);
    else msg = FitLauncher::run(e->kernel, grid, block, args);
    std::snprintf(err, err_size, "%s", msg.c_str());
    return msg.empty() ? 0 : -1;
}
}
