// Loading a Stable Diffusion 1.x model from any supported source into one WeightMap keyed by the
// original LDM names (model.diffusion_model.*, first_stage_model.*,
// cond_stage_model.transformer.text_model.*, control_model.*) plus the hyper-parameters of each
// component. Sources: single-file .safetensors/.ckpt, a diffusers folder, a compiled sdc .gguf.
#pragma once

#include <optional>
#include <string>

#include "common/tensor.h"
#include "model/hparams.h"

namespace sdc::model {

struct LoadOptions {
  std::string model_config_dir;  // --model-config: diffusers-style folder with */config.json
  std::string vae_path;          // --vae: standalone VAE (LDM or diffusers naming)
  std::string text_encoder_path; // --text-encoder
  bool require_unet = true, require_vae = true, require_text_encoder = true;
};

struct LoadedModel {
  std::string source;  // the path the user gave
  WeightMap weights;   // LDM names; views into mapped files where possible
  UNetParams unet;
  TextEncoderParams text_encoder;
  VaeParams vae;
  std::optional<ControlNetParams> controlnet;  // when control_model.* weights are present
};

// Loads and validates; throws sdc::Error saying exactly what is missing (e.g. "model.safetensors:
// VAE: expected first_stage_model.* weights, found none (pass --vae FILE)").
LoadedModel load_model(const std::string& path, const LoadOptions& options);

}  // namespace sdc::model
