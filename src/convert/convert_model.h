// convert_model(): the core of `sdc convert`, shared by the CLI and the server's convert jobs —
// read the model (+ VAE, ControlNet) and the LoRAs and match them, pick the recommended sampler
// settings, hash every input, then merge + cast + write ONE .gguf (model/gguf_export.h). Every
// refusal happens before the output exists; the file appears only when complete (atomic
// rename), and a cancel between stages or tensors leaves nothing. The caller observes stages
// and may cancel; it decides where the output goes (convert_output_path() is the CLI's rule).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "model/compiled_model.h"
#include "model/gguf_export.h"
#include "model/lora_arg.h"
#include "model/lora_merger.h"

namespace sdc::convert {

struct ConvertSpec {
  std::string model;                   // .safetensors / .ckpt / diffusers folder / compiled .gguf
  std::vector<model::LoraSpec> loras;  // baked in this order
  std::string controlnet, vae, model_config;
  std::string taesd;  // --taesd FILE|DIR: bundled under taesd.* (stored as read)
  model::ComponentTypes types;
  std::vector<std::pair<int, int>> sizes;  // (W, H) to plan at load
  int batch = 1;
  std::string name;               // general.name; empty: the model file's stem
  std::string defaults = "auto";  // auto (lcm when a LoRA is an LCM-LoRA) | lcm | none
  bool ignore_unmatched = false;
  int threads = 0;
  std::string output;  // the .gguf to write (its folder must exist)
  std::string tool;    // "sdc 0.1.0", recorded in the file
};

enum class ConvertStage { Read, Hash, Write };
const char* stage_name(ConvertStage s);  // "read", "hash", "write"

struct ConvertObserver {
  // Stage `stage` has done `done` of `total` units (inputs read, files hashed, tensors written);
  // called with done = 0 when a stage starts. `label` names the stage for people ("merge LoRA +
  // cast + write" when LoRAs are baked).
  std::function<void(ConvertStage stage, const std::string& label, size_t done, size_t total)>
      progress;
  std::function<void(const std::string&)> log;  // one line each: LoRA reports, defaults
  std::function<bool()> cancelled;              // polled between inputs and tensors
};

// Thrown when observer.cancelled() said so; nothing was written. what(): "OUT: interrupted;
// nothing written".
class ConvertCancelled : public Error {
 public:
  explicit ConvertCancelled(const std::string& output);
};

struct ConvertResult {
  std::string path;
  model::CompiledInfo info;
  model::ExportResult written;
  std::vector<model::LoraReport> reports;
};

// What every output format starts from: the model read (+ VAE, ControlNet), its LoRAs loaded
// and matched (not merged yet: the .gguf writer merges tensor by tensor, the ONNX export merges
// in place first), the recommended settings chosen and every input hashed into result.info.
// Stages Read and Hash of `observer`; the same refusals as convert_model.
struct PreparedConversion {
  model::LoadedModel model;
  std::vector<std::unique_ptr<model::LoraFile>> lora_files;
  std::vector<model::LoraBake> bakes;
  ConvertResult result;  // info and reports filled; path and written left to the writer
};
PreparedConversion prepare_conversion(const ConvertSpec& spec,
                                      const ConvertObserver& observer = {});

// Checks the spec (version, batch, sizes, output) and converts. sdc::Error / UsageError for bad
// input, ConvertCancelled when cancelled.
ConvertResult convert_model(const ConvertSpec& spec, const ConvertObserver& observer = {});

// The name a spec's model gets when none is given: the file's stem (a folder's own name).
std::string default_model_name(const std::string& model_path);

// "bf16" (every component) or "unet=bf16,vae=f32,…" (others f16; the ControlNet follows the UNet
// unless named). "unet=int8" (or "int8" alone): the UNet stored f16 and marked W8A8 (its
// ControlNet stays float). `option` names the option in messages ("-t/--type", "precision").
model::ComponentTypes parse_component_types(const std::string& arg, const std::string& option);

// W H pairs → (W, H), multiples of 8 within the pipeline's limits, duplicates dropped.
std::vector<std::pair<int, int>> parse_sizes(const std::vector<int>& flat,
                                             const std::string& option);

// A batch in [1, 64] and a family name "sd15" (the only one): UsageError naming `option`.
void check_batch(int batch, const std::string& option);

}  // namespace sdc::convert
