// The spellings of LoRA tensor names, read one name at a time (see lora_file.h for the list):
//   lora_unet_<path>.lora_down.weight       -> module lora_unet_<path>, part lora_down (kohya)
//   lora_te1_<path>.alpha                   -> lookup lora_te_<path>, part alpha
//   unet.<path>.lora_A.weight               -> module unet.<path>, part lora_down (peft)
//   base_model.model.text_model.<…>.lora_B.weight -> lookup text_encoder.text_model.<…>
//   <attn>.processor.to_out_lora.up.weight  -> module <attn>.to_out.0 (old diffusers)
#pragma once

#include <optional>
#include <string>

#include "model/lora_file.h"

namespace sdc::model {

struct LoraKeyParts {
  std::string module;  // module name as spelled in the file
  std::string lookup;  // normalised: "lora_unet_…", "lora_te_…", "unet.…", "text_encoder.…"
  std::string role;    // "lora_down", "lora_up", "lora_mid", "alpha", "dora_scale", "hada_w1_a" …
  LoraNaming naming = LoraNaming::Kohya;
  LoraComponent component = LoraComponent::UNet;
  bool naming_from_alpha = false;  // ".alpha" says nothing about peft vs legacy spelling
};

// nullopt for a name that is no LoRA part.
std::optional<LoraKeyParts> parse_lora_key(const std::string& key);

}  // namespace sdc::model
