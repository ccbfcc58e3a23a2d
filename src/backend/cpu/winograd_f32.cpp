// Winograd transforms for f32 plans (winograd_f32.h), 8 channels at a time in AVX2: the same
// additions as the AVX-512 bf16 ones in winograd_conv.cpp and winograd_upsample.cpp, with no
// rounding between.
#include "backend/cpu/winograd_f32.h"

#include <cstring>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/simd_avx2.h"
#include "backend/cpu/winograd_common.h"

namespace sdc::cpu::winograd_f32 {

bool available() {
  return kernel_isa() != KernelIsa::Scalar;
}

namespace {

// B^T d B for the 8 channels at c of a tile's 16 pixels, into V's 16 rows (row stride vs).
SDC_AVX2_INLINE void input_tile(const float* const px[16], int64_t c, float* v, size_t vs) {
  __m256 d[16];
  for (int i = 0; i < 16; ++i) d[i] = _mm256_loadu_ps(px[i] + c);
  __m256 t[16];  // B^T d: combinations of rows
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm256_sub_ps(d[j], d[8 + j]);
    t[4 + j] = _mm256_add_ps(d[4 + j], d[8 + j]);
    t[8 + j] = _mm256_sub_ps(d[8 + j], d[4 + j]);
    t[12 + j] = _mm256_sub_ps(d[4 + j], d[12 + j]);
  }
  for (int r = 0; r < 4; ++r) {  // (B^T d) B: combinations of columns
    const __m256* q = t + 4 * r;
    float* row = v + 4 * r * vs + c;
    _mm256_storeu_ps(row, _mm256_sub_ps(q[0], q[2]));
    _mm256_storeu_ps(row + vs, _mm256_add_ps(q[1], q[2]));
    _mm256_storeu_ps(row + 2 * vs, _mm256_sub_ps(q[2], q[1]));
    _mm256_storeu_ps(row + 3 * vs, _mm256_sub_ps(q[1], q[3]));
  }
}

// A^T M A for the 8 output channels at c of a tile, plus the bias and the addend, then a ReLU
// (kRelu), into its (up to) four output pixels.
template <bool kRelu>
SDC_AVX2_INLINE void output_block(const float* m, size_t ms, int64_t c, __m256 b,
                                  const float* const add[4], float* const out[4]) {
  __m256 p[16];
  for (int i = 0; i < 16; ++i) p[i] = _mm256_loadu_ps(m + i * ms + c);
  __m256 s0[4], s1[4];  // A^T M: the two output rows
  for (int j = 0; j < 4; ++j) {
    s0[j] = _mm256_add_ps(_mm256_add_ps(p[j], p[4 + j]), p[8 + j]);
    s1[j] = _mm256_sub_ps(_mm256_sub_ps(p[4 + j], p[8 + j]), p[12 + j]);
  }
  const __m256 y[4] = {_mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), s0[2]),
                       _mm256_sub_ps(_mm256_sub_ps(s0[1], s0[2]), s0[3]),
                       _mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), s1[2]),
                       _mm256_sub_ps(_mm256_sub_ps(s1[1], s1[2]), s1[3])};
  for (int k = 0; k < 4; ++k) {
    if (!out[k]) continue;  // a block hanging over an odd image's edge
    __m256 v = _mm256_add_ps(y[k], b);
    if (add[k]) v = _mm256_add_ps(v, _mm256_loadu_ps(add[k] + c));
    if constexpr (kRelu) v = _mm256_max_ps(v, _mm256_setzero_ps());
    _mm256_storeu_ps(out[k] + c, v);
  }
}

// Upsampling phase (py, px): the 9 values B^T d B of the 8 channels at c, d the 3x3 sub-tile at
// rows py..py+2, columns px..px+2 of the 4x4 tile, into V's 9 rows (row stride vs).
SDC_AVX2_INLINE void upsample_input_tile(const float* const tile[16], int py, int px, int64_t c,
                                         float* v, size_t vs) {
  __m256 t[3][3];  // B^T over the rows
  for (int j = 0; j < 3; ++j) {
    const __m256 r0 = _mm256_loadu_ps(tile[4 * py + px + j] + c),
                 r1 = _mm256_loadu_ps(tile[4 * (py + 1) + px + j] + c),
                 r2 = _mm256_loadu_ps(tile[4 * (py + 2) + px + j] + c);
    t[0][j] = _mm256_sub_ps(r0, r1);
    t[1][j] = r1;
    t[2][j] = _mm256_sub_ps(r2, r1);
  }
  for (int a = 0; a < 3; ++a) {  // then B over the columns
    _mm256_storeu_ps(v + (3 * a) * vs + c, _mm256_sub_ps(t[a][0], t[a][1]));
    _mm256_storeu_ps(v + (3 * a + 1) * vs + c, t[a][1]);
    _mm256_storeu_ps(v + (3 * a + 2) * vs + c, _mm256_sub_ps(t[a][2], t[a][1]));
  }
}

// A^T M A of one phase of a tile, 8 output channels at c, plus the bias into its outputs.
SDC_AVX2_INLINE void upsample_output_tile(const float* m, size_t ms, int64_t c, __m256 b,
                                          float* const out[4]) {
  __m256 q[9];
  for (int i = 0; i < 9; ++i) q[i] = _mm256_loadu_ps(m + i * ms + c);
  __m256 s0[3], s1[3];  // A^T M: the two output rows
  for (int j = 0; j < 3; ++j) {
    s0[j] = _mm256_add_ps(q[j], q[3 + j]);
    s1[j] = _mm256_add_ps(q[3 + j], q[6 + j]);
  }
  const __m256 y[4] = {_mm256_add_ps(s0[0], s0[1]), _mm256_add_ps(s0[1], s0[2]),
                       _mm256_add_ps(s1[0], s1[1]), _mm256_add_ps(s1[1], s1[2])};
  for (int k = 0; k < 4; ++k)
    if (out[k]) _mm256_storeu_ps(out[k] + c, _mm256_add_ps(y[k], b));
}

}  // namespace

SDC_AVX2 void upsample_input_chunk(const float* x, const float* zeros, int64_t H, int64_t W,
                                   int64_t Ci, int p, int64_t k0, int64_t count, int64_t tiles,
                                   float* V) {
  const size_t vs = size_t(tiles * Ci);
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < 9; ++i) std::memset(V + i * vs + t * Ci, 0, size_t(Ci) * sizeof(float));
      continue;
    }
    const float* px[16];
    winograd_tile_pixels(x, zeros, H, W, Ci, winograd_tile(k0 + t, H, W), px);
    for (int64_t c = 0; c < Ci; c += 8) upsample_input_tile(px, p / 2, p % 2, c, V + t * Ci, vs);
  }
}

SDC_AVX2 void upsample_output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co,
                                    int p, int64_t k0, int64_t count, const float* bias, float* y) {
  const int64_t H2 = 2 * H, W2 = 2 * W;
  for (int64_t t = 0; t < count; ++t) {
    const WinogradTile tp = winograd_tile(k0 + t, H, W);
    float* o[4] = {};
    for (int k = 0; k < 4; ++k) {
      const int64_t i = 2 * tp.ty + k / 2, j = 2 * tp.tx + k % 2;  // small position
      if (i < H && j < W) o[k] = y + ((tp.n * H2 + 2 * i + p / 2) * W2 + 2 * j + p % 2) * Co;
    }
    const float* m = M + t * Co;
    for (int64_t c = 0; c < Co; c += 8)
      upsample_output_tile(m, ms, c, bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps(), o);
  }
}

SDC_AVX2 void input_chunk(const float* x, const float* zeros, int64_t H, int64_t W, int64_t Ci,
                          int64_t k0, int64_t count, int64_t tiles, int64_t v_tiles, float* V) {
  const size_t vs = size_t(v_tiles * Ci);
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < 16; ++i) std::memset(V + i * vs + t * Ci, 0, size_t(Ci) * sizeof(float));
      continue;
    }
    const float* px[16];
    winograd_tile_pixels(x, zeros, H, W, Ci, winograd_tile(k0 + t, H, W), px);
    for (int64_t c = 0; c < Ci; c += 8) input_tile(px, c, V + t * Ci, vs);
  }
}

template <bool kRelu>
SDC_AVX2 void output_blocks(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int64_t k0,
                            int64_t count, const float* bias, const float* add, float* y) {
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
    for (int64_t c = 0; c < Co; c += 8)
      output_block<kRelu>(m, ms, c, bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps(), a, o);
  }
}

void output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int64_t k0,
                  int64_t count, const float* bias, const float* add, float* y, bool relu) {
  if (relu)
    output_blocks<true>(M, ms, H, W, Co, k0, count, bias, add, y);
  else
    output_blocks<false>(M, ms, H, W, Co, k0, count, bias, add, y);
}

}  // namespace sdc::cpu::winograd_f32
