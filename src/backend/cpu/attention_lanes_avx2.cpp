// attn_lanes_avx2::run_block: the f32 flash-attention query block on 8-lane AVX2 vectors.
//
// As attention_lanes_avx512.cpp, with W = 8 NQ queries in lanes (NQ = 2, 1 for a short last
// block): per key block S[Bk][W] = K_block Qt, then the online softmax in base e (simd256::exp:
// P = exp(S scale - m scale)), then Ot[d][W] = Ot alpha + V_block^T P. The register budget is 16
// vectors: a QK tile holds RK x NQ accumulators with RK = 12 / NQ keys, the NQ query vectors and
// a broadcast key value; a PV tile likewise RE = 12 / NQ head columns.
#include "backend/cpu/attention_lanes_avx2.h"

#include <algorithm>
#include <array>
#include <utility>

#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

namespace sdc::cpu::attn_lanes_avx2 {
namespace {

using attn_lanes::QueryBlock;

// Score of a causally masked (query, key) pair: finite, so its exponential is 0, never NaN.
constexpr float kMasked = -1e30f;
constexpr int kNq = 2;

// Keys per block: a multiple of the QK tile's 6 and 12 keys; S at most 4.5 KiB.
int64_t bk_of(int64_t d) {
  return d > 64 ? 48 : 72;
}

template <int RK, int NQ>
SDC_AVX2 void qk_tile(const float* qt, const float* k, int64_t d, float* s) {
  constexpr int W = NQ * 8;
  __m256 acc[RK][NQ];
#pragma GCC unroll 16
  for (int r = 0; r < RK; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NQ; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t e = 0; e < d; ++e) {
    __m256 q[NQ];
#pragma GCC unroll 16
    for (int v = 0; v < NQ; ++v) q[v] = _mm256_loadu_ps(qt + e * W + v * 8);
#pragma GCC unroll 16
    for (int r = 0; r < RK; ++r) {
      const __m256 b = _mm256_broadcast_ss(k + r * d + e);
#pragma GCC unroll 16
      for (int v = 0; v < NQ; ++v) acc[r][v] = _mm256_fmadd_ps(q[v], b, acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RK; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NQ; ++v) _mm256_storeu_ps(s + r * W + v * 8, acc[r][v]);
}

// Ot rows [0, RE) (head columns of v from its first) += V^T P over nk keys, after scaling by
// alpha (none when null).
template <int RE, int NQ>
SDC_AVX2 void pv_tile(const float* p, int64_t nk, const float* v, int64_t d, const float* alpha,
                      float* ot) {
  constexpr int W = NQ * 8;
  __m256 acc[RE][NQ];
#pragma GCC unroll 16
  for (int q = 0; q < NQ; ++q) {
    const __m256 al = alpha ? _mm256_loadu_ps(alpha + q * 8) : _mm256_set1_ps(1.f);
#pragma GCC unroll 16
    for (int r = 0; r < RE; ++r) acc[r][q] = _mm256_mul_ps(_mm256_loadu_ps(ot + r * W + q * 8), al);
  }
  for (int64_t j = 0; j < nk; ++j) {
    __m256 pj[NQ];
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q) pj[q] = _mm256_loadu_ps(p + j * W + q * 8);
#pragma GCC unroll 16
    for (int r = 0; r < RE; ++r) {
      const __m256 b = _mm256_broadcast_ss(v + j * d + r);
#pragma GCC unroll 16
      for (int q = 0; q < NQ; ++q) acc[r][q] = _mm256_fmadd_ps(pj[q], b, acc[r][q]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RE; ++r)
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q) _mm256_storeu_ps(ot + r * W + q * 8, acc[r][q]);
}

using QkFn = void (*)(const float*, const float*, int64_t, float*);
using PvFn = void (*)(const float*, int64_t, const float*, int64_t, const float*, float*);

template <int NQ, int... R>
constexpr std::array<QkFn, sizeof...(R)> qk_table(std::integer_sequence<int, R...>) {
  return {&qk_tile<R + 1, NQ>...};
}
template <int NQ, int... R>
constexpr std::array<PvFn, sizeof...(R)> pv_table(std::integer_sequence<int, R...>) {
  return {&pv_tile<R + 1, NQ>...};
}

// S rows of nk keys: whole tiles of 12 / NQ keys, then one narrower.
template <int NQ>
void qk_block(const float* qt, const float* k, int64_t d, int64_t nk, float* s) {
  constexpr int RK = 12 / NQ, W = NQ * 8;
  static constexpr auto tail = qk_table<NQ>(std::make_integer_sequence<int, RK - 1>());
  int64_t j = 0;
  for (; j + RK <= nk; j += RK) qk_tile<RK, NQ>(qt, k + j * d, d, s + j * W);
  if (j < nk) tail[size_t(nk - j - 1)](qt, k + j * d, d, s + j * W);
}

// Ot (all d rows) = Ot alpha + V^T P over nk keys; alpha may be null.
template <int NQ>
void pv_block(const float* p, int64_t nk, const float* v, int64_t d, const float* alpha,
              float* ot) {
  constexpr int RE = 12 / NQ, W = NQ * 8;
  static constexpr auto tail = pv_table<NQ>(std::make_integer_sequence<int, RE - 1>());
  int64_t e = 0;
  for (; e + RE <= d; e += RE) pv_tile<RE, NQ>(p, nk, v + e, d, alpha, ot + e * W);
  if (e < d) tail[size_t(d - e - 1)](p, nk, v + e, d, alpha, ot + e * W);
}

// Keys after a lane's query get kMasked (rows j0.. of S; the query of lane i is q0 + i).
template <int NQ>
SDC_AVX2 void mask_causal(float* s, int64_t nk, int64_t j0, int64_t q0) {
  constexpr int W = NQ * 8;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 masked = _mm256_set1_ps(kMasked);
  for (int64_t j = 0; j < nk; ++j)
    for (int q = 0; q < NQ; ++q) {
      const __m256i qi = _mm256_add_epi32(lane, _mm256_set1_epi32(int(q0 + q * 8)));
      const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(j0 + j)), qi);
      _mm256_maskstore_ps(s + j * W + q * 8, m, masked);
    }
}

// The online softmax step of one key block: S -> P in place, running max m and sum l updated,
// alpha = the factor that brings earlier sums (and Ot) to the new max.
template <int NQ>
SDC_AVX2 void softmax_block(float* s, int64_t nk, float scale, float* m, float* l, float* alpha) {
  constexpr int W = NQ * 8;
  __m256 mx[NQ], sum[NQ], shift[NQ];
  for (int q = 0; q < NQ; ++q) mx[q] = _mm256_loadu_ps(m + q * 8);
  for (int64_t j = 0; j < nk; ++j)
    for (int q = 0; q < NQ; ++q) mx[q] = _mm256_max_ps(mx[q], _mm256_loadu_ps(s + j * W + q * 8));
  const __m256 vs = _mm256_set1_ps(scale);
  for (int q = 0; q < NQ; ++q) {
    const __m256 old = _mm256_loadu_ps(m + q * 8);
    _mm256_storeu_ps(alpha + q * 8, simd256::exp(_mm256_mul_ps(_mm256_sub_ps(old, mx[q]), vs)));
    _mm256_storeu_ps(m + q * 8, mx[q]);
    shift[q] = _mm256_mul_ps(mx[q], _mm256_set1_ps(-scale));
    sum[q] = _mm256_setzero_ps();
  }
  for (int64_t j = 0; j < nk; ++j)
    for (int q = 0; q < NQ; ++q) {
      float* sj = s + j * W + q * 8;
      const __m256 e = simd256::exp(_mm256_fmadd_ps(_mm256_loadu_ps(sj), vs, shift[q]));
      sum[q] = _mm256_add_ps(sum[q], e);
      _mm256_storeu_ps(sj, e);
    }
  for (int q = 0; q < NQ; ++q) {
    const __m256 al = _mm256_loadu_ps(alpha + q * 8);
    _mm256_storeu_ps(l + q * 8, _mm256_fmadd_ps(_mm256_loadu_ps(l + q * 8), al, sum[q]));
  }
}

// A key block with the running max m kept (no max pass, no rescaling of Ot and l); false, with S
// destroyed, when a lane's block sum passes 2^20 (a score rose too far above m): the caller redoes
// the block with softmax_block.
template <int NQ>
SDC_AVX2 bool exp_block_lazy(float* s, int64_t nk, float scale, const float* m, float* l) {
  constexpr int W = NQ * 8;
  const __m256 vs = _mm256_set1_ps(scale);
  __m256 sum[NQ], shift[NQ];
#pragma GCC unroll 16
  for (int q = 0; q < NQ; ++q) {
    shift[q] = _mm256_mul_ps(_mm256_loadu_ps(m + q * 8), _mm256_set1_ps(-scale));
    sum[q] = _mm256_setzero_ps();
  }
  for (int64_t j = 0; j < nk; ++j)
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q) {
      float* sj = s + j * W + q * 8;
      const __m256 e = simd256::exp(_mm256_fmadd_ps(_mm256_loadu_ps(sj), vs, shift[q]));
      sum[q] = _mm256_add_ps(sum[q], e);
      _mm256_storeu_ps(sj, e);
    }
  int over = 0;
#pragma GCC unroll 16
  for (int q = 0; q < NQ; ++q)
    over |= _mm256_movemask_ps(_mm256_cmp_ps(sum[q], _mm256_set1_ps(1048576.f), _CMP_NLE_UQ));
  if (over) return false;
#pragma GCC unroll 16
  for (int q = 0; q < NQ; ++q)
    _mm256_storeu_ps(l + q * 8, _mm256_add_ps(_mm256_loadu_ps(l + q * 8), sum[q]));
  return true;
}

// Output rows [0, rows) = columns of Ot (row stride W) divided by their sums l.
template <class T>
void store_rows(const float* ot, int W, const float* l, int64_t rows, int64_t d, T* out,
                int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = 1.f / l[r];
    for (int64_t e = 0; e < d; ++e) scalar::store(out + r * C + e, ot[e * W + r] * inv);
  }
}

template <int NQ>
void run(const QueryBlock& b) {
  constexpr int W = NQ * 8;
  const int64_t d = b.d, bk = bk_of(d);
  float* qt = b.tile;
  float* s = qt + d * W;
  float* ot = s + bk * W;
  float* m = ot + d * W;
  float* l = m + W;
  float* alpha = l + W;
  std::fill(qt, qt + d * W, 0.f);
  for (int64_t r = 0; r < b.rows; ++r)
    for (int64_t e = 0; e < d; ++e) qt[e * W + r] = b.q[r * b.C + e];
  std::fill(ot, ot + d * W, 0.f);
  std::fill(m, m + W, kMasked);
  std::fill(l, l + W, 0.f);
  // Causal: keys past the block's last query are masked for every lane.
  const int64_t tk = b.causal ? std::min(b.Tk, b.q0 + b.rows) : b.Tk;
  auto scores = [&](int64_t j0, int64_t nk) {
    qk_block<NQ>(qt, b.kp + j0 * d, d, nk, s);
    if (b.causal && j0 + nk - 1 > b.q0) mask_causal<NQ>(s, nk, j0, b.q0);
  };
  for (int64_t j0 = 0; j0 < tk; j0 += bk) {
    const int64_t nk = std::min(bk, tk - j0);
    scores(j0, nk);
    // The first block sets the max; later ones keep it unless their scores rise too far.
    if (j0 > 0 && exp_block_lazy<NQ>(s, nk, b.scale, m, l)) {
      pv_block<NQ>(s, nk, b.vp + j0 * d, d, nullptr, ot);
      continue;
    }
    if (j0 > 0) scores(j0, nk);
    softmax_block<NQ>(s, nk, b.scale, m, l, alpha);
    pv_block<NQ>(s, nk, b.vp + j0 * d, d, alpha, ot);
  }
  if (b.out)
    store_rows(ot, W, l, b.rows, d, b.out, b.C);
  else
    store_rows(ot, W, l, b.rows, d, b.out_bf16, b.C);
}

}  // namespace

int64_t block_queries(int64_t) {
  return 8 * kNq;
}

size_t tile_floats(int64_t d) {
  const int64_t w = block_queries(d);
  return size_t(2 * d * w + bk_of(d) * w + 3 * w);  // Qt, Ot, S, m, l, alpha
}

void run_block(const QueryBlock& b) {
  if (b.rows > 8)
    run<2>(b);
  else
    run<1>(b);
}

}  // namespace sdc::cpu::attn_lanes_avx2
