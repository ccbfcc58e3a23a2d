// The few-output-channel convolution's row kernels (narrow_conv_kernel.h), one build per vector
// width: AVX-512 (narrow_conv_avx512.cpp: f32 values 16 channels at a time, bf16 values 32 through
// VDPBF16PS) and AVX2 (narrow_conv_avx2.cpp: f32 values 8 at a time). narrow_conv.cpp picks one per
// call and splits the rows over its threads.
#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace sdc::cpu {

// Output rows [r0, r1) of the N H rows of y [N, H, W, Co] (F32 or BF16) = conv3x3(x [N, H, W, Ci],
// taps [9, Co, Ci], both of x's type) + bias [Co] (optional); Co 1 to 4, Ci a multiple of the
// width's channels per step.
#define SDC_NARROW_ROWS(T)                                                                  \
  void rows(const T* x, const T* taps, const float* bias, int64_t H, int64_t W, int64_t Ci, \
            int64_t Co, int64_t r0, int64_t r1, void* y, DType yt);

namespace narrow_avx512 {
SDC_NARROW_ROWS(float)
SDC_NARROW_ROWS(uint16_t)  // bf16 bits: AVX-512 BF16 only
}  // namespace narrow_avx512
namespace narrow_avx2 {
SDC_NARROW_ROWS(float)
}  // namespace narrow_avx2

#undef SDC_NARROW_ROWS

}  // namespace sdc::cpu
