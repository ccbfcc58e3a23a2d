// Winograd F(4x4, 3x3) in f32 (winograd_f4.h): the kernel transform at planning (in double), the
// input and output transforms in AVX2 + FMA, 8 channels at a time, and the per-thread chunks
// around oneDNN's products.
//
// With d a 6x6 input tile, g the 3x3 kernel and Y the 4x4 output block (interpolation points 0,
// +-1, +-2 and infinity, Lavin & Gray 2015):
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A
//   B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0  4 -4 -1 1 0;
//          0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0  4  0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0;  0 1 -1 2 -2 0;  0 1 1 4 4 0;  0 1 -1 8 -8 1]
#include "backend/cpu/winograd_f4.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cpu/kernel_transform.h"
#include "backend/cpu/simd_avx2.h"
#include "backend/cpu/winograd_f32.h"
#include "common/error.h"

namespace sdc::cpu {

namespace {

constexpr int kPoints = 36;

// Tiles per chunk: each chunk reads all 36 transformed kernels (1.3-38 MiB at 64-512 channels),
// so a chunk is their reuse; about a quarter of a thread's share keeps many-core CPUs balanced.
int64_t chunk_tiles_for(int64_t total, int threads) {
  return std::clamp<int64_t>(total / (4 * int64_t(std::max(1, threads))), 32, 128);
}

// Tile k of N images of H x W pixels, numbered across rows and images: the 4x4 block of pixels
// from (4 ty, 4 tx) of image n.
WinogradTile f4_tile(int64_t k, int64_t H, int64_t W) {
  const int64_t th = (H + 3) / 4, tw = (W + 3) / 4;
  return {k / (th * tw), k / tw % th, k % tw};
}

// B^T over 6 values (a column or a row of a tile): d[i * stride].
SDC_AVX2_INLINE void input_line(const __m256* d, int stride, __m256* r, int rs) {
  const __m256 d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride],
               d4 = d[4 * stride], d5 = d[5 * stride];
  const __m256 four = _mm256_set1_ps(4.f), five = _mm256_set1_ps(5.f);
  const __m256 a = _mm256_fnmadd_ps(four, d2, d4), b = _mm256_fnmadd_ps(four, d1, d3);
  const __m256 c = _mm256_sub_ps(d4, d2),
               e = _mm256_add_ps(_mm256_sub_ps(d3, d1), _mm256_sub_ps(d3, d1));
  r[0] = _mm256_fmadd_ps(four, d0, _mm256_fnmadd_ps(five, d2, d4));
  r[rs] = _mm256_add_ps(a, b);
  r[2 * rs] = _mm256_sub_ps(a, b);
  r[3 * rs] = _mm256_add_ps(c, e);
  r[4 * rs] = _mm256_sub_ps(c, e);
  r[5 * rs] = _mm256_fmadd_ps(four, d1, _mm256_fnmadd_ps(five, d3, d5));
}

// B^T d B for the 8 channels at c of a tile's 36 pixels `px` (row-major), into V's 36 rows (row
// stride vs).
SDC_AVX2_INLINE void input_tile(const float* const px[kPoints], int64_t c, float* v, size_t vs) {
  __m256 d[kPoints];
  for (int i = 0; i < kPoints; ++i) d[i] = _mm256_loadu_ps(px[i] + c);
  __m256 t[kPoints];  // B^T d: each column's combinations of rows
  for (int j = 0; j < 6; ++j) input_line(d + j, 6, t + j, 6);
  for (int i = 0; i < 6; ++i) {  // (B^T d) B: each row's combinations of columns
    __m256 r[6];
    input_line(t + 6 * i, 1, r, 1);
    for (int k = 0; k < 6; ++k) _mm256_storeu_ps(v + (6 * i + k) * vs + c, r[k]);
  }
}

// A^T over 6 values m[i * stride] into 4.
SDC_AVX2_INLINE void output_line(const __m256* m, int stride, __m256* y, int ys) {
  const __m256 s12 = _mm256_add_ps(m[stride], m[2 * stride]),
               d12 = _mm256_sub_ps(m[stride], m[2 * stride]),
               s34 = _mm256_add_ps(m[3 * stride], m[4 * stride]),
               d34 = _mm256_sub_ps(m[3 * stride], m[4 * stride]);
  y[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
  y[ys] = _mm256_fmadd_ps(_mm256_set1_ps(2.f), d34, d12);
  y[2 * ys] = _mm256_fmadd_ps(_mm256_set1_ps(4.f), s34, s12);
  y[3 * ys] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.f), d34, d12), m[5 * stride]);
}

// A^T M A for the 8 output channels at c of a tile, plus the bias and the addend, then a ReLU
// (kRelu), into its (up to) 16 output pixels (out[k] null: over the image's edge).
template <bool kRelu>
SDC_AVX2_INLINE void output_tile(const float* m, size_t ms, int64_t c, __m256 b,
                                 const float* const add[16], float* const out[16]) {
  __m256 q[24];  // A^T over each row's columns: 6 rows of 4
  for (int i = 0; i < 6; ++i) {
    __m256 p[6];
    for (int k = 0; k < 6; ++k) p[k] = _mm256_loadu_ps(m + (6 * i + k) * ms + c);
    output_line(p, 1, q + 4 * i, 1);
  }
  for (int k = 0; k < 4; ++k) {  // then over the rows, column k
    __m256 y[4];
    output_line(q + k, 4, y, 1);
    for (int r = 0; r < 4; ++r) {
      const int o = 4 * r + k;
      if (!out[o]) continue;
      __m256 v = _mm256_add_ps(y[r], b);
      if (add[o]) v = _mm256_add_ps(v, _mm256_loadu_ps(add[o] + c));
      if constexpr (kRelu) v = _mm256_max_ps(v, _mm256_setzero_ps());
      _mm256_storeu_ps(out[o] + c, v);
    }
  }
}

// One chunk's input transform: tiles [k0, k0 + count) of x into V [36, tiles, Ci]; the rest of
// V's tiles zeroed (their products are never read; zeros keep stale NaNs and denormals out).
SDC_AVX2 void input_chunk(const float* x, const float* zeros, const WinogradF4Conv::Shape& s,
                          int64_t k0, int64_t count, int64_t tiles, float* V) {
  const size_t vs = size_t(tiles * s.Ci);
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < kPoints; ++i)
        std::memset(V + i * vs + t * s.Ci, 0, size_t(s.Ci) * sizeof(float));
      continue;
    }
    const WinogradTile p = f4_tile(k0 + t, s.H, s.W);
    const float* px[kPoints];
    for (int i = 0; i < kPoints; ++i) {
      const int64_t iy = 4 * p.ty - 1 + i / 6, ix = 4 * p.tx - 1 + i % 6;
      px[i] = iy < 0 || iy >= s.H || ix < 0 || ix >= s.W ? zeros
                                                         : x + ((p.n * s.H + iy) * s.W + ix) * s.Ci;
    }
    for (int64_t c = 0; c < s.Ci; c += 8) input_tile(px, c, V + t * s.Ci, vs);
  }
}

// One chunk's output transform: the blocks of tiles [k0, k0 + count) from their products M
// [36, tiles, Co].
template <bool kRelu>
SDC_AVX2 void output_chunk(const float* M, size_t ms, const WinogradF4Conv::Shape& s, int64_t k0,
                           int64_t count, const float* bias, const float* add, float* y) {
  for (int64_t t = 0; t < count; ++t) {
    const WinogradTile p = f4_tile(k0 + t, s.H, s.W);
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
    for (int64_t c = 0; c < s.Co; c += 8)
      output_tile<kRelu>(m, ms, c, bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps(), a, o);
  }
}

}  // namespace

bool winograd_f4_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads) {
  return winograd_f32::available() && Ci % 8 == 0 && Co % 8 == 0 && Ci >= 64 && Co >= 64 &&
         winograd_fills_threads(winograd_f4_tile_count(N, H, W), threads) &&
         WinogradProducts::stacks_kernels(WinogradProducts::Type::F32);
}

TensorRef winograd_f4_weights(const TensorRef& w) {
  check_3x3_kernel(w, "Winograd F(4x4, 3x3) convolution weight");
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  thread_local std::vector<float> staging;
  staging.resize(size_t(kPoints * Ci * Co));
  float* out = staging.data();
  static constexpr double G[6][3] = {{1. / 4, 0, 0},
                                     {-1. / 6, -1. / 6, -1. / 6},
                                     {-1. / 6, 1. / 6, -1. / 6},
                                     {1. / 24, 1. / 12, 1. / 6},
                                     {1. / 24, -1. / 12, 1. / 6},
                                     {0, 0, 1}};
  for_each_3x3_kernel(w, [out, Co, Ci](int64_t o, int64_t i, const float* g) {
    double gg[6][3];  // G g
    for (int r = 0; r < 6; ++r)
      for (int c = 0; c < 3; ++c)
        gg[r][c] = G[r][0] * g[c] + G[r][1] * g[3 + c] + G[r][2] * g[6 + c];
    for (int r = 0; r < 6; ++r)  // (G g) G^T
      for (int c = 0; c < 6; ++c) {
        const double u = gg[r][0] * G[c][0] + gg[r][1] * G[c][1] + gg[r][2] * G[c][2];
        out[(size_t(6 * r + c) * Ci + i) * Co + o] = float(u);
      }
  });
  return staged_tensor(staging, Shape{kPoints, Ci, Co}, w.source);
}

WinogradF4Conv::WinogradF4Conv(const Shape& s, const dnnl::engine& engine, int threads)
    : s_(s),
      threads_(std::max(1, threads)),
      tiles_(chunk_tiles_for(winograd_f4_tile_count(s.N, s.H, s.W), threads_)),
      products_(kPoints, kPoints, tiles_, s.Ci, s.Co, engine, WinogradProducts::Type::F32),
      zeros_(size_t(s.Ci), 0.f) {
  if (s.Ci % 8 || s.Co % 8)
    throw Error("winograd_f4.cpp", "f32 Winograd F(4x4, 3x3) channels", "multiples of 8",
                std::to_string(s.Ci) + " -> " + std::to_string(s.Co));
}

void WinogradF4Conv::run(const float* x, const void* u, const float* bias, const float* add,
                         float* y, void* scratch, bool relu) const {
  const Shape s = s_;
  const int64_t total = winograd_f4_tile_count(s.N, s.H, s.W), tiles = tiles_;
  const int64_t chunks = (total + tiles - 1) / tiles;
  const size_t thread_bytes = products_.thread_scratch_bytes();
#pragma omp parallel num_threads(threads_)
  {
    // Inside this parallel region oneDNN runs the products on the calling thread alone.
    auto* mine = static_cast<uint8_t*>(scratch) + thread_bytes * size_t(omp_get_thread_num());
    WinogradProducts::Bound products = products_.bind(u, mine);
    const size_t ms = size_t(tiles * s.Co);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t k0 = k * tiles, count = std::min(tiles, total - k0);
      input_chunk(x, zeros_.data(), s, k0, count, tiles, static_cast<float*>(products.tiles()));
      products.run();
      const auto* M = static_cast<const float*>(products.products());
      if (relu)
        output_chunk<true>(M, ms, s, k0, count, bias, add, y);
      else
        output_chunk<false>(M, ms, s, k0, count, bias, add, y);
    }
  }
}

}  // namespace sdc::cpu
