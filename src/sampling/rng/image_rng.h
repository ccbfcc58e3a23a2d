// A1111's ImageRNG (modules/rng.py): one generator per image seed of the batch, in one of two
// sources. `first()` is the initial noise, `next()` every later latent-sized draw a sampler
// takes (k-diffusion's torch.randn_like, hijacked), image b from generator b.
//   cpu  torch.Generator("cpu").manual_seed(seed) + torch.randn (A1111 "CPU"; also what "GPU"
//        gives on a CPU-only machine)
//   nv   rng_philox.Generator(seed) (A1111 "NV"): the numbers torch.randn gives on an NVIDIA GPU,
//        so the same image as most A1111 users get with the default "GPU" source
// With a non-zero ENSD (eta noise seed delta) the generators are re-seeded with seed + ENSD after
// the first draw, as A1111 does. Variation seeds and "resize seed from" shape the first draw
// (VariationNoise) in either source, so there is one noise path for every option.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/rng/brownian_tree.h"
#include "sampling/rng/noise_generator.h"
#include "sampling/rng/philox.h"
#include "sampling/rng/torch_generator.h"
#include "sampling/variation_noise.h"

namespace sdc::sampling {

enum class RngSource { kCpu, kNv };

// "cpu" | "nv", case-insensitive (A1111 writes "CPU" / "NV"); throws sdc::UsageError naming
// --rng otherwise.
RngSource parse_rng_source(std::string_view name);
const char* rng_infotext_name(RngSource source);  // "CPU" | "NV"
const char* rng_cli_name(RngSource source);       // "cpu" | "nv"
// Fresh per-seed generators of the source (torch CPU or Philox).
GeneratorFactory generators_for(RngSource source);

class ImageRng {
 public:
  ImageRng(RngSource source, std::vector<uint64_t> seeds, size_t per_image, uint64_t ensd = 0);
  // A latent [channels, height, width] per image with A1111's variation seeds (seeds.seeds are
  // the image seeds; the subseeds and resize shape only the first draw).
  ImageRng(RngSource source, const VariationSeeds& seeds, int channels, int height, int width,
           uint64_t ensd = 0);

  std::vector<float> first();       // the initial noise of every image
  void next(std::span<float> out);  // the next draw of every image
  // The Brownian tree's seeded draws in this source (torchsde's _randn as A1111 patches it).
  SeededRandn seeded_randn() const;
  // Image i's generator, for draws that come before the initial noise (an img2img posterior).
  NoiseGenerator& generator(size_t image) { return noise_->generator(image); }
  const std::vector<uint64_t>& seeds() const { return seeds_; }
  RngSource source() const { return source_; }

 private:
  RngSource source_;
  std::vector<uint64_t> seeds_;
  int c_, h_, w_;
  uint64_t ensd_;
  std::unique_ptr<VariationNoise> noise_;
};

}  // namespace sdc::sampling
