// Factories of the noise generators.
#include "sampling/rng/noise_generator.h"

namespace sdc::sampling {

GeneratorFactory torch_cpu_generators() {
  return [](uint64_t seed) -> std::unique_ptr<NoiseGenerator> {
    return std::make_unique<TorchCpuNoise>(seed);
  };
}

GeneratorFactory philox_generators() {
  return [](uint64_t seed) -> std::unique_ptr<NoiseGenerator> {
    return std::make_unique<PhiloxNoise>(seed);
  };
}

}  // namespace sdc::sampling
