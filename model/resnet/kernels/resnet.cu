// Kernels of the CUDA ResNet50 engine (model/resnet, build tag
// gotransfer_cuda). FP32 throughout: no tensor cores and no TF32, so the
// results agree with the CPU engine to float32 rounding.
//
// Layouts follow the CPU engine: activations are NHWC, and a convolution's
// BatchNorm-folded weights are a (K*K*Cin) x Cout row-major matrix whose rows
// run in (ky, kx, cin) order. A convolution is then the product of the
// implicit im2col matrix of its input (one row per output pixel) with the
// weights, and its output rows are the output pixels in NHWC order.
//
// Rebuild the PTX with `go generate -tags gotransfer_cuda ./model/resnet`
// (nvcc 11.8, compute_80); the same source also compiles as plain C++ against
// emu.h, which is how the kernels are run on CPUs in CI (tag cudaemu).
//
// Every kernel is extern "C" so that its PTX name is its C name, and takes
// only pointers and ints: the Go side passes each argument as one 64-bit slot.

#ifndef __CUDACC__
#include "emu.h"
#endif

#if defined(__CUDACC__)
#define UNROLL _Pragma("unroll")
#endif

namespace resnet {

// Block tile: BM output pixels x BN output channels, BK of the reduction per
// step, 256 threads each computing 8 x BN/16 outputs.
constexpr int BM = 128;
constexpr int BK = 8;
constexpr int THREADS = 256;
// A row pad of 4 floats keeps the transposed A stores free of bank
// conflicts and the float4 reads 16-byte aligned.
constexpr int APAD = 4;

// conv_tile computes, for one BM x BN tile of the output,
//   y = act(conv(x, w) + bias [+ res])
// as an implicit GEMM: the im2col matrix is never materialised, each A tile
// is gathered from x as it is needed.
//
// VA: Cin % 4 == 0, so four consecutive reduction indices are four
//     consecutive channels of one input pixel and load as one float4.
// VB: Cout % 4 == 0, so weights, bias, residual and output load and store
//     as float4 (or float2) along the output channels.
//
// Shared memory is double buffered: the global loads for step t+1 are
// issued into registers before the arithmetic of step t, and stored to the
// other buffer after it, so one barrier per step suffices.
template <int BN, bool VA, bool VB>
__device__ __forceinline__ void conv_tile(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ bias, const float* __restrict__ res,
                                          float* __restrict__ y, int nb, int h, int wd, int cin, int oh,
                                          int ow, int cout, int ks, int stride, int pad, int relu) {
  constexpr int TN = BN / 16;   // outputs per thread along the channels: 8 or 4
  constexpr int BPT = BN / 32;  // weights each thread loads per step: 4 or 2
  __shared__ __align__(16) float As[2][BK][BM + APAD];
  __shared__ __align__(16) float Bs[2][BK][BN];

  const int tid = threadIdx.x;
  const int m0 = blockIdx.x * BM;
  const int n0 = blockIdx.y * BN;
  const int M = nb * oh * ow;
  const int Kd = ks * ks * cin;
  const int steps = (Kd + BK - 1) / BK;

  // The A row (output pixel) and reduction offset this thread gathers.
  const int arow = tid >> 1;
  const int ak = (tid & 1) * 4;
  const int am = m0 + arow;
  const bool avalid = am < M;
  int iy0 = 0, ix0 = 0;
  const float* xb = x;
  if (avalid) {
    const int b = am / (oh * ow);
    const int rem = am - b * (oh * ow);
    const int oy = rem / ow;
    const int ox = rem - oy * ow;
    iy0 = oy * stride - pad;
    ix0 = ox * stride - pad;
    xb = x + (size_t)b * h * wd * cin;
  }
  // The weight row and columns this thread loads.
  const int bk = tid >> 5;
  const int bn = (tid & 31) * BPT;

  float ra[4];
  float rb[BPT];

  // gatherA loads x at reduction index k for this thread's pixel, or 0
  // outside the image or the matrix.
  auto gatherA = [&](int k, float* dst, int count) {
    for (int i = 0; i < count; ++i) dst[i] = 0.f;
    if (!avalid || k >= Kd) return;
    int c, r, s;
    if (ks == 1) {
      c = k;
      r = 0;
      s = 0;
    } else {
      const int rs = k / cin;
      c = k - rs * cin;
      r = rs / ks;
      s = rs - r * ks;
    }
    const int iy = iy0 + r, ix = ix0 + s;
    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) return;
    const float* p = xb + ((size_t)iy * wd + ix) * cin + c;
    if (count == 4) {
      const float4 v = *reinterpret_cast<const float4*>(p);
      dst[0] = v.x;
      dst[1] = v.y;
      dst[2] = v.z;
      dst[3] = v.w;
    } else {
      dst[0] = *p;
    }
  };

  auto loadGlobal = [&](int step) {
    const int k0 = step * BK;
    if (VA) {
      gatherA(k0 + ak, ra, 4);
    } else {
      UNROLL
      for (int i = 0; i < 4; ++i) gatherA(k0 + ak + i, ra + i, 1);
    }
    const int k = k0 + bk;
    const int n = n0 + bn;
    UNROLL
    for (int j = 0; j < BPT; ++j) rb[j] = 0.f;
    if (k < Kd) {
      const float* p = w + (size_t)k * cout + n;
      if (VB) {
        // Cout % 4 == 0 and n % BPT == 0: the whole vector is in or out.
        if (n < cout) {
          if (BPT == 4) {
            const float4 v = *reinterpret_cast<const float4*>(p);
            rb[0] = v.x;
            rb[1] = v.y;
            rb[2] = v.z;
            rb[3] = v.w;
          } else {
            const float2 v = *reinterpret_cast<const float2*>(p);
            rb[0] = v.x;
            rb[1] = v.y;
          }
        }
      } else {
        UNROLL
        for (int j = 0; j < BPT; ++j)
          if (n + j < cout) rb[j] = p[j];
      }
    }
  };

  auto storeShared = [&](int buf) {
    UNROLL
    for (int i = 0; i < 4; ++i) As[buf][ak + i][arow] = ra[i];
    UNROLL
    for (int j = 0; j < BPT; ++j) Bs[buf][bk][bn + j] = rb[j];
  };

  // Thread (ty, tx) computes rows ty*4+{0..3} and 64+ty*4+{0..3} of the
  // tile, and columns tx*4+{0..3} (and 64+tx*4+{0..3} when BN is 128), so
  // that its shared-memory reads are float4s and a warp reads few rows.
  const int tx = tid & 15;
  const int ty = tid >> 4;
  float acc[8][TN];
  UNROLL
  for (int i = 0; i < 8; ++i) {
    UNROLL
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;
  }

  loadGlobal(0);
  storeShared(0);
  __syncthreads();
  for (int t = 0; t < steps; ++t) {
    const int cur = t & 1;
    const bool more = t + 1 < steps;  // the same for every thread
    if (more) loadGlobal(t + 1);
    UNROLL
    for (int k = 0; k < BK; ++k) {
      float a[8], b[TN];
      const float4 a0 = *reinterpret_cast<const float4*>(&As[cur][k][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[cur][k][64 + ty * 4]);
      a[0] = a0.x;
      a[1] = a0.y;
      a[2] = a0.z;
      a[3] = a0.w;
      a[4] = a1.x;
      a[5] = a1.y;
      a[6] = a1.z;
      a[7] = a1.w;
      UNROLL
      for (int g = 0; g < TN / 4; ++g) {
        const float4 bv = *reinterpret_cast<const float4*>(&Bs[cur][k][g * 64 + tx * 4]);
        b[g * 4 + 0] = bv.x;
        b[g * 4 + 1] = bv.y;
        b[g * 4 + 2] = bv.z;
        b[g * 4 + 3] = bv.w;
      }
      UNROLL
      for (int i = 0; i < 8; ++i) {
        UNROLL
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
    }
    if (more) storeShared(cur ^ 1);
    __syncthreads();
  }

  // Epilogue: bias, residual and ReLU fused into the store.
  UNROLL
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    if (m >= M) continue;
    float* yr = y + (size_t)m * cout;
    const float* rr = res ? res + (size_t)m * cout : nullptr;
    UNROLL
    for (int g = 0; g < TN / 4; ++g) {
      const int n = n0 + g * 64 + tx * 4;
      if (VB) {
        if (n >= cout) continue;
        const float4 bv = *reinterpret_cast<const float4*>(bias + n);
        float4 v = make_float4(acc[i][g * 4 + 0] + bv.x, acc[i][g * 4 + 1] + bv.y, acc[i][g * 4 + 2] + bv.z,
                               acc[i][g * 4 + 3] + bv.w);
        if (rr) {
          const float4 r = *reinterpret_cast<const float4*>(rr + n);
          v.x += r.x;
          v.y += r.y;
          v.z += r.z;
          v.w += r.w;
        }
        if (relu) {
          v.x = fmaxf(v.x, 0.f);
          v.y = fmaxf(v.y, 0.f);
          v.z = fmaxf(v.z, 0.f);
          v.w = fmaxf(v.w, 0.f);
        }
        *reinterpret_cast<float4*>(yr + n) = v;
      } else {
        UNROLL
        for (int j = 0; j < 4; ++j) {
          if (n + j >= cout) continue;
          float v = acc[i][g * 4 + j] + bias[n + j];
          if (rr) v += rr[n + j];
          if (relu) v = fmaxf(v, 0.f);
          yr[n + j] = v;
        }
      }
    }
  }
}

}  // namespace resnet

// The convolution variants the engine picks from (convKernel in gpu.go):
// block tile width 128 or 64 output channels, vector or scalar gathers.
#define CONV_KERNEL(NAME, BN, VA, VB)                                                                  \
  extern "C" __global__ void __launch_bounds__(resnet::THREADS)                                       \
      NAME(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,    \
           const float* __restrict__ res, float* __restrict__ y, int nb, int h, int wd, int cin, int oh, \
           int ow, int cout, int ks, int stride, int pad, int relu) {                                  \
    resnet::conv_tile<BN, VA, VB>(x, w, bias, res, y, nb, h, wd, cin, oh, ow, cout, ks, stride, pad,   \
                                  relu);                                                               \
  }

CONV_KERNEL(conv_n128_vec, 128, true, true)
CONV_KERNEL(conv_n64_vec, 64, true, true)
CONV_KERNEL(conv_n64_stem, 64, false, true)
CONV_KERNEL(conv_n64_any, 64, false, false)

// maxpool3x3s2 is Keras' ZeroPadding2D(1) + MaxPooling2D(3, 2) on NHWC,
// one thread per output element. Its input comes out of a ReLU, so, as in
// the CPU engine, the maximum starts at the zero padding's 0.
extern "C" __global__ void maxpool3x3s2(const float* __restrict__ x, float* __restrict__ y, int nb, int h,
                                        int wd, int c, int oh, int ow) {
  const size_t total = (size_t)nb * oh * ow * c;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    const int ch = (int)(i % c);
    size_t p = i / c;
    const int ox = (int)(p % ow);
    p /= ow;
    const int oy = (int)(p % oh);
    const int b = (int)(p / oh);
    float m = 0.f;
    for (int ky = 0; ky < 3; ++ky) {
      const int iy = 2 * oy - 1 + ky;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < 3; ++kx) {
        const int ix = 2 * ox - 1 + kx;
        if (ix < 0 || ix >= wd) continue;
        m = fmaxf(m, x[(((size_t)b * h + iy) * wd + ix) * c + ch]);
      }
    }
    y[i] = m;
  }
}

// global_avg_pool averages each image's hw pixels per channel, one thread
// per (image, channel), summing in float64 in pixel order exactly as the
// CPU engine does.
extern "C" __global__ void global_avg_pool(const float* __restrict__ x, float* __restrict__ y, int nb, int hw,
                                           int c) {
  const size_t total = (size_t)nb * c;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    const size_t b = i / c;
    const int ch = (int)(i % c);
    const float* p = x + b * hw * c + ch;
    double s = 0;
    for (int q = 0; q < hw; ++q) s += p[(size_t)q * c];
    y[i] = (float)(s / hw);
  }
}
