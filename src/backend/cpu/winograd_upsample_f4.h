// A 3x3 convolution (stride 1, padding 1) over a 2x nearest-upsampled image as Winograd
// F(4x4, 2x2), phase by phase, for the f32 plans. As in upsample_conv.h, output phase (py, px) —
// the big pixels (2i + py, 2j + px) — is a 2x2 convolution of the small image with summed taps.
// A tile is a 4x4 block of small positions; phase (py, px) reads the 5x5 sub-tile at rows
// py..py+4 and columns px..px+4 of the 6x6 input tile around it (F(4x4, 3x3)'s tile) and computes
// its 16 outputs from 25 products of transformed values: 100 multiply-adds per tile and channel
// pair for the four phases, against F(2x2, 2x2)'s 4 x 36 = 144 (winograd_upsample.h, which f32
// plans keep where a layer has too few 4x4 blocks) and the direct phase convolution's 256.
//
// Points 0, 1, -1, 2 and infinity; the input and output transforms have integer coefficients up to
// 3 (input) and 8 (output), the kernel transform 1/2 and 1/6, computed in double. f32 only, as
// F(4x4, 3x3) (winograd_f4.h says why).
//
// Per thread, a chunk of tiles runs phase after phase: its 25 transformed values per tile
// (AVX2, or AVX-512 where the channels allow), 25 oneDNN f32 matmuls [tiles, Ci] x [Ci, Co] over
// that phase's packed-once kernels, then its outputs with the bias, written into the big image.
#pragma once

#include <cstdint>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/winograd_common.h"
#include "backend/cpu/winograd_f4.h"
#include "common/tensor.h"

namespace sdc::cpu {

// The points of one phase's tile: the 5x5 products per 4x4 block.
inline constexpr int kWinogradUpsampleF4Points = 25;

// Whether an f32 plan's upsampling convolution of N small images of H x W pixels, Ci -> Co
// channels, run by `threads` threads, takes F(4x4, 2x2) phases instead of F(2x2, 2x2) ones: where
// those would (winograd_upsample_f32_pays), with two chunks of 32 small 4x4 blocks a thread.
bool winograd_upsample_f4_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co,
                               int threads);

// The transformed phase kernels of a [Co, Ci, 3, 3] kernel: [100, Ci, Co] f32, phase
// p = 2 py + px at rows 25p .. 25p + 24, computed in double. It lives in a buffer of the calling
// thread that the next call reuses (planning packs it at once).
TensorRef winograd_upsample_f4_weights(const TensorRef& w);

class WinogradUpsampleF4Conv {
 public:
  using Shape = WinogradF4Conv::Shape;  // H x W: the small image
  // Channels must be multiples of 8 (throws otherwise); any image size.
  WinogradUpsampleF4Conv(const Shape& s, const dnnl::engine& engine, int threads);

  // The layout the transformed kernels are packed in: [100, Ci, Co] f32, each point's [Ci, Co]
  // kernel in oneDNN's blocked layout for its product.
  dnnl::memory::desc weights_desc() const { return products_.weights_desc(); }
  size_t scratch_bytes() const { return products_.thread_scratch_bytes() * size_t(threads_); }

  // y [N, 2H, 2W, Co] = conv3x3(upsample2x(x [N, H, W, Ci])) + bias [Co] (optional). u: the
  // transformed kernels packed as weights_desc(); scratch: scratch_bytes().
  void run(const float* x, const void* u, const float* bias, float* y, void* scratch) const;

 private:
  Shape s_;
  int threads_;
  int64_t tiles_;  // tiles per chunk
  bool avx512_;    // the AVX-512 transforms (channels in multiples of 16), else AVX2
  WinogradProducts products_;
  std::vector<float> zeros_;  // Ci zeros: the padding around the image
};

}  // namespace sdc::cpu
