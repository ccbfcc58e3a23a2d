// The LDM <-> diffusers name table. Built once: a list of module correspondences (one row per
// ResBlock, attention, conv … with the full prefixes of both conventions) and, per module kind, the
// correspondences of the parameter names inside it. A name is mapped by finding its module (the
// longest dotted prefix present in the table) and then its parameter within that module's kind.
// The same rows serve both directions, so the mapping is invertible by construction.
#include "model/key_mapping.h"

#include <array>
#include <map>
#include <unordered_map>
#include <vector>

#include "common/error.h"

namespace sdc::model {

namespace {

// What sits inside a module, i.e. which parameter-name table applies.
enum class Kind { Param, UNetRes, Transformer, VaeRes, VaeAttn };

struct ModuleRow {
  std::string ldm, diffusers;
  Kind kind;
};

// A parameter-name correspondence inside a module. '#' stands for a decimal number, carried
// across. `legacy_diffusers` rows are legacy diffusers spellings accepted on input only.
struct LeafRow {
  std::string ldm, diffusers;
  bool legacy_diffusers = false;
};

std::vector<LeafRow> weight_bias(const std::string& ldm, const std::string& diffusers,
                                 bool legacy = false) {
  return {{ldm + ".weight", diffusers + ".weight", legacy},
          {ldm + ".bias", diffusers + ".bias", legacy}};
}

void append(std::vector<LeafRow>& to, std::vector<LeafRow> rows) {
  to.insert(to.end(), rows.begin(), rows.end());
}

std::vector<LeafRow> make_leaves(Kind k) {
  std::vector<LeafRow> r;
  switch (k) {
    case Kind::Param:
      return {{"weight", "weight"}, {"bias", "bias"}};
    case Kind::UNetRes:
      append(r, weight_bias("in_layers.0", "norm1"));
      append(r, weight_bias("in_layers.2", "conv1"));
      append(r, weight_bias("emb_layers.1", "time_emb_proj"));
      append(r, weight_bias("out_layers.0", "norm2"));
      append(r, weight_bias("out_layers.3", "conv2"));
      append(r, weight_bias("skip_connection", "conv_shortcut"));
      return r;
    case Kind::Transformer:
      // Same names on both sides.
      for (const char* m : {"norm", "proj_in", "proj_out"}) append(r, weight_bias(m, m));
      for (const char* attn : {"attn1", "attn2"}) {
        for (const char* p : {"to_q", "to_k", "to_v", "to_out.0"}) {
          const std::string n = std::string("transformer_blocks.#.") + attn + "." + p;
          append(r, weight_bias(n, n));
        }
      }
      for (const char* m : {"ff.net.0.proj", "ff.net.2", "norm1", "norm2", "norm3"}) {
        const std::string n = std::string("transformer_blocks.#.") + m;
        append(r, weight_bias(n, n));
      }
      return r;
    case Kind::VaeRes:
      for (const char* m : {"norm1", "conv1", "norm2", "conv2"}) append(r, weight_bias(m, m));
      append(r, weight_bias("nin_shortcut", "conv_shortcut"));
      return r;
    case Kind::VaeAttn:
      append(r, weight_bias("norm", "group_norm"));
      append(r, weight_bias("q", "to_q"));
      append(r, weight_bias("k", "to_k"));
      append(r, weight_bias("v", "to_v"));
      append(r, weight_bias("proj_out", "to_out.0"));
      // diffusers < 0.14 spelled the VAE attention differently.
      append(r, weight_bias("q", "query", true));
      append(r, weight_bias("k", "key", true));
      append(r, weight_bias("v", "value", true));
      append(r, weight_bias("proj_out", "proj_attn", true));
      return r;
  }
  return r;
}

// SD1.x topology.
constexpr int kLevels = 4;
constexpr int kDownRes = 2;           // ResBlocks per down level
constexpr int kUpRes = kDownRes + 1;  // ResBlocks per up level
constexpr std::array<bool, kLevels> kDownAttn{true, true, true, false};
constexpr std::array<bool, kLevels> kUpAttn{false, true, true, true};
constexpr int kHintConvs = 8;  // ControlNet hint encoder convs (input_hint_block 0,2,…,14)

// Rows shared by the UNet and the ControlNet: time embedding, conv_in, down and mid blocks.
void add_encoder_half(std::vector<ModuleRow>& rows, const std::string& L, const std::string& D) {
  rows.push_back({L + "time_embed.0", D + "time_embedding.linear_1", Kind::Param});
  rows.push_back({L + "time_embed.2", D + "time_embedding.linear_2", Kind::Param});
  rows.push_back({L + "input_blocks.0.0", D + "conv_in", Kind::Param});
  for (int lvl = 0; lvl < kLevels; ++lvl) {
    for (int r = 0; r < kDownRes; ++r) {
      const std::string in = L + "input_blocks." + std::to_string(3 * lvl + r + 1);
      const std::string db = D + "down_blocks." + std::to_string(lvl);
      rows.push_back({in + ".0", db + ".resnets." + std::to_string(r), Kind::UNetRes});
      if (kDownAttn[size_t(lvl)])
        rows.push_back({in + ".1", db + ".attentions." + std::to_string(r), Kind::Transformer});
    }
    if (lvl + 1 < kLevels)
      rows.push_back({L + "input_blocks." + std::to_string(3 * lvl + 3) + ".0.op",
                      D + "down_blocks." + std::to_string(lvl) + ".downsamplers.0.conv",
                      Kind::Param});
  }
  rows.push_back({L + "middle_block.0", D + "mid_block.resnets.0", Kind::UNetRes});
  rows.push_back({L + "middle_block.1", D + "mid_block.attentions.0", Kind::Transformer});
  rows.push_back({L + "middle_block.2", D + "mid_block.resnets.1", Kind::UNetRes});
}

void add_unet(std::vector<ModuleRow>& rows) {
  const std::string L = ldm_prefix(Component::UNet), D = diffusers_prefix(Component::UNet);
  add_encoder_half(rows, L, D);
  for (int lvl = 0; lvl < kLevels; ++lvl) {
    const std::string ub = D + "up_blocks." + std::to_string(lvl);
    for (int r = 0; r < kUpRes; ++r) {
      const std::string out = L + "output_blocks." + std::to_string(kUpRes * lvl + r);
      rows.push_back({out + ".0", ub + ".resnets." + std::to_string(r), Kind::UNetRes});
      if (kUpAttn[size_t(lvl)])
        rows.push_back({out + ".1", ub + ".attentions." + std::to_string(r), Kind::Transformer});
    }
    // The upsampler follows the last ResBlock (and its attention, where the level has one).
    if (lvl + 1 < kLevels)
      rows.push_back({L + "output_blocks." + std::to_string(kUpRes * lvl + kUpRes - 1) +
                          (kUpAttn[size_t(lvl)] ? ".2" : ".1") + ".conv",
                      ub + ".upsamplers.0.conv", Kind::Param});
  }
  rows.push_back({L + "out.0", D + "conv_norm_out", Kind::Param});
  rows.push_back({L + "out.2", D + "conv_out", Kind::Param});
}

void add_controlnet(std::vector<ModuleRow>& rows) {
  const std::string L = ldm_prefix(Component::ControlNet),
                    D = diffusers_prefix(Component::ControlNet);
  add_encoder_half(rows, L, D);
  const int zero_convs = 1 + kLevels * kDownRes + (kLevels - 1);  // one per input block
  for (int i = 0; i < zero_convs; ++i)
    rows.push_back({L + "zero_convs." + std::to_string(i) + ".0",
                    D + "controlnet_down_blocks." + std::to_string(i), Kind::Param});
  rows.push_back({L + "middle_block_out.0", D + "controlnet_mid_block", Kind::Param});
  // input_hint_block is a Sequential of conv, SiLU, conv, SiLU, …: convs at even indices.
  for (int i = 0; i < kHintConvs; ++i) {
    const std::string d = i == 0                ? "conv_in"
                          : i == kHintConvs - 1 ? "conv_out"
                                                : "blocks." + std::to_string(i - 1);
    rows.push_back({L + "input_hint_block." + std::to_string(2 * i),
                    D + "controlnet_cond_embedding." + d, Kind::Param});
  }
}

void add_vae(std::vector<ModuleRow>& rows) {
  const std::string L = ldm_prefix(Component::Vae), D = diffusers_prefix(Component::Vae);
  for (const char* half : {"encoder", "decoder"}) {
    const std::string l = L + half + ".", d = D + half + ".";
    rows.push_back({l + "conv_in", d + "conv_in", Kind::Param});
    rows.push_back({l + "conv_out", d + "conv_out", Kind::Param});
    rows.push_back({l + "norm_out", d + "conv_norm_out", Kind::Param});
    rows.push_back({l + "mid.block_1", d + "mid_block.resnets.0", Kind::VaeRes});
    rows.push_back({l + "mid.attn_1", d + "mid_block.attentions.0", Kind::VaeAttn});
    rows.push_back({l + "mid.block_2", d + "mid_block.resnets.1", Kind::VaeRes});
  }
  for (int lvl = 0; lvl < kLevels; ++lvl) {
    const std::string l = L + "encoder.down." + std::to_string(lvl);
    const std::string d = D + "encoder.down_blocks." + std::to_string(lvl);
    for (int r = 0; r < kDownRes; ++r)
      rows.push_back(
          {l + ".block." + std::to_string(r), d + ".resnets." + std::to_string(r), Kind::VaeRes});
    if (lvl + 1 < kLevels)
      rows.push_back({l + ".downsample.conv", d + ".downsamplers.0.conv", Kind::Param});
  }
  // The LDM decoder numbers its up levels from the lowest resolution: up.3 runs first.
  for (int lvl = 0; lvl < kLevels; ++lvl) {
    const std::string l = L + "decoder.up." + std::to_string(kLevels - 1 - lvl);
    const std::string d = D + "decoder.up_blocks." + std::to_string(lvl);
    for (int r = 0; r < kUpRes; ++r)
      rows.push_back(
          {l + ".block." + std::to_string(r), d + ".resnets." + std::to_string(r), Kind::VaeRes});
    if (lvl + 1 < kLevels)
      rows.push_back({l + ".upsample.conv", d + ".upsamplers.0.conv", Kind::Param});
  }
  rows.push_back({L + "quant_conv", D + "quant_conv", Kind::Param});
  rows.push_back({L + "post_quant_conv", D + "post_quant_conv", Kind::Param});
}

// CLIP text model parameter names (identical in both conventions below the text_model prefix).
const std::vector<std::string>& text_leaves() {
  static const std::vector<std::string> leaves = [] {
    std::vector<std::string> v{"embeddings.token_embedding.weight",
                               "embeddings.position_embedding.weight", "final_layer_norm.weight",
                               "final_layer_norm.bias"};
    for (const char* m : {"layer_norm1", "layer_norm2", "self_attn.q_proj", "self_attn.k_proj",
                          "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"})
      for (const char* p : {".weight", ".bias"})
        v.push_back(std::string("encoder.layers.#.") + m + p);
    return v;
  }();
  return leaves;
}

// Matches `s` against `pattern` where '#' matches a run of digits; captured runs go to `caps`.
bool match(const std::string& pattern, const std::string& s, std::vector<std::string>& caps) {
  size_t i = 0, j = 0;
  caps.clear();
  while (i < pattern.size()) {
    if (pattern[i] == '#') {
      const size_t start = j;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
      if (j == start) return false;
      caps.push_back(s.substr(start, j - start));
      ++i;
    } else {
      if (j >= s.size() || s[j] != pattern[i]) return false;
      ++i;
      ++j;
    }
  }
  return j == s.size();
}

std::string fill(const std::string& pattern, const std::vector<std::string>& caps) {
  std::string out;
  size_t k = 0;
  for (char c : pattern) {
    if (c == '#')
      out += k < caps.size() ? caps[k++] : "";
    else
      out += c;
  }
  return out;
}

struct Table {
  std::vector<ModuleRow> rows;
  std::unordered_map<std::string, const ModuleRow*> by_ldm, by_diffusers;
  std::map<Kind, std::vector<LeafRow>> leaves;

  Table() {
    add_unet(rows);
    add_controlnet(rows);
    add_vae(rows);
    for (const auto& r : rows) {
      by_ldm.emplace(r.ldm, &r);
      by_diffusers.emplace(r.diffusers, &r);
    }
    for (Kind k : {Kind::Param, Kind::UNetRes, Kind::Transformer, Kind::VaeRes, Kind::VaeAttn})
      leaves[k] = make_leaves(k);
  }
};

const Table& table() {
  static const Table t;
  return t;
}

const std::string kTextLdm = "cond_stage_model.transformer.text_model.";
const std::string kTextLdmOld = "cond_stage_model.transformer.";
const std::string kTextDiffusers = "text_encoder.text_model.";

bool starts_with(const std::string& s, const std::string& p) {
  return s.rfind(p, 0) == 0;
}
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

bool is_text_leaf(const std::string& leaf) {
  std::vector<std::string> caps;
  for (const auto& p : text_leaves())
    if (match(p, leaf, caps)) return true;
  return false;
}

std::optional<std::string> map_name(const std::string& name, bool to_diffusers) {
  // The text encoder is one flat namespace below its prefix.
  if (to_diffusers) {
    if (starts_with(name, kTextLdm)) {
      const std::string leaf = name.substr(kTextLdm.size());
      if (is_text_leaf(leaf)) return kTextDiffusers + leaf;
      return std::nullopt;
    }
    if (starts_with(name, kTextLdmOld)) {
      const std::string leaf = name.substr(kTextLdmOld.size());
      if (is_text_leaf(leaf)) return kTextDiffusers + leaf;
      return std::nullopt;
    }
  } else if (starts_with(name, kTextDiffusers)) {
    const std::string leaf = name.substr(kTextDiffusers.size());
    if (is_text_leaf(leaf)) return kTextLdm + leaf;
    return std::nullopt;
  }

  const Table& t = table();
  const auto& index = to_diffusers ? t.by_ldm : t.by_diffusers;
  // Longest module prefix first.
  for (size_t pos = name.rfind('.'); pos != std::string::npos && pos > 0;
       pos = name.rfind('.', pos - 1)) {
    auto it = index.find(name.substr(0, pos));
    if (it == index.end()) continue;
    const ModuleRow& row = *it->second;
    const std::string leaf = name.substr(pos + 1);
    std::vector<std::string> caps;
    for (const LeafRow& l : t.leaves.at(row.kind)) {
      if (to_diffusers) {
        if (l.legacy_diffusers || !match(l.ldm, leaf, caps)) continue;
        return row.diffusers + "." + fill(l.diffusers, caps);
      }
      if (!match(l.diffusers, leaf, caps)) continue;
      return row.ldm + "." + fill(l.ldm, caps);
    }
    return std::nullopt;
  }
  return std::nullopt;
}

WeightMap rename_all(const WeightMap& in, bool to_diffusers) {
  WeightMap out;
  out.description = in.description;
  std::vector<std::string> unknown;
  std::map<std::string, std::string> source_of;  // target name -> source name (collisions)
  for (const auto& [name, t] : in.all()) {
    if (is_unused_key(name)) continue;
    auto target = map_name(name, to_diffusers);
    if (!target) {
      unknown.push_back(name);
      continue;
    }
    auto [it, fresh] = source_of.emplace(*target, name);
    if (!fresh)
      throw Error(in.description, name, "one tensor per weight",
                  "a second name for " + *target + " (also " + it->second + ")");
    TensorRef r = t;
    if (is_vae_attention_weight(name)) {
      // Same bytes, other shape: [C,C,1,1] conv weight <-> [C,C] linear weight.
      if (to_diffusers && r.shape.size() == 4 && r.shape[2] == 1 && r.shape[3] == 1)
        r.shape = {r.shape[0], r.shape[1]};
      else if (!to_diffusers && r.shape.size() == 2)
        r.shape = {r.shape[0], r.shape[1], 1, 1};
    }
    out.set(*target, std::move(r));
  }
  if (!unknown.empty())
    throw Error(in.description, unknown.front(),
                std::string("a ") + (to_diffusers ? "LDM" : "diffusers") +
                    " weight name of the SD1.x UNet, VAE, text encoder or ControlNet",
                "an unknown name (" + std::to_string(unknown.size()) + " unknown in all)");
  return out;
}

}  // namespace

const char* component_name(Component c) {
  switch (c) {
    case Component::UNet:
      return "unet";
    case Component::Vae:
      return "vae";
    case Component::TextEncoder:
      return "text_encoder";
    case Component::ControlNet:
      return "controlnet";
  }
  return "?";
}

const char* ldm_prefix(Component c) {
  switch (c) {
    case Component::UNet:
      return "model.diffusion_model.";
    case Component::Vae:
      return "first_stage_model.";
    case Component::TextEncoder:
      return "cond_stage_model.transformer.text_model.";
    case Component::ControlNet:
      return "control_model.";
  }
  return "";
}

const char* diffusers_prefix(Component c) {
  switch (c) {
    case Component::UNet:
      return "unet.";
    case Component::Vae:
      return "vae.";
    case Component::TextEncoder:
      return "text_encoder.";
    case Component::ControlNet:
      return "controlnet.";
  }
  return "";
}

std::optional<Component> component_of(const std::string& name) {
  for (Component c :
       {Component::UNet, Component::Vae, Component::TextEncoder, Component::ControlNet})
    if (starts_with(name, ldm_prefix(c)) || starts_with(name, diffusers_prefix(c))) return c;
  if (starts_with(name, kTextLdmOld)) return Component::TextEncoder;
  return std::nullopt;
}

bool is_unused_key(const std::string& name) {
  static const std::vector<std::string> buffers{"alphas_cumprod",
                                                "alphas_cumprod_prev",
                                                "betas",
                                                "log_one_minus_alphas_cumprod",
                                                "sqrt_alphas_cumprod",
                                                "sqrt_one_minus_alphas_cumprod",
                                                "sqrt_recip_alphas_cumprod",
                                                "sqrt_recipm1_alphas_cumprod",
                                                "posterior_variance",
                                                "posterior_log_variance_clipped",
                                                "posterior_mean_coef1",
                                                "posterior_mean_coef2",
                                                "logvar",
                                                "lvlb_weights"};
  for (const auto& b : buffers)
    if (name == b) return true;
  return starts_with(name, "model_ema.") || ends_with(name, ".position_ids") ||
         name == "position_ids" || starts_with(name, "first_stage_model.loss.") ||
         starts_with(name, "loss.");
}

std::optional<std::string> ldm_to_diffusers(const std::string& ldm_name) {
  return map_name(ldm_name, true);
}

std::optional<std::string> diffusers_to_ldm(const std::string& diffusers_name) {
  return map_name(diffusers_name, false);
}

bool is_vae_attention_weight(const std::string& name) {
  std::vector<std::string> caps;
  static const std::vector<std::string> patterns = [] {
    std::vector<std::string> p;
    for (const char* half : {"encoder", "decoder"}) {
      for (const char* m : {"q", "k", "v", "proj_out"})
        p.push_back(std::string("first_stage_model.") + half + ".mid.attn_1." + m + ".weight");
      for (const char* m :
           {"to_q", "to_k", "to_v", "to_out.0", "query", "key", "value", "proj_attn"})
        p.push_back(std::string("vae.") + half + ".mid_block.attentions.0." + m + ".weight");
    }
    return p;
  }();
  for (const auto& p : patterns)
    if (p == name) return true;
  return false;
}

WeightMap ldm_to_diffusers(const WeightMap& ldm) {
  return rename_all(ldm, true);
}
WeightMap diffusers_to_ldm(const WeightMap& diffusers) {
  return rename_all(diffusers, false);
}

}  // namespace sdc::model
