// Winograd F(2x2, 3x3) for the bf16 plans' large 3x3 convolutions (stride 1, padding 1): every
// 2x2 block of output pixels is computed from the 4x4 input tile around it as 16 elementwise
// products of transformed tiles with transformed kernels (Lavin & Gray, 2015) — 16 multiply-adds
// per block and channel pair instead of 36, 2.25x less work. Per thread, a chunk of tiles is
// transformed (bf16, channels-last), the 16 products run as 16 oneDNN bf16 matmuls
// [tiles, Ci] x [Ci, Co] -> f32 (kernels packed once), and the output transform adds the bias and a
// residual and writes the 2x2 blocks; a chunk is long enough to reuse the transformed kernels it
// reads. With too few tiles for that, all tiles are transformed together and the
// threads split the 16 products between them, then the output blocks.
//
// The price is precision: the transformed tiles and kernels are rounded to bf16 at ~2x the
// magnitude of the values the direct convolution rounds, and the output transform cancels large
// terms, so a layer's relative error is ~3.5x the direct bf16 convolution's (5.8e-3 against
// 1.6e-3 on random data). Through the whole VAE decoder that vanishes among the other bf16
// roundings (vae_decode rel. L2 against f32 6.58e-3 with and without, image PSNR unchanged; README
// "The third night").
//
// f32 plans run it in f32 throughout (winograd_f32.h: AVX2 or AVX-512 transforms, oneDNN's f32
// products), for CPUs where f32 is the fast precision (AVX2-only ones, AVX-512 ones without
// BF16): there a layer's error stays at f32's level (~1e-7 relative), while the direct f32
// convolution at the VAE decoder's large sizes runs far below the peak (on a Zen 3, 55-67 %: its
// activations leave the caches). Where a layer has enough 4x4 blocks they take F(4x4, 3x3)
// instead (winograd_f4.h).
//
// int8 plans run the products as u8 x s8 -> s32 (VNNI) instead: each transformed kernel point
// quantised per output channel (s8, symmetric), each tile's 16 transformed rows quantised by
// their own absolute maximum (u8 around 128) in the input transform, and the output transform
// scales the s32 products back before it adds them up.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/winograd_common.h"
#include "common/dtype.h"
#include "common/tensor.h"

namespace sdc::cpu {

// Whether a bf16 3x3 convolution over N images of H x W pixels, Ci -> Co channels, run by
// `threads` threads, is faster as Winograd on this CPU: AVX-512 BF16 (the products), at least 64
// channels both ways, at least 16x16 pixels, and either two chunks of 32 tiles per thread or at
// least 64 tiles for the products split by point (winograd_splits_points). Measured against
// oneDNN 2.6's direct bf16 convolution on a Zen 4 (2 threads): 512^2 and 256^2 x 64 (TAESD's)
// 1.36x; on a Zen 5: 512^2 x 128 1.1-1.2x, 256^2 x 256
// 1.3-1.6x, 128^2 x 512 1.2-1.3x; at 64^2 (the UNet's first level at 512x512, 320 channels; the
// VAE's 512-channel mid block) ~1.7x per layer: the VAE decode 4 % faster, the UNet step 5-8 %;
// the UNet's 32^2 x 640 level 3-5 % more; its 16^2 x 1280 level the batch-2 step 5 % more, and
// split by point at batch 1 (with the 32^2 level split too) LCM-4 sampling 10 % faster.
bool winograd_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads);
// The same rule for an int8 plan's W8A8 convolution, from 128 channels (at 64 the direct int8
// convolution is faster), on any AVX-512 CPU with VNNI (AVX-512 BF16 not needed: the activations
// may be bf16 or f32) and int8 product kernels that oneDNN lays out plainly blocked
// (WinogradProducts::stacks_kernels) instead of bf16 ones.
bool winograd_int8_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads);
// The rule for an f32 plan's convolution: the AVX2 transforms (winograd_f32::available), channels
// in multiples of 8, 64 or more each way (TAESD's 64-channel layers: on a Zen 3, 2 threads, 512^2
// 153-189 -> 72-73 ms, 256^2 37-44 -> 18-29 ms), and the image sizes of winograd_pays.
bool winograd_f32_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads);

// The transformed kernel U = G g G^T of a [Co, Ci, 3, 3] kernel, as [16, Ci, Co] f32 (for each
// of the 16 tile points the matmul's [Ci, Co] operand). It lives in a buffer of the calling
// thread that the next call reuses (planning packs it at once).
TensorRef winograd_weights(const TensorRef& w);
// The same kernel as [16 * Co, Ci] f32: row p * Co + o is point p's kernel for output channel o,
// the rows the int8 products' kernels are quantised by (as pack_int8_weight quantises rows). In
// the same thread buffer as winograd_weights' result, which it overwrites.
TensorRef winograd_weight_rows(const TensorRef& w);

class WinogradConv {
 public:
  struct Shape {
    int64_t N = 0, H = 0, W = 0, Ci = 0, Co = 0;
  };
  using Type = WinogradProducts::Type;
  // Int8: u8 x s8 products (then winograd_int8_pays must hold) over bf16 activations, or f32 ones
  // where `input` is F32 (int8 plans where bf16 is not faster); F32: f32 throughout
  // (winograd_f32_pays); Bf16: winograd_pays. `input` unset: the type's own (bf16 for Int8 and
  // Bf16, f32 for F32); one its products do not read is the caller's error.
  WinogradConv(const Shape& s, const dnnl::engine& engine, int threads, Type type = Type::Bf16,
               std::optional<DType> input = std::nullopt);

  // The layout the transformed kernel is packed in for the products ([16, Ci, Co], bf16, s8 or f32:
  // the 16 points' [Ci, Co] kernels one after another, each in oneDNN's blocked layout for its
  // product).
  dnnl::memory::desc weights_desc() const { return products_.weights_desc(); }
  size_t scratch_bytes() const { return thread_bytes_ * size_t(threads_) + shared_bytes_; }

  // An int8 kernel's scales and s8 sums, [16, Co] each (the rows of winograd_weight_rows).
  using Int8Kernels = WinogradInt8Kernels;

  // What is added to the result besides the bias: nothing, or a tensor of the output's shape
  // (F32 or BF16) — y itself for a residual summed in place.
  struct Addend {
    const void* data = nullptr;
    DType type = DType::F32;
  };
  // y [N, H, W, Co] (F32 or BF16) = conv(x [N, H, W, Ci], the constructor's input type) + bias
  // [Co] (f32, optional) + addend, then max(0, y) if `relu` (TAESD's blocks). u: the transformed
  // kernel packed as weights_desc(); scratch: scratch_bytes(); int8: the kernel's scales and sums,
  // given exactly when the convolution is int8. The transforms are AVX-512 code: only where
  // winograd_pays (winograd_int8_pays). An F32 convolution takes f32 alone for y and the addend;
  // a BF16 y needs AVX-512 BF16 (only plans with bf16 activations, which have it, write one).
  void run(const void* x, const void* u, const float* bias, Addend addend, void* y, DType yt,
           void* scratch, const Int8Kernels* int8 = nullptr, bool relu = false) const;

 private:
  // The products split by point (winograd_splits_points): all tiles' V, scales and M shared.
  void run_split(const void* x, const void* u, const float* bias, Addend addend, void* y, DType yt,
                 void* scratch, const Int8Kernels* int8, bool relu) const;

  Shape s_;
  int threads_;
  bool split_;     // the products split by point, not the tiles by chunk
  int64_t tiles_;  // tiles per chunk (consecutive 2x2 blocks, row after row, image after image);
                   // split: all of them
  bool int8_, f32_;
  bool f32_input_;  // x is f32 (F32, or Int8 over f32 activations), not bf16
  WinogradProducts products_;
  // A thread's scratch: the products', then (int8) a tile's f32 rows and the chunk's scales.
  // Split: oneDNN's scratch and the f32 rows per thread, then the shared V, scales and M.
  size_t thread_bytes_ = 0, rows_at_ = 0, scales_at_ = 0;
  size_t shared_bytes_ = 0, shared_scales_at_ = 0, shared_m_at_ = 0;
  std::vector<float> zeros_;  // Ci zeros (bf16 or f32): the padding around the image
};

}  // namespace sdc::cpu
