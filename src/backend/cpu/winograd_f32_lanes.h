// The lanes policies the f32 Winograd transforms (winograd_f32_kernel.h, winograd_f4_kernel.h) are
// written over: an f32 vector type Vec with kLanes lanes and its load, store, set1, zero, add, sub,
// max and fma(a, b, c) = a b + c, each an always_inline function of its width's target. Included by
// winograd_f32_avx2.cpp and winograd_f32_avx512.cpp, each of which uses one.
#pragma once

#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

namespace sdc::cpu::wino_lanes {

struct Avx2 {
  using Vec = __m256;
  static constexpr int kLanes = 8;
  SDC_AVX2_INLINE Vec zero() { return _mm256_setzero_ps(); }
  SDC_AVX2_INLINE Vec load(const float* p) { return _mm256_loadu_ps(p); }
  SDC_AVX2_INLINE void store(float* p, Vec x) { _mm256_storeu_ps(p, x); }
  SDC_AVX2_INLINE Vec set1(float x) { return _mm256_set1_ps(x); }
  SDC_AVX2_INLINE Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  SDC_AVX2_INLINE Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  SDC_AVX2_INLINE Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  SDC_AVX2_INLINE Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
};

struct Avx512 {
  using Vec = __m512;
  static constexpr int kLanes = 16;
  SDC_AVX512_INLINE Vec zero() { return _mm512_setzero_ps(); }
  SDC_AVX512_INLINE Vec load(const float* p) { return _mm512_loadu_ps(p); }
  SDC_AVX512_INLINE void store(float* p, Vec x) { _mm512_storeu_ps(p, x); }
  SDC_AVX512_INLINE Vec set1(float x) { return _mm512_set1_ps(x); }
  SDC_AVX512_INLINE Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  SDC_AVX512_INLINE Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  SDC_AVX512_INLINE Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  SDC_AVX512_INLINE Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
};

}  // namespace sdc::cpu::wino_lanes
