// The f32 Winograd transforms of one chunk of tiles, built for two vector widths: AVX2 (8 channels
// at a time, any CPU with AVX2 + FMA) and AVX-512 (16, for channels in multiples of 16 where the
// own kernels run AVX-512): F(2x2, 3x3) and the F(2x2, 2x2) upsampling phases
// (winograd_f32_kernel.h, called through winograd_f32.h, which picks the width) and F(4x4, 3x3)
// (winograd_f4_kernel.h, whose WinogradF4Conv picks it at planning).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/winograd_f4.h"

namespace sdc::cpu {

// The arguments are winograd_f32.h's (the first four) and WinogradF4Conv's chunks' (the last two).
#define SDC_WINO_F32_TRANSFORMS                                                                   \
  void input_chunk(const float* x, const float* zeros, int64_t H, int64_t W, int64_t Ci,          \
                   int64_t k0, int64_t count, int64_t tiles, int64_t v_tiles, float* V);          \
  void output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int64_t k0,      \
                    int64_t count, const float* bias, const float* add, float* y, bool relu);     \
  void upsample_input_chunk(const float* x, const float* zeros, int64_t H, int64_t W, int64_t Ci, \
                            int p, int64_t k0, int64_t count, int64_t tiles, float* V);           \
  void upsample_output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int p,  \
                             int64_t k0, int64_t count, const float* bias, float* y);             \
  /* F(4x4, 3x3): tiles [k0, k0 + count) of x into V [36, tiles, Ci] (tiles [count, tiles)        \
     zeroed), and their 4x4 blocks from M [36, tiles, Co] (point stride ms) plus bias and add     \
     (each optional; add may be y), then a ReLU if `relu`, into y. */                             \
  void f4_input_chunk(const float* x, const float* zeros, const WinogradF4Conv::Shape& s,         \
                      int64_t k0, int64_t count, int64_t tiles, float* V);                        \
  void f4_output_chunk(const float* M, size_t ms, const WinogradF4Conv::Shape& s, int64_t k0,     \
                       int64_t count, const float* bias, const float* add, float* y, bool relu);  \
  /* F(4x4, 2x2) upsampling phase p of tiles [k0, k0 + count) of the small image x (s: its        \
     shape) into V [25, tiles, Ci], and from M [25, tiles, Co] plus bias into the big image y. */ \
  void up4_input_chunk(const float* x, const float* zeros, const WinogradF4Conv::Shape& s, int p, \
                       int64_t k0, int64_t count, int64_t tiles, float* V);                       \
  void up4_output_chunk(const float* M, size_t ms, const WinogradF4Conv::Shape& s, int p,         \
                        int64_t k0, int64_t count, const float* bias, float* y);

namespace wino_f32_avx2 {
SDC_WINO_F32_TRANSFORMS
}
namespace wino_f32_avx512 {
SDC_WINO_F32_TRANSFORMS
}

#undef SDC_WINO_F32_TRANSFORMS

}  // namespace sdc::cpu
