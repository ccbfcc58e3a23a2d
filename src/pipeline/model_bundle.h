// ModelBundle: everything a generation needs from disk, loaded once — the model (any format),
// its LoRAs merged into the weights, an optional ControlNet attached, the tokenizer (the built-in
// CLIP vocabulary, or the one a compiled .gguf carries) and a compiled model's recommended
// defaults. Shared by `sdc generate`, `sdc bench -m` and the server.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "model/lora_merger.h"
#include "model/model_loader.h"
#include "model/textual_inversion.h"
#include "pipeline/generation_params.h"
#include "pipeline/generation_request.h"
#include "text/tokenizer.h"

namespace sdc::pipeline {

struct BundleOptions {
  std::string model;               // -m: file or diffusers folder
  std::string model_config;        // --model-config DIR
  std::string vae, text_encoder;   // --vae, --text-encoder
  std::string taesd;               // --taesd FILE|DIR (model/taesd_file.h)
  std::string controlnet;          // --control-net FILE (original or diffusers layout)
  std::vector<std::string> loras;  // --lora FILE[:SCALE]
  bool ignore_unmatched_lora_keys = false;
  std::string embeddings_dir;  // --embeddings DIR: textual-inversion embeddings (A1111's folder)
};

// Sampler settings a compiled model recommends (e.g. an LCM-LoRA bake: lcm, 4 steps, cfg 1).
struct RecommendedDefaults {
  std::string sampler, scheduler;
  int steps = 0;         // 0: none
  float cfg_scale = -1;  // < 0: none
  bool empty() const { return sampler.empty() && steps == 0 && cfg_scale < 0; }
};

struct ModelBundle {
  model::LoadedModel model;
  std::vector<model::LoraReport> loras;
  std::string name;  // shown in PNG metadata: the model file's stem
  RecommendedDefaults defaults;
  std::unique_ptr<text::ClipTokenizer> own_tokenizer;  // from a .gguf's metadata, else null
  // A compiled model's declared sizes ((width, height) in pixels) and batch, to plan at load.
  std::vector<std::pair<int, int>> declared_sizes;
  int declared_batch = 1;
  bool unet_int8 = false;              // a compiled model made with -t unet=int8 (sdc.compute.unet)
  bool vae_int8 = false;               // ... with -t vae=int8 (sdc.compute.vae)
  model::EmbeddingLibrary embeddings;  // from BundleOptions::embeddings_dir
  const text::ClipTokenizer& tokenizer() const {
    return own_tokenizer ? *own_tokenizer : text::ClipTokenizer::builtin();
  }
};

// Loads, merges LoRAs (f32, before any cast) and attaches the ControlNet. `log` gets one line per
// LoRA ("lora-kohya.safetensors: 277 UNet modules, 18 text-encoder modules"). From a compiled
// .gguf (sdc convert) it also takes the tokenizer, the recommended defaults and the declared
// sizes stored in its sdc.* metadata.
ModelBundle load_bundle(const BundleOptions& options, std::ostream& log);

// Attaches a ControlNet file's weights (as control_model.*) and hyper-parameters to `model`.
void attach_controlnet(model::LoadedModel& model, const std::string& path,
                       const std::string& model_config_dir);

// The A1111 "parameters" of image `seed` of `request` made with this bundle.
GenerationParams describe(const ModelBundle& bundle, const GenerationRequest& request,
                          int64_t seed);

// Fills sampler/steps/cfg the user did not set from the bundle's recommended defaults.
void apply_defaults(const ModelBundle& bundle, GenerationRequest& request);

}  // namespace sdc::pipeline
