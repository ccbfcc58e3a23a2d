// Hyper-parameters of each component read from the tensor shapes of LDM-named weights, and the
// diffusers configs that supply what shapes cannot tell (head counts, norm groups and eps, the
// text activation, the VAE scaling factor). A config value that shapes also determine (channels,
// layers, context width) must agree with them: a mismatch is an error naming both, so a wrong
// --model-config is caught instead of silently producing a different network.
//
// Defaults where neither says otherwise: UNet 8 heads, CLIP text heads = width / 64 (at least 1).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/tensor.h"
#include "model/hparams.h"

namespace sdc::model {

// `prefix`: "model.diffusion_model." for a UNet, "control_model." for a ControlNet's UNet half.
UNetParams infer_unet_params(const WeightMap& ldm,
                             const std::string& prefix = "model.diffusion_model.");
TextEncoderParams infer_text_encoder_params(const WeightMap& ldm);
VaeParams infer_vae_params(const WeightMap& ldm);
ControlNetParams infer_controlnet_params(const WeightMap& ldm);

// Applies a diffusers config.json (UNet2DConditionModel / CLIPTextModel / AutoencoderKL /
// ControlNetModel). `source` names the config in error messages.
void apply_unet_config(UNetParams& p, const nlohmann::json& config, const std::string& source);
void apply_text_encoder_config(TextEncoderParams& p, const nlohmann::json& config,
                               const std::string& source);
void apply_vae_config(VaeParams& p, const nlohmann::json& config, const std::string& source);
void apply_controlnet_config(ControlNetParams& p, const nlohmann::json& config,
                             const std::string& source);

// Checks what graph builders rely on (e.g. channels divisible by heads and by norm groups).
void validate(const UNetParams& p, const std::string& source);
void validate(const TextEncoderParams& p, const std::string& source);
void validate(const VaeParams& p, const std::string& source);

// Sum of the element counts of the tensors whose names start with `prefix`.
int64_t parameter_count(const WeightMap& m, const std::string& prefix);

// Plain JSON descriptions (for `sdc inspect` and metadata).
nlohmann::json to_json(const UNetParams& p);
nlohmann::json to_json(const TextEncoderParams& p);
nlohmann::json to_json(const VaeParams& p);
nlohmann::json to_json(const ControlNetParams& p);

}  // namespace sdc::model
