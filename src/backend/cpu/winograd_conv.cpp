// Winograd F(2x2, 3x3) convolution (winograd_conv.h): the kernel transform at planning, the
// input and output transforms in AVX-512, and the per-thread chunks around oneDNN's products.
//
// With d a 4x4 input tile, g the 3x3 kernel and Y the 2x2 output block:
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// Only additions in B and A: the input transform rounds sums of four inputs to bf16 once, and
// the output transform works on the f32 products.
#include "backend/cpu/winograd_conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernel_transform.h"
#include "backend/cpu/simd.h"
#include "backend/cpu/winograd_common.h"

namespace sdc::cpu {

namespace {

// Tiles per chunk. Every chunk reads all 16 transformed kernels (2-8 MiB at 256-512 channels),
// so the chunk's length is their reuse: while the products were one batched matmul, which copied
// the kernels into its blocked layout on every call, 256 tiles made the VAE's Winograd layers
// ~10 % faster than 32-64 (Zen 5, 2 threads; 128 and 512 slower than 256). With the kernels
// packed once (WinogradProducts) 64, 128 and 256 measured alike. Fewer tiles where that leaves
// under 4 chunks per thread, for the balance of many-core CPUs (and their scratch).
int64_t chunk_tiles(const WinogradConv::Shape& s, int threads) {
  return winograd_chunk_tiles(winograd_tile_count(s.N, s.H, s.W), threads, 256);
}

// B^T d B for the 16 channels at c of the tiles' 4x4 pixels `px` (row-major), into V's 16 rows
// (row stride `vs` elements).
SDC_AVX512_BF16 void input_tile(const uint16_t* const px[16], int64_t c, __mmask16 m, uint16_t* v,
                                size_t vs) {
  __m512 d[16];
  for (int i = 0; i < 16; ++i) d[i] = simd::load(px[i] + c, m);
  __m512 t[16];  // B^T d: combinations of rows
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_sub_ps(d[j], d[8 + j]);
    t[4 + j] = _mm512_add_ps(d[4 + j], d[8 + j]);
    t[8 + j] = _mm512_sub_ps(d[8 + j], d[4 + j]);
    t[12 + j] = _mm512_sub_ps(d[4 + j], d[12 + j]);
  }
  for (int r = 0; r < 4; ++r) {  // (B^T d) B: combinations of columns
    const __m512* q = t + 4 * r;
    store_as(v + (4 * r + 0) * vs + c, _mm512_sub_ps(q[0], q[2]), m);
    store_as(v + (4 * r + 1) * vs + c, _mm512_add_ps(q[1], q[2]), m);
    store_as(v + (4 * r + 2) * vs + c, _mm512_sub_ps(q[2], q[1]), m);
    store_as(v + (4 * r + 3) * vs + c, _mm512_sub_ps(q[1], q[3]), m);
  }
}

// One chunk's input transform: tiles [k0, k0 + count) into V [16, tiles, Ci]; the rest of V's
// tiles zeroed (their products are never read).
SDC_AVX512_BF16 void input_chunk(const uint16_t* x, const uint16_t* zeros,
                                 const WinogradConv::Shape& s, int64_t k0, int64_t count,
                                 int64_t tiles, uint16_t* V) {
  const size_t vs = size_t(tiles * s.Ci);
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < 16; ++i)
        std::memset(V + i * vs + t * s.Ci, 0, size_t(s.Ci) * sizeof(uint16_t));
      continue;
    }
    const uint16_t* px[16];
    winograd_tile_pixels(x, zeros, s.H, s.W, s.Ci, winograd_tile(k0 + t, s.H, s.W), px);
    for (int64_t c = 0; c < s.Ci; c += 16)
      input_tile(px, c, simd::tail_mask(s.Ci - c), V + t * s.Ci, vs);
  }
}

template <class TY, class TA>
SDC_AVX512_BF16 void output_block(const float* mp, size_t ms, int64_t Co, const float* bias,
                                  const TA* const add[4], TY* const out[4]) {
  for (int64_t c = 0; c < Co; c += 16) {
    const __mmask16 m = simd::tail_mask(Co - c);
    __m512 p[16];
    for (int i = 0; i < 16; ++i) p[i] = simd::load(mp + i * ms + c, m);
    __m512 s0[4], s1[4];  // A^T M: the two output rows
    for (int j = 0; j < 4; ++j) {
      s0[j] = _mm512_add_ps(_mm512_add_ps(p[j], p[4 + j]), p[8 + j]);
      s1[j] = _mm512_sub_ps(_mm512_sub_ps(p[4 + j], p[8 + j]), p[12 + j]);
    }
    const __m512 b = bias ? simd::load(bias + c, m) : _mm512_setzero_ps();
    __m512 y[4] = {_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]),
                   _mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]),
                   _mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]),
                   _mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3])};
    for (int k = 0; k < 4; ++k) {
      if (!out[k]) continue;  // a block hanging over an odd image's edge
      __m512 v = _mm512_add_ps(y[k], b);
      if (add[k]) v = _mm512_add_ps(v, simd::load(add[k] + c, m));
      store_as(out[k] + c, v, m);
    }
  }
}

// One chunk's output transform: the blocks of tiles [k0, k0 + count).
template <class TY, class TA>
SDC_AVX512_BF16 void output_chunk(const float* M, int64_t tiles, const WinogradConv::Shape& s,
                                  int64_t k0, int64_t count, const float* bias, const TA* add,
                                  TY* y) {
  const size_t ms = size_t(tiles * s.Co);
  for (int64_t t = 0; t < count; ++t) {
    const WinogradTile p = winograd_tile(k0 + t, s.H, s.W);
    const TA* a[4] = {};
    TY* o[4] = {};
    for (int k = 0; k < 4; ++k) {
      const int64_t oy = 2 * p.ty + k / 2, ox = 2 * p.tx + k % 2;
      if (oy >= s.H || ox >= s.W) continue;
      const size_t at = size_t(((p.n * s.H + oy) * s.W + ox) * s.Co);
      o[k] = y + at;
      if (add) a[k] = add + at;
    }
    output_block(M + t * s.Co, ms, s.Co, bias, a, o);
  }
}

template <class TY>
void output_chunk_as(const float* M, int64_t tiles, const WinogradConv::Shape& s, int64_t k0,
                     int64_t count, const float* bias, WinogradConv::Addend add, void* y) {
  TY* yt = static_cast<TY*>(y);
  if (!add.data)
    output_chunk<TY, float>(M, tiles, s, k0, count, bias, nullptr, yt);
  else if (add.type == DType::BF16)
    output_chunk(M, tiles, s, k0, count, bias, static_cast<const uint16_t*>(add.data), yt);
  else
    output_chunk(M, tiles, s, k0, count, bias, static_cast<const float*>(add.data), yt);
}

}  // namespace

bool winograd_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads) {
  return cpu_features().avx512_bf16 && use_avx512_kernels() && Ci >= 128 && Co >= 128 &&
         H * W >= 16 * 16 && winograd_fills_threads(winograd_tile_count(N, H, W), threads);
}

TensorRef winograd_weights(const TensorRef& w) {
  check_3x3_kernel(w, "Winograd convolution weight");
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  thread_local std::vector<float> staging;
  staging.resize(size_t(16 * Ci * Co));
  float* out = staging.data();
  for_each_3x3_kernel(w, [out, Co, Ci](int64_t o, int64_t i, const float* g) {
    float gt[4][3];  // G g
    for (int c = 0; c < 3; ++c) {
      gt[0][c] = g[c];
      gt[1][c] = 0.5f * (g[c] + g[3 + c] + g[6 + c]);
      gt[2][c] = 0.5f * (g[c] - g[3 + c] + g[6 + c]);
      gt[3][c] = g[6 + c];
    }
    for (int r = 0; r < 4; ++r) {  // (G g) G^T
      const float u[4] = {gt[r][0], 0.5f * (gt[r][0] + gt[r][1] + gt[r][2]),
                          0.5f * (gt[r][0] - gt[r][1] + gt[r][2]), gt[r][2]};
      for (int c = 0; c < 4; ++c) out[(size_t(4 * r + c) * Ci + i) * Co + o] = u[c];
    }
  });
  return staged_tensor(staging, {16, Ci, Co}, w.source);
}

WinogradConv::WinogradConv(const Shape& s, const dnnl::engine& engine, int threads)
    : s_(s),
      threads_(std::max(1, threads)),
      tiles_(chunk_tiles(s, threads_)),
      products_(16, 16, tiles_, s.Ci, s.Co, engine),
      zeros_(size_t(s.Ci), 0) {}

void WinogradConv::run(const uint16_t* x, const void* u, const float* bias, Addend addend, void* y,
                       DType yt, void* scratch) const {
  const Shape s = s_;
  const int64_t total = winograd_tile_count(s.N, s.H, s.W), tiles = tiles_;
  const int64_t chunks = (total + tiles - 1) / tiles;
#pragma omp parallel num_threads(threads_)
  {
    // Inside this parallel region oneDNN runs the products on the calling thread alone.
    WinogradProducts::Bound products =
        products_.bind(u, static_cast<uint8_t*>(scratch) +
                              products_.thread_scratch_bytes() * size_t(omp_get_thread_num()));
    uint16_t* V = products.tiles();
    const float* M = products.products();
#pragma omp for schedule(static)
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t k0 = k * tiles, count = std::min(tiles, total - k0);
      input_chunk(x, zeros_.data(), s, k0, count, tiles, V);
      products.run();
      if (yt == DType::BF16)
        output_chunk_as<uint16_t>(M, tiles, s, k0, count, bias, addend, y);
      else
        output_chunk_as<float>(M, tiles, s, k0, count, bias, addend, y);
    }
  }
}

}  // namespace sdc::cpu
