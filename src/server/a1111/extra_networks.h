// A1111's extra-network tags in a prompt: "<lora:name>", "<lora:name:0.8>",
// "<lora:name:te=0.5:unet=0.7>" (modules/extra_networks.py: every match of <(\w+):([^>]+)> is
// cut out of the prompt and its text split on ':'; "k=v" items are named arguments). The Lora
// extension reads the multiplier (positional 1 or te=, default 1.0), the UNet multiplier
// (positional 2 or unet=, default the same) and a dynamic rank (positional 3 or dyn=).
//
// sdc merges a LoRA at one scale for text encoder and UNet alike and has no dynamic rank, so
// different te/unet multipliers or a rank are refused; so is any tag type other than lora (and
// its alias lyco) — A1111 would drop an unknown tag with a console warning only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sdc::server::a1111 {

struct LoraTag {
  std::string name;  // as written: the LoRA file's name without extension
  double weight = 1.0;
  bool operator==(const LoraTag&) const = default;
};

struct PromptNetworks {
  std::string prompt;          // the prompt with every tag removed
  std::vector<LoraTag> loras;  // in order of first appearance; repeats summed (as A1111 applies
                               // each occurrence)
};

// Throws sdc::Error (key "prompt") for a malformed or unsupported tag: a multiplier that is not
// a number, separate te/unet multipliers, a rank, a name with a path in it, another tag type.
PromptNetworks extract_extra_networks(std::string_view prompt);

}  // namespace sdc::server::a1111
