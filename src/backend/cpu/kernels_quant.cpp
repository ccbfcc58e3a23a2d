// Dynamic int8 quantisation of activations for the W8A8 steps: one min/max pass and one rounding
// pass over the tensor, both parallel and memory-bound (a few hundred microseconds for the UNet's
// largest activations, against milliseconds for the convolution that reads them). Convolutions
// take their codes in a frame of zero points (quantize_u8_padded) instead of padding themselves.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

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

// AVX2 (CPUs without AVX-512: the int8 plans of AVX-VNNI ones): the same arithmetic on 8 lanes,
// the last values of a range scalar.
SDC_AVX2 inline __m256 load8(const float* x) {
  return _mm256_loadu_ps(x);
}
SDC_AVX2 inline __m256 load8(const uint16_t* x) {  // bf16: the high half of an f32
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <class T>
SDC_AVX2 void range_avx2(const T* x, int64_t b, int64_t e, float& lo, float& hi) {
  __m256 mn = _mm256_setzero_ps(), mx = _mm256_setzero_ps();
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256 v = load8(x + i);
    mn = _mm256_min_ps(mn, v);
    mx = _mm256_max_ps(mx, v);
  }
  lo = -simd256::hmax(_mm256_sub_ps(_mm256_setzero_ps(), mn));
  hi = simd256::hmax(mx);
  for (; i < e; ++i) {
    lo = std::min(lo, value_of(x, i));
    hi = std::max(hi, value_of(x, i));
  }
}

template <class T>
SDC_AVX2 void quantize_avx2(const T* x, uint8_t* q, float inv, float zp, int64_t b, int64_t e) {
  const __m256 s = _mm256_set1_ps(inv), z = _mm256_set1_ps(zp);
  const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.f);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256 r = _mm256_round_ps(_mm256_mul_ps(load8(x + i), s),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i k = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(r, z), lo), hi));
    const __m128i w =
        _mm_packus_epi32(_mm256_castsi256_si128(k), _mm256_extracti128_si256(k, 1));  // 8 u16
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), _mm_packus_epi16(w, w));
  }
  for (; i < e; ++i)
    q[i] = uint8_t(std::clamp(std::nearbyint(value_of(x, i) * inv) + zp, 0.f, 255.f));
}

// The scale and zero point of x's n values: one parallel min/max pass.
template <class T>
ActivationScale activation_scale(const T* x, int64_t n, float min_scale) {
  const KernelIsa isa = kernel_isa();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  float lo = 0.f, hi = 0.f;  // the range always holds 0, so that zero quantises exactly
#pragma omp parallel for schedule(static) reduction(min : lo) reduction(max : hi) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
    float l = 0.f, h = 0.f;
    if (isa == KernelIsa::Avx512) {
      range_avx512(x, b, e, l, h);
    } else if (isa == KernelIsa::Avx2) {
      range_avx2(x, b, e, l, h);
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
  return a;
}

// Codes of x[b, e) into q[b, e).
template <class T>
void codes(const T* x, uint8_t* q, const ActivationScale& a, int64_t b, int64_t e, KernelIsa isa) {
  const float inv = 1.f / a.scale, zp = float(a.zero_point);
  if (isa == KernelIsa::Avx512) {
    quantize_avx512(x, q, inv, zp, b, e);
    return;
  }
  if (isa == KernelIsa::Avx2) {
    quantize_avx2(x, q, inv, zp, b, e);
    return;
  }
  for (int64_t i = b; i < e; ++i)
    q[i] = uint8_t(std::clamp(std::nearbyint(value_of(x, i) * inv) + zp, 0.f, 255.f));
}

template <class T>
ActivationScale quantize_t(const T* x, int64_t n, uint8_t* q, float min_scale) {
  const ActivationScale a = activation_scale(x, n, min_scale);
  const KernelIsa isa = kernel_isa();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c)
    codes(x, q, a, c * kChunk, std::min(n, (c + 1) * kChunk), isa);
  return a;
}

template <class T>
ActivationScale quantize_padded_t(const T* x, const PaddedImages& g, uint8_t* q, float min_scale) {
  if (g.top == 0 && g.left == 0 && g.bottom == 0 && g.right == 0)
    return quantize_t(x, g.values(), q, min_scale);  // no frame: chunks, not rows
  const ActivationScale a = activation_scale(x, g.values(), min_scale);
  const KernelIsa isa = kernel_isa();
  const uint8_t zp = uint8_t(a.zero_point);
  const int64_t Hp = g.top + g.H + g.bottom, Wp = g.left + g.W + g.right, row = g.W * g.C;
  // One task per padded row: a frame row is all zero point; an image row gets its codes between
  // the left and right frame.
#pragma omp parallel for schedule(static) if (g.N * Hp * Wp * g.C > kChunk)
  for (int64_t r = 0; r < g.N * Hp; ++r) {
    const int64_t n = r / Hp, y = r % Hp - g.top;
    uint8_t* qr = q + r * Wp * g.C;
    if (y < 0 || y >= g.H) {
      std::memset(qr, zp, size_t(Wp * g.C));
      continue;
    }
    std::memset(qr, zp, size_t(g.left * g.C));
    std::memset(qr + (g.left + g.W) * g.C, zp, size_t(g.right * g.C));
    codes(x + (n * g.H + y) * row, qr + g.left * g.C, a, 0, row, isa);
  }
  return a;
}

}  // namespace

ActivationScale quantize_u8(const void* x, DType xdt, int64_t n, uint8_t* q, float min_scale) {
  if (xdt == DType::BF16) return quantize_t(static_cast<const uint16_t*>(x), n, q, min_scale);
  return quantize_t(static_cast<const float*>(x), n, q, min_scale);
}

ActivationScale quantize_u8_padded(const void* x, DType xdt, const PaddedImages& g, uint8_t* q,
                                   float min_scale) {
  if (xdt == DType::BF16)
    return quantize_padded_t(static_cast<const uint16_t*>(x), g, q, min_scale);
  return quantize_padded_t(static_cast<const float*>(x), g, q, min_scale);
}

}  // namespace sdc::cpu
