// AVX2 + FMA building blocks for the own kernels' AVX2 paths (kernel_isa() == Avx2: CPUs without
// AVX-512, or DNNL_MAX_CPU_ISA=AVX2): exp and horizontal reductions on 8 lanes. As simd.h, every
// function carries its target attribute; callers are SDC_AVX2 functions reached only on that path.
#pragma once

#include <immintrin.h>

#define SDC_AVX2 __attribute__((target("avx2,fma")))
#define SDC_AVX2_INLINE SDC_AVX2 static inline __attribute__((always_inline))

namespace sdc::cpu::simd256 {

// exp(x), the polynomial of simd::exp (max relative error ~2 ulp), 2^n built in the exponent
// bits; x < -87.3 (results below f32's normal range) gives 0, x > 88.7 gives +inf.
SDC_AVX2_INLINE __m256 exp(__m256 x) {
  const __m256 normal = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 big = _mm256_cmp_ps(x, _mm256_set1_ps(88.7f), _CMP_GT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.7f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  // n in [-126, 128]: 2^n as exponent bits (n = 128 only where x was clamped to 88.7: inf below).
  const __m256i e = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(n, _mm256_set1_ps(127.f))),
                       _mm256_set1_epi32(127)),
      23);
  const __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  return _mm256_and_ps(_mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), big), normal);
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

}  // namespace sdc::cpu::simd256
