// A 3x3 convolution (stride 1, padding 1) to a few output channels — the decoders' last layer,
// TAESD's 64 -> 3 and the VAE's conv_out 128 -> 3 — for bf16 plans on AVX-512 BF16. oneDNN 2.6's
// direct convolution pads 3 output channels to a block of 16 and ran these at 66-74 GFLOP/s on a
// Zen 4 (~15 % of the bf16 peak: 12-14 ms of TAESD's 512x512 decode, ~25 ms of the VAE's). Here the
// input channels lie in the lanes instead: each output pixel and channel accumulates VDPBF16PS
// products of 32 input channels at a time over the nine taps in one register, and the 16 lanes are
// summed once at the end — every multiply-add does work.
#pragma once

#include <cstdint>

#include "common/dtype.h"
#include "common/tensor.h"

namespace sdc::cpu {

// Whether a bf16 3x3 convolution of Ci -> Co channels takes this path here: AVX-512 BF16, at most
// four output channels, input channels a multiple of 32.
bool narrow_conv_pays(int64_t Ci, int64_t Co);

// The kernel's taps as the path reads them: [9, Co, Ci] f32 (tap ky * 3 + kx), staged in a buffer
// of the calling thread that its next call reuses (planning packs them to bf16 at once).
TensorRef narrow_conv_taps(const TensorRef& w);

// y [N, H, W, Co] (F32 or BF16) = conv(x [N, H, W, Ci] bf16, taps [9, Co, Ci] bf16) + bias [Co]
// (f32, optional), the rows split over `threads`. Only where narrow_conv_pays(Ci, Co).
void narrow_conv3x3(const uint16_t* x, const uint16_t* taps, const float* bias, int64_t N,
                    int64_t H, int64_t W, int64_t Ci, int64_t Co, void* y, DType yt, int threads);

}  // namespace sdc::cpu
