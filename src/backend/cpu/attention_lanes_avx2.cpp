// attn_lanes_avx2::run_block: the f32 flash-attention query block on 8-lane AVX2 vectors, i.e.
// attention_lanes_kernel.h's algorithm (the one attention_lanes_avx512.cpp runs on 16 lanes) with
// the AVX2 lanes policy below. W = 8 NQ queries in lanes, NQ = 2 (1 for a short last block). The
// register budget is 16 vectors: a QK tile holds RK x NQ accumulators with RK = 12 / NQ keys, the
// NQ query vectors and a broadcast key value; a PV tile likewise RE = 12 / NQ head columns.
#include "backend/cpu/attention_lanes_avx2.h"

#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

#define SDC_LANES_TARGET SDC_AVX2
#include "backend/cpu/attention_lanes_kernel.h"

namespace sdc::cpu::attn_lanes_avx2 {
namespace {

struct Avx2Lanes {
  using V = __m256;
  static constexpr int kLanes = 8, kRegs = 12, kMaxNq = 2;
  static constexpr int max_nq(int64_t) { return kMaxNq; }

  SDC_AVX2_INLINE V zero() { return _mm256_setzero_ps(); }
  SDC_AVX2_INLINE V load(const float* p) { return _mm256_loadu_ps(p); }
  SDC_AVX2_INLINE void store(float* p, V x) { _mm256_storeu_ps(p, x); }
  SDC_AVX2_INLINE V set1(float x) { return _mm256_set1_ps(x); }
  SDC_AVX2_INLINE V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  SDC_AVX2_INLINE V add(V a, V b) { return _mm256_add_ps(a, b); }
  SDC_AVX2_INLINE V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  SDC_AVX2_INLINE V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  SDC_AVX2_INLINE V max(V a, V b) { return _mm256_max_ps(a, b); }
  SDC_AVX2_INLINE V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  SDC_AVX2_INLINE V exp2(V x) { return simd256::exp2(x); }
  SDC_AVX2_INLINE bool above(V x, float t) {
    return _mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_set1_ps(t), _CMP_NLE_UQ)) != 0;
  }
  SDC_AVX2_INLINE void mask_before(float* p, int64_t q, int64_t key, float v) {
    const __m256i qi =
        _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(int(q)));
    _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(int(key)), qi), _mm256_set1_ps(v));
  }
  // Scalar: once per block of queries, against the block's d x Tk x W multiply-adds.
  template <class T>
  static void store_rows(const float* ot, int W, const float* l, int64_t rows, int64_t d, T* out,
                         int64_t C) {
    for (int64_t r = 0; r < rows; ++r) {
      const float inv = 1.f / l[r];
      for (int64_t e = 0; e < d; ++e) scalar::store(out + r * C + e, ot[e * W + r] * inv);
    }
  }
};

}  // namespace

int64_t block_queries(int64_t d) {
  return attn_lanes_kernel::block_queries<Avx2Lanes>(d);
}

size_t tile_floats(int64_t d) {
  return attn_lanes_kernel::tile_floats<Avx2Lanes>(d);
}

void run_block(const attn_lanes::QueryBlock& b) {
  attn_lanes_kernel::run_block<Avx2Lanes>(b);
}

}  // namespace sdc::cpu::attn_lanes_avx2
