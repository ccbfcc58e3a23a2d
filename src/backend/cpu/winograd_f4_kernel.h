// The F(4x4, 3x3) transforms (winograd_f4.cpp has the matrices) written once for any vector
// width: B^T d B of a chunk's 6x6 input tiles into V, and A^T M A of their products into the 4x4
// output blocks with the bias, a residual and a ReLU; and those of the F(4x4, 2x2) phases of a
// 2x-upsampling convolution (winograd_upsample_f4.cpp has their matrices), whose 5x5 sub-tiles
// of the same 6x6 tiles give each phase's 4x4 block. Included, with winograd_f32_kernel.h, only
// by winograd_f32_entry.h (in winograd_f32_avx2.cpp, 8 lanes, and winograd_f32_avx512.cpp, 16),
// which supplies a lanes policy (winograd_f32_lanes.h) and defines SDC_WINO_F32_TARGET, its target
// attribute, first; everything here is in an anonymous namespace, so each compiles its own copies
// for its own target (as attention_lanes_kernel.h explains). Channels come in multiples of kLanes
// (WinogradF4Conv picks the width by them).
#pragma once

#ifndef SDC_WINO_F32_TARGET
#error "winograd_f4_kernel.h: define SDC_WINO_F32_TARGET (the including file's target) first"
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backend/cpu/winograd_f4.h"
#include "backend/cpu/winograd_upsample_f4.h"

namespace sdc::cpu::wino4_kernel {
namespace {

constexpr int kPoints = kWinogradF4Points;

// B^T over 6 values d[i * stride] (a column or a row of a tile) into r[i * rs].
template <class L>
SDC_WINO_F32_TARGET inline __attribute__((always_inline)) void input_line(const typename L::Vec* d,
                                                                          int stride,
                                                                          typename L::Vec* r,
                                                                          int rs) {
  using V = typename L::Vec;
  const V d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride], d4 = d[4 * stride],
          d5 = d[5 * stride];
  const V four = L::set1(4.f), minus_four = L::set1(-4.f), minus_five = L::set1(-5.f);
  const V a = L::fma(minus_four, d2, d4), b = L::fma(minus_four, d1, d3);  // d4 - 4 d2, d3 - 4 d1
  const V c = L::sub(d4, d2), e0 = L::sub(d3, d1), e = L::add(e0, e0);
  r[0] = L::fma(four, d0, L::fma(minus_five, d2, d4));
  r[rs] = L::add(a, b);
  r[2 * rs] = L::sub(a, b);
  r[3 * rs] = L::add(c, e);
  r[4 * rs] = L::sub(c, e);
  r[5 * rs] = L::fma(four, d1, L::fma(minus_five, d3, d5));
}

// B^T d B for the kLanes channels at c of a tile's 36 pixels `px` (row-major), into V's 36 rows
// (row stride vs).
template <class L>
SDC_WINO_F32_TARGET inline __attribute__((always_inline)) void input_tile(
    const float* const px[kPoints], int64_t c, float* v, size_t vs) {
  using V = typename L::Vec;
  V d[kPoints];
  for (int i = 0; i < kPoints; ++i) d[i] = L::load(px[i] + c);
  V t[kPoints];  // B^T d: each column's combinations of rows
  for (int j = 0; j < 6; ++j) input_line<L>(d + j, 6, t + j, 6);
  for (int i = 0; i < 6; ++i) {  // (B^T d) B: each row's combinations of columns
    V r[6];
    input_line<L>(t + 6 * i, 1, r, 1);
    for (int k = 0; k < 6; ++k) L::store(v + (6 * i + k) * vs + c, r[k]);
  }
}

// A^T over 6 values m[i * stride] into y[i * ys], 4 of them.
template <class L>
SDC_WINO_F32_TARGET inline __attribute__((always_inline)) void output_line(const typename L::Vec* m,
                                                                           int stride,
                                                                           typename L::Vec* y,
                                                                           int ys) {
  using V = typename L::Vec;
  const V s12 = L::add(m[stride], m[2 * stride]), d12 = L::sub(m[stride], m[2 * stride]),
          s34 = L::add(m[3 * stride], m[4 * stride]), d34 = L::sub(m[3 * stride], m[4 * stride]);
  y[0] = L::add(L::add(m[0], s12), s34);
  y[ys] = L::fma(L::set1(2.f), d34, d12);
  y[2 * ys] = L::fma(L::set1(4.f), s34, s12);
  y[3 * ys] = L::add(L::fma(L::set1(8.f), d34, d12), m[5 * stride]);
}

// A^T M A for the kLanes output channels at c of a tile, plus the bias and the addend, then a
// ReLU (kRelu), into its (up to) 16 output pixels (out[k] null: over the image's edge).
template <class L, bool kRelu>
SDC_WINO_F32_TARGET inline __attribute__((always_inline)) void output_tile(
    const float* m, size_t ms, int64_t c, typename L::Vec b, const float* const add[16],
    float* const out[16]) {
  using V = typename L::Vec;
  V q[24];  // A^T over each row's columns: 6 rows of 4
  for (int i = 0; i < 6; ++i) {
    V p[6];
    for (int k = 0; k < 6; ++k) p[k] = L::load(m + (6 * i + k) * ms + c);
    output_line<L>(p, 1, q + 4 * i, 1);
  }
  for (int k = 0; k < 4; ++k) {  // then over the rows, column k
    V y[4];
    output_line<L>(q + k, 4, y, 1);
    for (int r = 0; r < 4; ++r) {
      const int o = 4 * r + k;
      if (!out[o]) continue;
      V v = L::add(y[r], b);
      if (add[o]) v = L::add(v, L::load(add[o] + c));
      if constexpr (kRelu) v = L::max(v, L::zero());
      L::store(out[o] + c, v);
    }
  }
}

// The input side of a chunk: for tiles [k0, k0 + count), their 6x6 pixels `px` go to
// tile(px, c, v, vs) for every kLanes channels at c (v: the tile's first of V's points, row stride
// vs); the rest of V's tiles, kPts points each, are zeroed (their products are never read; zeros
// keep stale NaNs and denormals out).
template <class L, int kPts, class Tile>
SDC_WINO_F32_TARGET inline __attribute__((always_inline)) void chunk_tiles(
    const float* x, const float* zeros, const WinogradF4Conv::Shape& s, int64_t k0, int64_t count,
    int64_t tiles, float* V, const Tile& tile) {
  const size_t vs = size_t(tiles * s.Ci);
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < kPts; ++i)
        std::memset(V + i * vs + t * s.Ci, 0, size_t(s.Ci) * sizeof(float));
      continue;
    }
    const float* px[kPoints];
    winograd_tile_pixels<4>(x, zeros, s.H, s.W, s.Ci, winograd_tile<4>(k0 + t, s.H, s.W), px);
    for (int64_t c = 0; c < s.Ci; c += L::kLanes) tile(px, c, V + t * s.Ci, vs);
  }
}

// A chunk's input transform: tiles [k0, k0 + count) of x into V [36, tiles, Ci].
template <class L>
SDC_WINO_F32_TARGET void input_chunk(const float* x, const float* zeros,
                                     const WinogradF4Conv::Shape& s, int64_t k0, int64_t count,
                                     int64_t tiles, float* V) {
  chunk_tiles<L, kPoints>(x, zeros, s, k0, count, tiles, V,
                          [](const float* const px[kPoints], int64_t c, float* v, size_t vs)
                              SDC_WINO_F32_TARGET { input_tile<L>(px, c, v, vs); });
}

// A chunk's output transform: the blocks of tiles [k0, k0 + count) from their products M
// [36, tiles, Co] (point stride ms).
template <class L, bool kRelu>
SDC_WINO_F32_TARGET void output_chunk(const float* M, size_t ms, const WinogradF4Conv::Shape& s,
                                      int64_t k0, int64_t count, const float* bias,
                                      const float* add, float* y) {
  for (int64_t t = 0; t < count; ++t) {
    const WinogradTile p = winograd_tile<4>(k0 + t, s.H, s.W);
    const float* a[16] = {};
    float* o[16] = {};
    for (int k = 0; k < 16; ++k) {
      const int64_t oy = 4 * p.ty + k / 4, ox = 4 * p.tx + k % 4;
      if (oy >= s.H || ox >= s.W) continue;
      const size_t at = size_t(((p.n * s.H + oy) * s.W + ox) * s.Co);
      o[k] = y + at;
      if (add) a[k] = add + at;
    }
    const float* m = M + t * s.Co;
    for (int64_t c = 0; c < s.Co; c += L::kLanes)
      output_tile<L, kRelu>(m, ms, c, bias ? L::load(bias + c) : L::zero(), a, o);
  }
}

template <class L>
SDC_WINO_F32_TARGET void output_chunk_any(const float* M, size_t ms, const WinogradF4Conv::Shape& s,
                                          int64_t k0, int64_t count, const float* bias,
                                          const float* add, float* y, bool relu) {
  if (relu)
    output_chunk<L, true>(M, ms, s, k0, count, bias, add, y);
  else
    output_chunk<L, false>(M, ms, s, k0, count, bias, add, y);
}

// ---- F(4x4, 2x2) phases of a 2x-upsampling convolution (winograd_upsample_f4.h) ---------------

constexpr int kPhasePoints = kWinogradUpsampleF4Points;

// B^T over 5 values d[i * stride] into r[i * rs] (points 0, 1, -1, 2, infinity, rows scaled to
// integers): r0 = 2 d0 - d1 - 2 d2 + d3, r1 = 2 d1 + d2 - d3, r2 = 3 d2 - 2 d1 - d3,
// r3 = d3 - d1, r4 = 2 d1 - d2 - 2 d3 + d4.
template <class L>
SDC_WINO_F32_TARGET inline __attribute__((always_inline)) void phase_input_line(
    const typename L::Vec* d, int stride, typename L::Vec* r, int rs) {
  using V = typename L::Vec;
  const V d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride], d4 = d[4 * stride];
  const V two = L::set1(2.f), minus_two = L::set1(-2.f);
  const V e = L::sub(d3, d1), f = L::sub(d2, d3);
  r[0] = L::fma(two, L::sub(d0, d2), e);
  r[rs] = L::fma(two, d1, f);
  r[2 * rs] = L::fma(two, L::sub(d2, d1), f);
  r[3 * rs] = e;
  r[4 * rs] = L::fma(minus_two, e, L::sub(d4, d2));
}

// Phase (py, px)'s 25 values B^T d B of the kLanes channels at c, d the 5x5 sub-tile at rows
// py..py+4, columns px..px+4 of the 6x6 tile `px6` (row-major), into V's 25 rows (row stride vs).
template <class L>
SDC_WINO_F32_TARGET inline __attribute__((always_inline)) void phase_input_tile(
    const float* const px6[kPoints], int py, int px, int64_t c, float* v, size_t vs) {
  using V = typename L::Vec;
  V d[kPhasePoints];
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) d[5 * i + j] = L::load(px6[6 * (py + i) + px + j] + c);
  V t[kPhasePoints];  // B^T d: each column's combinations of rows
  for (int j = 0; j < 5; ++j) phase_input_line<L>(d + j, 5, t + j, 5);
  for (int i = 0; i < 5; ++i) {  // (B^T d) B: each row's combinations of columns
    V r[5];
    phase_input_line<L>(t + 5 * i, 1, r, 1);
    for (int k = 0; k < 5; ++k) L::store(v + (5 * i + k) * vs + c, r[k]);
  }
}

// A^T over 5 values m[i * stride] into y[i * ys], 4 of them: y0 = m0 + m1 + m2 + m3,
// y1 = m1 - m2 + 2 m3, y2 = m1 + m2 + 4 m3, y3 = m1 - m2 + 8 m3 + m4.
template <class L>
SDC_WINO_F32_TARGET inline __attribute__((always_inline)) void phase_output_line(
    const typename L::Vec* m, int stride, typename L::Vec* y, int ys) {
  using V = typename L::Vec;
  const V s = L::add(m[stride], m[2 * stride]), t = L::sub(m[stride], m[2 * stride]);
  const V m3 = m[3 * stride];
  y[0] = L::add(L::add(m[0], s), m3);
  y[ys] = L::fma(L::set1(2.f), m3, t);
  y[2 * ys] = L::fma(L::set1(4.f), m3, s);
  y[3 * ys] = L::add(L::fma(L::set1(8.f), m3, t), m[4 * stride]);
}

// A^T M A of one phase of a tile, kLanes output channels at c, plus the bias, into its (up to) 16
// outputs (out[k] null: past the image's edge).
template <class L>
SDC_WINO_F32_TARGET inline __attribute__((always_inline)) void phase_output_tile(
    const float* m, size_t ms, int64_t c, typename L::Vec b, float* const out[16]) {
  using V = typename L::Vec;
  V q[20];  // A^T over each row's columns: 5 rows of 4
  for (int i = 0; i < 5; ++i) {
    V p[5];
    for (int k = 0; k < 5; ++k) p[k] = L::load(m + (5 * i + k) * ms + c);
    phase_output_line<L>(p, 1, q + 4 * i, 1);
  }
  for (int k = 0; k < 4; ++k) {  // then over the rows, column k
    V y[4];
    phase_output_line<L>(q + k, 4, y, 1);
    for (int r = 0; r < 4; ++r)
      if (out[4 * r + k]) L::store(out[4 * r + k] + c, L::add(y[r], b));
  }
}

// Phase p = 2 py + px of tiles [k0, k0 + count) of the small image x into V [25, tiles, Ci].
template <class L>
SDC_WINO_F32_TARGET void phase_input_chunk(const float* x, const float* zeros,
                                           const WinogradF4Conv::Shape& s, int p, int64_t k0,
                                           int64_t count, int64_t tiles, float* V) {
  chunk_tiles<L, kPhasePoints>(
      x, zeros, s, k0, count, tiles, V,
      [p](const float* const px[kPoints], int64_t c, float* v, size_t vs)
          SDC_WINO_F32_TARGET { phase_input_tile<L>(px, p / 2, p % 2, c, v, vs); });
}

// Phase p of tiles [k0, k0 + count) from their products M [25, tiles, Co] (point stride ms) plus
// the bias into the big image y [N, 2H, 2W, Co]: small position (i, j) of phase (py, px) is big
// pixel (2 i + py, 2 j + px).
template <class L>
SDC_WINO_F32_TARGET void phase_output_chunk(const float* M, size_t ms,
                                            const WinogradF4Conv::Shape& s, int p, int64_t k0,
                                            int64_t count, const float* bias, float* y) {
  const int64_t H2 = 2 * s.H, W2 = 2 * s.W;
  for (int64_t t = 0; t < count; ++t) {
    const WinogradTile tp = winograd_tile<4>(k0 + t, s.H, s.W);
    float* o[16] = {};
    for (int k = 0; k < 16; ++k) {
      const int64_t i = 4 * tp.ty + k / 4, j = 4 * tp.tx + k % 4;  // small position
      if (i < s.H && j < s.W) o[k] = y + ((tp.n * H2 + 2 * i + p / 2) * W2 + 2 * j + p % 2) * s.Co;
    }
    const float* m = M + t * s.Co;
    for (int64_t c = 0; c < s.Co; c += L::kLanes)
      phase_output_tile<L>(m, ms, c, bias ? L::load(bias + c) : L::zero(), o);
  }
}

}  // namespace
}  // namespace sdc::cpu::wino4_kernel
