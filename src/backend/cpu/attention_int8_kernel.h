// The int8 flash-attention query block (the scheme: attention_int8_kernels.h) and the K/V pack
// (the layout: attention_int8_pack.h), written once for any vector width. Included only by
// attention_int8_avx512.cpp (16 lanes) and attention_int8_avxvnni.cpp (8 lanes), which supply a
// lanes policy and define SDC_INT8_TARGET, their target attribute, before including it. As in
// attention_lanes_kernel.h, everything lives in an anonymous namespace, so each including file
// compiles its own copies for its own target and none is shared between them.
//
// Per thread (W = NQ vectors of queries, d4 = ceil(d / 4), Bk keys per block):
//   Qt[d4][W][4] u8 query codes (dword = 4 head columns of one query), qa[W] softmax factors,
//   S[Bk][W] f32 scores, Pc[Bk / 4][W][4] u8 probability codes (dword = 4 keys of one query),
//   Ot[d][W] f32 output in code units, and per lane m (running max), l (sum of codes), and the
//   factors alpha (earlier sums) and beta (this block's) of update_max.
// Tiles: QK is RK keys x NQ query vectors (reduction over d4, key dword broadcast), PV is RE head
// columns x NQ query vectors (reduction over key groups, value dword broadcast).
//
// A lanes policy P derives from vnni::Lanes512 or Lanes256 (VI, VF, kLanes, izero, iset1, iload,
// istore, iadd, dpbusd(acc, u8 a, s8 b), fzero, fload, fstore, fset1, cvt (s32 to f32), round
// (f32 to s32, to nearest even), mul, sub, max, fma(a, b, c) = a b + c) and has:
//   kRegs                   accumulators of a register tile (RK or RE = kRegs / NQ), leaving
//                           registers for the NQ query or P vectors and a broadcast
//   kNqWide, kNqNarrow, nq(d)  query vectors per block (one of the two) for heads of d
//   ihsum, abs, exp2, hmax
//   select_ne(a, b, x, y)   x in the lanes where a != b, y in the others
//   p_codes(s, a, shift)    attention_int8_codes.h's p_code on every lane, as s32
//   interleave4_u8, interleave4_s8 (c0, c1, c2, c3)  dword i = the bytes of the four vectors'
//                           lane i, saturated
//   load_row(x, bf16, e, n) n values of row x (f32 or bf16) from column e as f32, 0 past them
//                           (n >= kLanes: a whole vector)
//   fload_n(p, n)           likewise from f32 memory
//   store_u8(p, c)          the kLanes lanes as saturated u8 (kLanes bytes at p)
//   store_s8(p, c, n)       lanes [0, n) as saturated s8
//   store_dwords(p, x, n)   lanes [0, n)
//   key_means(k, bf16, C, Tk, d, mean)   column means over keys, summed in double key by key
//   store_rows(ot, W, l, vs, rows, d, out, C)  output rows r = column r of Ot (row stride W)
//                           times the value scales vs over l[r], to f32 or bf16 rows of stride C
// Its vector operations are always_inline functions with the same target as SDC_INT8_TARGET.
#pragma once

#ifndef SDC_INT8_TARGET
#error "attention_int8_kernel.h: define SDC_INT8_TARGET (the including file's target) first"
#endif

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "backend/cpu/attention_int8_codes.h"
#include "backend/cpu/attention_int8_kernels.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/prefetch.h"

namespace sdc::cpu::attn_int8_kernel {
namespace {

using attn_int8::PackedHead;
using attn_int8::QueryBlock;

// Running max before the first key block: finite, so (m - max) a is finite too.
constexpr float kMasked = -1e30f;

template <class P>
constexpr int64_t width(int64_t d) {
  return int64_t(P::kLanes) * P::nq(d);
}

struct Tile {
  uint8_t* qt;
  float *qa, *s;
  uint8_t* pc;
  float *ot, *m, *l, *alpha, *beta, *shift, *bmax, *psum;
};

template <class P>
Tile carve(uint8_t* p, int64_t d) {
  const int64_t w = width<P>(d), d4 = (d + 3) / 4, bk = attn_int8::key_block(d);
  Tile t{};
  t.qt = p;
  p += arena_aligned(size_t(d4 * w * 4));
  t.s = reinterpret_cast<float*>(p);
  p += arena_aligned(size_t(bk * w) * 4);
  t.pc = p;
  p += arena_aligned(size_t(bk * w));
  t.ot = reinterpret_cast<float*>(p);
  p += arena_aligned(size_t(d * w) * 4);
  float* lane = reinterpret_cast<float*>(p);
  for (float** f : {&t.qa, &t.m, &t.l, &t.alpha, &t.beta, &t.shift, &t.bmax, &t.psum}) {
    *f = lane;
    lane += w;
  }
  return t;
}

template <class P>
size_t tile_bytes(int64_t d) {
  const int64_t w = width<P>(d), d4 = (d + 3) / 4, bk = attn_int8::key_block(d);
  return arena_aligned(size_t(d4 * w * 4)) + arena_aligned(size_t(bk * w) * 4) +
         arena_aligned(size_t(bk * w)) + arena_aligned(size_t(d * w) * 4) + size_t(8 * w) * 4;
}

// The f32 or bf16 row `offset` elements past x.
inline const void* row_at(const void* x, bool bf16, int64_t offset) {
  return static_cast<const char*>(x) + offset * (bf16 ? 2 : 4);
}

// ---- S = Q K^T --------------------------------------------------------------------------------

// The tiles' fixed-count loops carry `#pragma GCC unroll` so the accumulators stay in registers.
// Scores of RK keys (k: their first code row) into S, and the lanes' maxima into bmax.
template <class P, int RK, int NQ>
SDC_INT8_TARGET void qk_tile(const uint8_t* qt, int64_t d4, const int8_t* k, const int32_t* comp,
                             const float* ks, float* s, float* bmax) {
  constexpr int L = P::kLanes, W = NQ * L;
  typename P::VI acc[RK][NQ];
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r) {
    const typename P::VI c = P::iset1(comp[r]);
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) acc[r][v] = c;
  }
  for (int64_t kk = 0; kk < d4; ++kk) {
    typename P::VI q[NQ];
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) q[v] = P::iload(qt + (kk * W + v * L) * 4);
#pragma GCC unroll 32
    for (int r = 0; r < RK; ++r) {
      int32_t kw;
      std::memcpy(&kw, k + (r * d4 + kk) * 4, 4);
      const typename P::VI b = P::iset1(kw);
#pragma GCC unroll 32
      for (int v = 0; v < NQ; ++v) acc[r][v] = P::dpbusd(acc[r][v], q[v], b);
    }
  }
  typename P::VF mx[NQ];
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) mx[v] = P::fload(bmax + v * L);
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r) {
    const typename P::VF kr = P::fset1(ks[r]);
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) {
      const typename P::VF x = P::mul(P::cvt(acc[r][v]), kr);
      P::fstore(s + r * W + v * L, x);
      mx[v] = P::max(mx[v], x);
    }
  }
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) P::fstore(bmax + v * L, mx[v]);
}

using QkFn = void (*)(const uint8_t*, int64_t, const int8_t*, const int32_t*, const float*, float*,
                      float*);
template <class P, int NQ, int... R>
constexpr std::array<QkFn, sizeof...(R)> qk_table(std::integer_sequence<int, R...>) {
  return {&qk_tile<P, R + 1, NQ>...};
}

template <class P, int NQ>
void qk_block(const uint8_t* qt, int64_t d4, const int8_t* k, const int32_t* comp, const float* ks,
              int64_t nk, float* s, float* bmax) {
  constexpr int RK = P::kRegs / NQ, W = NQ * P::kLanes;
  static constexpr auto tail = qk_table<P, NQ>(std::make_integer_sequence<int, RK - 1>());
  int64_t j = 0;
  for (; j + RK <= nk; j += RK)
    qk_tile<P, RK, NQ>(qt, d4, k + j * d4 * 4, comp + j, ks + j, s + j * W, bmax);
  if (j < nk) tail[size_t(nk - j - 1)](qt, d4, k + j * d4 * 4, comp + j, ks + j, s + j * W, bmax);
}

// ---- softmax to u8 codes ----------------------------------------------------------------------

// Codes of nk keys' scores into Pc (the last group's missing keys get 0), their per-lane sums into
// psum.
template <class P, int NQ>
SDC_INT8_TARGET void codes_block(const float* s, int64_t nk, const float* qa, const float* shift,
                                 uint8_t* pc, float* psum) {
  constexpr int L = P::kLanes, W = NQ * L;
  const typename P::VI ones = P::iset1(0x01010101);
  typename P::VF a[NQ], sh[NQ];
  typename P::VI sum[NQ];
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) {
    a[v] = P::fload(qa + v * L);
    sh[v] = P::fload(shift + v * L);
    sum[v] = P::izero();
  }
  for (int64_t j = 0; j < nk; j += 4) {
    const int64_t valid = std::min<int64_t>(4, nk - j);
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) {
      typename P::VI c[4];
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i)
        c[i] = i < valid ? P::p_codes(P::fload(s + (j + i) * W + v * L), a[v], sh[v]) : P::izero();
      const typename P::VI packed = P::interleave4_u8(c[0], c[1], c[2], c[3]);
      P::istore(pc + (j / 4 * W + v * L) * 4, packed);
      sum[v] = P::dpbusd(sum[v], packed, ones);
    }
  }
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) P::fstore(psum + v * L, P::cvt(sum[v]));
}

// ---- O += P V ---------------------------------------------------------------------------------

// Ot rows [0, RE) (head columns e0.. of v) = Ot alpha + (P V over ng key groups) beta.
template <class P, int RE, int NQ>
SDC_INT8_TARGET void pv_tile(const uint8_t* pc, int64_t ng, const int8_t* v, int64_t d,
                             const float* alpha, const float* beta, float* ot) {
  constexpr int L = P::kLanes, W = NQ * L;
  typename P::VI acc[RE][NQ];
#pragma GCC unroll 32
  for (int r = 0; r < RE; ++r)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) acc[r][q] = P::izero();
  for (int64_t g = 0; g < ng; ++g) {
    typename P::VI p[NQ];
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) p[q] = P::iload(pc + (g * W + q * L) * 4);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r) {
      int32_t vw;
      std::memcpy(&vw, v + (g * d + r) * 4, 4);
      const typename P::VI b = P::iset1(vw);
#pragma GCC unroll 32
      for (int q = 0; q < NQ; ++q) acc[r][q] = P::dpbusd(acc[r][q], p[q], b);
    }
  }
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) {
    const typename P::VF al = P::fload(alpha + q * L), be = P::fload(beta + q * L);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r) {
      float* o = ot + r * W + q * L;
      const typename P::VF add = P::mul(P::cvt(acc[r][q]), be);
      P::fstore(o, P::fma(P::fload(o), al, add));
    }
  }
}

using PvFn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, const float*, const float*,
                      float*);
template <class P, int NQ, int... R>
constexpr std::array<PvFn, sizeof...(R)> pv_table(std::integer_sequence<int, R...>) {
  return {&pv_tile<P, R + 1, NQ>...};
}

template <class P, int NQ>
void pv_block(const uint8_t* pc, int64_t ng, const int8_t* v, int64_t d, const float* alpha,
              const float* beta, float* ot) {
  constexpr int RE = P::kRegs / NQ, W = NQ * P::kLanes;
  static constexpr auto tail = pv_table<P, NQ>(std::make_integer_sequence<int, RE - 1>());
  int64_t e = 0;
  for (; e + RE <= d; e += RE) pv_tile<P, RE, NQ>(pc, ng, v + e * 4, d, alpha, beta, ot + e * W);
  if (e < d) tail[size_t(d - e - 1)](pc, ng, v + e * 4, d, alpha, beta, ot + e * W);
}

// ---- queries in -------------------------------------------------------------------------------

// u8 codes of the block's query rows into Qt (padding: code 128 = value 0) and their softmax
// factors into qa (0 for padding lanes).
template <class P, int NQ>
SDC_INT8_TARGET void quantise_queries(const QueryBlock& b, const Tile& t) {
  constexpr int L = P::kLanes, W = NQ * L;
  const int64_t d = b.d, d4 = (d + 3) / 4;
  auto* qt = reinterpret_cast<uint32_t*>(t.qt);
  // The rows' misses, one after the other, were most of this function's time.
  const size_t value_bytes = b.q_bf16 ? 2 : 4;
  prefetch_rows(b.q, b.rows, size_t(b.C) * value_bytes, size_t(d) * value_bytes);
  // Codes of one row, a whole vector's per store: dword reloads of masked byte stores would miss
  // store forwarding (that made this loop 4 % of the whole kernel at 16 lanes).
  alignas(64) uint8_t row[1024 + 64];  // heads up to 1024 wide
  for (int64_t r = 0; r < W; ++r) {
    if (r >= b.rows) {
      for (int64_t kk = 0; kk < d4; ++kk) qt[kk * W + r] = 0x80808080u;
      t.qa[r] = 0.f;
      continue;
    }
    const void* x = row_at(b.q, b.q_bf16, r * b.C);
    typename P::VF mx = P::fzero();
    for (int64_t e = 0; e < d; e += L) mx = P::max(mx, P::abs(P::load_row(x, b.q_bf16, e, d - e)));
    const float absmax = P::hmax(mx);
    const typename P::VF inv = P::fset1(attn_int8::code_inv(absmax));
    // Columns past d load as 0: code 128.
    for (int64_t e = 0; e < d; e += L)
      P::store_u8(row + e, P::iadd(P::round(P::mul(P::load_row(x, b.q_bf16, e, d - e), inv)),
                                   P::iset1(128)));
    for (int64_t kk = 0; kk < d4; ++kk) std::memcpy(qt + kk * W + r, row + kk * 4, 4);
    t.qa[r] = attn_int8::query_factor(absmax, b.scale);
  }
}

// ---- the online softmax's bookkeeping ---------------------------------------------------------

// The block's maxima bm (in bmax) and the running ones m: the block's codes are taken relative
// to bm, so every block uses the whole code range (a block far below the row's max would
// otherwise round to a few small codes; this halved the error of P V on peaked rows), and
// enter the sums with beta = 2^((bm - m') a); earlier sums are rescaled by alpha = 2^((m - m') a),
// m' = max(m, bm). Both are exactly 1 where the maxima agree.
template <class P, int NQ>
SDC_INT8_TARGET void update_max(const Tile& t) {
  constexpr int L = P::kLanes;
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) {
    const typename P::VF m = P::fload(t.m + v * L), bm = P::fload(t.bmax + v * L);
    const typename P::VF a = P::fload(t.qa + v * L), one = P::fset1(1.f);
    const typename P::VF mn = P::max(m, bm);
    const typename P::VF al = P::exp2(P::mul(P::sub(m, mn), a));
    const typename P::VF be = P::exp2(P::mul(P::sub(bm, mn), a));
    P::fstore(t.alpha + v * L, P::select_ne(m, mn, al, one));
    P::fstore(t.beta + v * L, P::select_ne(bm, mn, be, one));
    P::fstore(t.shift + v * L, P::fma(bm, P::sub(P::fzero(), a), P::fset1(-1.f)));
    P::fstore(t.m + v * L, mn);
  }
}

template <class P, int NQ>
SDC_INT8_TARGET void update_sums(const Tile& t) {
  constexpr int L = P::kLanes;
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) {
    const typename P::VF l = P::fload(t.l + v * L);
    const typename P::VF sum = P::mul(P::fload(t.psum + v * L), P::fload(t.beta + v * L));
    P::fstore(t.l + v * L, P::fma(l, P::fload(t.alpha + v * L), sum));
  }
}

template <class P, int NQ>
void run(const QueryBlock& b) {
  constexpr int W = NQ * P::kLanes;
  const int64_t d = b.d, d4 = (d + 3) / 4, bk = attn_int8::key_block(d);
  const Tile t = carve<P>(b.tile, d);
  quantise_queries<P, NQ>(b, t);
  std::fill(t.ot, t.ot + d * W, 0.f);
  std::fill(t.m, t.m + W, kMasked);
  std::fill(t.l, t.l + W, 0.f);
  for (int64_t j0 = 0; j0 < b.Tk; j0 += bk) {
    const int64_t nk = std::min(bk, b.Tk - j0);
    std::fill(t.bmax, t.bmax + W, kMasked);
    qk_block<P, NQ>(t.qt, d4, b.kv.k + j0 * d4 * 4, b.kv.comp + j0, b.kv.k_scale + j0, nk, t.s,
                    t.bmax);
    update_max<P, NQ>(t);
    codes_block<P, NQ>(t.s, nk, t.qa, t.shift, t.pc, t.psum);
    update_sums<P, NQ>(t);
    pv_block<P, NQ>(t.pc, (nk + 3) / 4, b.kv.v + j0 * d, d, t.alpha, t.beta, t.ot);
  }
  if (b.out_bf16)
    P::store_rows(t.ot, W, t.l, b.kv.v_scale, b.rows, d, static_cast<uint16_t*>(b.out), b.C);
  else
    P::store_rows(t.ot, W, t.l, b.kv.v_scale, b.rows, d, static_cast<float*>(b.out), b.C);
}

template <class P>
void run_block(const QueryBlock& b) {
  if (P::nq(b.d) == P::kNqWide)
    run<P, P::kNqWide>(b);
  else
    run<P, P::kNqNarrow>(b);
}

// ---- K and V packed once per run ---------------------------------------------------------------

template <class P>
SDC_INT8_TARGET void pack_keys(const void* k, bool bf16, int64_t C, int64_t Tk, int64_t d,
                               const PackedHead& p) {
  constexpr int L = P::kLanes;
  const int64_t stride = (d + 3) / 4 * 4;
  for (int64_t j = 0; j < Tk; ++j) {
    const void* r = row_at(k, bf16, j * C);
    typename P::VF mx = P::fzero();
    for (int64_t e = 0; e < d; e += L) {
      const typename P::VF x =
          P::sub(P::load_row(r, bf16, e, d - e), P::fload_n(p.k_mean + e, d - e));
      mx = P::max(mx, P::abs(x));
    }
    const float absmax = P::hmax(mx);
    const typename P::VF inv = P::fset1(attn_int8::code_inv(absmax));
    typename P::VI sum = P::izero();
    int8_t* dst = p.k + j * stride;
    for (int64_t e = 0; e < d; e += L) {
      // Lanes past d are 0 - 0: code 0, nothing added to the sum.
      const typename P::VF x =
          P::sub(P::load_row(r, bf16, e, d - e), P::fload_n(p.k_mean + e, d - e));
      const typename P::VI c = P::round(P::mul(x, inv));
      sum = P::iadd(sum, c);
      P::store_s8(dst + e, c, d - e);
    }
    for (int64_t e = d; e < stride; ++e) dst[e] = 0;
    p.k_scale[j] = attn_int8::code_scale(absmax);
    p.comp[j] = -128 * P::ihsum(sum);
  }
}

template <class P>
SDC_INT8_TARGET void pack_values(const void* v, bool bf16, int64_t C, int64_t Tk, int64_t d,
                                 const PackedHead& p) {
  constexpr int L = P::kLanes;
  std::vector<float> inv(static_cast<size_t>(d));
  for (int64_t e = 0; e < d; e += L) {
    typename P::VF mx = P::fzero();
    for (int64_t j = 0; j < Tk; ++j)
      mx = P::max(mx, P::abs(P::load_row(row_at(v, bf16, j * C), bf16, e, d - e)));
    float col[L];
    P::fstore(col, mx);
    for (int64_t i = 0; i < std::min<int64_t>(L, d - e); ++i) {
      p.v_scale[e + i] = attn_int8::code_scale(col[i]);
      inv[size_t(e + i)] = attn_int8::code_inv(col[i]);
    }
  }
  for (int64_t j0 = 0; j0 < Tk; j0 += 4) {
    auto* dst = reinterpret_cast<int32_t*>(p.v + j0 * d);
    for (int64_t e = 0; e < d; e += L) {
      const typename P::VF vi = P::fload_n(inv.data() + e, d - e);
      typename P::VI c[4];
      for (int i = 0; i < 4; ++i)
        c[i] =
            j0 + i < Tk
                ? P::round(P::mul(P::load_row(row_at(v, bf16, (j0 + i) * C), bf16, e, d - e), vi))
                : P::izero();
      P::store_dwords(dst + e, P::interleave4_s8(c[0], c[1], c[2], c[3]), d - e);
    }
  }
}

template <class P>
void pack_head(const void* k, const void* v, bool bf16, int64_t C, int64_t Tk, int64_t d,
               const PackedHead& dst) {
  P::key_means(k, bf16, C, Tk, d, dst.k_mean);
  pack_keys<P>(k, bf16, C, Tk, d, dst);
  pack_values<P>(v, bf16, C, Tk, d, dst);
}

template <class P>
int64_t block_queries(int64_t d) {
  return width<P>(d);
}

}  // namespace
}  // namespace sdc::cpu::attn_int8_kernel
