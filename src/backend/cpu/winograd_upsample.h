// A 3x3 convolution (stride 1, padding 1) over a 2x nearest-upsampled image as Winograd
// F(2x2, 2x2), phase by phase, for the bf16 plans. As in upsample_conv.h, output phase (py, px)
// — the pixels (2i + py, 2j + px) — is a 2x2 convolution of the small image with summed taps.
// A tile is a 2x2 block of small-image positions; phase (py, px) reads the 3x3 sub-tile at rows
// py..py+2 and columns px..px+2 of the 4x4 input tile around it and computes its four outputs
// from 9 products of transformed values: 36 multiply-adds per tile and channel pair for the four
// phases, against the direct phase convolution's 64 (1.78x less work). The transforms have only
// 0 and +-1 coefficients (B^T = [1 -1 0; 0 1 0; 0 -1 1], G = [1 0; 1 1; 0 1],
// A^T = [1 1 0; 0 1 1]); the input transform rounds differences of up to four inputs to bf16.
// A chunk of tiles runs phase after phase: 9 products over packed-once kernels (winograd_common.h),
// then that phase's outputs — a quarter of the scratch of all four at once, so chunks of 256
// tiles (1.25x faster than 64 tiles with all phases together). f32 plans run it in f32
// throughout (winograd_f32.h: AVX2 transforms, oneDNN's f32 products).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/winograd_common.h"
#include "common/dtype.h"
#include "common/tensor.h"

namespace sdc::cpu {

// Whether the upsampling convolution of N small images of H x W pixels, Ci -> Co channels, run
// by `threads` threads, takes this path: AVX-512 BF16, 64 to 256 input channels, at least 64
// output channels (TAESD's 64-channel upsamplers: its bf16 decode 262-270 -> 237 ms on a Zen 4),
// and at least two chunks of 32 tiles per thread. Not above 256 input channels:
// the VAE decoder's two 512-channel upsamplers this way moved its image against f32 from 50.52
// to 49.75 dB PSNR (vae_decode rel. L2 6.6e-3 -> 8.0e-3) for ~70 ms; its 256-channel one, the
// largest, to 50.37 dB for ~60 ms (docs/performance-history.md, "The fourth night").
bool winograd_upsample_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads);

// The same for int8 plans' W8A8 (u8 x s8 products on AVX512-VNNI, bf16 or f32 activations, a scale
// per tile and point as in WinogradConv): 128 channels or more each way (as winograd_int8_pays),
// at any width.
bool winograd_upsample_int8_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co,
                                 int threads);

// The same for f32 plans: the AVX2 transforms (winograd_f32::available), channels in multiples of
// 8, 64 or more each way (TAESD's too), at any width (f32 has no rounding to fear). Where the small
// image also has enough 4x4 blocks, f32 plans take F(4x4, 2x2) phases instead
// (winograd_upsample_f4.h).
bool winograd_upsample_f32_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co,
                                int threads);

// The transformed phase kernels of a [Co, Ci, 3, 3] kernel: [36, Ci, Co] f32, phase
// p = 2 py + px at rows 9p .. 9p + 8. It lives in a buffer of the calling thread that the next
// call reuses (planning packs it at once).
TensorRef winograd_upsample_weights(const TensorRef& w);
// The same as [36 * Co, Ci]: a row per phase point and output channel, which the int8 path
// quantises row by row.
TensorRef winograd_upsample_weight_rows(const TensorRef& w);

class WinogradUpsampleConv {
 public:
  struct Shape {
    int64_t N = 0, H = 0, W = 0, Ci = 0, Co = 0;  // H x W: the small image
  };
  using Type = WinogradProducts::Type;
  // Int8: u8 x s8 products (then winograd_upsample_int8_pays must hold) over bf16 activations, or
  // f32 ones where `input` is F32 (as WinogradConv; unset: the type's own); F32: f32 throughout
  // (winograd_upsample_f32_pays); Bf16: winograd_upsample_pays.
  WinogradUpsampleConv(const Shape& s, const dnnl::engine& engine, int threads,
                       Type type = Type::Bf16, std::optional<DType> input = std::nullopt);

  // The layout the transformed kernels are packed in ([36, Ci, Co] bf16, s8 or f32).
  dnnl::memory::desc weights_desc() const { return products_.weights_desc(); }
  size_t scratch_bytes() const { return thread_bytes_ * size_t(threads_); }

  // An int8 kernel's scales and s8 sums, [36, Co] each (the rows of winograd_upsample_weight_rows).
  using Int8Kernels = WinogradInt8Kernels;

  // y [N, 2H, 2W, Co] (F32 or BF16) = conv3x3(upsample2x(x [N, H, W, Ci], the constructor's input
  // type)) + bias [Co] (f32, optional). u: winograd_upsample_weights packed as weights_desc()
  // (int8: the s8 rows, with their scales and sums in `int8`); scratch: scratch_bytes(). AVX-512
  // code: only where winograd_upsample_pays (int8: winograd_upsample_int8_pays). An F32
  // convolution writes y as f32 alone; a BF16 y needs AVX-512 BF16 (as WinogradConv).
  void run(const void* x, const void* u, const float* bias, void* y, DType yt, void* scratch,
           const Int8Kernels* int8 = nullptr) const;

 private:
  Shape s_;
  int threads_;
  int64_t tiles_;  // tiles per chunk
  bool int8_, f32_;
  bool f32_input_;  // x is f32 (F32, or Int8 over f32 activations), not bf16
  WinogradProducts products_;
  // A thread's scratch: the products', then (int8) a tile's f32 rows and the chunk's scales.
  size_t thread_bytes_ = 0, rows_at_ = 0, scales_at_ = 0;
  std::vector<float> zeros_;  // Ci zeros (bf16 or f32): the padding around the image
};

}  // namespace sdc::cpu
