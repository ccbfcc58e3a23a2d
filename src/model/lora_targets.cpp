// The lookup table from every LoRA spelling of a module path to the model's LDM weight name.
#include "model/lora_targets.h"

#include <algorithm>
#include <string_view>

namespace sdc::model {
namespace {

constexpr std::string_view kUNetPrefix = "model.diffusion_model.";
constexpr std::string_view kTextPrefix = "cond_stage_model.transformer.";
constexpr std::string_view kWeight = ".weight";

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::string strip(std::string_view s, std::string_view prefix, std::string_view suffix) {
  return std::string(s.substr(prefix.size(), s.size() - prefix.size() - suffix.size()));
}

}  // namespace

std::string kohya_flatten(const std::string& dotted_path) {
  std::string out = dotted_path;
  std::replace(out.begin(), out.end(), '.', '_');
  return out;
}

LoraTargets::LoraTargets(const WeightMap& weights, const ToDiffusers& to_diffusers) {
  for (const auto& [name, t] : weights.all()) {
    if (!ends_with(name, kWeight) || !is_float(t.dtype)) continue;
    // Only matrices and convolution kernels take LoRA deltas (not norms, not biases).
    if (t.shape.size() != 2 && t.shape.size() != 4) continue;
    LoraComponent c;
    std::string_view ldm_prefix;
    const char* kohya_prefix;
    const char* diffusers_prefix;
    if (starts_with(name, kUNetPrefix)) {
      c = LoraComponent::UNet;
      ldm_prefix = kUNetPrefix;
      kohya_prefix = "lora_unet_";
      diffusers_prefix = "unet.";
      has_unet_ = true;
      if (ends_with(name, "attn2.to_k.weight") && context_width_ == 0)
        context_width_ = t.shape.back();
    } else if (starts_with(name, kTextPrefix)) {
      c = LoraComponent::TextEncoder;
      ldm_prefix = kTextPrefix;
      kohya_prefix = "lora_te_";
      diffusers_prefix = "text_encoder.";
      has_text_encoder_ = true;
    } else {
      continue;
    }
    const std::string ldm_path = strip(name, ldm_prefix, kWeight);
    add(kohya_prefix + kohya_flatten(ldm_path), name, c);
    if (std::optional<std::string> d = to_diffusers(name)) {
      if (starts_with(*d, diffusers_prefix) && ends_with(*d, kWeight)) {
        const std::string path = strip(*d, "", kWeight);  // "unet.down_blocks.…"
        add(path, name, c);
        const std::string under = strip(*d, diffusers_prefix, kWeight);
        if (under != ldm_path) add(kohya_prefix + kohya_flatten(under), name, c);
      }
    }
  }
}

void LoraTargets::add(const std::string& spelling, const std::string& weight, LoraComponent c) {
  auto [it, fresh] = table_.emplace(spelling, LoraTarget{weight, c, {}});
  if (fresh || it->second.weight == weight) return;
  LoraTarget& t = it->second;
  if (t.ambiguous.empty()) t.ambiguous.push_back(t.weight);
  if (std::find(t.ambiguous.begin(), t.ambiguous.end(), weight) == t.ambiguous.end())
    t.ambiguous.push_back(weight);
  t.weight.clear();
}

const LoraTarget* LoraTargets::find(const std::string& lookup) const {
  auto it = table_.find(lookup);
  return it == table_.end() ? nullptr : &it->second;
}

}  // namespace sdc::model
