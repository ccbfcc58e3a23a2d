// The f32 plans' F(2x2, 3x3) transforms and F(2x2, 2x2) upsampling phases (winograd_f32.h)
// written once for any vector width. Included only by winograd_f32_avx2.cpp (8 lanes) and
// winograd_f32_avx512.cpp (16 lanes), which supply a lanes policy (winograd_f32_lanes.h) and
// define SDC_WINO_F32_TARGET, their target attribute, first; everything here is in an anonymous
// namespace, so each compiles its own copies for its own target. Channels come in multiples of
// kLanes (winograd_f32.cpp picks the width).
#pragma once

#ifndef SDC_WINO_F32_TARGET
#error "winograd_f32_kernel.h: define SDC_WINO_F32_TARGET (the including file's target) first"
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backend/cpu/winograd_common.h"

namespace sdc::cpu::wino_f32_kernel {
namespace {

#define SDC_WINO_F32_INLINE SDC_WINO_F32_TARGET inline __attribute__((always_inline))

// B^T d B for the kLanes channels at c of a tile's 16 pixels, into V's 16 rows (row stride vs).
template <class L>
SDC_WINO_F32_INLINE void input_tile(const float* const px[16], int64_t c, float* v, size_t vs) {
  using Vec = typename L::Vec;
  Vec d[16];
  for (int i = 0; i < 16; ++i) d[i] = L::load(px[i] + c);
  Vec t[16];  // B^T d: combinations of rows
  for (int j = 0; j < 4; ++j) {
    t[j] = L::sub(d[j], d[8 + j]);
    t[4 + j] = L::add(d[4 + j], d[8 + j]);
    t[8 + j] = L::sub(d[8 + j], d[4 + j]);
    t[12 + j] = L::sub(d[4 + j], d[12 + j]);
  }
  for (int r = 0; r < 4; ++r) {  // (B^T d) B: combinations of columns
    const Vec* q = t + 4 * r;
    float* row = v + 4 * r * vs + c;
    L::store(row, L::sub(q[0], q[2]));
    L::store(row + vs, L::add(q[1], q[2]));
    L::store(row + 2 * vs, L::sub(q[2], q[1]));
    L::store(row + 3 * vs, L::sub(q[1], q[3]));
  }
}

// A^T M A for the kLanes output channels at c of a tile, plus the bias and the addend, then a
// ReLU (kRelu), into its (up to) four output pixels.
template <class L, bool kRelu>
SDC_WINO_F32_INLINE void output_block(const float* m, size_t ms, int64_t c, typename L::Vec b,
                                      const float* const add[4], float* const out[4]) {
  using Vec = typename L::Vec;
  Vec p[16];
  for (int i = 0; i < 16; ++i) p[i] = L::load(m + i * ms + c);
  Vec s0[4], s1[4];  // A^T M: the two output rows
  for (int j = 0; j < 4; ++j) {
    s0[j] = L::add(L::add(p[j], p[4 + j]), p[8 + j]);
    s1[j] = L::sub(L::sub(p[4 + j], p[8 + j]), p[12 + j]);
  }
  const Vec y[4] = {L::add(L::add(s0[0], s0[1]), s0[2]), L::sub(L::sub(s0[1], s0[2]), s0[3]),
                    L::add(L::add(s1[0], s1[1]), s1[2]), L::sub(L::sub(s1[1], s1[2]), s1[3])};
  for (int k = 0; k < 4; ++k) {
    if (!out[k]) continue;  // a block hanging over an odd image's edge
    Vec v = L::add(y[k], b);
    if (add[k]) v = L::add(v, L::load(add[k] + c));
    if constexpr (kRelu) v = L::max(v, L::zero());
    L::store(out[k] + c, v);
  }
}

// Upsampling phase (py, px): the 9 values B^T d B of the kLanes channels at c, d the 3x3 sub-tile
// at rows py..py+2, columns px..px+2 of the 4x4 tile, into V's 9 rows (row stride vs).
template <class L>
SDC_WINO_F32_INLINE void upsample_input_tile(const float* const tile[16], int py, int px, int64_t c,
                                             float* v, size_t vs) {
  using Vec = typename L::Vec;
  Vec t[3][3];  // B^T over the rows
  for (int j = 0; j < 3; ++j) {
    const Vec r0 = L::load(tile[4 * py + px + j] + c),
              r1 = L::load(tile[4 * (py + 1) + px + j] + c),
              r2 = L::load(tile[4 * (py + 2) + px + j] + c);
    t[0][j] = L::sub(r0, r1);
    t[1][j] = r1;
    t[2][j] = L::sub(r2, r1);
  }
  for (int a = 0; a < 3; ++a) {  // then B over the columns
    L::store(v + (3 * a) * vs + c, L::sub(t[a][0], t[a][1]));
    L::store(v + (3 * a + 1) * vs + c, t[a][1]);
    L::store(v + (3 * a + 2) * vs + c, L::sub(t[a][2], t[a][1]));
  }
}

// A^T M A of one phase of a tile, kLanes output channels at c, plus the bias into its outputs.
template <class L>
SDC_WINO_F32_INLINE void upsample_output_tile(const float* m, size_t ms, int64_t c,
                                              typename L::Vec b, float* const out[4]) {
  using Vec = typename L::Vec;
  Vec q[9];
  for (int i = 0; i < 9; ++i) q[i] = L::load(m + i * ms + c);
  Vec s0[3], s1[3];  // A^T M: the two output rows
  for (int j = 0; j < 3; ++j) {
    s0[j] = L::add(q[j], q[3 + j]);
    s1[j] = L::add(q[3 + j], q[6 + j]);
  }
  const Vec y[4] = {L::add(s0[0], s0[1]), L::add(s0[1], s0[2]), L::add(s1[0], s1[1]),
                    L::add(s1[1], s1[2])};
  for (int k = 0; k < 4; ++k)
    if (out[k]) L::store(out[k] + c, L::add(y[k], b));
}

template <class L>
SDC_WINO_F32_TARGET void upsample_input_chunk(const float* x, const float* zeros, int64_t H,
                                              int64_t W, int64_t Ci, int p, int64_t k0,
                                              int64_t count, int64_t tiles, float* V) {
  const size_t vs = size_t(tiles * Ci);
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < 9; ++i) std::memset(V + i * vs + t * Ci, 0, size_t(Ci) * sizeof(float));
      continue;
    }
    const float* px[16];
    winograd_tile_pixels(x, zeros, H, W, Ci, winograd_tile(k0 + t, H, W), px);
    for (int64_t c = 0; c < Ci; c += L::kLanes)
      upsample_input_tile<L>(px, p / 2, p % 2, c, V + t * Ci, vs);
  }
}

template <class L>
SDC_WINO_F32_TARGET void upsample_output_chunk(const float* M, size_t ms, int64_t H, int64_t W,
                                               int64_t Co, int p, int64_t k0, int64_t count,
                                               const float* bias, float* y) {
  const int64_t H2 = 2 * H, W2 = 2 * W;
  for (int64_t t = 0; t < count; ++t) {
    const WinogradTile tp = winograd_tile(k0 + t, H, W);
    float* o[4] = {};
    for (int k = 0; k < 4; ++k) {
      const int64_t i = 2 * tp.ty + k / 2, j = 2 * tp.tx + k % 2;  // small position
      if (i < H && j < W) o[k] = y + ((tp.n * H2 + 2 * i + p / 2) * W2 + 2 * j + p % 2) * Co;
    }
    const float* m = M + t * Co;
    for (int64_t c = 0; c < Co; c += L::kLanes)
      upsample_output_tile<L>(m, ms, c, bias ? L::load(bias + c) : L::zero(), o);
  }
}

template <class L>
SDC_WINO_F32_TARGET void input_chunk(const float* x, const float* zeros, int64_t H, int64_t W,
                                     int64_t Ci, int64_t k0, int64_t count, int64_t tiles,
                                     int64_t v_tiles, float* V) {
  const size_t vs = size_t(v_tiles * Ci);
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < 16; ++i) std::memset(V + i * vs + t * Ci, 0, size_t(Ci) * sizeof(float));
      continue;
    }
    const float* px[16];
    winograd_tile_pixels(x, zeros, H, W, Ci, winograd_tile(k0 + t, H, W), px);
    for (int64_t c = 0; c < Ci; c += L::kLanes) input_tile<L>(px, c, V + t * Ci, vs);
  }
}

template <class L, bool kRelu>
SDC_WINO_F32_TARGET void output_blocks(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co,
                                       int64_t k0, int64_t count, const float* bias,
                                       const float* add, float* y) {
  for (int64_t t = 0; t < count; ++t) {
    const WinogradTile p = winograd_tile(k0 + t, H, W);
    const float* a[4] = {};
    float* o[4] = {};
    for (int k = 0; k < 4; ++k) {
      const int64_t oy = 2 * p.ty + k / 2, ox = 2 * p.tx + k % 2;
      if (oy >= H || ox >= W) continue;
      const size_t at = size_t(((p.n * H + oy) * W + ox) * Co);
      o[k] = y + at;
      if (add) a[k] = add + at;
    }
    const float* m = M + t * Co;
    for (int64_t c = 0; c < Co; c += L::kLanes)
      output_block<L, kRelu>(m, ms, c, bias ? L::load(bias + c) : L::zero(), a, o);
  }
}

template <class L>
SDC_WINO_F32_TARGET void output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co,
                                      int64_t k0, int64_t count, const float* bias,
                                      const float* add, float* y, bool relu) {
  if (relu)
    output_blocks<L, true>(M, ms, H, W, Co, k0, count, bias, add, y);
  else
    output_blocks<L, false>(M, ms, H, W, Co, k0, count, bias, add, y);
}

#undef SDC_WINO_F32_INLINE

}  // namespace
}  // namespace sdc::cpu::wino_f32_kernel
