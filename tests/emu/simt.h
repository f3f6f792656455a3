// SIMT emulation of CUDA for the host: compiles kernels/fit.cu unchanged with g++ (a test tool,
// not a runtime backend).
//
// Every thread of a launch is a fiber with its own blockIdx/threadIdx. The 32 lanes of
// a warp run one after another up to their next warp collective (__shfl_xor_sync,
// __reduce_add_sync, __syncwarp), where each deposits its value and yields; when every lane of the warp has
// arrived, each reads its partner's value and runs on to the next collective. Values go through
// two banks by round parity, so a lane that runs ahead never overwrites what a later lane still has
// to read. A collective that not all 32 lanes reach (divergence, or lanes that already returned)
// is a kernel bug on a GPU and an error here.
#pragma once
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Shared memory: one object per kernel instance, shared by every emulated thread. Warps run one at
// a time, so a kernel that gives each warp its own slot (threadIdx.x / 32) sees what a block would;
// the launcher refuses blocks larger than the kernel's slots.
#define __shared__ static

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace gp_emu {

constexpr int WARP = 32;

constexpr size_t STACK = 128 * 1024;

#if defined(__x86_64__)
// Fiber switch for x86-64 (System V): save the callee-saved registers on this stack, store the
// stack pointer, load the other one, restore. Far cheaper than swapcontext, whose signal-mask
// system call would dominate the run time (a fit meets ~10^4 collectives).
extern "C" void gp_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl gp_emu_switch
    .type gp_emu_switch, @function
gp_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size gp_emu_switch, .-gp_emu_switch
)");
#endif

struct Lane {
#if defined(__x86_64__)
    void* sp = nullptr;
#else
    ucontext_t ctx;
#endif
    dim3 thread_idx;
    bool done = false;
    bool arrived = false;  // at a collective, waiting for the rest of the warp
};

struct Warp {
    Lane lanes[WARP];
#if defined(__x86_64__)
    void* scheduler = nullptr;
#else
    ucontext_t scheduler;
#endif
    int current = 0;
    int round = 0;
    unsigned long long bank[2][WARP];
    std::string error;
};

inline Warp* warp = nullptr;
inline dim3 block_idx, block_dim, grid_dim;

inline Lane& lane() { return warp->lanes[warp->current]; }

// From the current lane back to the warp's scheduler, and from the scheduler into lane l.
inline void yield() {
#if defined(__x86_64__)
    gp_emu_switch(&lane().sp, warp->scheduler);
#else
    swapcontext(&lane().ctx, &warp->scheduler);
#endif
}

inline void resume(int l) {
#if defined(__x86_64__)
    gp_emu_switch(&warp->scheduler, warp->lanes[l].sp);
#else
    swapcontext(&warp->scheduler, &warp->lanes[l].ctx);
#endif
}

// Deposit this lane's bits, wait for the whole warp, return the bits of lane `src`.
inline unsigned long long exchange(unsigned mask, unsigned long long bits, int src) {
    if (mask != 0xffffffffu) warp->error = "emulation supports full-warp masks only";
    const int me = warp->current, bank = warp->round & 1;
    warp->bank[bank][me] = bits;
    lane().arrived = true;
    yield();
    return warp->bank[bank][src];
}

template <class T>
unsigned long long to_bits(T v) {
    unsigned long long b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}

template <class T>
T from_bits(unsigned long long b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

// One stack per lane, reused by every warp (warps run one at a time).
inline char* stack(int l) {
    static std::vector<std::unique_ptr<char[]>> stacks;
    if (stacks.empty())
        for (int i = 0; i < WARP; ++i) stacks.emplace_back(new char[STACK]);
    return stacks[l].get();
}

inline void (*lane_body)(void*) = nullptr;
inline void* lane_arg = nullptr;

[[noreturn]] inline void lane_main() {
    lane_body(lane_arg);
    lane().done = true;
    yield();
    std::abort();  // a finished lane is never resumed
}

// Starts lane l's fiber at lane_main on its own stack.
inline void start(int l) {
    Lane& ln = warp->lanes[l];
#if defined(__x86_64__)
    // stack as gp_emu_switch leaves it: six callee-saved registers, the return address, and a slot
    // that puts lane_main's entry at the ABI's alignment (rsp = 8 mod 16)
    void** sp = reinterpret_cast<void**>(stack(l) + STACK - 64);
    *--sp = nullptr;
    *--sp = reinterpret_cast<void*>(&lane_main);
    for (int i = 0; i < 6; ++i) *--sp = nullptr;
    ln.sp = sp;
#else
    getcontext(&ln.ctx);
    ln.ctx.uc_stack.ss_sp = stack(l);
    ln.ctx.uc_stack.ss_size = STACK;
    ln.ctx.uc_link = nullptr;
    makecontext(&ln.ctx, reinterpret_cast<void (*)()>(&lane_main), 0);
#endif
}

// Runs one warp: lanes with threadIdx.x = first + 0..31 of the current block, `body(arg)` each.
inline std::string run_warp(unsigned first, void (*body)(void*), void* arg) {
    Warp w;
    warp = &w;
    lane_body = body;
    lane_arg = arg;
    for (int l = 0; l < WARP; ++l) {
        w.lanes[l].thread_idx.x = first + l;
        start(l);
    }
    for (;;) {
        int arrived = 0, done = 0;
        for (int l = 0; l < WARP; ++l) {
            if (w.lanes[l].done) continue;
            w.lanes[l].arrived = false;
            w.current = l;
            resume(l);
        }
        for (const Lane& ln : w.lanes) {
            arrived += ln.arrived;
            done += ln.done;
        }
        if (done == WARP) break;
        if (arrived != WARP) {
            w.error = "warp collective reached by " + std::to_string(arrived) + " of 32 lanes (" +
                      std::to_string(done) + " returned)";
            break;  // the waiting lanes' fibers are abandoned
        }
        ++w.round;
    }
    warp = nullptr;
    return w.error;
}

}  // namespace gp_emu

#define threadIdx (gp_emu::lane().thread_idx)
#define blockIdx (gp_emu::block_idx)
#define blockDim (gp_emu::block_dim)
#define gridDim (gp_emu::grid_dim)

template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    const int src = (gp_emu::warp->current ^ lane_mask) & 31;
    return gp_emu::from_bits<T>(gp_emu::exchange(mask, gp_emu::to_bits(v), src));
}

inline int __reduce_add_sync(unsigned mask, int v) {
    // every lane deposits, then sums the whole bank of this round
    const int bank = gp_emu::warp->round & 1;
    gp_emu::exchange(mask, gp_emu::to_bits(v), 0);
    int s = 0;
    for (int l = 0; l < gp_emu::WARP; ++l) s += gp_emu::from_bits<int>(gp_emu::warp->bank[bank][l]);
    return s;
}
inline void __syncwarp(unsigned mask = 0xffffffffu) { gp_emu::exchange(mask, 0, 0); }

inline unsigned __reduce_add_sync(unsigned mask, unsigned v) {
    return static_cast<unsigned>(__reduce_add_sync(mask, static_cast<int>(v)));
}
