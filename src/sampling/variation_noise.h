// Variation seeds and "resize seed from", as AUTOMATIC1111 makes a batch's initial noise
// (modules/rng.py ImageRNG + slerp, modules/processing.py's seed progression):
//
//  - every image i has its own generator g_i seeded with seeds[i];
//  - with a subseed (strength != 0) the image's noise is slerp(strength, randn(seed_i),
//    randn(subseed_i)), each drawn from a fresh generator at the noise shape;
//  - with a resize source size (both > 0) that noise is drawn at (C, from_h // 8, from_w // 8) and
//    centred in / cropped to a full-size draw from g_i (Python floor division for the offsets,
//    so uncovered borders keep g_i's values);
//  - later draws (an ancestral sampler's noise) are one latent-sized randn per image from g_i.
// Without subseed and resize this is exactly "image i draws randn(latent) from g_i".
//
// slerp is A1111's as written for 4-D batches but applied to one image's [C,H,W]: the norms run
// over H (one unit vector per channel and column), and when the mean cosine exceeds 0.9995 it
// returns low·val + high·(1 − val) — the weights swapped compared with a lerp — instead of
// dividing by sin(ω) ≈ 0.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "sampling/rng/noise_generator.h"

namespace sdc::sampling {

struct VariationSeeds {
  std::vector<int64_t> seeds;                // one per image
  std::vector<int64_t> subseeds;             // one per image; ignored when strength == 0
  double strength = 0;                       // 0: the seed's noise; 1: the subseed's
  int resize_from_w = 0, resize_from_h = 0;  // pixels; both > 0 to apply
  bool uses_subseed() const { return strength != 0 && !subseeds.empty(); }
  bool uses_resize() const { return resize_from_w > 0 && resize_from_h > 0; }
};

// A1111 processing.py: with strength 0 image i of the run gets seed + i; with a variation
// strength every image keeps `seed` and image i gets subseed + i. `first_index` is the run-wide
// index of the batch's first image (batch b of size n: b·n).
VariationSeeds batch_variation_seeds(int64_t seed, int64_t subseed, double strength,
                                     int resize_from_w, int resize_from_h, int first_index,
                                     int batch_size);

// A1111's slerp on one image's [channels, height, width] tensors (see above); float32.
std::vector<float> a1111_slerp(float val, std::span<const float> low, std::span<const float> high,
                               int channels, int height, int width);

class VariationNoise {
 public:
  // Latent shape per image [channels, height, width]. Throws sdc::UsageError for a resize source
  // smaller than 8 pixels or a subseed list of the wrong length.
  VariationNoise(int channels, int height, int width, VariationSeeds seeds,
                 const GeneratorFactory& make_generator);

  size_t batch() const { return gens_.size(); }
  size_t per_image() const { return per_image_; }
  // g_i, for draws that come before the initial noise (an img2img posterior sample).
  NoiseGenerator& generator(size_t image) { return *gens_.at(image); }

  // The batch's initial noise [B, C, H, W] (ImageRNG.first()).
  std::vector<float> first();
  // One more latent-sized draw per image from g_i into `out` [B, C, H, W] (ImageRNG.next()).
  void next(std::span<float> out);

 private:
  int c_, h_, w_;
  size_t per_image_;
  VariationSeeds seeds_;
  GeneratorFactory make_;
  std::vector<std::unique_ptr<NoiseGenerator>> gens_;
};

}  // namespace sdc::sampling
