// Reading one LoRA tensor name: which module it belongs to, what part it is, how it is spelled.
#include "model/lora_names.h"

#include <cstring>
#include <string_view>

namespace sdc::model {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Parts a kohya/LyCORIS module may have, spelled as after the module name and its '.'.
struct KohyaPart {
  std::string_view suffix, role;
};
constexpr KohyaPart kKohyaParts[] = {
    {"lora_down.weight", "lora_down"},
    {"lora_up.weight", "lora_up"},
    {"lora_mid.weight", "lora_mid"},
    {"alpha", "alpha"},
    {"dora_scale", "dora_scale"},
    {"hada_w1_a", "hada_w1_a"},
    {"hada_w1_b", "hada_w1_b"},
    {"hada_w2_a", "hada_w2_a"},
    {"hada_w2_b", "hada_w2_b"},
    {"hada_t1", "hada_t1"},
    {"hada_t2", "hada_t2"},
    {"lokr_w1", "lokr_w1"},
    {"lokr_w1_a", "lokr_w1_a"},
    {"lokr_w1_b", "lokr_w1_b"},
    {"lokr_w2", "lokr_w2"},
    {"lokr_w2_a", "lokr_w2_a"},
    {"lokr_w2_b", "lokr_w2_b"},
    {"lokr_t2", "lokr_t2"},
};

// Suffixes of dotted (peft / diffusers) names. Longer suffixes first where one ends another.
struct DottedPart {
  std::string_view suffix, role;
  LoraNaming naming;
  bool is_alpha;
};
constexpr DottedPart kDottedParts[] = {
    {".lora_A.weight", "lora_down", LoraNaming::Peft, false},
    {".lora_B.weight", "lora_up", LoraNaming::Peft, false},
    {".lora_magnitude_vector.weight", "dora_scale", LoraNaming::Peft, false},
    {".lora_magnitude_vector", "dora_scale", LoraNaming::Peft, false},
    {".lora_linear_layer.down.weight", "lora_down", LoraNaming::DiffusersLegacy, false},
    {".lora_linear_layer.up.weight", "lora_up", LoraNaming::DiffusersLegacy, false},
    {".lora.down.weight", "lora_down", LoraNaming::DiffusersLegacy, false},
    {".lora.up.weight", "lora_up", LoraNaming::DiffusersLegacy, false},
    {".lora_down.weight", "lora_down", LoraNaming::DiffusersLegacy, false},
    {".lora_up.weight", "lora_up", LoraNaming::DiffusersLegacy, false},
    {".alpha", "alpha", LoraNaming::Peft, true},
};

// One tensor name understood: which module, which part.

std::optional<LoraKeyParts> parse_kohya(const std::string& key) {
  struct Prefix {
    std::string_view text, normalised;
    LoraComponent component;
  };
  static constexpr Prefix kPrefixes[] = {
      {"lora_unet_", "lora_unet_", LoraComponent::UNet},
      {"lora_te1_", "lora_te_", LoraComponent::TextEncoder},
      {"lora_te2_", "lora_te2_", LoraComponent::TextEncoder2},
      {"lora_te_", "lora_te_", LoraComponent::TextEncoder},
  };
  for (const Prefix& p : kPrefixes) {
    if (!starts_with(key, p.text)) continue;
    const size_t dot = key.find('.');
    if (dot == std::string::npos) return std::nullopt;
    const std::string_view suffix = std::string_view(key).substr(dot + 1);
    for (const KohyaPart& part : kKohyaParts) {
      if (suffix != part.suffix) continue;
      LoraKeyParts k;
      k.module = key.substr(0, dot);
      k.lookup = std::string(p.normalised) + k.module.substr(p.text.size());
      k.role = part.role;
      k.naming = LoraNaming::Kohya;
      k.component = p.component;
      return k;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

// Component from a dotted module path, and the path under its component prefix.
bool split_component(std::string path, LoraComponent& component, std::string& lookup) {
  if (starts_with(path, "base_model.model.")) {
    path = path.substr(std::strlen("base_model.model."));
  }
  struct Prefix {
    std::string_view text;
    LoraComponent component;
    std::string_view normalised;
  };
  static constexpr Prefix kPrefixes[] = {
      {"unet.", LoraComponent::UNet, "unet."},
      {"text_encoder.", LoraComponent::TextEncoder, "text_encoder."},
      {"text_encoder_2.", LoraComponent::TextEncoder2, "text_encoder_2."},
  };
  for (const Prefix& p : kPrefixes) {
    if (starts_with(path, p.text)) {
      component = p.component;
      lookup = std::string(p.normalised) + path.substr(p.text.size());
      return true;
    }
  }
  // No component folder: a peft adapter of one model, or an old attention-processor file of the
  // UNet. The path itself says which network it is.
  static constexpr std::string_view kUNetRoots[] = {"down_blocks.", "mid_block.", "up_blocks.",
                                                    "conv_in",      "conv_out",   "time_embedding.",
                                                    "conv_norm_out"};
  if (starts_with(path, "text_model.")) {
    component = LoraComponent::TextEncoder;
    lookup = "text_encoder." + path;
    return true;
  }
  for (std::string_view root : kUNetRoots) {
    if (starts_with(path, root)) {
      component = LoraComponent::UNet;
      lookup = "unet." + path;
      return true;
    }
  }
  return false;
}

std::optional<LoraKeyParts> parse_dotted(const std::string& key) {
  LoraKeyParts k;
  std::string module;
  // Old diffusers attention processors: <attn>.processor.to_q_lora.down.weight.
  for (std::string_view tail :
       {std::string_view("_lora.down.weight"), std::string_view("_lora.up.weight")}) {
    if (!ends_with(key, tail)) continue;
    std::string head = key.substr(0, key.size() - tail.size());  // <attn>[.processor].to_q
    const size_t dot = head.rfind('.');
    if (dot == std::string::npos) return std::nullopt;
    const std::string proj = head.substr(dot + 1);
    std::string attn = head.substr(0, dot);
    if (ends_with(attn, ".processor")) attn.resize(attn.size() - std::strlen(".processor"));
    if (proj != "to_q" && proj != "to_k" && proj != "to_v" && proj != "to_out") return std::nullopt;
    if (!split_component(attn, k.component, k.lookup)) return std::nullopt;
    const bool text = k.component != LoraComponent::UNet;
    std::string target;
    if (proj == "to_out") {
      target = text ? "out_proj" : "to_out.0";
    } else {
      target = text ? proj.substr(3) + "_proj" : proj;
    }
    k.module = attn + "." + target;
    k.lookup += "." + target;
    k.role = tail == "_lora.down.weight" ? "lora_down" : "lora_up";
    k.naming = LoraNaming::DiffusersLegacy;
    return k;
  }
  for (const DottedPart& part : kDottedParts) {
    if (!ends_with(key, part.suffix)) continue;
    module = key.substr(0, key.size() - part.suffix.size());
    if (!split_component(module, k.component, k.lookup)) return std::nullopt;
    k.module = module;
    k.role = part.role;
    k.naming = part.naming;
    k.naming_from_alpha = part.is_alpha;
    return k;
  }
  return std::nullopt;
}

}  // namespace

std::optional<LoraKeyParts> parse_lora_key(const std::string& key) {
  if (starts_with(key, "lora_unet_") || starts_with(key, "lora_te")) return parse_kohya(key);
  return parse_dotted(key);
}

}  // namespace sdc::model
