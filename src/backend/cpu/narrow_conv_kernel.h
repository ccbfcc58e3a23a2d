// The few-output-channel 3x3 convolution's rows (narrow_conv.h) written once for any vector width:
// blocks of output pixels whose CO channels each accumulate input-channel products in a vector,
// summed across its lanes once at the end. Included only by narrow_conv_avx512.cpp (16 lanes, f32
// and bf16 values) and narrow_conv_avx2.cpp (8 lanes, f32), which define SDC_NARROW_TARGET, their
// target attribute, and supply lanes policies before calling rows_of. Everything lives in an
// anonymous namespace, so each including file compiles its own copies for its own target.
//
// A lanes policy L has:
//   T, Raw, Acc      the element type, a vector of its values as loaded, the f32 accumulator
//   kStep, kRegs     input channels per dot, and the vector registers there are
//   load(p)          kStep values at p (Raw)
//   pin(v)           keeps v in a register: the compiler would otherwise fold one load of an input
//                    vector into each of its CO multiply-adds (1.8x the loads, measured)
//   zero(), dot(acc, x, w) = acc + the lanes' products of x and w, hsum(acc) = the sum of acc's
//                    lanes
// each an always_inline function of the including file's target.
#pragma once

#ifndef SDC_NARROW_TARGET
#error "narrow_conv_kernel.h: define SDC_NARROW_TARGET (the including file's target) first"
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace sdc::cpu::narrow_kernel {
namespace {

// Output pixels [ox0, ox0 + np) of row oy, each of CO channels in its own accumulator: P pixels
// at a time keep P * CO accumulators, CO tap vectors and one input vector in registers. kEdge:
// some of the P pixels or their taps fall outside the row (checked per pixel); inside it nothing
// is checked.
template <class L, int CO, int P, bool kEdge, class T = typename L::T>
SDC_NARROW_TARGET inline __attribute__((always_inline)) void pixels(const T* x, const T* taps,
                                                                    int64_t H, int64_t W,
                                                                    int64_t Ci, int64_t oy,
                                                                    int64_t ox0, int np,
                                                                    float (&out)[P][CO]) {
  typename L::Acc acc[P][CO];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int o = 0; o < CO; ++o) acc[p][o] = L::zero();
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= H) continue;  // the zero padding adds nothing
    const T* row = x + iy * W * Ci;
    for (int kx = 0; kx < 3; ++kx) {
      const T* t = taps + (ky * 3 + kx) * CO * Ci;
      for (int64_t c = 0; c < Ci; c += L::kStep) {
        typename L::Raw w[CO];
#pragma GCC unroll 4
        for (int o = 0; o < CO; ++o) w[o] = L::load(t + o * Ci + c);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
          const int64_t ix = ox0 + p + kx - 1;
          if (kEdge && (p >= np || ix < 0 || ix >= W)) continue;
          typename L::Raw v = L::load(row + ix * Ci + c);
          L::pin(v);
#pragma GCC unroll 4
          for (int o = 0; o < CO; ++o) acc[p][o] = L::dot(acc[p][o], v, w[o]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int o = 0; o < CO; ++o) out[p][o] = L::hsum(acc[p][o]);
}

// Output rows [r0, r1) of the N H rows of y [N, H, W, CO] (F32 or BF16): their blocks of pixels,
// bias added. P: as many pixels as the registers hold beside the CO taps and an input vector, at
// most 8.
template <class L, int CO, class T = typename L::T>
SDC_NARROW_TARGET void rows_of(const T* x, const T* taps, const float* bias, int64_t H, int64_t W,
                               int64_t Ci, int64_t r0, int64_t r1, void* y, DType yt) {
  constexpr int P = std::min(8, (L::kRegs - CO - 1) / CO);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / H, oy = r % H;
    const T* img = x + n * H * W * Ci;
    for (int64_t ox0 = 0; ox0 < W; ox0 += P) {
      const int np = int(std::min<int64_t>(P, W - ox0));
      float out[P][CO];
      // Blocks whose taps all lie inside the row run unchecked.
      if (ox0 >= 1 && ox0 + P + 1 <= W)
        pixels<L, CO, P, false>(img, taps, H, W, Ci, oy, ox0, np, out);
      else
        pixels<L, CO, P, true>(img, taps, H, W, Ci, oy, ox0, np, out);
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

// rows_of for Co (1 to 4) output channels.
template <class L, class T = typename L::T>
SDC_NARROW_TARGET void rows_for(const T* x, const T* taps, const float* bias, int64_t H, int64_t W,
                                int64_t Ci, int64_t Co, int64_t r0, int64_t r1, void* y, DType yt) {
  switch (Co) {
    case 1:
      return rows_of<L, 1>(x, taps, bias, H, W, Ci, r0, r1, y, yt);
    case 2:
      return rows_of<L, 2>(x, taps, bias, H, W, Ci, r0, r1, y, yt);
    case 3:
      return rows_of<L, 3>(x, taps, bias, H, W, Ci, r0, r1, y, yt);
    default:
      return rows_of<L, 4>(x, taps, bias, H, W, Ci, r0, r1, y, yt);
  }
}

}  // namespace
}  // namespace sdc::cpu::narrow_kernel
