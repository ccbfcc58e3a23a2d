// Dynamic int8 quantisation of activations for the W8A8 steps: one max-abs pass and one rounding
// pass over the tensor, both parallel and memory-bound (a few hundred microseconds for the UNet's
// largest activations, against milliseconds for the convolution that reads them).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/simd.h"

namespace sdc::cpu {
namespace {

constexpr int64_t kChunk = 32768;  // values per parallel work item

template <class T>
SDC_AVX512 float absmax_avx512(const T* x, int64_t b, int64_t e) {
  __m512 m = _mm512_setzero_ps();
  for (int64_t i = b; i < e; i += 16)
    m = _mm512_max_ps(m, _mm512_abs_ps(simd::load(x + i, simd::tail_mask(e - i))));
  return _mm512_reduce_max_ps(m);
}

template <class T>
SDC_AVX512 void quantize_avx512(const T* x, int8_t* q, float inv, int64_t b, int64_t e) {
  const __m512 s = _mm512_set1_ps(inv);
  for (int64_t i = b; i < e; i += 16) {
    const __mmask16 m = simd::tail_mask(e - i);
    // cvtps rounds to nearest even; |x·inv| <= 127 by construction, so the saturating narrow
    // only guards against the last ulp.
    const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(simd::load(x + i, m), s));
    _mm_mask_storeu_epi8(q + i, m, _mm512_cvtsepi32_epi8(v));
  }
}

float value_of(const float* x, int64_t i) {
  return x[i];
}
float value_of(const uint16_t* x, int64_t i) {
  return bf16_to_f32(x[i]);
}

template <class T>
float quantize_t(const T* x, int64_t n, int8_t* q) {
  const bool v512 = use_avx512_kernels();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  float amax = 0.f;
#pragma omp parallel for schedule(static) reduction(max : amax) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
    float m = 0.f;
    if (v512) {
      m = absmax_avx512(x, b, e);
    } else {
      for (int64_t i = b; i < e; ++i) m = std::max(m, std::fabs(value_of(x, i)));
    }
    amax = std::max(amax, m);
  }
  const float scale = amax > 0.f ? amax / 127.f : 1.f;
  const float inv = 1.f / scale;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
    if (v512) {
      quantize_avx512(x, q, inv, b, e);
    } else {
      for (int64_t i = b; i < e; ++i)
        q[i] = int8_t(std::clamp(std::nearbyint(value_of(x, i) * inv), -127.f, 127.f));
    }
  }
  return scale;
}

}  // namespace

float quantize_s8(const void* x, DType xdt, int64_t n, int8_t* q) {
  if (xdt == DType::BF16) return quantize_t(static_cast<const uint16_t*>(x), n, q);
  return quantize_t(static_cast<const float*>(x), n, q);
}

}  // namespace sdc::cpu
