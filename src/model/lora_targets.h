// Which model weight a LoRA module adapts. kohya names replace every '.' of a module path by
// '_', and the paths themselves contain '_', so they cannot be parsed back. Instead the table is
// built forward from the model's own weights: for every UNet / text-encoder weight (LDM name),
// both its LDM path and its diffusers path (via key_mapping) are written in every spelling a LoRA
// may use, and LoRA modules are looked up by their normalised name (LoraModule::lookup):
//   model.diffusion_model.input_blocks.1.1.proj_in.weight
//     -> lora_unet_input_blocks_1_1_proj_in              (kohya, LDM paths)
//     -> lora_unet_down_blocks_0_attentions_0_proj_in    (kohya, diffusers paths)
//     -> unet.down_blocks.0.attentions.0.proj_in         (peft / diffusers)
//   cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight
//     -> lora_te_text_model_encoder_layers_0_self_attn_q_proj, text_encoder.text_model.…q_proj
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/tensor.h"
#include "model/lora_file.h"

namespace sdc::model {

struct LoraTarget {
  std::string weight;  // LDM name of the weight ("….weight")
  LoraComponent component = LoraComponent::UNet;
  std::vector<std::string> ambiguous;  // >1 weights share this spelling (then `weight` is empty)
};

class LoraTargets {
 public:
  // LDM name -> diffusers name ("unet.…", "text_encoder.…"), nullopt where there is none.
  using ToDiffusers = std::function<std::optional<std::string>(const std::string&)>;

  // Uses model::ldm_to_diffusers.
  explicit LoraTargets(const WeightMap& weights);
  LoraTargets(const WeightMap& weights, const ToDiffusers& to_diffusers);

  // The weight a module's lookup name stands for, or nullptr.
  const LoraTarget* find(const std::string& lookup) const;
  bool has_unet() const { return has_unet_; }
  bool has_text_encoder() const { return has_text_encoder_; }
  // The cross-attention context width of the model's UNet (0 when it has no attn2.to_k).
  int64_t context_width() const { return context_width_; }
  size_t size() const { return table_.size(); }

 private:
  void add(const std::string& spelling, const std::string& weight, LoraComponent c);
  std::unordered_map<std::string, LoraTarget> table_;
  bool has_unet_ = false, has_text_encoder_ = false;
  int64_t context_width_ = 0;
};

// "down_blocks.0.attentions.0.proj_in" -> "down_blocks_0_attentions_0_proj_in"
std::string kohya_flatten(const std::string& dotted_path);

}  // namespace sdc::model
