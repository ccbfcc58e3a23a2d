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

#define SDC_NARROW_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx512bf16")))

namespace sdc::cpu {
namespace {

// Output pixels [ox0, ox0 + np) of row oy, each of CO channels in its own accumulator: P pixels
// at a time keep P * CO accumulators, CO tap vectors and one input vector in the 32 registers.
// kEdge: some of the P pixels or their taps fall outside the row (checked per pixel); inside it
// nothing is checked.
template <int CO, int P, bool kEdge>
SDC_NARROW_BF16 void pixels(const uint16_t* x, const uint16_t* taps, int64_t H, int64_t W,
                            int64_t Ci, int64_t oy, int64_t ox0, int np, float (&out)[P][CO]) {
  __m512 acc[P][CO];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int o = 0; o < CO; ++o) acc[p][o] = _mm512_setzero_ps();
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= H) continue;  // the zero padding adds nothing
    const uint16_t* row = x + iy * W * Ci;
    for (int kx = 0; kx < 3; ++kx) {
      const uint16_t* t = taps + (ky * 3 + kx) * CO * Ci;
      for (int64_t c = 0; c < Ci; c += 32) {
        __m512bh w[CO];
#pragma GCC unroll 4
        for (int o = 0; o < CO; ++o) w[o] = (__m512bh)_mm512_loadu_si512(t + o * Ci + c);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
          const int64_t ix = ox0 + p + kx - 1;
          if (kEdge && (p >= np || ix < 0 || ix >= W)) continue;
          const __m512bh v = (__m512bh)_mm512_loadu_si512(row + ix * Ci + c);
#pragma GCC unroll 4
          for (int o = 0; o < CO; ++o) acc[p][o] = _mm512_dpbf16_ps(acc[p][o], v, w[o]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int o = 0; o < CO; ++o) out[p][o] = simd::hsum(acc[p][o]);
}

template <int CO>
SDC_NARROW_BF16 void rows(const uint16_t* x, const uint16_t* taps, const float* bias, int64_t N,
                          int64_t H, int64_t W, int64_t Ci, void* y, DType yt, int threads) {
  constexpr int P = std::min(8, 24 / CO);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < N * H; ++r) {
    const int64_t n = r / H, oy = r % H;
    const uint16_t* img = x + n * H * W * Ci;
    for (int64_t ox0 = 0; ox0 < W; ox0 += P) {
      const int np = int(std::min<int64_t>(P, W - ox0));
      float out[P][CO];
      // Blocks whose taps all lie inside the row run unchecked.
      if (ox0 >= 1 && ox0 + P + 1 <= W)
        pixels<CO, P, false>(img, taps, H, W, Ci, oy, ox0, np, out);
      else
        pixels<CO, P, true>(img, taps, H, W, Ci, oy, ox0, np, out);
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

}  // namespace

bool narrow_conv_pays(int64_t Ci, int64_t Co) {
  return cpu_features().avx512_bf16 && use_avx512_kernels() && Co >= 1 && Co <= 4 && Ci > 0 &&
         Ci % 32 == 0;
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

void narrow_conv3x3(const uint16_t* x, const uint16_t* taps, const float* bias, int64_t N,
                    int64_t H, int64_t W, int64_t Ci, int64_t Co, void* y, DType yt, int threads) {
  if (!narrow_conv_pays(Ci, Co))
    throw Error("narrow_conv.cpp", "narrow convolution channels",
                "AVX-512 BF16, 1-4 outputs, inputs a multiple of 32",
                std::to_string(Ci) + " -> " + std::to_string(Co));
  if (yt != DType::F32 && yt != DType::BF16)
    throw Error("narrow_conv.cpp", "narrow convolution output", "f32 or bf16",
                std::string(dtype_name(yt)));
  threads = std::max(1, threads);
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

}  // namespace sdc::cpu
