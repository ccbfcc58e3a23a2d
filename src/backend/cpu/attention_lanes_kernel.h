// The f32 queries-in-lanes FlashAttention block (attention_lanes_avx512.h has the scheme) written
// once for any vector width: the QK and PV register tiles with their tail tables, causal masking,
// the online softmax in base 2, the key-block loop and the bodies of the entry points. Included
// only by attention_lanes_avx512.cpp (16 lanes) and attention_lanes_avx2.cpp (8 lanes), which
// supply a lanes policy (the vector operations, below) and define SDC_LANES_TARGET, their target
// attribute, before including it.
//
// The ISA comes from function attributes, not per-file flags: the binary runs on AVX2-only CPUs,
// and a file built with -mavx512f could leave AVX-512 code in COMDAT template or inline copies the
// linker might pick for other callers. Everything here lives in an anonymous namespace, so each
// including file compiles its own copies, for its own target, and none is shared between them.
//
// A lanes policy P has:
//   V, kLanes               the f32 vector type and its lane count
//   kRegs                   accumulators of a register tile: RK = kRegs / NQ keys (QK) or head
//                           columns (PV), leaving registers for the NQ query or P vectors and a
//                           broadcast
//   kMaxNq, max_nq(d)       query vectors per block at most, and for heads of d
//   zero, load, store, set1, bcast (of *p), add, sub, mul, max, fma(a, b, c) = a b + c
//   exp2(x)                 2^x at f32 accuracy, 0 for kMasked's very negative arguments
//   above(x, t)             whether some lane of x is not <= t
//   mask_before(p, q, k, v) lanes i of the vector at p whose query q + i precedes key k get v
//   store_rows(ot, W, l, rows, d, out, C)  output rows r = column r of Ot (row stride W) / l[r],
//                           to f32 or bf16 rows of stride C
// Its vector operations are always_inline functions with the same target as SDC_LANES_TARGET.
#pragma once

#ifndef SDC_LANES_TARGET
#error "attention_lanes_kernel.h: define SDC_LANES_TARGET (the including file's target) first"
#endif

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "backend/cpu/attention_lanes_avx512.h"  // attn_lanes::QueryBlock

namespace sdc::cpu::attn_lanes_kernel {
namespace {

using attn_lanes::QueryBlock;

// Score of a causally masked (query, key) pair: finite, so 2^(s a - m a) is 0, never NaN.
constexpr float kMasked = -1e30f;
constexpr float kLog2e = 1.44269504088896341f;

// Keys per block: a multiple of every QK tile's RK (24, 12 or 6 keys); S [bk][W] is at most 18 KiB
// at 64 queries, 4.5 KiB at 16.
constexpr int64_t bk_of(int64_t d) {
  return d > 64 ? 48 : 72;
}

// The tiles' fixed-count loops carry `#pragma GCC unroll`: without it GCC keeps the accumulator
// arrays on the stack around the reduction loop (~10 % slower).

// S rows [0, RK) (keys of k, row stride d) = K Qt over the d head columns: RK x NQ accumulators,
// one broadcast K value against NQ vectors of queries per step.
template <class P, int RK, int NQ>
SDC_LANES_TARGET void qk_tile(const float* qt, const float* k, int64_t d, float* s) {
  constexpr int L = P::kLanes, W = NQ * L;
  typename P::V acc[RK][NQ];
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r)
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) acc[r][v] = P::zero();
  for (int64_t e = 0; e < d; ++e) {
    typename P::V q[NQ];
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) q[v] = P::load(qt + e * W + v * L);
#pragma GCC unroll 32
    for (int r = 0; r < RK; ++r) {
      const typename P::V b = P::bcast(k + r * d + e);
#pragma GCC unroll 32
      for (int v = 0; v < NQ; ++v) acc[r][v] = P::fma(q[v], b, acc[r][v]);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r)
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) P::store(s + r * W + v * L, acc[r][v]);
}

// Ot rows [0, RE) (head columns of v from its first, row stride d) = Ot alpha + V^T P over nk
// keys; alpha null: no rescaling.
template <class P, int RE, int NQ>
SDC_LANES_TARGET void pv_tile(const float* p, int64_t nk, const float* v, int64_t d,
                              const float* alpha, float* ot) {
  constexpr int L = P::kLanes, W = NQ * L;
  typename P::V acc[RE][NQ];
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) {
    const typename P::V al = alpha ? P::load(alpha + q * L) : P::set1(1.f);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r)
      acc[r][q] = alpha ? P::mul(P::load(ot + r * W + q * L), al) : P::load(ot + r * W + q * L);
  }
  for (int64_t j = 0; j < nk; ++j) {
    typename P::V pj[NQ];
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) pj[q] = P::load(p + j * W + q * L);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r) {
      const typename P::V b = P::bcast(v + j * d + r);
#pragma GCC unroll 32
      for (int q = 0; q < NQ; ++q) acc[r][q] = P::fma(pj[q], b, acc[r][q]);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < RE; ++r)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) P::store(ot + r * W + q * L, acc[r][q]);
}

// The narrower tiles of a block's last keys (QK) or head columns (PV), by count - 1.
using QkFn = void (*)(const float*, const float*, int64_t, float*);
using PvFn = void (*)(const float*, int64_t, const float*, int64_t, const float*, float*);

template <class P, int NQ, int... R>
constexpr std::array<QkFn, sizeof...(R)> qk_table(std::integer_sequence<int, R...>) {
  return {&qk_tile<P, R + 1, NQ>...};
}
template <class P, int NQ, int... R>
constexpr std::array<PvFn, sizeof...(R)> pv_table(std::integer_sequence<int, R...>) {
  return {&pv_tile<P, R + 1, NQ>...};
}

// S rows of nk keys (k: their first row, [nk][d]): whole tiles of RK keys, then one narrower.
template <class P, int NQ>
SDC_LANES_TARGET void qk_block(const float* qt, const float* k, int64_t d, int64_t nk, float* s) {
  constexpr int RK = P::kRegs / NQ, W = NQ * P::kLanes;
  static constexpr auto tail = qk_table<P, NQ>(std::make_integer_sequence<int, RK - 1>());
  int64_t j = 0;
  for (; j + RK <= nk; j += RK) qk_tile<P, RK, NQ>(qt, k + j * d, d, s + j * W);
  if (j < nk) tail[size_t(nk - j - 1)](qt, k + j * d, d, s + j * W);
}

// Ot (all d rows) = Ot alpha + V^T P over nk keys (v: their first row, [nk][d]); alpha may be null.
template <class P, int NQ>
SDC_LANES_TARGET void pv_block(const float* p, int64_t nk, const float* v, int64_t d,
                               const float* alpha, float* ot) {
  constexpr int RE = P::kRegs / NQ, W = NQ * P::kLanes;
  static constexpr auto tail = pv_table<P, NQ>(std::make_integer_sequence<int, RE - 1>());
  int64_t e = 0;
  for (; e + RE <= d; e += RE) pv_tile<P, RE, NQ>(p, nk, v + e, d, alpha, ot + e * W);
  if (e < d) tail[size_t(d - e - 1)](p, nk, v + e, d, alpha, ot + e * W);
}

// Keys after a lane's query get kMasked (rows j0.. of S; the query of lane i is q0 + i).
template <class P, int NQ>
SDC_LANES_TARGET void mask_causal(float* s, int64_t nk, int64_t j0, int64_t q0) {
  constexpr int L = P::kLanes, W = NQ * L;
  for (int64_t j = 0; j < nk; ++j)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) P::mask_before(s + j * W + q * L, q0 + q * L, j0 + j, kMasked);
}

// The online softmax step of one key block: S -> P = 2^(S a - m' a) in place, the running max m
// and sum l updated, alpha = 2^((m - m') a), the factor that brings earlier sums (and Ot) to the
// new max m'.
template <class P, int NQ>
SDC_LANES_TARGET void softmax_block(float* s, int64_t nk, float a, float* m, float* l,
                                    float* alpha) {
  using V = typename P::V;
  constexpr int L = P::kLanes, W = NQ * L;
  V mx[NQ], sum[NQ], shift[NQ];
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) mx[q] = P::load(m + q * L);
  for (int64_t j = 0; j < nk; ++j)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) mx[q] = P::max(mx[q], P::load(s + j * W + q * L));
  const V va = P::set1(a);
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) {
    const V old = P::load(m + q * L);
    P::store(alpha + q * L, P::exp2(P::mul(P::sub(old, mx[q]), va)));
    P::store(m + q * L, mx[q]);
    shift[q] = P::mul(mx[q], P::set1(-a));
    sum[q] = P::zero();
  }
  for (int64_t j = 0; j < nk; ++j)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) {
      float* sj = s + j * W + q * L;
      const V e = P::exp2(P::fma(P::load(sj), va, shift[q]));
      sum[q] = P::add(sum[q], e);
      P::store(sj, e);
    }
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q)
    P::store(l + q * L, P::fma(P::load(l + q * L), P::load(alpha + q * L), sum[q]));
}

// The common case of a key block: P = 2^(S a - m a) with the running max m kept. Scores may exceed
// m by a little (P above 1 is harmless in f32); returns false, with S destroyed, when a lane's
// block sum passes 2^20, i.e. some score rose too far above m: the caller redoes the block with
// softmax_block. Saves the max pass and the rescaling of Ot and l.
template <class P, int NQ>
SDC_LANES_TARGET bool exp_block_lazy(float* s, int64_t nk, float a, const float* m, float* l) {
  using V = typename P::V;
  constexpr int L = P::kLanes, W = NQ * L;
  const V va = P::set1(a);
  V sum[NQ], shift[NQ];
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) {
    shift[q] = P::mul(P::load(m + q * L), P::set1(-a));
    sum[q] = P::zero();
  }
  for (int64_t j = 0; j < nk; ++j)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) {
      float* sj = s + j * W + q * L;
      const V e = P::exp2(P::fma(P::load(sj), va, shift[q]));
      sum[q] = P::add(sum[q], e);
      P::store(sj, e);
    }
  bool over = false;
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) over |= P::above(sum[q], 1048576.f);
  if (over) return false;
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) P::store(l + q * L, P::add(P::load(l + q * L), sum[q]));
  return true;
}

// A block's scratch after its copy of Q: S [bk][W], Ot [d][W], then m, l and alpha [W].
struct Scratch {
  float *s, *ot, *m, *l, *alpha;
};
inline Scratch scratch(float* p, int64_t d, int64_t W) {
  Scratch x;
  x.s = p;
  x.ot = x.s + bk_of(d) * W;
  x.m = x.ot + d * W;
  x.l = x.m + W;
  x.alpha = x.l + W;
  return x;
}

// S of keys [j0, j0 + nk): Tiles' scores, then the causal mask where some key follows a query.
template <class P, int NQ, class Block, class Tiles>
SDC_LANES_TARGET void block_scores(const Block& b, const Scratch& x, const Tiles& t, int64_t j0,
                                   int64_t nk) {
  t.scores(j0, nk);
  if (b.causal && j0 + nk - 1 > b.q0) mask_causal<P, NQ>(x.s, nk, j0, b.q0);
}

// The key-block loop of one block of queries, for the f32 tiles below and attention_lanes_avx512's
// bf16 ones. Block: QueryBlock or QueryBlockBf16 (their common fields); Tiles: scores(j0, nk)
// writes S rows [0, nk) for keys j0.., pv(j0, nk, alpha) adds P's nk rows into Ot (alpha null:
// no rescaling).
template <class P, int NQ, class Block, class Tiles>
SDC_LANES_TARGET void attend(const Block& b, const Scratch& x, const Tiles& t) {
  constexpr int W = NQ * P::kLanes;
  const int64_t d = b.d, bk = bk_of(d);
  std::fill(x.ot, x.ot + d * W, 0.f);
  std::fill(x.m, x.m + W, kMasked);
  std::fill(x.l, x.l + W, 0.f);
  const float a = b.scale * kLog2e;
  // Causal: keys past the block's last query are masked for every lane.
  const int64_t tk = b.causal ? std::min(b.Tk, b.q0 + b.rows) : b.Tk;
  for (int64_t j0 = 0; j0 < tk; j0 += bk) {
    const int64_t nk = std::min(bk, tk - j0);
    block_scores<P, NQ>(b, x, t, j0, nk);
    // The first block sets the max; later ones keep it unless their scores rise too far.
    if (j0 > 0 && exp_block_lazy<P, NQ>(x.s, nk, a, x.m, x.l)) {
      t.pv(j0, nk, nullptr);
      continue;
    }
    if (j0 > 0) block_scores<P, NQ>(b, x, t, j0, nk);
    softmax_block<P, NQ>(x.s, nk, a, x.m, x.l, x.alpha);
    t.pv(j0, nk, x.alpha);
  }
  if (b.out)
    P::store_rows(x.ot, W, x.l, b.rows, d, b.out, b.C);
  else
    P::store_rows(x.ot, W, x.l, b.rows, d, b.out_bf16, b.C);
}

// The f32 tiles of attend: S = K Qt, Ot += V^T P.
template <class P, int NQ>
struct F32Tiles {
  const float *qt, *kp, *vp;
  int64_t d;
  float *s, *ot;
  SDC_LANES_TARGET void scores(int64_t j0, int64_t nk) const {
    qk_block<P, NQ>(qt, kp + j0 * d, d, nk, s);
  }
  SDC_LANES_TARGET void pv(int64_t j0, int64_t nk, const float* alpha) const {
    pv_block<P, NQ>(s, nk, vp + j0 * d, d, alpha, ot);
  }
};

// The f32 block with NQ vectors of queries: Q packed transposed, Qt[d][W], then the key blocks.
template <class P, int NQ>
SDC_LANES_TARGET void run(const QueryBlock& b) {
  constexpr int W = NQ * P::kLanes;
  const int64_t d = b.d;
  float* qt = b.tile;
  std::fill(qt, qt + d * W, 0.f);
  for (int64_t r = 0; r < b.rows; ++r)
    for (int64_t e = 0; e < d; ++e) qt[e * W + r] = b.q[r * b.C + e];
  const Scratch x = scratch(qt + d * W, d, W);
  attend<P, NQ>(b, x, F32Tiles<P, NQ>{qt, b.kp, b.vp, d, x.s, x.ot});
}

// The public entry points' bodies. block_queries and tile_floats run on any CPU (plan building),
// so they carry no target.
template <class P>
int64_t block_queries(int64_t d) {
  return P::kLanes * P::max_nq(d);
}

template <class P>
size_t tile_floats(int64_t d) {
  const int64_t w = block_queries<P>(d);
  return size_t(2 * d * w + bk_of(d) * w + 3 * w);  // Qt, Ot, S, m, l, alpha
}

// Query vectors (4, 2 or 1) of a block of rows queries: max_nq(d), fewer for a short last block
// rather than padding it (77 tokens of the text encoder = 64 + 13).
template <class P>
int block_nq(int64_t d, int64_t rows) {
  const int64_t vecs = std::min<int64_t>(P::max_nq(d), (rows + P::kLanes - 1) / P::kLanes);
  return vecs > 2 ? 4 : int(vecs);
}

template <class P>
SDC_LANES_TARGET void run_block(const QueryBlock& b) {
  const int nq = block_nq<P>(b.d, b.rows);
  if constexpr (P::kMaxNq >= 4) {
    if (nq == 4) return run<P, 4>(b);
  }
  if (nq == 2) return run<P, 2>(b);
  run<P, 1>(b);
}

}  // namespace
}  // namespace sdc::cpu::attn_lanes_kernel
