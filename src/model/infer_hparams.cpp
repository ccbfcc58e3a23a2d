// Shape-based hyper-parameter inference and diffusers config application.
#include "model/infer_hparams.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "common/error.h"

namespace sdc::model {

namespace {

const std::string kUNet = "model.diffusion_model.";
const std::string kText = "cond_stage_model.transformer.text_model.";
const std::string kVae = "first_stage_model.";
const std::string kControl = "control_model.";

int dim(const WeightMap& m, const std::string& name, size_t axis) {
  const TensorRef& t = m.get(name);
  if (t.shape.size() <= axis)
    throw Error(t.source.empty() ? m.description : t.source, name,
                "at least " + std::to_string(axis + 1) + " dimensions", shape_str(t.shape));
  return int(t.shape[axis]);
}

// The distinct numbers N in names "<prefix>N.…", sorted.
std::vector<int> indices_after(const WeightMap& m, const std::string& prefix) {
  std::set<int> found;
  for (const auto& name : m.names_with_prefix(prefix)) {
    size_t i = prefix.size(), j = i;
    while (j < name.size() && j - i < 6 && name[j] >= '0' && name[j] <= '9') ++j;
    if (j > i && j < name.size() && name[j] == '.') found.insert(std::stoi(name.substr(i, j - i)));
  }
  return {found.begin(), found.end()};
}

std::string where(const WeightMap& m) {
  return m.description;
}

// The shortest decimal that reads back as the same float (0.18215, not 0.1821500062942505).
double shortest(float f) {
  char buf[32];
  for (int digits = 6; digits < 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, double(f));
    if (std::strtof(buf, nullptr) == f) return std::strtod(buf, nullptr);
  }
  return double(f);
}

template <typename T>
nlohmann::json js(const std::vector<T>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : v) a.push_back(x);
  return a;
}

// A config value that the weights also determine must agree with them.
void check_agrees(const nlohmann::json& config, const char* key, const nlohmann::json& from_weights,
                  const std::string& source) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  if (*it != from_weights)
    throw Error(source, key, from_weights.dump() + " (what the weights have)", it->dump());
}

int int_field(const nlohmann::json& config, const char* key, const std::string& source) {
  const auto& v = config.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (1 << 20))
    throw Error(source, key, "a positive integer", v.dump());
  return v.get<int>();
}

float float_field(const nlohmann::json& config, const char* key, const std::string& source) {
  const auto& v = config.at(key);
  if (!v.is_number()) throw Error(source, key, "a number", v.dump());
  return v.get<float>();
}

bool has(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  return it != config.end() && !it->is_null();
}

// Head count from a diffusers UNet/ControlNet config. In SD1.x configs `attention_head_dim` is
// (misleadingly) the number of heads; `num_attention_heads` wins when set.
void apply_heads(UNetParams& p, const nlohmann::json& config, const std::string& source) {
  const char* key =
      has(config, "num_attention_heads") ? "num_attention_heads" : "attention_head_dim";
  if (!has(config, key)) return;
  const auto& v = config.at(key);
  if (v.is_array()) {
    if (v.empty()) throw Error(source, key, "a head count", "an empty list");
    for (const auto& h : v)
      if (h != v.front())
        throw Error(source, key, "one head count for every level (SD1.x)", v.dump());
    if (!v.front().is_number_integer() || v.front().get<int>() <= 0)
      throw Error(source, key, "a positive integer", v.dump());
    p.num_heads = v.front().get<int>();
  } else {
    p.num_heads = int_field(config, key, source);
  }
}

void apply_unet_like(UNetParams& p, const nlohmann::json& config, const std::string& source) {
  if (!config.is_object()) throw Error(source, "", "a JSON object", config.type_name());
  apply_heads(p, config, source);
  if (has(config, "norm_num_groups")) p.norm_groups = int_field(config, "norm_num_groups", source);
  if (has(config, "norm_eps")) p.resnet_eps = float_field(config, "norm_eps", source);
  check_agrees(config, "block_out_channels", js(p.block_out_channels), source);
  check_agrees(config, "layers_per_block", p.layers_per_block, source);
  check_agrees(config, "cross_attention_dim", p.context_dim, source);
  check_agrees(config, "in_channels", p.in_channels, source);
  check_agrees(config, "use_linear_projection", p.use_linear_projection, source);
  check_agrees(config, "transformer_layers_per_block", p.transformer_depth, source);
}

}  // namespace

UNetParams infer_unet_params(const WeightMap& m, const std::string& P) {
  UNetParams p;
  const std::vector<int> blocks = indices_after(m, P + "input_blocks.");
  if (blocks.empty()) throw Error(where(m), P + "input_blocks.*", "UNet weights", "none");
  const int n_blocks = blocks.back() + 1;
  int downsamplers = 0;
  for (int b : blocks)
    if (m.contains(P + "input_blocks." + std::to_string(b) + ".0.op.weight")) ++downsamplers;
  const int levels = downsamplers + 1;
  const int res_blocks = n_blocks - 1 - downsamplers;
  if (res_blocks < levels || res_blocks % levels != 0)
    throw Error(where(m), P + "input_blocks.*",
                "1 + levels x layers + downsamplers blocks (an SD UNet)",
                std::to_string(n_blocks) + " blocks with " + std::to_string(downsamplers) +
                    " downsamplers");
  p.layers_per_block = res_blocks / levels;

  const std::string conv_in = P + "input_blocks.0.0.weight";
  p.in_channels = dim(m, conv_in, 1);
  if (m.contains(P + "out.2.weight")) p.out_channels = dim(m, P + "out.2.weight", 0);
  p.block_out_channels.clear();
  p.attention_levels.clear();
  int first_attention = -1;
  for (int lvl = 0; lvl < levels; ++lvl) {
    const std::string blk =
        P + "input_blocks." + std::to_string(1 + lvl * (p.layers_per_block + 1));
    p.block_out_channels.push_back(dim(m, blk + ".0.out_layers.3.weight", 0));
    const bool attn = m.contains(blk + ".1.proj_in.weight");
    p.attention_levels.push_back(attn);
    if (attn && first_attention < 0) first_attention = lvl;
  }
  const std::string attn_block =
      first_attention >= 0
          ? P + "input_blocks." + std::to_string(1 + first_attention * (p.layers_per_block + 1)) +
                ".1."
          : P + "middle_block.1.";
  p.transformer_depth = int(indices_after(m, attn_block + "transformer_blocks.").size());
  p.context_dim = dim(m, attn_block + "transformer_blocks.0.attn2.to_k.weight", 1);
  p.use_linear_projection = m.get(attn_block + "proj_in.weight").shape.size() == 2;
  return p;
}

TextEncoderParams infer_text_encoder_params(const WeightMap& m) {
  TextEncoderParams p;
  const std::string tok = kText + "embeddings.token_embedding.weight";
  p.vocab_size = dim(m, tok, 0);
  p.hidden = dim(m, tok, 1);
  p.max_positions = dim(m, kText + "embeddings.position_embedding.weight", 0);
  p.layers = int(indices_after(m, kText + "encoder.layers.").size());
  if (p.layers == 0)
    throw Error(where(m), kText + "encoder.layers.*", "text encoder layers", "none");
  p.intermediate = dim(m, kText + "encoder.layers.0.mlp.fc1.weight", 0);
  p.heads = std::max(1, p.hidden / 64);
  return p;
}

VaeParams infer_vae_params(const WeightMap& m) {
  VaeParams p;
  p.in_channels = dim(m, kVae + "encoder.conv_in.weight", 1);
  p.out_channels = dim(m, kVae + "decoder.conv_out.weight", 0);
  p.latent_channels = dim(m, kVae + "decoder.conv_in.weight", 1);
  const std::vector<int> levels = indices_after(m, kVae + "encoder.down.");
  if (levels.empty()) throw Error(where(m), kVae + "encoder.down.*", "VAE encoder blocks", "none");
  p.layers_per_block = int(indices_after(m, kVae + "encoder.down.0.block.").size());
  p.block_out_channels.clear();
  for (int lvl : levels)
    p.block_out_channels.push_back(
        dim(m, kVae + "encoder.down." + std::to_string(lvl) + ".block.0.conv2.weight", 0));
  return p;
}

ControlNetParams infer_controlnet_params(const WeightMap& m) {
  ControlNetParams p;
  p.unet = infer_unet_params(m, kControl);
  const std::string hint = kControl + "input_hint_block.";
  const std::vector<int> convs = indices_after(m, hint);
  // conv_in, then (same-size conv, stride-2 conv) per level change, then conv_out.
  if (convs.size() < 2 || convs.size() % 2 != 0)
    throw Error(where(m), hint + "*", "conv_in, pairs of convs and conv_out (an even count)",
                std::to_string(convs.size()) + " convs");
  p.conditioning_channels = dim(m, hint + std::to_string(convs[0]) + ".weight", 1);
  p.hint_channels.clear();
  p.hint_channels.push_back(dim(m, hint + std::to_string(convs[0]) + ".weight", 0));
  for (size_t i = 2; i + 1 < convs.size(); i += 2)
    p.hint_channels.push_back(dim(m, hint + std::to_string(convs[i]) + ".weight", 0));
  return p;
}

void apply_unet_config(UNetParams& p, const nlohmann::json& config, const std::string& source) {
  apply_unet_like(p, config, source);
  check_agrees(config, "out_channels", p.out_channels, source);
}

void apply_text_encoder_config(TextEncoderParams& p, const nlohmann::json& config,
                               const std::string& source) {
  if (!config.is_object()) throw Error(source, "", "a JSON object", config.type_name());
  if (has(config, "num_attention_heads"))
    p.heads = int_field(config, "num_attention_heads", source);
  if (has(config, "hidden_act")) {
    const auto& a = config.at("hidden_act");
    if (!a.is_string() || (a != "quick_gelu" && a != "gelu"))
      throw Error(source, "hidden_act", "quick_gelu or gelu", a.dump());
    p.activation = a.get<std::string>();
  }
  if (has(config, "layer_norm_eps"))
    p.layer_norm_eps = float_field(config, "layer_norm_eps", source);
  check_agrees(config, "hidden_size", p.hidden, source);
  check_agrees(config, "num_hidden_layers", p.layers, source);
  check_agrees(config, "intermediate_size", p.intermediate, source);
  check_agrees(config, "vocab_size", p.vocab_size, source);
  check_agrees(config, "max_position_embeddings", p.max_positions, source);
}

void apply_vae_config(VaeParams& p, const nlohmann::json& config, const std::string& source) {
  if (!config.is_object()) throw Error(source, "", "a JSON object", config.type_name());
  if (has(config, "scaling_factor"))
    p.scaling_factor = float_field(config, "scaling_factor", source);
  if (has(config, "norm_num_groups")) p.norm_groups = int_field(config, "norm_num_groups", source);
  check_agrees(config, "block_out_channels", js(p.block_out_channels), source);
  check_agrees(config, "latent_channels", p.latent_channels, source);
  check_agrees(config, "layers_per_block", p.layers_per_block, source);
  check_agrees(config, "in_channels", p.in_channels, source);
  check_agrees(config, "out_channels", p.out_channels, source);
}

void apply_controlnet_config(ControlNetParams& p, const nlohmann::json& config,
                             const std::string& source) {
  apply_unet_like(p.unet, config, source);
  check_agrees(config, "conditioning_embedding_out_channels", js(p.hint_channels), source);
  check_agrees(config, "conditioning_channels", p.conditioning_channels, source);
}

void validate(const UNetParams& p, const std::string& source) {
  if (p.num_heads <= 0)
    throw Error(source, "UNet heads", "a positive count", std::to_string(p.num_heads));
  for (size_t i = 0; i < p.block_out_channels.size(); ++i) {
    const int c = p.block_out_channels[i];
    if (p.norm_groups <= 0 || c % p.norm_groups != 0)
      throw Error(source, "UNet norm groups",
                  "a divisor of every level's channels (" + js(p.block_out_channels).dump() + ")",
                  std::to_string(p.norm_groups));
    if (p.attention_levels[i] && c % p.num_heads != 0)
      throw Error(source, "UNet heads", "a divisor of the attention channels " + std::to_string(c),
                  std::to_string(p.num_heads));
  }
}

void validate(const TextEncoderParams& p, const std::string& source) {
  if (p.heads <= 0 || p.hidden % p.heads != 0)
    throw Error(source, "text encoder heads", "a divisor of the width " + std::to_string(p.hidden),
                std::to_string(p.heads));
}

void validate(const VaeParams& p, const std::string& source) {
  for (int c : p.block_out_channels)
    if (p.norm_groups <= 0 || c % p.norm_groups != 0)
      throw Error(source, "VAE norm groups",
                  "a divisor of every level's channels (" + js(p.block_out_channels).dump() + ")",
                  std::to_string(p.norm_groups));
}

int64_t parameter_count(const WeightMap& m, const std::string& prefix) {
  int64_t n = 0;
  for (const auto& name : m.names_with_prefix(prefix)) n += m.get(name).numel();
  return n;
}

nlohmann::json to_json(const UNetParams& p) {
  return {{"in_channels", p.in_channels},
          {"out_channels", p.out_channels},
          {"block_out_channels", js(p.block_out_channels)},
          {"attention_levels", js(p.attention_levels)},
          {"layers_per_block", p.layers_per_block},
          {"num_heads", p.num_heads},
          {"transformer_depth", p.transformer_depth},
          {"context_dim", p.context_dim},
          {"norm_groups", p.norm_groups},
          {"use_linear_projection", p.use_linear_projection}};
}

nlohmann::json to_json(const TextEncoderParams& p) {
  return {{"vocab_size", p.vocab_size}, {"max_positions", p.max_positions},
          {"hidden", p.hidden},         {"layers", p.layers},
          {"heads", p.heads},           {"intermediate", p.intermediate},
          {"activation", p.activation}};
}

nlohmann::json to_json(const VaeParams& p) {
  return {{"in_channels", p.in_channels},
          {"out_channels", p.out_channels},
          {"latent_channels", p.latent_channels},
          {"block_out_channels", js(p.block_out_channels)},
          {"layers_per_block", p.layers_per_block},
          {"norm_groups", p.norm_groups},
          {"scaling_factor", shortest(p.scaling_factor)}};
}

nlohmann::json to_json(const ControlNetParams& p) {
  nlohmann::json j = to_json(p.unet);
  j.erase("out_channels");
  j["hint_channels"] = js(p.hint_channels);
  j["conditioning_channels"] = p.conditioning_channels;
  return j;
}

}  // namespace sdc::model
