// The f32 plans' Winograd F(2x2, 3x3) transforms (winograd_conv.h) in AVX2 + FMA (AVX-512 where
// the own kernels run it and the channels come in multiples of 16), so that every CPU with AVX2
// runs them — desktops without AVX-512 above all, where f32 is the only precision
// oneDNN offers: f32 tiles into the products, their f32 results out into the output blocks with
// the bias and a residual; and the same for F(2x2, 2x2) per phase of a 2x-upsampling convolution
// (winograd_upsample.h). Channels come in multiples of 8 (the shape rules see to it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sdc::cpu::winograd_f32 {

// Whether the transforms run here: the own kernels' path is AVX2 or wider (every AVX-512 CPU has
// AVX2 + FMA).
bool available();
// Whether transforms over this many channels take the AVX-512 build here (multiples of 16, where
// the own kernels run AVX-512), else the AVX2 one.
bool wide(int64_t channels);

// B^T d B of tiles [k0, k0 + count) of x [N, H, W, Ci] (zeros: Ci zeros, the padding) into V
// [16, v_tiles, Ci] (point stride v_tiles * Ci); tiles [count, tiles) zeroed.
void input_chunk(const float* x, const float* zeros, int64_t H, int64_t W, int64_t Ci, int64_t k0,
                 int64_t count, int64_t tiles, int64_t v_tiles, float* V);

// A^T M A of tiles [k0, k0 + count), their products M [16, *, Co] (tile t's at M + t * Co, point
// stride ms), plus bias [Co] (optional) and add [N, H, W, Co] (optional; may be y itself), then a
// ReLU if `relu`, into the 2x2 blocks of y [N, H, W, Co].
void output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int64_t k0,
                  int64_t count, const float* bias, const float* add, float* y, bool relu);

// Upsampling (winograd_upsample.h), phase p of tiles [k0, k0 + count) of the small image x
// [N, H, W, Ci]: its 9 transformed values per tile into V [9, tiles, Ci]; tiles [count, tiles)
// zeroed.
void upsample_input_chunk(const float* x, const float* zeros, int64_t H, int64_t W, int64_t Ci,
                          int p, int64_t k0, int64_t count, int64_t tiles, float* V);

// Phase p's outputs of tiles [k0, k0 + count) from their products M [9, tiles, Co] (point stride
// ms) plus bias [Co] (optional) into y [N, 2H, 2W, Co].
void upsample_output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int p,
                           int64_t k0, int64_t count, const float* bias, float* y);

}  // namespace sdc::cpu::winograd_f32
