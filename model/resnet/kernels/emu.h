// emu.h lets resnet.cu compile as plain C++ and run on CPUs, so that the
// kernels and the Go code driving them can be tested where there is no GPU
// (build tag cudaemu). It is a test device, not a fast one.
//
// Each CUDA thread of a block is a fiber (ucontext) on one OS thread; the
// fibers of a block run in turn, and __syncthreads() switches to the next
// one. Blocks run one after another, so a __shared__ array can be a static
// variable. A block whose threads do not all reach the same number of
// barriers is reported as an error (on a GPU it would hang or be undefined),
// and since a fiber runs until it reaches a barrier, a missing barrier
// between a shared-memory store and another thread's load shows up as wrong
// results.
#ifndef GOTRANSFER_EMU_H
#define GOTRANSFER_EMU_H

#include <ucontext.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define UNROLL

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};
struct __attribute__((aligned(8))) float2 {
  float x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

namespace emu {

enum FiberState { Ready, AtBarrier, Done };

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  dim3 tid;
  FiberState state = Ready;
  long barriers = 0;
};

struct Device {
  dim3 grid, block, bid;
  std::vector<Fiber> fibers;
  size_t cur = 0;
  ucontext_t sched;
  std::function<void()> body;
};

inline Device& dev() {
  static Device d;
  return d;
}

inline const dim3& thread_idx() { return dev().fibers[dev().cur].tid; }

inline void entry() {
  Device& d = dev();
  d.body();
  d.fibers[d.cur].state = Done;
  // Returning resumes uc_link, the scheduler.
}

inline void sync_threads() {
  Device& d = dev();
  Fiber& f = d.fibers[d.cur];
  f.state = AtBarrier;
  f.barriers++;
  swapcontext(&f.ctx, &d.sched);
}

// launch runs body for every thread of every block. It is not reentrant:
// the caller serializes launches.
inline void launch(dim3 grid, dim3 block, std::function<void()> body) {
  Device& d = dev();
  const size_t n = (size_t)block.x * block.y * block.z;
  if (n == 0 || n > 1024) throw std::runtime_error("block of " + std::to_string(n) + " threads");
  d.grid = grid;
  d.block = block;
  d.body = std::move(body);
  if (d.fibers.size() < n) d.fibers.resize(n);
  for (auto& f : d.fibers)
    if (f.stack.empty()) f.stack.resize(64 << 10);
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        d.bid = dim3{bx, by, bz};
        for (size_t i = 0; i < n; ++i) {
          Fiber& f = d.fibers[i];
          f.tid = dim3{unsigned(i % block.x), unsigned(i / block.x % block.y), unsigned(i / (block.x * block.y))};
          f.state = Ready;
          f.barriers = 0;
          getcontext(&f.ctx);
          f.ctx.uc_stack.ss_sp = f.stack.data();
          f.ctx.uc_stack.ss_size = f.stack.size();
          f.ctx.uc_link = &d.sched;
          makecontext(&f.ctx, entry, 0);
        }
        for (;;) {
          for (size_t i = 0; i < n; ++i) {
            if (d.fibers[i].state == Done) continue;
            d.cur = i;
            d.fibers[i].state = Ready;
            swapcontext(&d.sched, &d.fibers[i].ctx);
          }
          size_t done = 0;
          for (size_t i = 0; i < n; ++i) done += d.fibers[i].state == Done;
          if (done == n) break;
          if (done > 0) throw std::runtime_error("__syncthreads divergence: some threads exited, others wait");
          long want = -1;
          for (size_t i = 0; i < n; ++i) {
            if (d.fibers[i].state == AtBarrier) {
              if (want >= 0 && d.fibers[i].barriers != want)
                throw std::runtime_error("__syncthreads divergence: threads wait at different barriers");
              want = d.fibers[i].barriers;
            }
          }
        }
      }
}

}  // namespace emu

#define threadIdx (emu::thread_idx())
#define blockIdx (emu::dev().bid)
#define blockDim (emu::dev().block)
#define gridDim (emu::dev().grid)
#define __syncthreads() emu::sync_threads()

#endif
