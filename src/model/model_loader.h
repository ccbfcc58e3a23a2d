// Loading a Stable Diffusion 1.x model from any supported source into one WeightMap keyed by the
// original LDM names (model.diffusion_model.*, first_stage_model.*,
// cond_stage_model.transformer.text_model.*, control_model.*) plus the hyper-parameters of each
// component. Sources: single-file .safetensors/.ckpt, a diffusers folder, a compiled sdc .gguf
// (tensors under LDM names). Weights are views into the mapped files.
//
// Hyper-parameters come from tensor shapes, then from diffusers configs, in this order (later
// wins): the source's own configs (a diffusers folder's */config.json; in a GGUF the metadata keys
// "sdc.config.unet", "sdc.config.text_encoder", "sdc.config.vae", "sdc.config.controlnet", each a
// diffusers config as a JSON string or object), the --vae / --text-encoder folders' configs, then
// --model-config DIR (DIR/unet/config.json, DIR/text_encoder/config.json, DIR/vae/config.json,
// DIR/controlnet/config.json; each optional, at least one present).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/tensor.h"
#include "io/tensor_file.h"
#include "model/classify.h"
#include "model/hparams.h"
#include "model/taesd_file.h"

namespace sdc::model {

struct LoadOptions {
  std::string model_config_dir;   // --model-config: diffusers-style folder with */config.json
  std::string vae_path;           // --vae: standalone VAE (LDM or diffusers naming)
  std::string text_encoder_path;  // --text-encoder
  std::string taesd_path;         // --taesd: TAESD file or folder (model/taesd_file.h)
  bool require_unet = true, require_vae = true, require_text_encoder = true;
};

struct LoadedModel {
  std::string source;  // the path the user gave
  io::FileFormat format = io::FileFormat::Safetensors;
  Classification classification;
  WeightMap weights;  // LDM names; views into mapped files where possible
  UNetParams unet;
  TextEncoderParams text_encoder;
  VaeParams vae;
  std::optional<ControlNetParams> controlnet;  // when control_model.* weights are present
  bool has_unet = false, has_vae = false, has_text_encoder = false;
  // TAESD networks under taesd.* in `weights`: from --taesd, or bundled in a compiled .gguf.
  TaesdParts taesd;
};

// Loads and validates; throws sdc::Error saying exactly what is missing (e.g. "model.safetensors:
// VAE: expected first_stage_model.* weights, found none (pass --vae FILE)"), or what was found
// instead of an SD1.x model (a LoRA, SDXL, SD2.x, an inpainting UNet: "not supported yet").
LoadedModel load_model(const std::string& path, const LoadOptions& options);
// The same from a file already opened with io::open_tensor_file().
LoadedModel load_model(const io::TensorFile& file, const LoadOptions& options);

// Component name ("unet", "text_encoder", "vae", "controlnet") -> (config, where it came from).
using ConfigSet = std::map<std::string, std::pair<nlohmann::json, std::string>>;

// The configs a file carries (diffusers folder configs, GGUF sdc.config.* keys).
ConfigSet configs_of(const io::TensorFile& file);
// --model-config DIR; sdc::Error for a missing folder or one without any of the configs.
ConfigSet read_model_config_dir(const std::string& dir);

}  // namespace sdc::model
