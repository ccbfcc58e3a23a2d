// Merging LoRAs into a model's weights ("merge in f32, then cast"): for every weight a LoRA
// touches, W' = W + scale · (alpha/rank) · ΔW computed in f32 and stored as an owned F32
// TensorRef; DoRA modules then renormalise as PEFT does,
//   W' = m ⊙ (W + scale·ΔW) / ‖W + scale·ΔW‖   (norm per output channel, over Ci·kh·kw;
//                                               per input channel for LyCORIS [1, Ci] scales).
// Untouched weights stay zero-copy views. Every module is matched and shape-checked before any
// weight changes, so a failed merge leaves the WeightMap as it was.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "model/lora_arg.h"
#include "model/lora_file.h"
#include "model/lora_targets.h"

namespace sdc::model {

struct LoraReport {
  std::string file;    // the path given
  std::string format;  // LoraFile::format()
  float scale = 1.0f;
  int unet_modules = 0, text_encoder_modules = 0;
  std::set<int64_t> ranks;
  std::vector<std::string> skipped;  // modules matching no weight (only with ignore_unmatched)
  // "lora-kohya.safetensors: 277 UNet modules, 18 text-encoder modules"
  std::string summary() const;
};

// One LoRA module paired with the model weight it adapts.
struct LoraMatch {
  const LoraModule* module = nullptr;
  std::string weight;  // LDM name
  LoraComponent component = LoraComponent::UNet;
};

// Matches every module of `lora` to a weight and checks the shapes; changes nothing. Throws
// sdc::Error for: a LoRA made for SDXL / SD2.x; modules matching no weight (naming the first
// few keys) unless `ignore_unmatched` (they are then listed in `skipped`); a spelling shared
// by several weights; two modules on one weight; a delta whose shape does not fit its weight.
std::vector<LoraMatch> match_lora(const WeightMap& weights, const LoraTargets& targets,
                                  const LoraFile& lora, bool ignore_unmatched,
                                  std::vector<std::string>* skipped = nullptr);

// One module into one weight: `w` (the weight's values in f32, `shape` its shape) becomes
// w + scale·ΔW, then DoRA's renormalisation where the module has a magnitude. merge_lora applies
// this per match; `sdc convert` calls it tensor by tensor while streaming.
void apply_lora_module(std::vector<float>& w, const Shape& shape, const LoraModule& m, float scale,
                       const std::string& file, const std::string& weight_name);

LoraReport merge_lora(WeightMap& weights, const LoraFile& lora, float scale,
                      bool ignore_unmatched = false);
// The same with a table already built (several LoRAs on one model).
LoraReport merge_lora(WeightMap& weights, const LoraTargets& targets, const LoraFile& lora,
                      float scale, bool ignore_unmatched = false);

// Loads and merges each LoRA in order, each with its own scale. If one fails, the ones before it
// stay merged (each merge_lora is all-or-nothing); callers abort on the error.
std::vector<LoraReport> merge_loras(WeightMap& weights, const std::vector<LoraSpec>& loras,
                                    bool ignore_unmatched = false);

}  // namespace sdc::model
