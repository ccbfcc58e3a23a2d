// The int8 attention's quantisation rules as scalar functions: the kernels
// (attention_int8_kernel.h, in both its builds) follow them operation for operation in f32,
// so the tests can rebuild every code the kernels make and check the rest against exact math.
//   q, k, v codes: s8 = round-half-even(x * 127 / absmax), scale absmax / 127 (0 for absmax 0);
//   q travels as u8 (code + 128), which vpdpbusd needs on one side; the key's -128 * sum of codes
//   cancels it.
//   P codes: u8 = round-half-even(255 * 2^(s a - bm a)), bm the max of the key block (not the
//   running max: every block uses the whole code range): one FMA, a degree-3 polynomial of the
//   fraction (relative error 7.5e-5, 0.02 of a code step), an exact power of 2.
#pragma once

#include <cmath>
#include <cstdint>

namespace sdc::cpu::attn_int8 {

inline float code_scale(float absmax) {
  return absmax / 127.f;
}
// Multiplier from values to codes (0 when all values are 0: every code is then 0).
inline float code_inv(float absmax) {
  return absmax > 0.f ? 127.f / absmax : 0.f;
}
inline int32_t code_s8(float x, float inv) {
  return int32_t(std::nearbyint(x * inv));
}
// The softmax factor of a query row (scores in key-scale units times this are in log2 units):
// its code scale times the attention scale times log2(e).
inline float query_factor(float absmax, float scale) {
  return code_scale(absmax) * (scale * 1.44269504088896341f);
}

// 510 2^f for f in [0, 1): minimax relative error 7.5e-5.
constexpr float kP0 = 0.99992521856401f * 510.f, kP1 = 0.695833540506448f * 510.f,
                kP2 = 0.22606715539313021f * 510.f, kP3 = 0.07802452266443176f * 510.f;

// The shift of a query row whose key block's max is m: -m a - 1. The -1 keeps x = s a + shift at
// -1 or below, where x - floor(x) is exact (for x in (-0.5, 0) it rounds, and the kernels' and
// this rounding need not agree); the polynomial's factor 510 = 2 x 255 takes it back.
// One FMA, so that no compiler contracts it differently here and in the kernels.
inline float p_shift(float m, float a) {
  return std::fma(m, -a, -1.f);
}

// Code of the probability 2^(s a + shift + 1) (at most 1), in steps of 1/255.
inline int32_t p_code(float s, float a, float shift) {
  const float x = std::fma(s, a, shift);
  if (x < -32.f) return 0;  // below half a step long before this
  const float fl = std::floor(x), f = x - fl;
  const float p = std::fma(std::fma(std::fma(kP3, f, kP2), f, kP1), f, kP0);
  return int32_t(std::nearbyint(std::ldexp(p, int(fl))));
}

}  // namespace sdc::cpu::attn_int8
