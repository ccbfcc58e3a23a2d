// A 3x3 convolution (stride 1, padding 1) over a 2x nearest-upsampled image, computed without the
// upsampled image: every output pixel (2i+py, 2j+px) sees only a 2x2 block of the small image,
// whose taps are sums of the 3x3 kernel's taps (for py = 0 the rows are {k0} at i-1 and {k1 + k2}
// at i; for py = 1, {k0 + k1} at i and {k2} at i+1; the same across). The four phases (py, px)
// become one 2x2 convolution with 4x the output channels over the small image padded by 1, whose
// output [N, H+1, W+1, 4Co] interleave_upsample_phases (kernels.h) moves into [N, 2H, 2W, Co].
//
// Work: 16 (H+1)(W+1) against 36 HW multiply-adds per input and output channel — 0.44-0.56x for
// the decoders' and UNet's upsamplers — and no 4x-sized upsampled tensor is written or read.
// The sums are formed in f32 before any rounding to bf16 or quantisation to int8.
#pragma once

#include "common/tensor.h"

namespace sdc::cpu {

// The 2x2 kernel g (row-major taps [a][b]) of output phase (py, px) from the nine taps k of one
// 3x3 kernel (row-major): along each axis {k0}, {k1 + k2} for phase 0 and {k0 + k1}, {k2} for
// phase 1, the columns summed first.
void upsample_phase_kernel(const float k[9], int py, int px, float g[4]);

// The phase kernel [4Co, Ci, 2, 2] (f32) of a [Co, Ci, 3, 3] kernel; output channel
// (2py + px) * Co + o is phase (py, px) of channel o. It lives in a buffer of the calling thread
// that the next call reuses (planning packs it at once; a fresh 100 MB buffer per UNet upsampler
// cost ~0.6 s of page faults and clearing on a VM).
TensorRef upsample_phase_weights(const TensorRef& w);

// A [Co] bias repeated for the four phases: [4Co] (f32).
TensorRef upsample_phase_bias(const TensorRef& b);

}  // namespace sdc::cpu
