// The F(4x4, 3x3) input and output transforms of one chunk of tiles (winograd_f4_kernel.h), built
// for two vector widths: AVX2 (8 channels at a time, any CPU with AVX2 + FMA) and AVX-512 (16, for
// channels in multiples of 16 where the own kernels run AVX-512). WinogradF4Conv picks one at
// planning.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/winograd_f4.h"

namespace sdc::cpu {

#define SDC_WINO4_TRANSFORMS                                                                       \
  /* Tiles [k0, k0 + count) of x [N, H, W, Ci] (zeros: Ci zeros, the padding) into V [36,          \
     tiles, Ci]; tiles [count, tiles) zeroed. */                                                   \
  void input_chunk(const float* x, const float* zeros, const WinogradF4Conv::Shape& s, int64_t k0, \
                   int64_t count, int64_t tiles, float* V);                                        \
  /* The 4x4 blocks of tiles [k0, k0 + count) from their products M [36, tiles, Co] (point         \
     stride ms), plus bias [Co] and add [N, H, W, Co] (each optional; add may be y), then a        \
     ReLU if `relu`, into y [N, H, W, Co]. */                                                      \
  void output_chunk(const float* M, size_t ms, const WinogradF4Conv::Shape& s, int64_t k0,         \
                    int64_t count, const float* bias, const float* add, float* y, bool relu);

namespace wino4_avx2 {
SDC_WINO4_TRANSFORMS
}
namespace wino4_avx512 {
SDC_WINO4_TRANSFORMS
}

#undef SDC_WINO4_TRANSFORMS

}  // namespace sdc::cpu
