// AVX2 + FMA building blocks for the own kernels' AVX2 paths (kernel_isa() == Avx2: CPUs without
// AVX-512, or DNNL_MAX_CPU_ISA=AVX2): exp, exp2 and horizontal reductions on 8 lanes. As simd.h,
// every function carries its target attribute; callers are SDC_AVX2 functions reached only on that
// path.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/cpu/simd.h"  // exp_poly, exp2_poly

#define SDC_AVX2 __attribute__((target("avx2,fma")))
#define SDC_AVX2_INLINE SDC_AVX2 static inline __attribute__((always_inline))

namespace sdc::cpu::simd256 {

// 2^k for integer lanes k in [-126, 127], built in the exponent bits (-127 gives 0, 128 +inf).
SDC_AVX2_INLINE __m256 pow2(__m256i k) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

// exp's reduction and polynomial for x already clamped to f32's range: n = round(x log2 e) and
// e^r with r = x - n ln 2, so that e^x = e^r 2^n (exp and silu put the 2^n in differently).
SDC_AVX2_INLINE __m256 exp_reduced(__m256 x, __m256& n) {
  n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(simd::exp_poly::kLog2e)),
                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(simd::exp_poly::kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(simd::exp_poly::kLn2Lo), r);
  __m256 p = _mm256_set1_ps(simd::exp_poly::kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(simd::exp_poly::kP[i]));
  return _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
}

// exp(x), simd::exp's reduction and polynomial (max relative error ~2 ulp); x < -87.3 (results
// below f32's normal range) gives 0, x > 88.7 gives +inf.
SDC_AVX2_INLINE __m256 exp(__m256 x) {
  const __m256 normal = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 big = _mm256_cmp_ps(x, _mm256_set1_ps(88.7f), _CMP_GT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.7f));
  __m256 n;
  const __m256 p = exp_reduced(x, n);
  // n in [-126, 128] (128 from x above ~88.38, f32's top octave): 2^n as 2^h 2^(n - h), h = n / 2,
  // each factor a normal power of 2.
  const __m256i ni = _mm256_cvtps_epi32(n), h = _mm256_srai_epi32(ni, 1);
  const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, pow2(h)), pow2(_mm256_sub_epi32(ni, h)));
  return _mm256_and_ps(_mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), big), normal);
}

// x sigmoid(x) = x / (1 + exp(-x)) at f32 accuracy, without exp's edge cases or a division (a
// ymm division is 5 cycles a vector on Intel, the GroupNorm+SiLU apply's bottleneck): exp(-x)
// with -x clamped to [-87, 88], where 2^n is one normal power of 2, and 1 / (1 + exp(-x)) as the
// reciprocal estimate with one Newton step (~1 ulp). Very negative x gives -0, very positive x.
SDC_AVX2_INLINE __m256 silu(__m256 x) {
  const __m256 t =
      _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), _mm256_set1_ps(-87.f)),
                    _mm256_set1_ps(88.f));
  __m256 n;
  const __m256 p = exp_reduced(t, n);
  const __m256 d =
      _mm256_add_ps(_mm256_set1_ps(1.f), _mm256_mul_ps(p, pow2(_mm256_cvtps_epi32(n))));
  __m256 inv = _mm256_rcp_ps(d);
  inv = _mm256_mul_ps(inv, _mm256_fnmadd_ps(d, inv, _mm256_set1_ps(2.f)));
  return _mm256_mul_ps(x, inv);
}

// 2^x at f32 accuracy, simd::exp2's formula (the queries-in-lanes attention's softmax runs in
// base 2 at both widths): f = x - floor(x) in [0, 1), 2^f by exp2_poly (relative error < 2e-7),
// times 2^floor(x) built in the exponent bits. Without scalef, x is clamped to [-127, 128]: x below
// -126 gives 0 (no subnormals; a masked score's -1e30 included) and x >= 128 gives +inf.
SDC_AVX2_INLINE __m256 exp2(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-127.f)), _mm256_set1_ps(128.f));
  const __m256 n = _mm256_floor_ps(x);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(simd::exp2_poly::kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(simd::exp2_poly::kP[i]));
  return _mm256_mul_ps(p, pow2(_mm256_cvtps_epi32(n)));
}

// simd::gelu_fast on 8 lanes, in place on N vectors step by step as there: the same polynomial,
// the reciprocal from a 12-bit estimate and one Newton step (simd::gelu_fast's 14-bit one differs
// in the last bits).
template <int N>
SDC_AVX2_INLINE void gelu_fast(__m256 (&x)[N]) {
  __m256 t[N], z[N], far[N];
#pragma GCC unroll 16
  for (int i = 0; i < N; ++i) {
    const __m256 az =
        _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), x[i]), _mm256_set1_ps(0.70710678f));
    far[i] = _mm256_cmp_ps(az, _mm256_set1_ps(7.f), _CMP_GE_OQ);
    z[i] = _mm256_min_ps(az, _mm256_set1_ps(7.f));
    t[i] = _mm256_set1_ps(simd::gelu_fast_poly::kA[0]);
  }
#pragma GCC unroll 8
  for (int k = 1; k < 7; ++k)
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i)
      t[i] = _mm256_fmadd_ps(t[i], z[i], _mm256_set1_ps(simd::gelu_fast_poly::kA[k]));
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k)
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i) t[i] = _mm256_mul_ps(t[i], t[i]);
#pragma GCC unroll 16
  for (int i = 0; i < N; ++i) {
    const __m256 r0 = _mm256_rcp_ps(t[i]);
    const __m256 r = _mm256_fmadd_ps(r0, _mm256_fnmadd_ps(t[i], r0, _mm256_set1_ps(1.f)), r0);
    const __m256 half_r = _mm256_mul_ps(r, _mm256_set1_ps(0.5f));
    const __m256 neg = _mm256_cmp_ps(x[i], _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 phi = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.f), half_r), half_r, neg);
    phi = _mm256_andnot_ps(_mm256_and_ps(neg, far[i]), phi);
    x[i] = _mm256_mul_ps(x[i], phi);
  }
}
SDC_AVX2_INLINE __m256 gelu_fast(__m256 x) {
  __m256 v[1] = {x};
  gelu_fast(v);
  return v[0];
}

SDC_AVX2_INLINE float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}
SDC_AVX2_INLINE float hmax(__m256 v) {
  const __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_movehdup_ps(t)));
}

// Lanes [0, n) of 8 set (all of them for n >= 8), as a mask for maskload/maskstore.
SDC_AVX2_INLINE __m256i tail_mask(int64_t n) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n < 8 ? n : 8)), lane);
}

// n values (8 at most) from f32 or bf16 memory as f32, 0 in the lanes past them: n >= 8 is one
// plain load; a shorter tail a masked load of dwords (f32), or bf16 through a small buffer (AVX2
// masks only dwords).
SDC_AVX2_INLINE __m256 from_bf16(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
SDC_AVX2_INLINE __m256 load(const float* p, int64_t n) {
  return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(n));
}
// The first n lanes of v (all 8 for n >= 8) to p: a plain store for a whole vector (a masked
// store is several micro-ops on Intel and microcoded on AMD's Zen), masked only for a tail.
SDC_AVX2_INLINE void store(float* p, __m256 v, int64_t n) {
  if (n >= 8)
    _mm256_storeu_ps(p, v);
  else
    _mm256_maskstore_ps(p, tail_mask(n), v);
}
SDC_AVX2_INLINE __m256 load(const uint16_t* p, int64_t n) {
  if (n >= 8) return from_bf16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(16) uint16_t part[8] = {};
  std::memcpy(part, p, size_t(n) * 2);
  return from_bf16(_mm_load_si128(reinterpret_cast<const __m128i*>(part)));
}

// 8 s32 lanes as bytes in the low half, saturated to u8 or s8.
SDC_AVX2_INLINE __m128i pack_u8(__m256i c) {
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
  return _mm_packus_epi16(w, w);
}
SDC_AVX2_INLINE __m128i pack_s8(__m256i c) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
  return _mm_packs_epi16(w, w);
}
// The low n bytes (8 at most) of b to p.
SDC_AVX2_INLINE void store_bytes(void* p, __m128i b, int64_t n) {
  if (n >= 8) return _mm_storel_epi64(static_cast<__m128i*>(p), b);
  alignas(16) uint8_t part[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(part), b);
  std::memcpy(p, part, size_t(n));
}

// 8 lanes to bf16 memory, rounded to nearest even as simd::to_bf16.
SDC_AVX2_INLINE void store(uint16_t* p, __m256 v) {
  const __m256i b = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
  const __m256i r =
      _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb), 16);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}

}  // namespace sdc::cpu::simd256
