// The few-output-channel 3x3 convolution (narrow_conv.h).
#include "backend/cpu/narrow_conv.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernel_transform.h"
#include "backend/cpu/simd.h"
#include "common/error.h"

// Both element types' code is built for AVX-512 BF16; its one BF16 instruction is the bf16 path's
// VDPBF16PS (Bf16Lanes::dot), so the f32 path runs on any AVX-512 CPU (narrow_conv_pays).
#define SDC_NARROW_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx512bf16")))

namespace sdc::cpu {
namespace {

// Output pixels [ox0, ox0 + np) of row oy, each of CO channels in its own accumulator: P pixels
// at a time keep P * CO accumulators, CO tap vectors and one input vector in the 32 registers.
// kEdge: some of the P pixels or their taps fall outside the row (checked per pixel); inside it
// nothing is checked. `Lanes` supplies the element type T, the channels per step (kStep) and
// acc += x w over them (dot).
template <class Lanes, int CO, int P, bool kEdge, class T = typename Lanes::T>
SDC_NARROW_BF16 inline __attribute__((always_inline)) void pixels(const T* x, const T* taps,
                                                                  int64_t H, int64_t W, int64_t Ci,
                                                                  int64_t oy, int64_t ox0, int np,
                                                                  float (&out)[P][CO]) {
  __m512 acc[P][CO];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int o = 0; o < CO; ++o) acc[p][o] = _mm512_setzero_ps();
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= H) continue;  // the zero padding adds nothing
    const T* row = x + iy * W * Ci;
    for (int kx = 0; kx < 3; ++kx) {
      const T* t = taps + (ky * 3 + kx) * CO * Ci;
      for (int64_t c = 0; c < Ci; c += Lanes::kStep) {
        __m512i w[CO];
#pragma GCC unroll 4
        for (int o = 0; o < CO; ++o) w[o] = _mm512_loadu_si512(t + o * Ci + c);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
          const int64_t ix = ox0 + p + kx - 1;
          if (kEdge && (p >= np || ix < 0 || ix >= W)) continue;
          const __m512i v = _mm512_loadu_si512(row + ix * Ci + c);
#pragma GCC unroll 4
          for (int o = 0; o < CO; ++o) acc[p][o] = Lanes::dot(acc[p][o], v, w[o]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int o = 0; o < CO; ++o) out[p][o] = simd::hsum(acc[p][o]);
}

// bf16 values (AVX-512 BF16): 32 input channels per VDPBF16PS.
struct Bf16Lanes {
  using T = uint16_t;
  static constexpr int64_t kStep = 32;
  SDC_NARROW_BF16 static inline __attribute__((always_inline)) __m512 dot(__m512 acc, __m512i x,
                                                                          __m512i w) {
    return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w);
  }
};
// f32 values (any AVX-512): 16 input channels per FMA.
struct F32Lanes {
  using T = float;
  static constexpr int64_t kStep = 16;
  SDC_NARROW_BF16 static inline __attribute__((always_inline)) __m512 dot(__m512 acc, __m512i x,
                                                                          __m512i w) {
    return _mm512_fmadd_ps(_mm512_castsi512_ps(x), _mm512_castsi512_ps(w), acc);
  }
};

// The rows' blocks of pixels (pixels) and their outputs, bias added, as F32 or BF16.
template <class Lanes, int CO, class T = typename Lanes::T>
SDC_NARROW_BF16 inline __attribute__((always_inline)) void rows_of(const T* x, const T* taps,
                                                                   const float* bias, int64_t N,
                                                                   int64_t H, int64_t W, int64_t Ci,
                                                                   void* y, DType yt, int threads) {
  constexpr int P = std::min(8, 24 / CO);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < N * H; ++r) {
    const int64_t n = r / H, oy = r % H;
    const T* img = x + n * H * W * Ci;
    for (int64_t ox0 = 0; ox0 < W; ox0 += P) {
      const int np = int(std::min<int64_t>(P, W - ox0));
      float out[P][CO];
      // Blocks whose taps all lie inside the row run unchecked.
      if (ox0 >= 1 && ox0 + P + 1 <= W)
        pixels<Lanes, CO, P, false>(img, taps, H, W, Ci, oy, ox0, np, out);
      else
        pixels<Lanes, CO, P, true>(img, taps, H, W, Ci, oy, ox0, np, out);
      const size_t at = size_t((r * W + ox0) * CO);
      for (int p = 0; p < np; ++p)
        for (int o = 0; o < CO; ++o) {
          const float v = out[p][o] + (bias ? bias[o] : 0.f);
          if (yt == DType::BF16)
            static_cast<uint16_t*>(y)[at + size_t(p * CO + o)] = f32_to_bf16(v);
          else
            static_cast<float*>(y)[at + size_t(p * CO + o)] = v;
        }
    }
  }
}

// Each element type's rows.
template <int CO>
SDC_NARROW_BF16 void rows(const uint16_t* x, const uint16_t* taps, const float* bias, int64_t N,
                          int64_t H, int64_t W, int64_t Ci, void* y, DType yt, int threads) {
  rows_of<Bf16Lanes, CO>(x, taps, bias, N, H, W, Ci, y, yt, threads);
}
template <int CO>
SDC_NARROW_BF16 void rows(const float* x, const float* taps, const float* bias, int64_t N,
                          int64_t H, int64_t W, int64_t Ci, void* y, DType yt, int threads) {
  rows_of<F32Lanes, CO>(x, taps, bias, N, H, W, Ci, y, yt, threads);
}

template <class T>
void run_rows(const T* x, const T* taps, const float* bias, int64_t N, int64_t H, int64_t W,
              int64_t Ci, int64_t Co, void* y, DType yt, int threads) {
  switch (Co) {
    case 1:
      return rows<1>(x, taps, bias, N, H, W, Ci, y, yt, threads);
    case 2:
      return rows<2>(x, taps, bias, N, H, W, Ci, y, yt, threads);
    case 3:
      return rows<3>(x, taps, bias, N, H, W, Ci, y, yt, threads);
    default:
      return rows<4>(x, taps, bias, N, H, W, Ci, y, yt, threads);
  }
}

}  // namespace

bool narrow_conv_pays(int64_t Ci, int64_t Co, DType in) {
  if (!use_avx512_kernels() || Co < 1 || Co > 4 || Ci <= 0) return false;
  if (in == DType::BF16) return cpu_features().avx512_bf16 && Ci % 32 == 0;
  return in == DType::F32 && Ci % 16 == 0;
}

TensorRef narrow_conv_taps(const TensorRef& w) {
  check_3x3_kernel(w, "narrow convolution weight");
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  thread_local std::vector<float> staging;
  staging.resize(size_t(9 * Co * Ci));
  float* out = staging.data();
  for_each_3x3_kernel(w, [out, Co, Ci](int64_t o, int64_t i, const float* k) {
    for (int t = 0; t < 9; ++t) out[size_t((t * Co + o) * Ci + i)] = k[t];
  });
  return staged_tensor(staging, Shape{9, Co, Ci}, w.source);
}

void narrow_conv3x3(const void* x, DType xt, const void* taps, const float* bias, int64_t N,
                    int64_t H, int64_t W, int64_t Ci, int64_t Co, void* y, DType yt, int threads) {
  if (!narrow_conv_pays(Ci, Co, xt))
    throw Error(
        "narrow_conv.cpp", "narrow convolution channels",
        "AVX-512 (bf16: AVX-512 BF16), 1-4 outputs, inputs a multiple of 16 (bf16: 32)",
        std::string(dtype_name(xt)) + " " + std::to_string(Ci) + " -> " + std::to_string(Co));
  if (yt != DType::F32 && yt != DType::BF16)
    throw Error("narrow_conv.cpp", "narrow convolution output", "f32 or bf16",
                std::string(dtype_name(yt)));
  threads = std::max(1, threads);
  if (xt == DType::BF16)
    run_rows(static_cast<const uint16_t*>(x), static_cast<const uint16_t*>(taps), bias, N, H, W, Ci,
             Co, y, yt, threads);
  else
    run_rows(static_cast<const float*>(x), static_cast<const float*>(taps), bias, N, H, W, Ci, Co,
             y, yt, threads);
}

}  // namespace sdc::cpu
