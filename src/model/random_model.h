// A Stable Diffusion 1.x model with random weights: every tensor of the original LDM single-file
// layout (names and shapes derived from the hyper-parameters; defaults = full-size SD1.5), filled
// with seeded, deterministic values scaled so activations stay in a sane range — for benchmarks
// and smoke tests of the real architecture without a multi-gigabyte download.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/tensor.h"
#include "model/hparams.h"

namespace sdc::model {

// (LDM name, shape) of every tensor of a component, in a fixed order.
using WeightShapes = std::vector<std::pair<std::string, Shape>>;
WeightShapes unet_weight_shapes(const UNetParams& p);  // model.diffusion_model.*
WeightShapes text_encoder_weight_shapes(
    const TextEncoderParams& p);                     // cond_stage_model.transformer.text_model.*
WeightShapes vae_weight_shapes(const VaeParams& p);  // first_stage_model.*
WeightShapes controlnet_weight_shapes(const ControlNetParams& p);  // control_model.*
// TAESD for SD1.x (madebyollin's Tiny AutoEncoder, 64 channels, 4 latent channels): taesd.py's
// keys under taesd.decoder.* and taesd.encoder.*, as model/taesd_file.h stores a loaded one.
WeightShapes taesd_weight_shapes();

// How a WeightMap's tensors under `prefix` differ from a table: every missing tensor, every
// tensor not in the table, every shape mismatch ("NAME: expected [..], found [..]").
struct WeightShapeCheck {
  std::vector<std::string> missing, unexpected, wrong_shape;
  bool ok() const { return missing.empty() && unexpected.empty() && wrong_shape.empty(); }
  std::string report(size_t limit = 20) const;  // one line per problem, `limit` per kind
};
WeightShapeCheck check_weight_shapes(const WeightMap& weights, const WeightShapes& expected,
                                     const std::string& prefix);

// Random values for `shapes`, stored as `dtype` (F32, F16 or BF16). Each tensor's values depend
// only on (seed, name), so any subset of a model gets the same numbers. Linear/conv weights are
// uniform with std 1/sqrt(fan_in); norm scales 1 +- small; biases and norm shifts small;
// embedding tables std 0.5. Generated in parallel on all cores.
WeightMap make_random_weights(const WeightShapes& shapes, uint64_t seed, DType dtype);

struct RandomModelParts {
  bool unet = true, text_encoder = true, vae = true, controlnet = false;
  bool taesd = false;  // decoder and encoder (about 2.4M parameters)
};

// Full-size SD1.5 (UNet 860M, CLIP-L text encoder 123M, VAE 84M parameters; ControlNet 361M):
// about 2.1 GB at bf16/f16 for the base model, 4.3 GB at f32.
WeightMap make_random_sd15(uint64_t seed, DType dtype, bool with_controlnet = false);
WeightMap make_random_sd15(uint64_t seed, DType dtype, const RandomModelParts& parts);

}  // namespace sdc::model
