// attn_int8::run_block: the int8 flash-attention query block.
//
// Per thread (W = 16 NQ queries, d4 = ceil(d / 4), Bk keys per block):
//   Qt[d4][W][4] u8 query codes (dword = 4 head columns of one query), qa[W] softmax factors,
//   S[Bk][W] f32 scores, Pc[Bk / 4][W][4] u8 probability codes (dword = 4 keys of one query),
//   Ot[d][W] f32 output in code units, and per lane m (running max), l (sum of codes), and the
//   factors alpha (earlier sums) and beta (this block's) of update_max.
// Tiles: QK is RK keys x NQ query vectors (reduction over d4, key dword broadcast), PV is RE head
// columns x NQ query vectors (reduction over key groups, value dword broadcast); 24 accumulators.
#include "backend/cpu/attention_int8_avx512.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "backend/cpu/attention_int8_codes.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/simd.h"

#define SDC_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define SDC_VNNI_INLINE SDC_VNNI static inline __attribute__((always_inline))

namespace sdc::cpu::attn_int8 {
namespace {

// Running max before the first key block: finite, so (m - max) a is finite too.
constexpr float kMasked = -1e30f;

int nq_of(int64_t d) {
  return d > 96 ? 2 : 4;
}
// A multiple of 4 (key groups) and of the QK tile's 24 / NQ keys; 96 was 5 % faster than 48 and
// as fast as 144 (SD1.5's heads).
int64_t bk_of(int64_t) {
  return 96;
}

struct Tile {
  uint8_t* qt;
  float *qa, *s;
  uint8_t* pc;
  float *ot, *m, *l, *alpha, *beta, *shift, *bmax, *psum;
};

Tile carve(uint8_t* p, int64_t d) {
  const int64_t w = 16 * nq_of(d), d4 = (d + 3) / 4, bk = bk_of(d);
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

// acc += u8 a x s8 b, 4 products a lane. Through asm: with the _mm512_dpbusd_epi32 builtin GCC
// 12 copies each accumulator to the stack around every instruction of the tiles (2-3x slower).
SDC_VNNI_INLINE __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [b] "v"(b));
  return acc;
}

// ---- S = Q K^T --------------------------------------------------------------------------------

// The tiles' fixed-count loops carry `#pragma GCC unroll` so the accumulators stay in registers.
// Scores of RK keys (k: their first code row) into S, and the lanes' maxima into bmax.
template <int RK, int NQ>
SDC_VNNI void qk_tile(const uint8_t* qt, int64_t d4, const int8_t* k, const int32_t* comp,
                      const float* ks, float* s, float* bmax) {
  constexpr int W = NQ * 16;
  __m512i acc[RK][NQ];
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r) {
    const __m512i c = _mm512_set1_epi32(comp[r]);
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) acc[r][v] = c;
  }
  for (int64_t kk = 0; kk < d4; ++kk) {
    __m512i q[NQ];
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) q[v] = _mm512_loadu_si512(qt + (kk * W + v * 16) * 4);
#pragma GCC unroll 32
    for (int r = 0; r < RK; ++r) {
      int32_t kw;
      std::memcpy(&kw, k + (r * d4 + kk) * 4, 4);
      const __m512i b = _mm512_set1_epi32(kw);
#pragma GCC unroll 32
      for (int v = 0; v < NQ; ++v) acc[r][v] = dpbusd(acc[r][v], q[v], b);
    }
  }
  __m512 mx[NQ];
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) mx[v] = _mm512_loadu_ps(bmax + v * 16);
#pragma GCC unroll 32
  for (int r = 0; r < RK; ++r) {
    const __m512 kr = _mm512_set1_ps(ks[r]);
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) {
      const __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][v]), kr);
      _mm512_storeu_ps(s + r * W + v * 16, x);
      mx[v] = _mm512_max_ps(mx[v], x);
    }
  }
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) _mm512_storeu_ps(bmax + v * 16, mx[v]);
}

using QkFn = void (*)(const uint8_t*, int64_t, const int8_t*, const int32_t*, const float*, float*,
                      float*);
template <int NQ, int... R>
constexpr std::array<QkFn, sizeof...(R)> qk_table(std::integer_sequence<int, R...>) {
  return {&qk_tile<R + 1, NQ>...};
}

template <int NQ>
void qk_block(const uint8_t* qt, int64_t d4, const int8_t* k, const int32_t* comp, const float* ks,
              int64_t nk, float* s, float* bmax) {
  constexpr int RK = 24 / NQ, W = NQ * 16;
  static constexpr auto tail = qk_table<NQ>(std::make_integer_sequence<int, RK - 1>());
  int64_t j = 0;
  for (; j + RK <= nk; j += RK)
    qk_tile<RK, NQ>(qt, d4, k + j * d4 * 4, comp + j, ks + j, s + j * W, bmax);
  if (j < nk) tail[size_t(nk - j - 1)](qt, d4, k + j * d4 * 4, comp + j, ks + j, s + j * W, bmax);
}

// ---- softmax to u8 codes ----------------------------------------------------------------------

// p_code (attention_int8_codes.h) on 16 lanes, as s32.
SDC_VNNI_INLINE __m512i p_codes(__m512 s, __m512 a, __m512 shift) {
  const __m512 x = _mm512_fmadd_ps(s, a, shift);
  const __m512 f = _mm512_reduce_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kP3), f, _mm512_set1_ps(kP2));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kP1));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kP0));
  return _mm512_cvtps_epi32(_mm512_scalef_ps(p, x));
}

// Four vectors of s32 codes 0..255 (keys j..j+3) -> dword i = the four keys' u8 codes of lane i
// (the packs work within 128-bit lanes; the shuffle transposes each lane's 4x4 bytes).
SDC_VNNI_INLINE __m512i interleave4_u8(__m512i c0, __m512i c1, __m512i c2, __m512i c3) {
  const __m512i b = _mm512_packus_epi16(_mm512_packus_epi32(c0, c1), _mm512_packus_epi32(c2, c3));
  const __m512i t =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  return _mm512_shuffle_epi8(b, t);
}

// Codes of nk keys' scores into Pc (the last group's missing keys get 0), their per-lane sums into
// psum.
template <int NQ>
SDC_VNNI void codes_block(const float* s, int64_t nk, const float* qa, const float* shift,
                          uint8_t* pc, float* psum) {
  constexpr int W = NQ * 16;
  const __m512i ones = _mm512_set1_epi8(1);
  __m512 a[NQ], sh[NQ];
  __m512i sum[NQ];
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) {
    a[v] = _mm512_loadu_ps(qa + v * 16);
    sh[v] = _mm512_loadu_ps(shift + v * 16);
    sum[v] = _mm512_setzero_si512();
  }
  for (int64_t j = 0; j < nk; j += 4) {
    const int64_t valid = std::min<int64_t>(4, nk - j);
#pragma GCC unroll 32
    for (int v = 0; v < NQ; ++v) {
      __m512i c[4];
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i)
        c[i] = i < valid ? p_codes(_mm512_loadu_ps(s + (j + i) * W + v * 16), a[v], sh[v])
                         : _mm512_setzero_si512();
      const __m512i packed = interleave4_u8(c[0], c[1], c[2], c[3]);
      _mm512_storeu_si512(pc + (j / 4 * W + v * 16) * 4, packed);
      sum[v] = dpbusd(sum[v], packed, ones);
    }
  }
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) _mm512_storeu_ps(psum + v * 16, _mm512_cvtepi32_ps(sum[v]));
}

// ---- O += P V ---------------------------------------------------------------------------------

// Ot rows [0, RE) (head columns e0.. of v) = Ot alpha + (P V over ng key groups) beta.
template <int RE, int NQ>
SDC_VNNI void pv_tile(const uint8_t* pc, int64_t ng, const int8_t* v, int64_t d, const float* alpha,
                      const float* beta, float* ot) {
  constexpr int W = NQ * 16;
  __m512i acc[RE][NQ];
#pragma GCC unroll 32
  for (int r = 0; r < RE; ++r)
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) acc[r][q] = _mm512_setzero_si512();
  for (int64_t g = 0; g < ng; ++g) {
    __m512i p[NQ];
#pragma GCC unroll 32
    for (int q = 0; q < NQ; ++q) p[q] = _mm512_loadu_si512(pc + (g * W + q * 16) * 4);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r) {
      int32_t vw;
      std::memcpy(&vw, v + (g * d + r) * 4, 4);
      const __m512i b = _mm512_set1_epi32(vw);
#pragma GCC unroll 32
      for (int q = 0; q < NQ; ++q) acc[r][q] = dpbusd(acc[r][q], p[q], b);
    }
  }
#pragma GCC unroll 32
  for (int q = 0; q < NQ; ++q) {
    const __m512 al = _mm512_loadu_ps(alpha + q * 16), be = _mm512_loadu_ps(beta + q * 16);
#pragma GCC unroll 32
    for (int r = 0; r < RE; ++r) {
      float* o = ot + r * W + q * 16;
      const __m512 add = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][q]), be);
      _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_loadu_ps(o), al, add));
    }
  }
}

using PvFn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, const float*, const float*,
                      float*);
template <int NQ, int... R>
constexpr std::array<PvFn, sizeof...(R)> pv_table(std::integer_sequence<int, R...>) {
  return {&pv_tile<R + 1, NQ>...};
}

template <int NQ>
void pv_block(const uint8_t* pc, int64_t ng, const int8_t* v, int64_t d, const float* alpha,
              const float* beta, float* ot) {
  constexpr int RE = 24 / NQ, W = NQ * 16;
  static constexpr auto tail = pv_table<NQ>(std::make_integer_sequence<int, RE - 1>());
  int64_t e = 0;
  for (; e + RE <= d; e += RE) pv_tile<RE, NQ>(pc, ng, v + e * 4, d, alpha, beta, ot + e * W);
  if (e < d) tail[size_t(d - e - 1)](pc, ng, v + e * 4, d, alpha, beta, ot + e * W);
}

// ---- queries in and rows out ------------------------------------------------------------------

SDC_VNNI_INLINE __m512 load_q(const QueryBlock& b, int64_t at, __mmask16 m) {
  return b.q_bf16 ? simd::load(static_cast<const uint16_t*>(b.q) + at, m)
                  : simd::load(static_cast<const float*>(b.q) + at, m);
}

// u8 codes of the block's query rows into Qt (padding: code 128 = value 0) and their softmax
// factors into qa (0 for padding lanes).
template <int NQ>
SDC_VNNI void quantise_queries(const QueryBlock& b, const Tile& t) {
  constexpr int W = NQ * 16;
  const int64_t d = b.d, d4 = (d + 3) / 4;
  auto* qt = reinterpret_cast<uint32_t*>(t.qt);
  // The rows lie C apart and came from the projections long ago: loaded one after the other
  // they missed the caches in turn (most of this function's time); requested together, their
  // misses overlap.
  const size_t elem = b.q_bf16 ? 2 : 4, row_bytes = size_t(d) * elem;
  for (int64_t r = 0; r < b.rows; ++r) {
    const char* p = static_cast<const char*>(b.q) + size_t(r * b.C) * elem;
    for (size_t at = 0; at < row_bytes; at += 64) _mm_prefetch(p + at, _MM_HINT_T0);
    _mm_prefetch(p + row_bytes - 1, _MM_HINT_T0);
  }
  // Codes of one row, 16 columns per full 16-byte store: dword reloads of masked byte stores
  // would miss store forwarding (that made this loop 4 % of the whole kernel).
  uint32_t row[256 + 4];  // heads up to 1024 wide
  for (int64_t r = 0; r < W; ++r) {
    if (r >= b.rows) {
      for (int64_t kk = 0; kk < d4; ++kk) qt[kk * W + r] = 0x80808080u;
      t.qa[r] = 0.f;
      continue;
    }
    const int64_t at = r * b.C;
    __m512 mx = _mm512_setzero_ps();
    for (int64_t e = 0; e < d; e += 16)
      mx = _mm512_max_ps(mx, _mm512_abs_ps(load_q(b, at + e, simd::tail_mask(d - e))));
    const float absmax = _mm512_reduce_max_ps(mx);
    const __m512 inv = _mm512_set1_ps(code_inv(absmax));
    // Columns past d load as 0: code 128.
    for (int64_t e = 0; e < d; e += 16) {
      const __m512i c = _mm512_add_epi32(
          _mm512_cvtps_epi32(_mm512_mul_ps(load_q(b, at + e, simd::tail_mask(d - e)), inv)),
          _mm512_set1_epi32(128));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(row + e / 4), _mm512_cvtusepi32_epi8(c));
    }
    for (int64_t kk = 0; kk < d4; ++kk) qt[kk * W + r] = row[kk];
    t.qa[r] = query_factor(absmax, b.scale);
  }
}

// Output rows = columns of Ot (row stride W) times the value scales over the code sums.
template <class T>
SDC_VNNI void store_rows(const Tile& t, int W, const float* vs, int64_t rows, int64_t d, T* out,
                         int64_t C) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(W));
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 inv = _mm512_set1_ps(1.f / t.l[r]);
    for (int64_t e = 0; e < d; e += 16) {
      const __mmask16 m = simd::tail_mask(d - e);
      const __m512 o = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, t.ot + e * W + r, 4);
      const __m512 y = _mm512_mul_ps(_mm512_mul_ps(o, _mm512_maskz_loadu_ps(m, vs + e)), inv);
      simd::store(out + r * C + e, y, m);
    }
  }
}

// The block's maxima bm (in bmax) and the running ones m: the block's codes are taken relative
// to bm, so every block uses the whole code range (a block far below the row's max would
// otherwise round to a few small codes; this halved the error of P V on peaked rows), and
// enter the sums with beta = 2^((bm - m') a); earlier sums are rescaled by alpha = 2^((m - m') a),
// m' = max(m, bm). Both are exactly 1 where the maxima agree.
template <int NQ>
SDC_VNNI void update_max(const Tile& t) {
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) {
    const __m512 m = _mm512_loadu_ps(t.m + v * 16), bm = _mm512_loadu_ps(t.bmax + v * 16);
    const __m512 a = _mm512_loadu_ps(t.qa + v * 16), one = _mm512_set1_ps(1.f);
    const __m512 mn = _mm512_max_ps(m, bm);
    const __m512 al = simd::exp2(_mm512_mul_ps(_mm512_sub_ps(m, mn), a));
    const __m512 be = simd::exp2(_mm512_mul_ps(_mm512_sub_ps(bm, mn), a));
    _mm512_storeu_ps(t.alpha + v * 16,
                     _mm512_mask_mov_ps(one, _mm512_cmp_ps_mask(m, mn, _CMP_NEQ_UQ), al));
    _mm512_storeu_ps(t.beta + v * 16,
                     _mm512_mask_mov_ps(one, _mm512_cmp_ps_mask(bm, mn, _CMP_NEQ_UQ), be));
    _mm512_storeu_ps(t.shift + v * 16, _mm512_fmadd_ps(bm, _mm512_sub_ps(_mm512_setzero_ps(), a),
                                                       _mm512_set1_ps(-1.f)));
    _mm512_storeu_ps(t.m + v * 16, mn);
  }
}

template <int NQ>
SDC_VNNI void update_sums(const Tile& t) {
#pragma GCC unroll 32
  for (int v = 0; v < NQ; ++v) {
    const __m512 l = _mm512_loadu_ps(t.l + v * 16);
    const __m512 sum =
        _mm512_mul_ps(_mm512_loadu_ps(t.psum + v * 16), _mm512_loadu_ps(t.beta + v * 16));
    _mm512_storeu_ps(t.l + v * 16, _mm512_fmadd_ps(l, _mm512_loadu_ps(t.alpha + v * 16), sum));
  }
}

template <int NQ>
void run(const QueryBlock& b) {
  constexpr int W = NQ * 16;
  const int64_t d = b.d, d4 = (d + 3) / 4, bk = bk_of(d);
  const Tile t = carve(b.tile, d);
  quantise_queries<NQ>(b, t);
  std::fill(t.ot, t.ot + d * W, 0.f);
  std::fill(t.m, t.m + W, kMasked);
  std::fill(t.l, t.l + W, 0.f);
  for (int64_t j0 = 0; j0 < b.Tk; j0 += bk) {
    const int64_t nk = std::min(bk, b.Tk - j0);
    std::fill(t.bmax, t.bmax + W, kMasked);
    qk_block<NQ>(t.qt, d4, b.kv.k + j0 * d4 * 4, b.kv.comp + j0, b.kv.k_scale + j0, nk, t.s,
                 t.bmax);
    update_max<NQ>(t);
    codes_block<NQ>(t.s, nk, t.qa, t.shift, t.pc, t.psum);
    update_sums<NQ>(t);
    pv_block<NQ>(t.pc, (nk + 3) / 4, b.kv.v + j0 * d, d, t.alpha, t.beta, t.ot);
  }
  if (b.out_bf16)
    store_rows(t, W, b.kv.v_scale, b.rows, d, static_cast<uint16_t*>(b.out), b.C);
  else
    store_rows(t, W, b.kv.v_scale, b.rows, d, static_cast<float*>(b.out), b.C);
}

}  // namespace

int64_t block_queries(int64_t d) {
  return 16 * nq_of(d);
}

int64_t key_block(int64_t d) {
  return bk_of(d);
}

size_t tile_bytes(int64_t d) {
  const int64_t w = block_queries(d), d4 = (d + 3) / 4, bk = bk_of(d);
  return arena_aligned(size_t(d4 * w * 4)) + arena_aligned(size_t(bk * w) * 4) +
         arena_aligned(size_t(bk * w)) + arena_aligned(size_t(d * w) * 4) + size_t(8 * w) * 4;
}

void run_block(const QueryBlock& b) {
  if (nq_of(b.d) == 4)
    run<4>(b);
  else
    run<2>(b);
}

}  // namespace sdc::cpu::attn_int8
