// AVX-512 building blocks shared by the own kernels: exp, erf, sigmoid-based activations and the
// f32 <-> bf16 conversions. Every function carries the target attribute, so including this header
// needs no -mavx512 flags; callers must be SDC_AVX512 functions reached only when
// use_avx512_kernels() is true. Scalar twins (same formulas) serve the portable path.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common/dtype.h"

// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics (the _undefined_ vectors
// of masked operations, GCC bug 105593) when they are inlined; the warning is a false positive.
// (Clang has no -Wmaybe-uninitialized and would reject the pragma under -Werror.)
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define SDC_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define SDC_AVX512_INLINE SDC_AVX512 static inline __attribute__((always_inline))

namespace sdc::cpu::simd {

// exp's reduction x = n ln2 + r (n = round(x log2 e), ln2 in a high and a low part) and its
// polynomial exp(r) = 1 + r + r^2 P(r), P's coefficients highest power first: the AVX-512 exp
// below and the AVX2 one (simd_avx2.h) compute the same.
namespace exp_poly {
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                         4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
}  // namespace exp_poly

// exp2's polynomial: 2^f for f in [0, 1) of degree 5, highest power first (Chebyshev interpolant;
// relative error < 2e-7 in f32 arithmetic), shared by the AVX-512 exp2 below and the AVX2 one.
namespace exp2_poly {
constexpr float kP[6] = {1.8937540582e-3f, 8.9495904233e-3f, 5.5860337077e-2f,
                         2.4014181820e-1f, 6.9315448966e-1f, 9.9999989835e-1f};
}  // namespace exp2_poly

// exp(x), max relative error ~2 ulp; x < -87 gives 0 (scalef underflows), x > 88 gives +inf.
SDC_AVX512_INLINE __m512 exp(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.f));
  x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(exp_poly::kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_poly::kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_poly::kLn2Lo), r);
  __m512 p = _mm512_set1_ps(exp_poly::kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(exp_poly::kP[i]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  return _mm512_scalef_ps(p, n);
}

// 2^x at f32 accuracy: f = x - floor(x) in [0, 1) by one vreduceps, 2^f by exp2_poly, scalef by
// floor(x). No clamping: very negative x gives 0 (finite x only: -inf gives NaN).
SDC_AVX512_INLINE __m512 exp2(__m512 x) {
  const __m512 f = _mm512_reduce_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 p = _mm512_set1_ps(exp2_poly::kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(exp2_poly::kP[i]));
  return _mm512_scalef_ps(p, x);
}

// 2^x for results that end up in bf16: degree-4 Taylor polynomial of 2^f, f in [-0.5, 0.5]
// (relative error < 5e-5, far below bf16's 4e-3 rounding step). No clamping: scalef takes any
// exponent (very negative x gives 0, very positive +inf).
SDC_AVX512_INLINE __m512 exp2_fast(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(0.0096181291f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.0555041087f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.2402265070f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931471806f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

// x * sigmoid(x) to bf16 accuracy (fast exp2, 14-bit reciprocal).
SDC_AVX512_INLINE __m512 swish_fast(__m512 x) {
  const __m512 e = exp2_fast(_mm512_mul_ps(x, _mm512_set1_ps(-1.44269504088896341f)));
  return _mm512_mul_ps(x, _mm512_rcp14_ps(_mm512_add_ps(_mm512_set1_ps(1.f), e)));
}

// x * sigmoid(alpha * x)
SDC_AVX512_INLINE __m512 swish(__m512 x, float alpha) {
  const __m512 e = exp(_mm512_mul_ps(x, _mm512_set1_ps(-alpha)));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|): no cancellation for large |x|;
// near 0 the relative error grows to ~1e-6 of |x| (far below the references' tolerances).
SDC_AVX512_INLINE __m512 tanh(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 e = exp(_mm512_mul_ps(ax, _mm512_set1_ps(-2.f)));
  const __m512 t =
      _mm512_div_ps(_mm512_sub_ps(_mm512_set1_ps(1.f), e), _mm512_add_ps(_mm512_set1_ps(1.f), e));
  // Copy x's sign bit onto |tanh|.
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(int(0x80000000)));
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign));
}

// erfc(z) for z >= 0 with small *relative* error (Numerical Recipes' Chebyshev fit, < 1.2e-7),
// so that 1 + erf(x) = erfc(-x) keeps its precision in the negative tail.
SDC_AVX512_INLINE __m512 erfc_pos(__m512 z) {
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.f),
                                 _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, _mm512_set1_ps(1.f)));
  __m512 p = _mm512_set1_ps(0.17087277f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
  return _mm512_mul_ps(t, exp(_mm512_fnmadd_ps(z, z, p)));
}

// erf(z) for |z| < 0.5: 2/sqrt(pi) * sum (-1)^n z^(2n+1) / (n! (2n+1)), n = 0..6.
SDC_AVX512_INLINE __m512 erf_small(__m512 z) {
  const __m512 z2 = _mm512_mul_ps(z, z);
  __m512 s = _mm512_set1_ps(0.00012055332f);
  s = _mm512_fmadd_ps(s, z2, _mm512_set1_ps(-0.00085483270f));
  s = _mm512_fmadd_ps(s, z2, _mm512_set1_ps(0.0052239776f));
  s = _mm512_fmadd_ps(s, z2, _mm512_set1_ps(-0.026866170f));
  s = _mm512_fmadd_ps(s, z2, _mm512_set1_ps(0.11283792f));
  s = _mm512_fmadd_ps(s, z2, _mm512_set1_ps(-0.37612639f));
  s = _mm512_fmadd_ps(s, z2, _mm512_set1_ps(1.1283792f));
  return _mm512_mul_ps(s, z);
}

// Exact-erf GELU: 0.5 x (1 + erf(x / sqrt 2)), with 1 + erf(z) = erfc(-z) for z < -0.5 and
// 2 - erfc(z) for z > 0.5 (no cancellation in the negative tail).
SDC_AVX512_INLINE __m512 gelu(__m512 x) {
  const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
  const __m512 az = _mm512_abs_ps(z);
  const __m512 ec = erfc_pos(az);
  const __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
  __m512 f = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.f), ec), ec);
  const __mmask16 small = _mm512_cmp_ps_mask(az, _mm512_set1_ps(0.5f), _CMP_LT_OQ);
  f = _mm512_mask_blend_ps(small, f, _mm512_add_ps(_mm512_set1_ps(1.f), erf_small(z)));
  return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), f);
}

// Exact-erf GELU at a third of gelu's cost, for the int8 GEGLU (int8_gemm): erf(z) = 1 - t^-16,
// t = 1 + a1 z + ... + a6 z^6 (Abramowitz & Stegun 7.1.28, |error| <= 3e-7), so GELU(x) =
// x (1 - r / 2) for x >= 0 and x r / 2 below, r = t(|x| / sqrt 2)^-16 (a reciprocal estimate and
// one Newton step). |error| <= 1e-6 |x| (mostly t^16's f32 rounding), absolute, not relative, in
// the negative tail; far below a bf16 output's rounding.
namespace gelu_fast_poly {  // a6 .. a1, 1: shared with the AVX2 gelu_fast (simd_avx2.h)
constexpr float kA[7] = {
    0.0000430638f, 0.0002765672f, 0.0001520143f, 0.0092705272f, 0.0422820123f, 0.0705230784f, 1.f};
}  // namespace gelu_fast_poly

// In place on N vectors, each step across all of them: one vector's GELU is a chain of ~20
// dependent operations, and the int8 GEGLU's epilogue, which ran them vector after vector, waited
// on their latency (a quarter of its time; GEGLU layers are 8 % faster with six at once).
template <int N>
SDC_AVX512_INLINE void gelu_fast(__m512 (&x)[N]) {
  __m512 t[N], z[N];
  __mmask16 far[N];
  // Past |x| = 9.9 erf is 1 in f32: GELU is x, or 0 (below); the clamp keeps t^16 finite.
#pragma GCC unroll 16
  for (int i = 0; i < N; ++i) {
    const __m512 az = _mm512_mul_ps(_mm512_abs_ps(x[i]), _mm512_set1_ps(0.70710678f));
    far[i] = _mm512_cmp_ps_mask(az, _mm512_set1_ps(7.f), _CMP_GE_OQ);
    z[i] = _mm512_min_ps(az, _mm512_set1_ps(7.f));
    t[i] = _mm512_set1_ps(gelu_fast_poly::kA[0]);
  }
#pragma GCC unroll 8
  for (int k = 1; k < 7; ++k)
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i)
      t[i] = _mm512_fmadd_ps(t[i], z[i], _mm512_set1_ps(gelu_fast_poly::kA[k]));
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k)
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i) t[i] = _mm512_mul_ps(t[i], t[i]);
#pragma GCC unroll 16
  for (int i = 0; i < N; ++i) {
    const __m512 r0 = _mm512_rcp14_ps(t[i]);
    const __m512 r = _mm512_fmadd_ps(r0, _mm512_fnmadd_ps(t[i], r0, _mm512_set1_ps(1.f)), r0);
    const __m512 half_r = _mm512_mul_ps(r, _mm512_set1_ps(0.5f));
    const __mmask16 neg = _mm512_cmp_ps_mask(x[i], _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 phi = _mm512_mask_mov_ps(_mm512_sub_ps(_mm512_set1_ps(1.f), half_r), neg, half_r);
    phi = _mm512_mask_mov_ps(phi, neg & far[i], _mm512_setzero_ps());
    x[i] = _mm512_mul_ps(x[i], phi);
  }
}

SDC_AVX512_INLINE __m512 gelu_fast(__m512 x) {
  __m512 v[1] = {x};
  gelu_fast(v);
  return v[0];
}

// f32 -> bf16, round to nearest even (as PyTorch and oneDNN cast).
SDC_AVX512_INLINE __m256i to_bf16(__m512 x) {
  const __m512i b = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb);
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}
SDC_AVX512_INLINE __m512 from_bf16(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Loads/stores of 16 (or `n` < 16 with a mask) values as f32 from f32 or bf16 memory.
SDC_AVX512_INLINE __mmask16 tail_mask(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
}
SDC_AVX512_INLINE __m512 load(const float* p, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, p);
}
SDC_AVX512_INLINE __m512 load(const uint16_t* p, __mmask16 m) {
  return from_bf16(_mm256_maskz_loadu_epi16(m, p));
}
SDC_AVX512_INLINE void store(float* p, __m512 v, __mmask16 m) {
  _mm512_mask_storeu_ps(p, m, v);
}
SDC_AVX512_INLINE void store(uint16_t* p, __m512 v, __mmask16 m) {
  _mm256_mask_storeu_epi16(p, m, to_bf16(v));
}

// The flash-attention kernels' output (queries in lanes): row r < rows of out (stride C) is
// column r of t (d rows of stride W) times the per-column scale (none: 1) over l[r], gathered 16
// columns at a time.
template <class T>
SDC_AVX512 inline void store_columns_as_rows(const float* t, int W, const float* l,
                                             const float* scale, int64_t rows, int64_t d, T* out,
                                             int64_t C) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(W));
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 inv = _mm512_set1_ps(1.f / l[r]);
    for (int64_t e = 0; e < d; e += 16) {
      const __mmask16 m = tail_mask(d - e);
      __m512 y = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, t + e * W + r, 4);
      if (scale) y = _mm512_mul_ps(y, _mm512_maskz_loadu_ps(m, scale + e));
      store(out + r * C + e, _mm512_mul_ps(y, inv), m);
    }
  }
}

// Horizontal sum and max.
SDC_AVX512_INLINE float hsum(__m512 v) {
  return _mm512_reduce_add_ps(v);
}
SDC_AVX512_INLINE float hmax(__m512 v) {
  return _mm512_reduce_max_ps(v);
}

}  // namespace sdc::cpu::simd

namespace sdc::cpu::scalar {

inline float load(const float* p) {
  return *p;
}
inline float load(const uint16_t* p) {
  return bf16_to_f32(*p);
}
inline void store(float* p, float v) {
  *p = v;
}
inline void store(uint16_t* p, float v) {
  *p = f32_to_bf16(v);
}
inline float gelu(float x) {
  return 0.5f * x * std::erfc(-x * 0.70710678118654752f);
}
inline float swish(float x, float alpha) {
  return x / (1.f + std::exp(-alpha * x));
}

}  // namespace sdc::cpu::scalar
