// The sdc.* metadata of a compiled model — the .gguf `sdc convert` writes: building the key/values
// from what was converted, and reading them back (validated) when such a file is loaded.
//
// Schema (format version 1; every key under sdc. except the general.* ones GGUF defines):
//   general.architecture   "stable-diffusion"        general.name   NAME
//   general.alignment      u32 64 (written by the GGUF writer)
//   sdc.version            u32 format version (1)    sdc.tool       "sdc 0.1.0"
//   sdc.base               "sd15"                    sdc.components ["unet","text_encoder","vae",…]
//                          (…, "taesd_decoder", "taesd_encoder" when bundled: tensors taesd.*)
//   sdc.config.<component> diffusers config.json as a JSON string (head counts included), for
//                          unet, text_encoder, vae, controlnet — what model_loader reads back
//   sdc.precision.<component>  "f32" | "f16" | "bf16"  (stored type of its float tensors)
//   sdc.compute.unet       "int8" (optional): the UNet runs W8A8 when loaded with --precision
//                          auto (convert -t unet=int8; its tensors are stored as sdc.precision
//                          says)
//   sdc.tokenizer.vocab_json / sdc.tokenizer.merges   CLIP vocab.json and merges.txt, verbatim
//   sdc.sizes              i32 array [W, H, W, H, …] (pixels) to plan at load; sdc.batch u32
//   sdc.source.role|name|size|sha256   parallel arrays, one entry per input weight file
//                          (role "model", "vae", "text_encoder", "controlnet" or "taesd"; name =
//                          file name)
//   sdc.lora.name|sha256|format|scale|unet_modules|text_encoder_modules   parallel arrays, one
//                          entry per baked LoRA, in merge order
//   sdc.defaults.sampler|scheduler|steps|cfg_scale|reason   recommended sampler settings
//                          (e.g. an LCM-LoRA: lcm, 4, 1.0); each optional
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/dtype.h"
#include "io/gguf.h"
#include "io/tensor_file.h"
#include "model/hparams.h"
#include "model/lora_file.h"
#include "model/model_loader.h"

namespace sdc::model {

inline constexpr uint32_t kCompiledFormatVersion = 1;

struct SourceFile {
  std::string role;  // "model", "vae", "text_encoder", "controlnet", "taesd"
  std::string name;  // file name (no folder), or path relative to a diffusers folder
  uint64_t size = 0;
  std::string sha256;
};

struct BakedLoraInfo {
  std::string name;  // file name
  std::string sha256;
  std::string format;  // "kohya LoRA" …
  float scale = 1.0f;
  int unet_modules = 0, text_encoder_modules = 0;
};

struct RecommendedSettings {
  std::string sampler, scheduler;
  int steps = 0;         // 0: none
  float cfg_scale = -1;  // < 0: none
  std::string reason;    // why, e.g. "LCM-LoRA lcm-lora-sdv1-5.safetensors (file name)"
  bool empty() const { return sampler.empty() && scheduler.empty() && steps == 0 && cfg_scale < 0; }
};

struct CompiledInfo {
  uint32_t version = kCompiledFormatVersion;
  std::string tool;  // "sdc 0.1.0"
  std::string name;  // general.name
  std::string base = "sd15";
  std::map<std::string, DType> precision;  // component -> stored type of its float tensors
  std::string unet_compute;                // "int8" or empty (sdc.compute.unet)
  std::string vae_compute;                 // "int8" or empty: the VAE decoder (sdc.compute.vae)
  std::vector<std::pair<int, int>> sizes;  // (width, height) in pixels
  int batch = 1;
  std::vector<SourceFile> sources;
  std::vector<BakedLoraInfo> loras;
  RecommendedSettings defaults;
  std::string tokenizer_vocab_json, tokenizer_merges;  // empty: not stored
};

// Diffusers-style config.json of each component: what apply_*_config reads back, so a compiled
// file needs no --model-config.
nlohmann::json diffusers_config(const UNetParams& p);
nlohmann::json diffusers_config(const TextEncoderParams& p);
nlohmann::json diffusers_config(const VaeParams& p);
nlohmann::json diffusers_config(const ControlNetParams& p);

// The key/values above for `info` and the components `model` holds (general.alignment is left to
// the writer).
io::GgufMetadata compiled_metadata(const CompiledInfo& info, const LoadedModel& model);

// The info of a compiled sdc file, or nullopt when `file` is not one (not GGUF, or no
// sdc.version). sdc::Error naming the file and key for a newer format version or a malformed
// value (wrong type, sizes not in W,H pairs, a non-positive step count …).
std::optional<CompiledInfo> read_compiled_info(const io::TensorFile& file);

// Why `lora` is an LCM-LoRA (whose baked model wants lcm, 4 steps, cfg 1), or "" when nothing
// says so: a metadata key or value mentioning "lcm" (kohya's ss_output_name "lcm-lora-sdv1-5",
// a training comment …), else the file name. E.g. "LCM-LoRA x.safetensors (metadata
// ss_output_name)".
std::string lcm_lora_evidence(const LoraFile& lora);

// Tensors of a compiled file's packed section (`sdc convert --target`, see
// pipeline/packed_section.h) are named with this prefix; they are not model weights.
inline constexpr const char* kPackedTensorPrefix = "sdc.packed.";
bool is_packed_tensor(const std::string& name);
// Whether `file` has packed-section tensors.
bool has_packed_section(const io::TensorFile& file);
// `file` without its packed-section tensors (views of the same mapping), as the model layer
// reads it.
io::TensorFile without_packed_section(const io::TensorFile& file);

// "f32", "f16", "bf16" (the precisions a compiled model stores); nullopt for anything else.
std::optional<DType> parse_precision_name(const std::string& name);
const char* precision_label(DType t);  // "f32", "f16", "bf16" (others: dtype_name)

}  // namespace sdc::model
