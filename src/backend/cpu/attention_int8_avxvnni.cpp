// attn_int8::kAvxVnni: the int8 attention (attention_int8_kernel.h) on 8-lane vectors with
// AVX-VNNI, the VEX-encoded 256-bit vpdpbusd of CPUs with AVX2 and no AVX-512 (Intel from Alder
// Lake on; AMD Zen 4 and 5 have it too, which is how it is tested there). W = 16 queries in lanes
// (NQ = 2); 16 vector registers hold a tile's 12 accumulators, the 2 query or P vectors and a
// broadcast. Row tails of bf16 or bytes go through simd256's small buffers (SD1.5's heads, 40, 80
// and 160 wide, have none).
#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

#include "backend/cpu/vnni.h"

#define SDC_INT8_TARGET SDC_AVXVNNI
#include "backend/cpu/attention_int8_kernel.h"

namespace sdc::cpu::attn_int8 {
namespace {

struct AvxVnni : vnni::Lanes256 {
  static constexpr int kRegs = 12, kNqWide = 2, kNqNarrow = 2;
  static constexpr int nq(int64_t) { return kNqWide; }

  SDC_AVXVNNI_INLINE int32_t ihsum(VI x) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
  }
  SDC_AVXVNNI_INLINE VF abs(VF x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), x); }
  SDC_AVXVNNI_INLINE VF exp2(VF x) { return simd256::exp2(x); }
  SDC_AVXVNNI_INLINE float hmax(VF x) { return simd256::hmax(x); }
  SDC_AVXVNNI_INLINE VF select_ne(VF a, VF b, VF x, VF y) {
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_NEQ_UQ));
  }

  // p_code on 8 lanes. Without vreduceps and scalef: x clamped at -33 (every x below -10 gives
  // code 0 anyway), f = x - floor(x) (exact for x <= -1), 2^floor(x) built in the exponent bits.
  SDC_AVXVNNI_INLINE VI p_codes(VF s, VF a, VF shift) {
    const __m256 x = _mm256_max_ps(_mm256_fmadd_ps(s, a, shift), _mm256_set1_ps(-33.f));
    const __m256 fl = _mm256_floor_ps(x);
    const __m256 f = _mm256_sub_ps(x, fl);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(kP3), f, _mm256_set1_ps(kP2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kP1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kP0));
    return _mm256_cvtps_epi32(_mm256_mul_ps(p, simd256::pow2(_mm256_cvtps_epi32(fl))));
  }
  // The packs work within 128-bit lanes; the shuffle transposes each lane's 4x4 bytes.
  SDC_AVXVNNI_INLINE VI transpose4x4(VI b) {
    return _mm256_shuffle_epi8(b, _mm256_broadcastsi128_si256(_mm_setr_epi8(
                                      0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)));
  }
  SDC_AVXVNNI_INLINE VI interleave4_u8(VI c0, VI c1, VI c2, VI c3) {
    return transpose4x4(
        _mm256_packus_epi16(_mm256_packus_epi32(c0, c1), _mm256_packus_epi32(c2, c3)));
  }
  SDC_AVXVNNI_INLINE VI interleave4_s8(VI c0, VI c1, VI c2, VI c3) {
    return transpose4x4(_mm256_packs_epi16(_mm256_packs_epi32(c0, c1), _mm256_packs_epi32(c2, c3)));
  }

  SDC_AVXVNNI_INLINE VF fload_n(const float* p, int64_t n) { return simd256::load(p, n); }
  SDC_AVXVNNI_INLINE VF load_row(const void* x, bool bf16, int64_t e, int64_t n) {
    return bf16 ? simd256::load(static_cast<const uint16_t*>(x) + e, n)
                : simd256::load(static_cast<const float*>(x) + e, n);
  }
  SDC_AVXVNNI_INLINE void store_u8(uint8_t* p, VI c) {
    simd256::store_bytes(p, simd256::pack_u8(c), 8);
  }
  SDC_AVXVNNI_INLINE void store_s8(int8_t* p, VI c, int64_t n) {
    simd256::store_bytes(p, simd256::pack_s8(c), n);
  }
  SDC_AVXVNNI_INLINE void store_dwords(int32_t* p, VI x, int64_t n) {
    if (n >= 8)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), x);
    else
      _mm256_maskstore_epi32(p, simd256::tail_mask(n), x);
  }

  // Sums in double, key by key (the order the tests repeat), 16 columns at a time in registers
  // (as the AVX-512 build: sums in memory waited on store forwarding).
  SDC_AVXVNNI static void key_means(const void* k, bool bf16, int64_t C, int64_t Tk, int64_t d,
                                    float* mean) {
    for (int64_t e0 = 0; e0 < d; e0 += 16) {
      __m256d sum[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                        _mm256_setzero_pd()};
      const int64_t n = std::min<int64_t>(16, d - e0);
      for (int64_t j = 0; j < Tk; ++j) {
        const void* r = attn_int8_kernel::row_at(k, bf16, j * C);
        // Columns past d load as 0 and their sums are never stored.
        const __m256 lo = load_row(r, bf16, e0, n);
        const __m256 hi = load_row(r, bf16, e0 + 8, std::max<int64_t>(0, n - 8));
        sum[0] = _mm256_add_pd(sum[0], _mm256_cvtps_pd(_mm256_castps256_ps128(lo)));
        sum[1] = _mm256_add_pd(sum[1], _mm256_cvtps_pd(_mm256_extractf128_ps(lo, 1)));
        sum[2] = _mm256_add_pd(sum[2], _mm256_cvtps_pd(_mm256_castps256_ps128(hi)));
        sum[3] = _mm256_add_pd(sum[3], _mm256_cvtps_pd(_mm256_extractf128_ps(hi, 1)));
      }
      alignas(32) double col[16];
      for (int i = 0; i < 4; ++i) _mm256_store_pd(col + 4 * i, sum[i]);
      for (int64_t i = 0; i < n; ++i) mean[e0 + i] = float(col[i] / double(Tk));
    }
  }

  // Output rows, scalar: once per block of queries, against its d x Tk x W multiply-adds.
  template <class T>
  static void store_rows(const float* ot, int W, const float* l, const float* vs, int64_t rows,
                         int64_t d, T* out, int64_t C) {
    for (int64_t r = 0; r < rows; ++r) {
      const float inv = 1.f / l[r];
      for (int64_t e = 0; e < d; ++e) scalar::store(out + r * C + e, ot[e * W + r] * vs[e] * inv);
    }
  }
};

}  // namespace

const Kernels kAvxVnni{
    "avx_vnni", &attn_int8_kernel::block_queries<AvxVnni>, &attn_int8_kernel::tile_bytes<AvxVnni>,
    &attn_int8_kernel::pack_head<AvxVnni>, &attn_int8_kernel::run_block<AvxVnni>};

}  // namespace sdc::cpu::attn_int8
