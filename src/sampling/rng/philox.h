// A1111's "NV" random source (modules/rng_philox.py): the numbers torch.randn gives on an NVIDIA
// GPU, reproduced on the CPU. Each randn() call is one Philox-4x32-10 batch:
//   counter = [offset, 0, i, 0] for element i, key = the 64-bit seed as two 32-bit words
//   (low first); after ten rounds the first two outputs x, y become one normal by Box-Muller,
//   u = x * 2^-32 + 2^-33, v = (y * 2^-32 + 2^-33) * 2 pi (float32 constants, float64 arithmetic
//   as numpy promotes uint32 x float32), value = float32(sqrt(-2 ln u) * sin v).
// The offset advances by one per call, not by the number of values drawn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sdc::sampling {

class PhiloxGenerator {
 public:
  explicit PhiloxGenerator(uint64_t seed) : seed_(seed) {}

  void randn(float* out, size_t n);
  std::vector<float> randn(size_t n);

  uint64_t seed() const { return seed_; }
  uint32_t offset() const { return offset_; }

 private:
  uint64_t seed_;
  uint32_t offset_ = 0;
};

// One Philox-4x32 block of `rounds` rounds (exposed for tests).
void philox4x32(uint32_t counter[4], uint32_t key[2], int rounds = 10);

}  // namespace sdc::sampling
