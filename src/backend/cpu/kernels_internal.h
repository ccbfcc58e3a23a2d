// Helpers shared by the kernel files (not part of the kernels' interface).
#pragma once

#include <cstdint>

namespace sdc::cpu {

// Serial f32 -> bf16 conversion of n values (inside an already parallel loop).
void convert_span_to_bf16(const float* x, uint16_t* y, int64_t n);

}  // namespace sdc::cpu
