// What the planner's kernel transforms share (upsample_conv.h, winograd_conv.h): the check that a
// weight is a float [Co, Ci, 3, 3] kernel, and their f32 results in the calling thread's buffer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/tensor.h"

namespace sdc::cpu {

// Throws an Error naming w's file and `what` unless w is a float [Co, Ci, 3, 3] kernel.
void check_3x3_kernel(const TensorRef& w, const std::string& what);

// Calls f(o, i, k) for every (output, input) channel pair of a checked [Co, Ci, 3, 3] kernel w,
// k its nine taps in f32 (row-major), in parallel over blocks of 16 output channels, each block's
// 16 in turn for one input channel after another. The transforms write [points, Ci, Co] (Co
// fastest) or [points * Co, Ci] (Ci fastest): either way a block's writes fill whole cache lines
// while they are held, where o by o they missed on every value at 1280 channels (the f32 UNet's
// Winograd kernels took seconds to plan).
template <class F>
void for_each_3x3_kernel(const TensorRef& w, F f) {
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  const auto* src = static_cast<const uint8_t*>(w.data);
  const size_t es = dtype_size(w.dtype);
  constexpr int64_t kBlock = 16;
#pragma omp parallel for schedule(static)
  for (int64_t ob = 0; ob < Co; ob += kBlock)
    for (int64_t i = 0; i < Ci; ++i)
      for (int64_t o = ob; o < std::min(Co, ob + kBlock); ++o) {
        float k[9];
        convert_to_f32(w.dtype, src + size_t((o * Ci + i) * 9) * es, k, 9);
        f(o, i, k);
      }
}

// An F32 tensor of `shape` over `staging`, a buffer of the calling thread that its next
// transform reuses (planning packs the result at once).
TensorRef staged_tensor(std::vector<float>& staging, Shape shape, const std::string& source);

}  // namespace sdc::cpu
