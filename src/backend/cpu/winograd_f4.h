// Winograd F(4x4, 3x3) for the f32 plans' large 3x3 convolutions (stride 1, padding 1): every 4x4
// block of output pixels is computed from the 6x6 input tile around it as 36 elementwise products
// of transformed tiles with transformed kernels — 36 multiply-adds per block and channel pair
// instead of F(2x2, 3x3)'s 4 x 16 = 64 and the direct convolution's 144: 4x less work than direct,
// 1.78x less than F(2x2) (winograd_conv.h), which f32 plans keep where a layer has too few tiles.
//
// Only f32: its transforms multiply by up to 5 (input) and 8 (output) and its kernel transform
// by 1/24, so rounding grows with each — ~1e-6 relative in f32 (F(2x2)'s ~1e-7), far below
// what a bf16 or int8 tile could carry (measured: bf16 F(4x4) 2.3e-2 per layer, int8 6-9 %; the
// history's eighteenth and seventeenth stops). It serves the CPUs where f32 is the fast precision:
// AVX2-only ones, and AVX-512 ones without BF16 (Intel's Skylake-SP to Ice Lake), where `auto`
// plans f32.
//
// Per thread, a chunk of tiles is transformed (AVX2, or AVX-512 where the channels allow;
// channels-last f32), the 36 products run as 36 oneDNN f32 matmuls [tiles, Ci] x [Ci, Co] (kernels
// packed once, WinogradProducts), and the output transform adds the bias, a residual and a ReLU and
// writes the 4x4 blocks.
#pragma once

#include <cstdint>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/winograd_common.h"
#include "common/tensor.h"

namespace sdc::cpu {

// The points of a tile: the 6x6 products per 4x4 block.
inline constexpr int kWinogradF4Points = 36;

// Whether an f32 plan's 3x3 convolution over N images of H x W pixels, Ci -> Co channels, run by
// `threads` threads, takes F(4x4, 3x3) instead of F(2x2, 3x3): where F(2x2) would
// (winograd_f32_pays: the AVX2 transforms, channels in multiples of 8 and 64 or more each way),
// with two chunks of 32 blocks of 4x4 a thread (fewer: each chunk re-reads all 36 kernels for too
// few tiles).
bool winograd_f4_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads);

// Tiles per chunk of `total` 4x4 blocks run by `threads` threads: up to 128, in a number of chunks
// the threads share evenly (the upsampling phases' chunks too, winograd_upsample_f4.h).
int64_t winograd_f4_chunk_tiles(int64_t total, int threads);

// The transformed kernel U = G g G^T of a [Co, Ci, 3, 3] kernel, as [36, Ci, Co] f32 (each of the
// 36 tile points' matmul operand), computed in double. It lives in a buffer of the calling thread
// that the next call reuses (planning packs it at once).
TensorRef winograd_f4_weights(const TensorRef& w);

class WinogradF4Conv {
 public:
  struct Shape {
    int64_t N = 0, H = 0, W = 0, Ci = 0, Co = 0;
  };
  // Channels must be multiples of 8 (throws otherwise); any image size.
  WinogradF4Conv(const Shape& s, const dnnl::engine& engine, int threads);

  // The layout the transformed kernel is packed in: [36, Ci, Co] f32, the points' [Ci, Co] kernels
  // one after another, each in oneDNN's blocked layout for its product.
  dnnl::memory::desc weights_desc() const { return products_.weights_desc(); }
  size_t scratch_bytes() const { return products_.thread_scratch_bytes() * size_t(threads_); }
  int64_t chunk_tiles() const { return tiles_; }

  // y [N, H, W, Co] = conv(x [N, H, W, Ci]) + bias [Co] (optional) + add [N, H, W, Co] (optional;
  // may be y itself, a residual summed in place), then max(0, y) if `relu`. u: the transformed
  // kernel packed as weights_desc(); scratch: scratch_bytes().
  void run(const float* x, const void* u, const float* bias, const float* add, float* y,
           void* scratch, bool relu = false) const;

 private:
  Shape s_;
  int threads_;
  int64_t tiles_;  // tiles per chunk (consecutive 4x4 blocks, row after row, image after image)
  bool avx512_;    // the AVX-512 transforms (channels in multiples of 16), else AVX2
  WinogradProducts products_;
  std::vector<float> zeros_;  // Ci zeros: the padding around the image
};

}  // namespace sdc::cpu
