//go:build cudaemu && !gotransfer_cuda

// The kernels of kernels/resnet.cu compiled as C++ for the CPU emulator
// (see kernels/emu.h and gpu_emu.go), and the launcher the Go side calls.

#include <cstdio>
#include <mutex>

#include "kernels/resnet.cu"

namespace {

std::mutex launch_mu;

float* P(uint64_t v) { return reinterpret_cast<float*>(static_cast<uintptr_t>(v)); }
int I(uint64_t v) { return static_cast<int>(static_cast<uint32_t>(v)); }

}  // namespace

#define CONV(NAME)                                                                                           \
  if (k == #NAME) {                                                                                          \
    want(16);                                                                                                \
    emu::launch(g, b, [&] {                                                                                  \
      NAME(P(a[0]), P(a[1]), P(a[2]), P(a[3]), P(a[4]), I(a[5]), I(a[6]), I(a[7]), I(a[8]), I(a[9]), I(a[10]), \
           I(a[11]), I(a[12]), I(a[13]), I(a[14]), I(a[15]));                                                \
    });                                                                                                      \
    return 0;                                                                                                \
  }

static int dispatch(const std::string& k, dim3 g, dim3 b, const uint64_t* a, int n) {
  auto want = [&](int c) {
    if (n != c)
      throw std::runtime_error(k + ": " + std::to_string(n) + " arguments, the kernel takes " + std::to_string(c));
  };
  CONV(conv_n128_vec)
  CONV(conv_n64_vec)
  CONV(conv_n64_stem)
  CONV(conv_n64_any)
  if (k == "maxpool3x3s2") {
    want(8);
    emu::launch(g, b, [&] { maxpool3x3s2(P(a[0]), P(a[1]), I(a[2]), I(a[3]), I(a[4]), I(a[5]), I(a[6]), I(a[7])); });
    return 0;
  }
  if (k == "global_avg_pool") {
    want(5);
    emu::launch(g, b, [&] { global_avg_pool(P(a[0]), P(a[1]), I(a[2]), I(a[3]), I(a[4])); });
    return 0;
  }
  throw std::runtime_error("no kernel " + k);
}

extern "C" int gt_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, const uint64_t* a, int n, char* err, int errlen) {
  std::lock_guard<std::mutex> lock(launch_mu);
  try {
    return dispatch(name, dim3{gx, gy, gz}, dim3{bx, by, bz}, a, n);
  } catch (const std::exception& e) {
    std::snprintf(err, errlen, "%s", e.what());
    return 1;
  }
}
