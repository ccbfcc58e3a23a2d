// The int8 attention's quantisation rules as scalar functions: the AVX-512 kernels
// (attention_int8_pack.cpp, attention_int8_avx512.cpp) follow them operation for operation in f32,
// so the tests can rebuild every code the kernels make and check the rest against exact math.
//   q, k, v codes: s8 = round-half-even(x * 127 / absmax), scale absmax / 127 (0 for absmax 0);
//   q travels as u8 (code + 128), which vpdpbusd needs on one side; the key's -128 * sum of codes
//   cancels it.
//   P codes: u8 = round-half-even(255 * 2^x), x = s a + shift (one FMA), 2^x by a degree-3
//   polynomial of the fraction (relative error 7.5e-5, 0.02 of a code step) and an exact power
//   of 2.
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

// 255 2^f for f in [-0.5, 0.5]: minimax relative error 7.5e-5.
constexpr float kP0 = 0.9999280735404956f * 255.f, kP1 = 0.6932609854573364f * 255.f,
                kP2 = 0.24261112219433012f * 255.f, kP3 = 0.05517166907486317f * 255.f;

// Code of the probability 2^(s a + shift) (at most 1: shift = -max a), in steps of 1/255. The
// fraction is taken from the nearest integer, where x - n is exact (from the floor it is not: it
// rounds for small negative x, and two roundings of it need not agree).
inline int32_t p_code(float s, float a, float shift) {
  const float x = std::fma(s, a, shift);
  if (x < -32.f) return 0;  // below half a step long before this
  const float n = std::nearbyint(x), f = x - n;
  const float p = std::fma(std::fma(std::fma(kP3, f, kP2), f, kP1), f, kP0);
  return int32_t(std::nearbyint(std::ldexp(p, int(n))));
}

}  // namespace sdc::cpu::attn_int8
