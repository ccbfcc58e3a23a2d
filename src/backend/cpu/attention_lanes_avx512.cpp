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
// f32: attention_lanes_kernel.h's algorithm (shared with the AVX2 kernel) with the AVX-512 lanes
// policy below: RK = RE = 24 / NQ.
//
// bf16: Qt holds pairs of head columns per lane (Qt2[d2][W] words), so the QK tile reduces two
// columns per vdpbf16ps against a broadcast pair of K's row; after the softmax, P is rounded to
// bf16 and interleaved in place into pairs of keys per lane (P2[nk/2][W] words), which the PV
// tile reduces against a broadcast pair (V[2i][e], V[2i+1][e]). Scores, the running max and sum,
// and Ot stay f32: its own tiles (below, AVX512-BF16), the shared kernel's masking, softmax, key
// block loop and output.
#include "backend/cpu/attention_lanes_avx512.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "backend/cpu/prefetch.h"
#include "backend/cpu/simd.h"

#define SDC_LANES_TARGET SDC_AVX512
#include "backend/cpu/attention_lanes_kernel.h"

#define SDC_AVX512BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))

namespace sdc::cpu::attn_lanes {
namespace {

struct Avx512Lanes {
  using V = __m512;
  // 24 accumulators + NQ query (or P) vectors + a broadcast of the 32 registers.
  static constexpr int kLanes = 16, kRegs = 24, kMaxNq = 4;
  // Heads over 64 take 32 queries, so that Qt and Ot stay in L1.
  static constexpr int max_nq(int64_t d) { return d > 64 ? 2 : 4; }

  SDC_AVX512_INLINE V zero() { return _mm512_setzero_ps(); }
  SDC_AVX512_INLINE V load(const float* p) { return _mm512_loadu_ps(p); }
  SDC_AVX512_INLINE void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  SDC_AVX512_INLINE V set1(float x) { return _mm512_set1_ps(x); }
  SDC_AVX512_INLINE V bcast(const float* p) { return _mm512_set1_ps(*p); }
  SDC_AVX512_INLINE V add(V a, V b) { return _mm512_add_ps(a, b); }
  SDC_AVX512_INLINE V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  SDC_AVX512_INLINE V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  SDC_AVX512_INLINE V max(V a, V b) { return _mm512_max_ps(a, b); }
  SDC_AVX512_INLINE V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  SDC_AVX512_INLINE V exp2(V x) { return simd::exp2(x); }
  SDC_AVX512_INLINE bool above(V x, float t) {
    return _mm512_cmp_ps_mask(x, _mm512_set1_ps(t), _CMP_NLE_UQ) != 0;
  }
  SDC_AVX512_INLINE void mask_before(float* p, int64_t q, int64_t key, float v) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i qi = _mm512_add_epi32(lane, _mm512_set1_epi32(int(q)));
    _mm512_mask_storeu_ps(p, _mm512_cmplt_epi32_mask(qi, _mm512_set1_epi32(int(key))),
                          _mm512_set1_ps(v));
  }
  // 16 head columns of a row at a time, gathered from Ot's column.
  template <class T>
  SDC_AVX512 static void store_rows(const float* ot, int W, const float* l, int64_t rows, int64_t d,
                                    T* out, int64_t C) {
    simd::store_columns_as_rows(ot, W, l, static_cast<const float*>(nullptr), rows, d, out, C);
  }
};

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
SDC_AVX512BF16 void qk_block_bf16(const uint32_t* qt2, const uint16_t* k, int64_t d2, int64_t nk,
                                  float* s) {
  constexpr int RK = Avx512Lanes::kRegs / NQ, W = NQ * 16;
  static constexpr auto tail = qk_bf16_table<NQ>(std::make_integer_sequence<int, RK - 1>());
  const int64_t ks = 2 * d2;
  int64_t j = 0;
  for (; j + RK <= nk; j += RK) qk_tile_bf16<RK, NQ>(qt2, k + j * ks, ks, d2, s + j * W);
  if (j < nk) tail[size_t(nk - j - 1)](qt2, k + j * ks, ks, d2, s + j * W);
}

template <int NQ>
SDC_AVX512BF16 void pv_block_bf16(const uint32_t* p2, int64_t np, const uint32_t* v2, int64_t vs,
                                  int64_t d, const float* alpha, float* ot) {
  constexpr int RE = Avx512Lanes::kRegs / NQ, W = NQ * 16;
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

// The bf16 tiles of attn_lanes_kernel::attend: S = K Qt2, then P paired and Ot += V^T P2.
template <int NQ>
struct Bf16Tiles {
  const uint32_t* qt2;
  const uint16_t* kp;
  const uint32_t* vp;
  int64_t vs, d2, d;
  float *s, *ot;
  SDC_AVX512BF16 void scores(int64_t j0, int64_t nk) const {
    qk_block_bf16<NQ>(qt2, kp + j0 * 2 * d2, d2, nk, s);
  }
  SDC_AVX512BF16 void pv(int64_t j0, int64_t nk, const float* alpha) const {
    const int64_t np = pair_keys<NQ>(s, nk);  // bk is even: j0 starts a pair
    pv_block_bf16<NQ>(reinterpret_cast<const uint32_t*>(s), np, vp + (j0 / 2) * vs, vs, d, alpha,
                      ot);
  }
};

// Qt2 [d2][W] words: word (e2, r) = query row r's bf16 pair (2 e2, 2 e2 + 1), 0 past d and for
// the rows past the block's.
template <int NQ>
SDC_AVX512BF16 void pack_queries(const QueryBlockBf16& b, uint32_t* qt2) {
  constexpr int W = NQ * 16;
  const int64_t d = b.d, d2 = (d + 1) / 2;
  // The rows' misses one after the other, with the pairs built an element at a time, were 5.5 %
  // of the level-1 kernel on a Zen 4.
  prefetch_rows(b.q, b.rows, size_t(b.C) * sizeof(uint16_t), size_t(d) * sizeof(uint16_t));
  for (int64_t r = 0; r < W; ++r) {
    if (r >= b.rows) {
      for (int64_t e2 = 0; e2 < d2; ++e2) qt2[e2 * W + r] = 0u;
      continue;
    }
    const uint16_t* q = b.q + r * b.C;
    for (int64_t e2 = 0; e2 < d / 2; ++e2) {
      uint32_t pair;  // (q[2 e2], q[2 e2 + 1]): the first in the low half
      std::memcpy(&pair, q + 2 * e2, sizeof(pair));
      qt2[e2 * W + r] = pair;
    }
    if (d & 1) qt2[(d2 - 1) * W + r] = q[d - 1];
  }
}

template <int NQ>
SDC_AVX512BF16 void run_bf16(const QueryBlockBf16& b) {
  constexpr int W = NQ * 16;
  const int64_t d = b.d, d2 = (d + 1) / 2;
  auto* qt2 = reinterpret_cast<uint32_t*>(b.tile);
  pack_queries<NQ>(b, qt2);
  const attn_lanes_kernel::Scratch x = attn_lanes_kernel::scratch(b.tile + d2 * W, d, W);
  attn_lanes_kernel::attend<Avx512Lanes, NQ>(
      b, x, Bf16Tiles<NQ>{qt2, b.kp, b.vp, b.vs, d2, d, x.s, x.ot});
}

}  // namespace

int64_t block_queries(int64_t d) {
  return attn_lanes_kernel::block_queries<Avx512Lanes>(d);
}

size_t tile_floats(int64_t d) {
  return attn_lanes_kernel::tile_floats<Avx512Lanes>(d);  // Qt and Ot cover bf16's Qt2 and Ot
}

void run_block(const QueryBlock& b) {
  attn_lanes_kernel::run_block<Avx512Lanes>(b);
}

void run_block_bf16(const QueryBlockBf16& b) {
  switch (attn_lanes_kernel::block_nq<Avx512Lanes>(b.d, b.rows)) {
    case 4:
      run_bf16<4>(b);
      break;
    case 2:
      run_bf16<2>(b);
      break;
    default:
      run_bf16<1>(b);
  }
}

}  // namespace sdc::cpu::attn_lanes
