// NoiseGenerator: the one thing the pipeline and the samplers need from a random source — standard
// normal float32 values drawn in order from a generator seeded once. The torch CPU generator is
// one implementation; others (A1111's "NV" Philox imitation of torch CUDA randn) plug in through
// the same interface and a GeneratorFactory, so variation seeds, initial noise and ancestral noise
// never name a concrete generator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "sampling/rng/philox.h"
#include "sampling/rng/torch_generator.h"

namespace sdc::sampling {

class NoiseGenerator {
 public:
  virtual ~NoiseGenerator() = default;
  // `n` values of randn(shape) for any shape with n elements (row-major), as the source draws them.
  virtual void randn(float* out, size_t n) = 0;
  std::vector<float> randn(size_t n) {
    std::vector<float> v(n);
    randn(v.data(), n);
    return v;
  }
};

// A fresh generator seeded with `seed` (A1111's rng.create_generator / manual_seed).
using GeneratorFactory = std::function<std::unique_ptr<NoiseGenerator>(uint64_t seed)>;

// torch.Generator("cpu").manual_seed(seed) + torch.randn: A1111's "CPU" source, diffusers' default.
class TorchCpuNoise final : public NoiseGenerator {
 public:
  explicit TorchCpuNoise(uint64_t seed) : gen_(seed) {}
  void randn(float* out, size_t n) override { gen_.randn(out, n); }
  using NoiseGenerator::randn;

 private:
  TorchGenerator gen_;
};

// rng_philox.Generator(seed): A1111's "NV" source (torch CUDA randn reproduced on the CPU).
class PhiloxNoise final : public NoiseGenerator {
 public:
  explicit PhiloxNoise(uint64_t seed) : gen_(seed) {}
  void randn(float* out, size_t n) override { gen_.randn(out, n); }
  using NoiseGenerator::randn;

 private:
  PhiloxGenerator gen_;
};

GeneratorFactory torch_cpu_generators();
GeneratorFactory philox_generators();

}  // namespace sdc::sampling
