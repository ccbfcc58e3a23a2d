// A 3x3 convolution (stride 1, padding 1) to a few output channels — the decoders' last layer,
// TAESD's 64 -> 3 and the VAE's conv_out 128 -> 3 — for bf16 plans on AVX-512 BF16 and f32
// activations on any AVX2 or AVX-512 CPU (f32 plans, and int8 plans where bf16 is not faster).
// oneDNN 2.6's direct convolution pads 3 output channels to a block of 16 and ran these at 66-74
// GFLOP/s on a Zen 4 (~15 % of the bf16 peak: 12-14 ms of TAESD's 512x512 decode, ~25 ms of the
// VAE's), in f32 at 29-33 GFLOP/s on an Ice Lake (31 ms of TAESD's decode), and capped at AVX2
// there at 12-16 (33 ms of TAESD's, 70 of the VAE's). Here the input channels lie in the lanes
// instead: each output pixel and channel accumulates VDPBF16PS products of 32 input channels (f32:
// FMAs of 16, or 8 with AVX2) at a time over the nine taps in one register, and the lanes are
// summed once at the end — every multiply-add does work.
#pragma once

#include <cstdint>

#include "common/dtype.h"
#include "common/tensor.h"

namespace sdc::cpu {

// Whether a 3x3 convolution of Ci -> Co channels over `in` (BF16 or F32) activations takes this
// path here: at most four output channels; bf16: AVX-512 BF16, input channels a multiple of 32;
// f32: AVX2, input channels a multiple of 8 (multiples of 16 run 16 at a time with AVX-512).
bool narrow_conv_pays(int64_t Ci, int64_t Co, DType in = DType::BF16);

// The kernel's taps as the path reads them: [9, Co, Ci] f32 (tap ky * 3 + kx), staged in a buffer
// of the calling thread that its next call reuses (planning packs them to the activations' type
// at once).
TensorRef narrow_conv_taps(const TensorRef& w);

// y [N, H, W, Co] (F32 or BF16) = conv(x [N, H, W, Ci], taps [9, Co, Ci], both of type xt) +
// bias [Co] (f32, optional), the rows split over `threads`. Only where narrow_conv_pays(Ci, Co,
// xt).
void narrow_conv3x3(const void* x, DType xt, const void* taps, const float* bias, int64_t N,
                    int64_t H, int64_t W, int64_t Ci, int64_t Co, void* y, DType yt, int threads);

}  // namespace sdc::cpu
