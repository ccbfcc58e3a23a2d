// pack_head: K smoothing and the s8 codes of K and V (rules in attention_int8_codes.h).
#include "backend/cpu/attention_int8_pack.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/attention_int8_codes.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/simd.h"

namespace sdc::cpu::attn_int8 {
namespace {

// 16 values of row x from column e (mask m), f32 or bf16 storage.
SDC_AVX512_INLINE __m512 load16(const void* x, bool bf16, int64_t e, __mmask16 m) {
  return bf16 ? simd::load(static_cast<const uint16_t*>(x) + e, m)
              : simd::load(static_cast<const float*>(x) + e, m);
}
SDC_AVX512_INLINE const void* row(const void* x, bool bf16, int64_t j, int64_t C) {
  return bf16 ? static_cast<const void*>(static_cast<const uint16_t*>(x) + j * C)
              : static_cast<const void*>(static_cast<const float*>(x) + j * C);
}

// Four vectors of s32 codes (keys j..j+3, 16 lanes each) -> one vector whose dword i holds the
// four keys' s8 codes of lane i (the packs work within 128-bit lanes; the shuffle transposes
// each lane's 4x4 bytes).
SDC_AVX512_INLINE __m512i interleave4_s8(__m512i c0, __m512i c1, __m512i c2, __m512i c3) {
  const __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(c0, c1), _mm512_packs_epi32(c2, c3));
  const __m512i t =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  return _mm512_shuffle_epi8(b, t);
}

// Column means of K over keys: sums in double, key by key (the order the tests repeat).
SDC_AVX512 void key_means(const void* k, bool bf16, int64_t C, int64_t Tk, int64_t d, float* mean) {
  // Padded to whole vectors and updated with full loads and stores (a masked store would not
  // forward to the next row's load).
  std::vector<double> sum(size_t((d + 7) / 8 * 8), 0.0);
  for (int64_t j = 0; j < Tk; ++j) {
    const void* r = row(k, bf16, j, C);
    for (int64_t e = 0; e < d; e += 8) {
      const __mmask8 m8 = __mmask8((1u << std::min<int64_t>(8, d - e)) - 1);
      const __m512d x = _mm512_cvtps_pd(_mm512_castps512_ps256(load16(r, bf16, e, __mmask16(m8))));
      _mm512_storeu_pd(sum.data() + e, _mm512_add_pd(_mm512_loadu_pd(sum.data() + e), x));
    }
  }
  for (int64_t e = 0; e < d; ++e) mean[e] = float(sum[size_t(e)] / double(Tk));
}

SDC_AVX512 void pack_keys(const void* k, bool bf16, int64_t C, int64_t Tk, int64_t d,
                          const PackedHead& p) {
  const int64_t stride = (d + 3) / 4 * 4;
  for (int64_t j = 0; j < Tk; ++j) {
    const void* r = row(k, bf16, j, C);
    __m512 mx = _mm512_setzero_ps();
    for (int64_t e = 0; e < d; e += 16) {
      const __mmask16 m = simd::tail_mask(d - e);
      const __m512 x = _mm512_sub_ps(load16(r, bf16, e, m), _mm512_maskz_loadu_ps(m, p.k_mean + e));
      mx = _mm512_max_ps(mx, _mm512_abs_ps(x));
    }
    const float absmax = _mm512_reduce_max_ps(mx), inv = code_inv(absmax);
    __m512i sum = _mm512_setzero_si512();
    int8_t* dst = p.k + j * stride;
    for (int64_t e = 0; e < d; e += 16) {
      const __mmask16 m = simd::tail_mask(d - e);
      const __m512 x = _mm512_sub_ps(load16(r, bf16, e, m), _mm512_maskz_loadu_ps(m, p.k_mean + e));
      const __m512i c = _mm512_maskz_cvtps_epi32(m, _mm512_mul_ps(x, _mm512_set1_ps(inv)));
      sum = _mm512_add_epi32(sum, c);
      _mm512_mask_cvtsepi32_storeu_epi8(dst + e, m, c);
    }
    for (int64_t e = d; e < stride; ++e) dst[e] = 0;
    p.k_scale[j] = code_scale(absmax);
    p.comp[j] = -128 * _mm512_reduce_add_epi32(sum);
  }
}

SDC_AVX512 void pack_values(const void* v, bool bf16, int64_t C, int64_t Tk, int64_t d,
                            const PackedHead& p) {
  std::vector<float> inv(static_cast<size_t>(d));
  for (int64_t e = 0; e < d; e += 16) {
    const __mmask16 m = simd::tail_mask(d - e);
    __m512 mx = _mm512_setzero_ps();
    for (int64_t j = 0; j < Tk; ++j)
      mx = _mm512_max_ps(mx, _mm512_abs_ps(load16(row(v, bf16, j, C), bf16, e, m)));
    float col[16];
    _mm512_storeu_ps(col, mx);
    for (int64_t i = 0; i < std::min<int64_t>(16, d - e); ++i) {
      p.v_scale[e + i] = code_scale(col[i]);
      inv[size_t(e + i)] = code_inv(col[i]);
    }
  }
  for (int64_t j0 = 0; j0 < Tk; j0 += 4) {
    int32_t* dst = reinterpret_cast<int32_t*>(p.v + j0 * d);
    for (int64_t e = 0; e < d; e += 16) {
      const __mmask16 m = simd::tail_mask(d - e);
      const __m512 vi = _mm512_maskz_loadu_ps(m, inv.data() + e);
      __m512i c[4];
      for (int i = 0; i < 4; ++i)
        c[i] =
            j0 + i < Tk
                ? _mm512_cvtps_epi32(_mm512_mul_ps(load16(row(v, bf16, j0 + i, C), bf16, e, m), vi))
                : _mm512_setzero_si512();
      _mm512_mask_storeu_epi32(dst + e, m, interleave4_s8(c[0], c[1], c[2], c[3]));
    }
  }
}

}  // namespace

size_t packed_head_bytes(int64_t Tk, int64_t d) {
  const int64_t d4 = (d + 3) / 4, g = (Tk + 3) / 4;
  return arena_aligned(size_t(Tk * d4 * 4)) + 2 * arena_aligned(size_t(Tk) * 4) +
         arena_aligned(size_t(g * d * 4)) + 2 * arena_aligned(size_t(d) * 4);
}

PackedHead packed_head_at(uint8_t* base, int64_t Tk, int64_t d) {
  const int64_t d4 = (d + 3) / 4, g = (Tk + 3) / 4;
  PackedHead p{};
  p.k = reinterpret_cast<int8_t*>(base);
  base += arena_aligned(size_t(Tk * d4 * 4));
  p.comp = reinterpret_cast<int32_t*>(base);
  base += arena_aligned(size_t(Tk) * 4);
  p.k_scale = reinterpret_cast<float*>(base);
  base += arena_aligned(size_t(Tk) * 4);
  p.v = reinterpret_cast<int8_t*>(base);
  base += arena_aligned(size_t(g * d * 4));
  p.v_scale = reinterpret_cast<float*>(base);
  base += arena_aligned(size_t(d) * 4);
  p.k_mean = reinterpret_cast<float*>(base);
  return p;
}

void pack_head(const void* k, const void* v, bool bf16, int64_t C, int64_t Tk, int64_t d,
               const PackedHead& dst) {
  key_means(k, bf16, C, Tk, d, dst.k_mean);
  pack_keys(k, bf16, C, Tk, d, dst);
  pack_values(v, bf16, C, Tk, d, dst);
}

}  // namespace sdc::cpu::attn_int8
