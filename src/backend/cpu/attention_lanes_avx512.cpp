// attn_lanes::run_block / run_block_bf16: the flash-attention query block, f32 and bf16.
//
// Queries sit in vector lanes: a block of W = 16 NQ queries is packed transposed, Qt[d][W], and
// every tile below is (rows) x (NQ vectors of queries). Per block of Bk keys:
//   S[Bk][W]  = K_block Qt            (QK tile: RK keys x NQ, d-step reduction, K broadcast)
//   m' = max(m, max_j S), alpha = 2^((m - m') a), P = 2^(S a - m' a) in place, l = l alpha + sum P
//   Ot[d][W] = Ot alpha + V_block^T P  (PV tile: RE head columns x NQ, key-step reduction)
// with a = scale log2 e. Row maxima and sums are per lane, so the softmax has no horizontal
// reductions, and S, P and Ot of a block stay in L1. Output row q = Ot[.][q] / l[q]. After the
// first key block m is kept (no max pass, alpha = 1) unless a block's scores rise far above it
// (exp_block_lazy). NQ is 4 (2 for heads over 64), fewer for a short last block of queries.
//
// bf16: Qt holds pairs of head columns per lane (Qt2[d2][W] words), so the QK tile reduces two
// columns per vdpbf16ps against a broadcast pair of K's row; after the softmax, P is rounded to
// bf16 and interleaved in place into pairs of keys per lane (P2[nk/2][W] words), which the PV
// tile reduces against a broadcast pair (V[2i][e], V[2i+1][e]). Scores, the running max and sum,
// and Ot stay f32.
#include "backend/cpu/attention_lanes_avx512.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "backend/cpu/simd.h"

#define SDC_AVX512BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))

namespace sdc::cpu::attn_lanes {
namespace {

// Score of a causally masked (query, key) pair: finite, so 2^(s a - m a) is 0, never NaN.
constexpr float kMasked = -1e30f;

int nq_of(int64_t d) {
  return d > 64 ? 2 : 4;
}
// Keys per block: a multiple of the QK tile's RK = 24 / NQ (NQ 1, 2 or 4); S is at most 18 KiB.
int64_t bk_of(int64_t d) {
  return d > 64 ? 48 : 72;
}

// The tiles' fixed-count loops carry `#pragma GCC unroll`: without it GCC keeps the __m512
// accumulator arrays on the stack around the reduction loop (~10 % slower).
template <int RK, int NQ>
SDC_AVX512 void qk_tile(const float* qt, const float* k, int64_t d, float* s) {
  constexpr int W = NQ * 16;
  __m512 acc[RK][NQ];
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r)
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t e = 0; e < d; ++e) {
    __m512 q[NQ];
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) q[v] = _mm512_loadu_ps(qt + e * W + v * 16);
#pragma GCC unroll 32
    for (int r = 0; r < RK; ++r) {
      const __m512 b = _mm512_set1_ps(k[r * d + e]);
#pragma GCC unroll 32
      for (int v = 0; v < NQ; ++v) acc[r][v] = _mm512_fmadd_ps(q[v], b, acc[r][v]);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r)
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) _mm512_storeu_ps(s + r * W + v * 16, acc[r][v]);
}

// Ot rows [0, RE) (head columns e0.. of v) += P^T-weighted V rows, after scaling by alpha (none
// when null).
template <int RE, int NQ>
SDC_AVX512 void pv_tile(const float* p, int64_t nk, const float* v, int64_t d, const float* alpha,
                        float* ot) {
  constexpr int W = NQ * 16;
  __m512 acc[RE][NQ];
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) {
    const __m512 al = alpha ? _mm512_loadu_ps(alpha + q * 16) : _mm512_set1_ps(1.f);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r)
      acc[r][q] = alpha ? _mm512_mul_ps(_mm512_loadu_ps(ot + r * W + q * 16), al)
                        : _mm512_loadu_ps(ot + r * W + q * 16);
  }
  for (int64_t j = 0; j < nk; ++j) {
    __m512 pj[NQ];
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) pj[q] = _mm512_loadu_ps(p + j * W + q * 16);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r) {
      const __m512 b = _mm512_set1_ps(v[j * d + r]);
#pragma GCC unroll 32
      for (int q = 0; q < NQ; ++q) acc[r][q] = _mm512_fmadd_ps(pj[q], b, acc[r][q]);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < RE; ++r)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) _mm512_storeu_ps(ot + r * W + q * 16, acc[r][q]);
}

// bf16: S rows of RK keys (k: first row, row stride ks bf16) x NQ vectors of queries.
template <int RK, int NQ>
SDC_AVX512BF16 void qk_tile_bf16(const uint32_t* qt2, const uint16_t* k, int64_t ks, int64_t d2,
                                 float* s) {
  constexpr int W = NQ * 16;
  __m512 acc[RK][NQ];
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r)
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t e = 0; e < d2; ++e) {
    __m512bh q[NQ];
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) q[v] = (__m512bh)_mm512_loadu_si512(qt2 + e * W + v * 16);
#pragma GCC unroll 32
    for (int r = 0; r < RK; ++r) {
      int32_t pair;
      std::memcpy(&pair, k + r * ks + 2 * e, 4);
      const __m512bh b = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 32
      for (int v = 0; v < NQ; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], q[v], b);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r)
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) _mm512_storeu_ps(s + r * W + v * 16, acc[r][v]);
}

// bf16: Ot rows [0, RE) += V^T P over np key pairs (p2: [np][W] words; v2: the pairs' words of
// head column e0, row stride vs), after scaling by alpha (none when null).
template <int RE, int NQ>
SDC_AVX512BF16 void pv_tile_bf16(const uint32_t* p2, int64_t np, const uint32_t* v2, int64_t vs,
                                 const float* alpha, float* ot) {
  constexpr int W = NQ * 16;
  __m512 acc[RE][NQ];
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) {
    const __m512 al = alpha ? _mm512_loadu_ps(alpha + q * 16) : _mm512_set1_ps(1.f);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r)
      acc[r][q] = alpha ? _mm512_mul_ps(_mm512_loadu_ps(ot + r * W + q * 16), al)
                        : _mm512_loadu_ps(ot + r * W + q * 16);
  }
  for (int64_t j = 0; j < np; ++j) {
    __m512bh pj[NQ];
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) pj[q] = (__m512bh)_mm512_loadu_si512(p2 + j * W + q * 16);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r) {
      const __m512bh b = (__m512bh)_mm512_set1_epi32(int32_t(v2[j * vs + r]));
#pragma GCC unroll 32
      for (int q = 0; q < NQ; ++q) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], pj[q], b);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < RE; ++r)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) _mm512_storeu_ps(ot + r * W + q * 16, acc[r][q]);
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

// S rows of nk keys (k: their first row, [nk][d]): whole tiles of 24 / NQ keys, then one narrower.
template <int NQ>
void qk_block(const float* qt, const float* k, int64_t d, int64_t nk, float* s) {
  constexpr int RK = 24 / NQ, W = NQ * 16;
  static constexpr auto tail = qk_table<NQ>(std::make_integer_sequence<int, RK - 1>());
  int64_t j = 0;
  for (; j + RK <= nk; j += RK) qk_tile<RK, NQ>(qt, k + j * d, d, s + j * W);
  if (j < nk) tail[size_t(nk - j - 1)](qt, k + j * d, d, s + j * W);
}

// Ot (all d rows) = Ot alpha + V^T P over nk keys (v: their first row, [nk][d]); alpha may be null.
template <int NQ>
void pv_block(const float* p, int64_t nk, const float* v, int64_t d, const float* alpha,
              float* ot) {
  constexpr int RE = 24 / NQ, W = NQ * 16;
  static constexpr auto tail = pv_table<NQ>(std::make_integer_sequence<int, RE - 1>());
  int64_t e = 0;
  for (; e + RE <= d; e += RE) pv_tile<RE, NQ>(p, nk, v + e, d, alpha, ot + e * W);
  if (e < d) tail[size_t(d - e - 1)](p, nk, v + e, d, alpha, ot + e * W);
}

using QkBf16Fn = void (*)(const uint32_t*, const uint16_t*, int64_t, int64_t, float*);
using PvBf16Fn = void (*)(const uint32_t*, int64_t, const uint32_t*, int64_t, const float*, float*);

template <int NQ, int... R>
constexpr std::array<QkBf16Fn, sizeof...(R)> qk_bf16_table(std::integer_sequence<int, R...>) {
  return {&qk_tile_bf16<R + 1, NQ>...};
}
template <int NQ, int... R>
constexpr std::array<PvBf16Fn, sizeof...(R)> pv_bf16_table(std::integer_sequence<int, R...>) {
  return {&pv_tile_bf16<R + 1, NQ>...};
}

template <int NQ>
void qk_block_bf16(const uint32_t* qt2, const uint16_t* k, int64_t d2, int64_t nk, float* s) {
  constexpr int RK = 24 / NQ, W = NQ * 16;
  static constexpr auto tail = qk_bf16_table<NQ>(std::make_integer_sequence<int, RK - 1>());
  const int64_t ks = 2 * d2;
  int64_t j = 0;
  for (; j + RK <= nk; j += RK) qk_tile_bf16<RK, NQ>(qt2, k + j * ks, ks, d2, s + j * W);
  if (j < nk) tail[size_t(nk - j - 1)](qt2, k + j * ks, ks, d2, s + j * W);
}

template <int NQ>
void pv_block_bf16(const uint32_t* p2, int64_t np, const uint32_t* v2, int64_t vs, int64_t d,
                   const float* alpha, float* ot) {
  constexpr int RE = 24 / NQ, W = NQ * 16;
  static constexpr auto tail = pv_bf16_table<NQ>(std::make_integer_sequence<int, RE - 1>());
  int64_t e = 0;
  for (; e + RE <= d; e += RE) pv_tile_bf16<RE, NQ>(p2, np, v2 + e, vs, alpha, ot + e * W);
  if (e < d) tail[size_t(d - e - 1)](p2, np, v2 + e, vs, alpha, ot + e * W);
}

// P (nk rows of W f32, in s) -> bf16 pairs of keys per lane, in place: word (i, lane) =
// (P[2i][lane], P[2i+1][lane]), the second 0 past nk. Pair i is written over row i, which pairs
// before it have consumed (row 0: read before written); returns the number of pairs.
template <int NQ>
SDC_AVX512BF16 int64_t pair_keys(float* s, int64_t nk) {
  constexpr int W = NQ * 16;
  alignas(64) static constexpr uint16_t kInterleave[32] = {
      0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
      8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  const int64_t np = (nk + 1) / 2;
  for (int64_t i = 0; i < np; ++i)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) {
      const __m512 lo = _mm512_loadu_ps(s + 2 * i * W + q * 16);
      const __m512 hi =
          2 * i + 1 < nk ? _mm512_loadu_ps(s + (2 * i + 1) * W + q * 16) : _mm512_setzero_ps();
      const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // lo in words 0..15
      _mm512_storeu_si512(s + i * W + q * 16, _mm512_permutexvar_epi16(interleave, both));
    }
  return np;
}

// Keys after a lane's query get kMasked (rows j0.. of S; query of lane i is q0 + i).
template <int NQ>
SDC_AVX512 void mask_causal(float* s, int64_t nk, int64_t j0, int64_t q0) {
  constexpr int W = NQ * 16;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 masked = _mm512_set1_ps(kMasked);
  for (int64_t j = 0; j < nk; ++j)
    for (int q = 0; q < NQ; ++q) {
      const __m512i qi = _mm512_add_epi32(lane, _mm512_set1_epi32(int(q0 + q * 16)));
      const __mmask16 m = _mm512_cmplt_epi32_mask(qi, _mm512_set1_epi32(int(j0 + j)));
      _mm512_mask_storeu_ps(s + j * W + q * 16, m, masked);
    }
}

// The online softmax step of one key block: S -> P in place, running max m and sum l updated,
// alpha = the factor that brings earlier sums (and Ot) to the new max.
template <int NQ>
SDC_AVX512 void softmax_block(float* s, int64_t nk, float a, float* m, float* l, float* alpha) {
  constexpr int W = NQ * 16;
  __m512 mx[NQ], sum[NQ], shift[NQ];
  for (int q = 0; q < NQ; ++q) mx[q] = _mm512_loadu_ps(m + q * 16);
  for (int64_t j = 0; j < nk; ++j)
    for (int q = 0; q < NQ; ++q) mx[q] = _mm512_max_ps(mx[q], _mm512_loadu_ps(s + j * W + q * 16));
  const __m512 va = _mm512_set1_ps(a);
  for (int q = 0; q < NQ; ++q) {
    const __m512 old = _mm512_loadu_ps(m + q * 16);
    _mm512_storeu_ps(alpha + q * 16, simd::exp2(_mm512_mul_ps(_mm512_sub_ps(old, mx[q]), va)));
    _mm512_storeu_ps(m + q * 16, mx[q]);
    shift[q] = _mm512_mul_ps(mx[q], _mm512_set1_ps(-a));
    sum[q] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < nk; ++j)
    for (int q = 0; q < NQ; ++q) {
      float* sj = s + j * W + q * 16;
      const __m512 e = simd::exp2(_mm512_fmadd_ps(_mm512_loadu_ps(sj), va, shift[q]));
      sum[q] = _mm512_add_ps(sum[q], e);
      _mm512_storeu_ps(sj, e);
    }
  for (int q = 0; q < NQ; ++q) {
    const __m512 al = _mm512_loadu_ps(alpha + q * 16);
    _mm512_storeu_ps(l + q * 16, _mm512_fmadd_ps(_mm512_loadu_ps(l + q * 16), al, sum[q]));
  }
}

// The common case of a key block: P = 2^(S a - m a) with the running max m kept. Scores may exceed
// m by a little (P above 1 is harmless in f32); returns false, with S destroyed, when a lane's
// block sum passes 2^20, i.e. some score rose too far above m: the caller redoes the block with
// softmax_block. Saves the max pass and the rescaling of Ot and l.
template <int NQ>
SDC_AVX512 bool exp_block_lazy(float* s, int64_t nk, float a, const float* m, float* l) {
  constexpr int W = NQ * 16;
  const __m512 va = _mm512_set1_ps(a);
  __m512 sum[NQ], shift[NQ];
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) {
    shift[q] = _mm512_mul_ps(_mm512_loadu_ps(m + q * 16), _mm512_set1_ps(-a));
    sum[q] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < nk; ++j)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) {
      float* sj = s + j * W + q * 16;
      const __m512 e = simd::exp2(_mm512_fmadd_ps(_mm512_loadu_ps(sj), va, shift[q]));
      sum[q] = _mm512_add_ps(sum[q], e);
      _mm512_storeu_ps(sj, e);
    }
  __mmask16 over = 0;
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q)
    over |= _mm512_cmp_ps_mask(sum[q], _mm512_set1_ps(1048576.f), _CMP_NLE_UQ);
  if (over) return false;
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q)
    _mm512_storeu_ps(l + q * 16, _mm512_add_ps(_mm512_loadu_ps(l + q * 16), sum[q]));
  return true;
}

// Output rows [0, rows) = columns of Ot (row stride W) divided by their sums l, gathered 16 head
// columns at a time.
template <class T>
SDC_AVX512 void store_rows(const float* ot, int W, const float* l, int64_t rows, int64_t d, T* out,
                           int64_t C) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(W));
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 inv = _mm512_set1_ps(1.f / l[r]);
    for (int64_t e = 0; e < d; e += 16) {
      const __mmask16 m = simd::tail_mask(d - e);
      const __m512 o = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, ot + e * W + r, 4);
      simd::store(out + r * C + e, _mm512_mul_ps(o, inv), m);
    }
  }
}

template <int NQ>
void run(const QueryBlock& b) {
  constexpr int W = NQ * 16;
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
  const float a = b.scale * 1.44269504088896341f;
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
    if (j0 > 0 && exp_block_lazy<NQ>(s, nk, a, m, l)) {
      pv_block<NQ>(s, nk, b.vp + j0 * d, d, nullptr, ot);
      continue;
    }
    if (j0 > 0) scores(j0, nk);
    softmax_block<NQ>(s, nk, a, m, l, alpha);
    pv_block<NQ>(s, nk, b.vp + j0 * d, d, alpha, ot);
  }
  if (b.out)
    store_rows(ot, W, l, b.rows, d, b.out, b.C);
  else
    store_rows(ot, W, l, b.rows, d, b.out_bf16, b.C);
}

template <int NQ>
void run_bf16(const QueryBlockBf16& b) {
  constexpr int W = NQ * 16;
  const int64_t d = b.d, d2 = (d + 1) / 2, bk = bk_of(d);
  auto* qt2 = reinterpret_cast<uint32_t*>(b.tile);
  float* s = b.tile + d2 * W;
  float* ot = s + bk * W;
  float* m = ot + d * W;
  float* l = m + W;
  float* alpha = l + W;
  std::fill(qt2, qt2 + d2 * W, 0u);
  for (int64_t r = 0; r < b.rows; ++r)
    for (int64_t e = 0; e < d; ++e)
      qt2[(e / 2) * W + r] |= uint32_t(b.q[r * b.C + e]) << (16 * (e & 1));
  std::fill(ot, ot + d * W, 0.f);
  std::fill(m, m + W, kMasked);
  std::fill(l, l + W, 0.f);
  const float a = b.scale * 1.44269504088896341f;
  const int64_t tk = b.causal ? std::min(b.Tk, b.q0 + b.rows) : b.Tk;
  auto scores = [&](int64_t j0, int64_t nk) {
    qk_block_bf16<NQ>(qt2, b.kp + j0 * 2 * d2, d2, nk, s);
    if (b.causal && j0 + nk - 1 > b.q0) mask_causal<NQ>(s, nk, j0, b.q0);
  };
  auto pv = [&](int64_t j0, int64_t nk, const float* al) {
    const int64_t np = pair_keys<NQ>(s, nk);  // bk is even: j0 starts a pair
    pv_block_bf16<NQ>(reinterpret_cast<const uint32_t*>(s), np, b.vp + (j0 / 2) * b.vs, b.vs, d, al,
                      ot);
  };
  for (int64_t j0 = 0; j0 < tk; j0 += bk) {
    const int64_t nk = std::min(bk, tk - j0);
    scores(j0, nk);
    if (j0 > 0 && exp_block_lazy<NQ>(s, nk, a, m, l)) {
      pv(j0, nk, nullptr);
      continue;
    }
    if (j0 > 0) scores(j0, nk);
    softmax_block<NQ>(s, nk, a, m, l, alpha);
    pv(j0, nk, alpha);
  }
  if (b.out)
    store_rows(ot, W, l, b.rows, d, b.out, b.C);
  else
    store_rows(ot, W, l, b.rows, d, b.out_bf16, b.C);
}

}  // namespace

int64_t block_queries(int64_t d) {
  return 16 * nq_of(d);
}

size_t tile_floats(int64_t d) {
  const int64_t w = block_queries(d);
  return size_t(d * w * 2 + bk_of(d) * w + 3 * w);  // f32's Qt and Ot cover bf16's Qt2 and Ot
}

void run_block(const QueryBlock& b) {
  // A short last block of queries takes narrower tiles rather than padding them (77 tokens of
  // the text encoder = 64 + 13).
  const int64_t vecs = std::min<int64_t>(nq_of(b.d), (b.rows + 15) / 16);
  if (vecs > 2)
    run<4>(b);
  else if (vecs == 2)
    run<2>(b);
  else
    run<1>(b);
}

void run_block_bf16(const QueryBlockBf16& b) {
  const int64_t vecs = std::min<int64_t>(nq_of(b.d), (b.rows + 15) / 16);
  if (vecs > 2)
    run_bf16<4>(b);
  else if (vecs == 2)
    run_bf16<2>(b);
  else
    run_bf16<1>(b);
}

}  // namespace sdc::cpu::attn_lanes
