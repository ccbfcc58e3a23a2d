// What the two Winograd convolutions share (winograd_conv.h: F(2x2, 3x3); winograd_upsample.h:
// F(2x2, 2x2) per phase of an upsampling): their products, n matmuls
// [tiles, Ci] bf16 x [Ci, Co] -> [tiles, Co] f32 (or, for int8 plans, u8 x s8 -> s32) run by the
// calling thread over consecutive slices of the transformed tiles and of a buffer that stacks the
// n transformed kernels, each packed once in the blocked layout oneDNN picks for its product; and
// the transforms' rounding store.
//
// (oneDNN 2.6's batched bf16 matmul [n, tiles, Ci] x [n, Ci, Co] takes its kernels only as plain
// rows and copies them into its blocked layout on every call: per chunk of tiles, all n kernels.)
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace sdc::cpu {

class WinogradProducts {
 public:
  enum class Type {
    Bf16,  // V bf16, kernels bf16, M f32
    Int8,  // V u8, kernels s8, M s32 (the scales are the transforms' business)
  };
  // n kernels, `at_once` of them run per chunk of `tiles` tiles.
  WinogradProducts(int64_t n, int64_t at_once, int64_t tiles, int64_t Ci, int64_t Co,
                   const dnnl::engine& engine, Type type = Type::Bf16);

  // Whether oneDNN packs this type's product kernels here in a plain blocked layout, which the
  // stacked kernels need (probed once per type on a small shape: the layout follows the ISA). A
  // layout with extras (compensation, scale adjustment) turns Winograd off instead of failing the
  // plan.
  static bool stacks_kernels(Type type);

  // The kernels' layout: [n, Ci, Co] (bf16 or s8), n blocked [Ci, Co] kernels one after another.
  const dnnl::memory::desc& weights_desc() const { return weights_md_; }
  // One thread's scratch (a multiple of 64 bytes): oneDNN's, then the tiles V [at_once, tiles, Ci],
  // then the products M [at_once, tiles, Co].
  size_t thread_scratch_bytes() const { return v_at_ + v_bytes_ + m_bytes_; }

  // oneDNN's scratch for one product: the first bytes of a thread's scratch.
  size_t pad_bytes() const { return v_at_; }

  // The products [first, first + at_once) over the V and M of a thread's scratch and the packed
  // kernels u: made once per thread, run once per chunk.
  class Bound {
   public:
    void* tiles() const { return V_; }  // V, for the input transform to fill
    const void* products() const { return M_; }
    void run();

   private:
    friend class WinogradProducts;
    Bound(const WinogradProducts& p, const dnnl::engine& engine) : p_(&p), stream_(engine) {}
    const WinogradProducts* p_;
    dnnl::stream stream_;
    void* V_ = nullptr;
    void* M_ = nullptr;
    std::vector<std::unordered_map<int, dnnl::memory>> args_;
  };
  Bound bind(const void* u, void* thread_scratch, int64_t first = 0) const;
  // The products [first, first + count) (count <= at_once) over the caller's V [count, tiles, Ci]
  // and M [count, tiles, Co], oneDNN's scratch at `pad` (pad_bytes()).
  Bound bind(const void* u, void* pad, void* V, void* M, int64_t first, int64_t count) const;

 private:
  int64_t n_, at_once_, tiles_, Ci_, Co_;
  Type type_;
  dnnl::engine engine_;
  dnnl::matmul::primitive_desc pd_;  // one product
  dnnl::matmul prim_;
  size_t point_bytes_;                           // one packed kernel
  dnnl::memory::desc weights_md_;                // all n of them
  size_t v_at_ = 0, v_bytes_ = 0, m_bytes_ = 0;  // thread scratch: oneDNN's pad, V, M
};

// The 2x2 blocks (tiles) of N images of H x W pixels; an odd edge's block hangs over it.
inline int64_t winograd_tile_count(int64_t N, int64_t H, int64_t W) {
  return N * ((H + 1) / 2) * ((W + 1) / 2);
}
// Tiles per chunk: about a quarter of a thread's share (so that the threads stay balanced),
// from 32 up to `most`.
inline int64_t winograd_chunk_tiles(int64_t tiles, int threads, int64_t most) {
  return std::clamp<int64_t>(tiles / (4 * int64_t(std::max(1, threads))), 32, most);
}
// Whether every thread gets two chunks of 32 tiles: fewer leave threads idle or the kernels'
// reuse too short for Winograd to pay.
inline bool winograd_fills_threads(int64_t tiles, int threads) {
  return tiles >= 64 * int64_t(std::max(1, threads));
}
// Whether the products (bf16 or int8) run split by point instead of by chunk: all tiles transformed
// together, each thread the products of its share of the 16 points over all of them (every
// transformed kernel read once, by one thread, and reused by every tile), then each thread the
// output blocks of its share of the tiles. Where chunks would be shorter than 64 tiles (every
// thread reading every kernel once per chunk): measured on 2 threads (Zen 5), the UNet's 16x16 x
// 1280 level at batch 1 (64 tiles, direct before: it could not fill the threads) 4.8 % of the
// step, its 32x32 x 640 level (256 tiles, chunks of 32) 42-44 -> 35-36.5 ms a step; its 64x64
// level (chunks of 128) 35-36.6 -> 36.2-41.4 ms (not split: the shared products, 21 MiB, leave
// the caches). At least 64 tiles, so that a kernel read from memory serves enough rows.
inline bool winograd_splits_points(int64_t tiles, int threads) {
  return tiles >= 64 && winograd_chunk_tiles(tiles, threads, 256) < 64;
}

// Tile k of N images of H x W pixels, numbered across rows and images: the 2x2 block of pixels
// (2 ty .. 2 ty + 1, 2 tx .. 2 tx + 1) of image n.
struct WinogradTile {
  int64_t n, ty, tx;
};
inline WinogradTile winograd_tile(int64_t k, int64_t H, int64_t W) {
  const int64_t th = (H + 1) / 2, tw = (W + 1) / 2;
  return {k / (th * tw), k / tw % th, k % tw};
}
// The 16 pixels (row-major) of the 4x4 input tile around tile t's block in x [N, H, W, C]: rows
// 2 ty - 1 .. 2 ty + 2, columns likewise; `zeros` (C zeros) where it hangs over the image.
inline void winograd_tile_pixels(const uint16_t* x, const uint16_t* zeros, int64_t H, int64_t W,
                                 int64_t C, const WinogradTile& t, const uint16_t* px[16]) {
  for (int i = 0; i < 16; ++i) {
    const int64_t iy = 2 * t.ty - 1 + i / 4, ix = 2 * t.tx - 1 + i % 4;
    px[i] = iy < 0 || iy >= H || ix < 0 || ix >= W ? zeros : x + ((t.n * H + iy) * W + ix) * C;
  }
}

// The transforms run only where AVX-512 BF16 is: its one-instruction f32 -> bf16 rounding (to
// nearest even, as simd::to_bf16) halves the input transforms' time.
#define SDC_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx512bf16")))

SDC_AVX512_BF16 static inline __attribute__((always_inline)) void store_as(uint16_t* p, __m512 v,
                                                                           __mmask16 m) {
  _mm256_mask_storeu_epi16(p, m, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
}
SDC_AVX512_BF16 static inline __attribute__((always_inline)) void store_as(float* p, __m512 v,
                                                                           __mmask16 m) {
  _mm512_mask_storeu_ps(p, m, v);
}

}  // namespace sdc::cpu
