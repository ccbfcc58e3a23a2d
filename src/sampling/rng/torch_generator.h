// TorchGenerator: a bit-compatible re-implementation of PyTorch's CPU generator
// (`torch.Generator("cpu").manual_seed(seed)`) and of what `torch.randn(shape, generator=g)` draws
// from it in float32, so that a seed gives the same initial noise as diffusers/A1111 on the CPU.
//
// How PyTorch does it (ATen CPUGeneratorImpl + DistributionsHelper + cpu/DistributionTemplates):
// - The engine is a standard MT19937 seeded with the low 32 bits of the seed; random() is one
// 32-bit
//   output, random64() is two outputs, the first as the high word.
// - A uniform float in [0, 1) is (random() & (2^24 - 1)) / 2^24; a uniform double is
//   (random64() & (2^53 - 1)) / 2^53.
// - randn of a contiguous float tensor with n >= 16 elements ("normal_fill"): n uniform floats are
//   drawn first; then each block of 16 is turned into normals by Box–Muller pairing element j with
//   j + 8 (u1 = 1 - data[j], u2 = data[j + 8]; r = sqrt(-2 log u1), theta = 2 pi u2; data[j] =
//   r cos theta, data[j + 8] = r sin theta). If n % 16 != 0 the last 16 elements are overwritten by
//   16 fresh uniforms and transformed again as one block. The transform is done in float exactly as
//   PyTorch's AVX2 kernel does it (Cephes log/sincos polynomials with fused multiply-adds, angle
//   = float(2 pi) * u2), so the values are bit-identical to torch on an x86-64 CPU with AVX2.
// - With n < 16 the scalar path is used: each element is a double normal from two uniform doubles
//   (u1 for the angle, u2 for the radius: r = sqrt(-2 log(1 - u2))), r sin theta being cached in
//   the generator and returned by the next scalar draw (manual_seed clears the cache).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace sdc::sampling {

class TorchGenerator {
 public:
  explicit TorchGenerator(uint64_t seed = 67280421310721ULL);  // PyTorch's default CPU seed

  // torch.Generator.manual_seed: reseeds the engine and drops the cached normal.
  void manual_seed(uint64_t seed);
  uint64_t initial_seed() const { return seed_; }

  uint32_t random();    // one 32-bit engine output
  uint64_t random64();  // two outputs, first one in the high word

  // torch.randn(n) in float32, filled into `out` (row-major order of the tensor).
  void randn(float* out, size_t n);
  std::vector<float> randn(size_t n);
  // torch.randn(shape): the product of the dimensions, each of which must be >= 0.
  std::vector<float> randn(const std::vector<int64_t>& shape);

 private:
  float uniform_float();    // [0, 1), 24 random bits
  double uniform_double();  // [0, 1), 53 random bits
  double normal_double();   // scalar path, with the cached second value
  void normal_fill(float* out, size_t n);

  uint64_t seed_ = 0;
  std::mt19937 engine_;  // the standard fixes MT19937's seeding and output exactly
  std::optional<double> next_double_normal_;
};

// A fresh seed for `--seed -1`: 32 random bits from the OS (std::random_device), as A1111 picks
// seeds below 2^32. PyTorch only uses the low 32 bits of a seed anyway.
uint64_t random_seed();

}  // namespace sdc::sampling
