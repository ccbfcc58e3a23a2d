// What the two Winograd convolutions share (winograd_conv.h: F(2x2, 3x3); winograd_upsample.h:
// F(2x2, 2x2) per phase of an upsampling): their products, n matmuls
// [tiles, Ci] bf16 x [Ci, Co] -> [tiles, Co] f32 run by the calling thread over consecutive slices
// of the transformed tiles and of a buffer that stacks the n transformed kernels, each packed once
// in the blocked layout oneDNN picks for its product; and the transforms' rounding store.
//
// (oneDNN 2.6's batched bf16 matmul [n, tiles, Ci] x [n, Ci, Co] takes its kernels only as plain
// rows and copies them into its blocked layout on every call: per chunk of tiles, all n kernels.)
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace sdc::cpu {

class WinogradProducts {
 public:
  WinogradProducts(int64_t n, int64_t tiles, int64_t Ci, int64_t Co, const dnnl::engine& engine);

  // The kernels' layout: [n, Ci, Co] bf16, n blocked [Ci, Co] kernels one after another.
  const dnnl::memory::desc& weights_desc() const { return weights_md_; }
  size_t scratch_bytes() const { return pd_.scratchpad_desc().get_size(); }

  // The products [first, first + count) (all n by default) over V [count, tiles, Ci] (bf16), the
  // packed kernels u and M [count, tiles, Co] (f32), with oneDNN's scratch at pad
  // (scratch_bytes()): made once per thread, run once per chunk.
  class Bound {
   public:
    void run();

   private:
    friend class WinogradProducts;
    Bound(const WinogradProducts& p, const dnnl::engine& engine) : p_(&p), stream_(engine) {}
    const WinogradProducts* p_;
    dnnl::stream stream_;
    std::vector<std::unordered_map<int, dnnl::memory>> args_;
  };
  Bound bind(const uint16_t* V, const void* u, float* M, void* pad, int64_t first = 0,
             int64_t count = -1) const;

 private:
  int64_t n_, tiles_, Ci_, Co_;
  dnnl::engine engine_;
  dnnl::matmul::primitive_desc pd_;  // one product
  dnnl::matmul prim_;
  size_t point_bytes_;             // one packed kernel
  dnnl::memory::desc weights_md_;  // all n of them
};

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
