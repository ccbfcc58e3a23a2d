// attn_int8::kAvx512Vnni: the int8 attention (attention_int8_kernel.h) on 16-lane AVX512-VNNI
// vectors. W = 16 NQ queries in lanes, NQ = 4 (2 for heads wider than 96, so the tiles stay in
// L1); a register tile holds 24 accumulators beside the NQ query or P vectors and a broadcast.
#include "backend/cpu/simd.h"

#include "backend/cpu/vnni.h"

#define SDC_INT8_TARGET SDC_VNNI
#include "backend/cpu/attention_int8_kernel.h"

namespace sdc::cpu::attn_int8 {
namespace {

struct Avx512Vnni : vnni::Lanes512 {
  static constexpr int kRegs = 24, kNqWide = 4, kNqNarrow = 2;
  static constexpr int nq(int64_t d) { return d > 96 ? kNqNarrow : kNqWide; }

  SDC_VNNI_INLINE int32_t ihsum(VI x) { return _mm512_reduce_add_epi32(x); }
  SDC_VNNI_INLINE VF abs(VF x) { return _mm512_abs_ps(x); }
  SDC_VNNI_INLINE VF exp2(VF x) { return simd::exp2(x); }
  SDC_VNNI_INLINE float hmax(VF x) { return _mm512_reduce_max_ps(x); }
  SDC_VNNI_INLINE VF select_ne(VF a, VF b, VF x, VF y) {
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ), x);
  }

  // p_code on 16 lanes: the fraction by one vreduceps, 2^floor by scalef.
  SDC_VNNI_INLINE VI p_codes(VF s, VF a, VF shift) {
    const __m512 x = _mm512_fmadd_ps(s, a, shift);
    const __m512 f = _mm512_reduce_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kP3), f, _mm512_set1_ps(kP2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kP1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kP0));
    return _mm512_cvtps_epi32(_mm512_scalef_ps(p, x));
  }
  // The packs work within 128-bit lanes; the shuffle transposes each lane's 4x4 bytes.
  SDC_VNNI_INLINE VI transpose4x4(VI b) {
    return _mm512_shuffle_epi8(b, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2,
                                                                       6, 10, 14, 3, 7, 11, 15)));
  }
  SDC_VNNI_INLINE VI interleave4_u8(VI c0, VI c1, VI c2, VI c3) {
    return transpose4x4(
        _mm512_packus_epi16(_mm512_packus_epi32(c0, c1), _mm512_packus_epi32(c2, c3)));
  }
  SDC_VNNI_INLINE VI interleave4_s8(VI c0, VI c1, VI c2, VI c3) {
    return transpose4x4(_mm512_packs_epi16(_mm512_packs_epi32(c0, c1), _mm512_packs_epi32(c2, c3)));
  }

  SDC_VNNI_INLINE VF load_row(const void* x, bool bf16, int64_t e, int64_t n) {
    const __mmask16 m = simd::tail_mask(n);
    return bf16 ? simd::load(static_cast<const uint16_t*>(x) + e, m)
                : simd::load(static_cast<const float*>(x) + e, m);
  }
  SDC_VNNI_INLINE VF fload_n(const float* p, int64_t n) {
    return _mm512_maskz_loadu_ps(simd::tail_mask(n), p);
  }
  SDC_VNNI_INLINE void store_u8(uint8_t* p, VI c) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtusepi32_epi8(c));
  }
  SDC_VNNI_INLINE void store_s8(int8_t* p, VI c, int64_t n) {
    _mm512_mask_cvtsepi32_storeu_epi8(p, simd::tail_mask(n), c);
  }
  SDC_VNNI_INLINE void store_dwords(int32_t* p, VI x, int64_t n) {
    _mm512_mask_storeu_epi32(p, simd::tail_mask(n), x);
  }

  // Sums in double, key by key (the order the tests repeat), 32 columns at a time in registers:
  // sums kept in memory and updated row by row waited on store forwarding (unaligned 64-byte
  // stores), which made this 2-3 % of the kernel's time.
  SDC_VNNI static void key_means(const void* k, bool bf16, int64_t C, int64_t Tk, int64_t d,
                                 float* mean) {
    for (int64_t e0 = 0; e0 < d; e0 += 32) {
      __m512d sum[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(),
                        _mm512_setzero_pd()};
      const int64_t n = std::min<int64_t>(32, d - e0);
      for (int64_t j = 0; j < Tk; ++j) {
        const void* r = attn_int8_kernel::row_at(k, bf16, j * C);
        // Columns past d load as 0 and their sums are never stored.
        const __m512 lo = load_row(r, bf16, e0, n);
        const __m512 hi = load_row(r, bf16, e0 + 16, std::max<int64_t>(0, n - 16));
        sum[0] = _mm512_add_pd(sum[0], _mm512_cvtps_pd(_mm512_castps512_ps256(lo)));
        sum[1] = _mm512_add_pd(sum[1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(lo, 1)));
        sum[2] = _mm512_add_pd(sum[2], _mm512_cvtps_pd(_mm512_castps512_ps256(hi)));
        sum[3] = _mm512_add_pd(sum[3], _mm512_cvtps_pd(_mm512_extractf32x8_ps(hi, 1)));
      }
      alignas(64) double col[32];
      for (int i = 0; i < 4; ++i) _mm512_store_pd(col + 8 * i, sum[i]);
      for (int64_t i = 0; i < n; ++i) mean[e0 + i] = float(col[i] / double(Tk));
    }
  }

  // Output rows: columns of Ot gathered 16 at a time.
  template <class T>
  SDC_VNNI static void store_rows(const float* ot, int W, const float* l, const float* vs,
                                  int64_t rows, int64_t d, T* out, int64_t C) {
    simd::store_columns_as_rows(ot, W, l, vs, rows, d, out, C);
  }
};

}  // namespace

const Kernels kAvx512Vnni{"avx512_vnni", &attn_int8_kernel::block_queries<Avx512Vnni>,
                          &attn_int8_kernel::tile_bytes<Avx512Vnni>,
                          &attn_int8_kernel::pack_head<Avx512Vnni>,
                          &attn_int8_kernel::run_block<Avx512Vnni>};

}  // namespace sdc::cpu::attn_int8
