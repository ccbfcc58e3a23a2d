// Dynamic int8 quantisation of activations for the W8A8 steps: one min/max pass and one rounding
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
SDC_AVX512 void range_avx512(const T* x, int64_t b, int64_t e, float& lo, float& hi) {
  __m512 mn = _mm512_setzero_ps(), mx = _mm512_setzero_ps();
  for (int64_t i = b; i < e; i += 16) {
    const __m512 v = simd::load(x + i, simd::tail_mask(e - i));  // masked lanes read as 0
    mn = _mm512_min_ps(mn, v);
    mx = _mm512_max_ps(mx, v);
  }
  lo = _mm512_reduce_min_ps(mn);
  hi = _mm512_reduce_max_ps(mx);
}

template <class T>
SDC_AVX512 void quantize_avx512(const T* x, uint8_t* q, float inv, float zp, int64_t b, int64_t e) {
  const __m512 s = _mm512_set1_ps(inv), z = _mm512_set1_ps(zp);
  const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.f);
  for (int64_t i = b; i < e; i += 16) {
    const __mmask16 m = simd::tail_mask(e - i);
    // round(x / scale) + zp, then clamped: cvtps rounds to nearest even like std::nearbyint.
    const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(simd::load(x + i, m), s),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, z), lo), hi);
    _mm_mask_storeu_epi8(q + i, m, _mm512_cvtusepi32_epi8(_mm512_cvtps_epu32(v)));
  }
}

float value_of(const float* x, int64_t i) {
  return x[i];
}
float value_of(const uint16_t* x, int64_t i) {
  return bf16_to_f32(x[i]);
}

template <class T>
ActivationScale quantize_t(const T* x, int64_t n, uint8_t* q, float min_scale) {
  const bool v512 = use_avx512_kernels();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  float lo = 0.f, hi = 0.f;  // the range always holds 0, so that zero quantises exactly
#pragma omp parallel for schedule(static) reduction(min : lo) reduction(max : hi) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
    float l = 0.f, h = 0.f;
    if (v512) {
      range_avx512(x, b, e, l, h);
    } else {
      for (int64_t i = b; i < e; ++i) {
        l = std::min(l, value_of(x, i));
        h = std::max(h, value_of(x, i));
      }
    }
    lo = std::min(lo, l);
    hi = std::max(hi, h);
  }
  ActivationScale a;
  a.scale = std::max(hi > lo ? (hi - lo) / 255.f : 1.f, min_scale);
  a.zero_point = int32_t(std::clamp(std::nearbyint(-lo / a.scale), 0.f, 255.f));
  const float inv = 1.f / a.scale, zp = float(a.zero_point);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
    if (v512) {
      quantize_avx512(x, q, inv, zp, b, e);
    } else {
      for (int64_t i = b; i < e; ++i)
        q[i] = uint8_t(std::clamp(std::nearbyint(value_of(x, i) * inv) + zp, 0.f, 255.f));
    }
  }
  return a;
}

}  // namespace

ActivationScale quantize_u8(const void* x, DType xdt, int64_t n, uint8_t* q, float min_scale) {
  if (xdt == DType::BF16) return quantize_t(static_cast<const uint16_t*>(x), n, q, min_scale);
  return quantize_t(static_cast<const float*>(x), n, q, min_scale);
}

}  // namespace sdc::cpu
