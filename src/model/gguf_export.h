// Writing a model as one compiled .gguf, streamed tensor by tensor so that memory stays near one
// tensor per worker whatever the model's size: for each output tensor (original LDM name), its
// merged value in f32 (base + every baked LoRA module that targets it, in LoRA order, exactly as
// merge_lora computes it), cast to the component's stored type, written, freed. Tensors no LoRA
// touches and already in the target type are written straight from the memory-mapped source.
// Work runs on several threads; the file is written in order by the calling thread through
// io::GgufWriter (atomic: a failure leaves no file and no temporary file behind).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "io/gguf.h"
#include "model/lora_file.h"
#include "model/lora_merger.h"

namespace sdc::model {

// Stored type of each component's float tensors (integer tensors are kept as they are).
struct ComponentTypes {
  DType unet = DType::F16, text_encoder = DType::F16, vae = DType::F16, controlnet = DType::F16;
  // "unet=int8": the UNet is stored as `unet` (f16) and marked to run W8A8 (sdc.compute.unet),
  // which `--precision auto` then follows and `convert --target` packs for.
  bool unet_int8 = false;
  // "vae=int8": the VAE is stored as `vae` (f16) and its decoder marked to run W8A8
  // (sdc.compute.vae).
  bool vae_int8 = false;
  // The type for an LDM-named tensor of `dtype` (non-float types pass through).
  DType for_tensor(const std::string& ldm_name, DType dtype) const;
  // {"unet": …, "text_encoder": …, "vae": …, "controlnet": …}
  std::map<std::string, DType> by_component() const;
};

// One LoRA to bake: its modules matched to the weights (match_lora), and its scale.
struct LoraBake {
  const LoraFile* lora = nullptr;
  float scale = 1.0f;
  std::vector<LoraMatch> matches;
};

// Matches `lora` against `weights` and fills `report` as merge_lora would (modules per
// component, ranks, skipped modules); the same errors as merge_lora (a LoRA for SDXL/SD2,
// unmatched modules unless `ignore_unmatched`, shapes that do not fit, a non-finite scale).
LoraBake prepare_lora_bake(const WeightMap& weights, const LoraTargets& targets,
                           const LoraFile& lora, float scale, bool ignore_unmatched,
                           LoraReport& report);

struct ExportOptions {
  int threads = 0;  // workers merging and casting (0: all cores)
  // Called on the writing thread after each tensor: (tensors written, total).
  std::function<void(size_t, size_t)> on_tensor;
};

struct ExportResult {
  size_t tensors = 0;
  size_t merged = 0;   // tensors changed by a LoRA
  uint64_t bytes = 0;  // file size
  double seconds = 0;
};

// Writes every tensor of `weights` (WeightMap order) to `path` with `metadata`.
ExportResult export_gguf(const std::string& path, const WeightMap& weights,
                         const std::vector<LoraBake>& loras, const ComponentTypes& types,
                         const io::GgufMetadata& metadata, const ExportOptions& options = {});

}  // namespace sdc::model
