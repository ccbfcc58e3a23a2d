// The LoRA entry points that match against the model's own names through key_mapping
// (model::ldm_to_diffusers). Kept apart so that the matching and merging machinery
// (lora_targets.cpp, lora_merger.cpp) links and is tested with any name mapper.
#include "common/error.h"
#include "model/key_mapping.h"
#include "model/lora_merger.h"

namespace sdc::model {

LoraTargets::LoraTargets(const WeightMap& weights)
    : LoraTargets(weights, [](const std::string& n) { return ldm_to_diffusers(n); }) {}

LoraReport merge_lora(WeightMap& weights, const LoraFile& lora, float scale,
                      bool ignore_unmatched) {
  const LoraTargets targets(weights);
  return merge_lora(weights, targets, lora, scale, ignore_unmatched);
}

std::vector<LoraReport> merge_loras(WeightMap& weights, const std::vector<LoraSpec>& loras,
                                    bool ignore_unmatched) {
  std::vector<LoraReport> reports;
  if (loras.empty()) return reports;
  const LoraTargets targets(weights);
  for (const LoraSpec& spec : loras)
    reports.push_back(
        merge_lora(weights, targets, load_lora(spec.path), spec.scale, ignore_unmatched));
  return reports;
}

}  // namespace sdc::model
