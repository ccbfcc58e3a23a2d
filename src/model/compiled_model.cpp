// Writing and reading the sdc.* metadata of a compiled model (schema in compiled_model.h).
#include "model/compiled_model.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>

#include "common/error.h"

namespace sdc::model {
namespace {

using io::GgufType;
using io::GgufValue;

// A float as the shortest decimal that reads back as the same float (1e-05, not
// 9.999999747378752e-06), so configs stay readable.
double tidy(float f) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  double d = 0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

template <typename T>
nlohmann::json array_of(const std::vector<T>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : v) a.push_back(x);
  return a;
}

void unet_like(nlohmann::json& j, const UNetParams& p) {
  nlohmann::json down = nlohmann::json::array();
  for (bool attn : p.attention_levels)
    down.push_back(attn ? "CrossAttnDownBlock2D" : "DownBlock2D");
  j["in_channels"] = p.in_channels;
  j["block_out_channels"] = array_of(p.block_out_channels);
  j["down_block_types"] = down;
  j["layers_per_block"] = p.layers_per_block;
  // SD1.x convention: diffusers calls the head count attention_head_dim.
  j["attention_head_dim"] = p.num_heads;
  j["transformer_layers_per_block"] = p.transformer_depth;
  j["cross_attention_dim"] = p.context_dim;
  j["norm_num_groups"] = p.norm_groups;
  j["norm_eps"] = tidy(p.resnet_eps);
  j["use_linear_projection"] = p.use_linear_projection;
  j["act_fn"] = "silu";
  j["flip_sin_to_cos"] = true;
  j["freq_shift"] = 0;
}

const std::string& str_of(const nlohmann::json& v, const std::string& file,
                          const std::string& key) {
  if (!v.is_string()) throw Error(file, key, "a string", v.dump().substr(0, 80));
  return v.get_ref<const std::string&>();
}

int64_t int_of(const nlohmann::json& v, const std::string& file, const std::string& key, int64_t lo,
               int64_t hi) {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    throw Error(file, key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                v.dump().substr(0, 80));
  return v.get<int64_t>();
}

double number_of(const nlohmann::json& v, const std::string& file, const std::string& key) {
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    throw Error(file, key, "a finite number", v.dump().substr(0, 80));
  return v.get<double>();
}

const nlohmann::json& array_at(const nlohmann::json& v, const std::string& file,
                               const std::string& key, size_t expected_size) {
  if (!v.is_array() || (expected_size != size_t(-1) && v.size() != expected_size))
    throw Error(file, key,
                expected_size == size_t(-1)
                    ? std::string("an array")
                    : "an array of " + std::to_string(expected_size) + " entries (one per " +
                          (key.find("lora") != std::string::npos ? "LoRA" : "source") + ")",
                v.is_array() ? std::to_string(v.size()) + " entries" : v.dump().substr(0, 80));
  return v;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string lcm_lora_evidence(const LoraFile& lora) {
  const std::string file = std::filesystem::path(lora.path).filename().string();
  if (lora.metadata.is_object())
    for (const auto& [key, value] : lora.metadata.items()) {
      const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
      if (lower(key).find("lcm") != std::string::npos ||
          lower(text).find("lcm") != std::string::npos)
        return "LCM-LoRA " + file + " (metadata " + key + ")";
    }
  if (lower(file).find("lcm") != std::string::npos) return "LCM-LoRA " + file + " (file name)";
  return {};
}

std::optional<DType> parse_precision_name(const std::string& name) {
  if (name == "f32" || name == "fp32") return DType::F32;
  if (name == "f16" || name == "fp16") return DType::F16;
  if (name == "bf16") return DType::BF16;
  return std::nullopt;
}

const char* precision_label(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    default:
      return dtype_name(t).data();
  }
}

nlohmann::json diffusers_config(const UNetParams& p) {
  nlohmann::json j{{"_class_name", "UNet2DConditionModel"}};
  unet_like(j, p);
  j["out_channels"] = p.out_channels;
  nlohmann::json up = nlohmann::json::array();
  for (auto it = p.attention_levels.rbegin(); it != p.attention_levels.rend(); ++it)
    up.push_back(*it ? "CrossAttnUpBlock2D" : "UpBlock2D");
  j["up_block_types"] = up;
  return j;
}

nlohmann::json diffusers_config(const TextEncoderParams& p) {
  return {{"architectures", nlohmann::json::array({"CLIPTextModel"})},
          {"model_type", "clip_text_model"},
          {"vocab_size", p.vocab_size},
          {"max_position_embeddings", p.max_positions},
          {"hidden_size", p.hidden},
          {"num_hidden_layers", p.layers},
          {"num_attention_heads", p.heads},
          {"intermediate_size", p.intermediate},
          {"hidden_act", p.activation},
          {"layer_norm_eps", tidy(p.layer_norm_eps)}};
}

nlohmann::json diffusers_config(const VaeParams& p) {
  const size_t n = p.block_out_channels.size();
  return {{"_class_name", "AutoencoderKL"},
          {"in_channels", p.in_channels},
          {"out_channels", p.out_channels},
          {"latent_channels", p.latent_channels},
          {"block_out_channels", array_of(p.block_out_channels)},
          {"down_block_types", std::vector<std::string>(n, "DownEncoderBlock2D")},
          {"up_block_types", std::vector<std::string>(n, "UpDecoderBlock2D")},
          {"layers_per_block", p.layers_per_block},
          {"norm_num_groups", p.norm_groups},
          {"act_fn", "silu"},
          {"scaling_factor", tidy(p.scaling_factor)}};
}

nlohmann::json diffusers_config(const ControlNetParams& p) {
  nlohmann::json j{{"_class_name", "ControlNetModel"}};
  unet_like(j, p.unet);
  j["conditioning_embedding_out_channels"] = array_of(p.hint_channels);
  j["conditioning_channels"] = p.conditioning_channels;
  return j;
}

io::GgufMetadata compiled_metadata(const CompiledInfo& info, const LoadedModel& model) {
  io::GgufMetadata kv;
  auto add = [&](const std::string& key, GgufValue v) { kv.emplace_back(key, std::move(v)); };
  add("general.architecture", GgufValue::string("stable-diffusion"));
  add("general.name", GgufValue::string(info.name));
  add("sdc.version", GgufValue::u32(info.version));
  add("sdc.tool", GgufValue::string(info.tool));
  add("sdc.base", GgufValue::string(info.base));

  std::vector<std::string> components;
  if (model.has_unet) components.push_back("unet");
  if (model.has_text_encoder) components.push_back("text_encoder");
  if (model.has_vae) components.push_back("vae");
  if (model.controlnet) components.push_back("controlnet");
  if (model.taesd.decoder) components.push_back("taesd_decoder");
  if (model.taesd.encoder) components.push_back("taesd_encoder");
  add("sdc.components", GgufValue::string_array(components));
  if (model.has_unet)
    add("sdc.config.unet", GgufValue::string(diffusers_config(model.unet).dump()));
  if (model.has_text_encoder)
    add("sdc.config.text_encoder", GgufValue::string(diffusers_config(model.text_encoder).dump()));
  if (model.has_vae) add("sdc.config.vae", GgufValue::string(diffusers_config(model.vae).dump()));
  if (model.controlnet)
    add("sdc.config.controlnet", GgufValue::string(diffusers_config(*model.controlnet).dump()));
  for (const auto& c : components) {
    auto it = info.precision.find(c);
    if (it != info.precision.end())
      add("sdc.precision." + c, GgufValue::string(precision_label(it->second)));
  }
  if (!info.unet_compute.empty()) add("sdc.compute.unet", GgufValue::string(info.unet_compute));
  if (!info.vae_compute.empty()) add("sdc.compute.vae", GgufValue::string(info.vae_compute));

  if (!info.tokenizer_vocab_json.empty()) {
    add("sdc.tokenizer.vocab_json", GgufValue::string(info.tokenizer_vocab_json));
    add("sdc.tokenizer.merges", GgufValue::string(info.tokenizer_merges));
  }
  if (!info.sizes.empty()) {
    std::vector<GgufValue> wh;
    for (const auto& [w, h] : info.sizes) {
      wh.push_back(GgufValue::i32(w));
      wh.push_back(GgufValue::i32(h));
    }
    add("sdc.sizes", GgufValue::array(GgufType::I32, std::move(wh)));
  }
  add("sdc.batch", GgufValue::u32(uint32_t(info.batch)));

  std::vector<std::string> roles, names, hashes;
  std::vector<GgufValue> sizes;
  for (const SourceFile& s : info.sources) {
    roles.push_back(s.role);
    names.push_back(s.name);
    hashes.push_back(s.sha256);
    sizes.push_back(GgufValue::u64(s.size));
  }
  add("sdc.source.role", GgufValue::string_array(roles));
  add("sdc.source.name", GgufValue::string_array(names));
  add("sdc.source.size", GgufValue::array(GgufType::U64, std::move(sizes)));
  add("sdc.source.sha256", GgufValue::string_array(hashes));

  std::vector<std::string> l_names, l_hashes, l_formats;
  std::vector<GgufValue> l_scales, l_unet, l_te;
  for (const BakedLoraInfo& l : info.loras) {
    l_names.push_back(l.name);
    l_hashes.push_back(l.sha256);
    l_formats.push_back(l.format);
    l_scales.push_back(GgufValue::f32(l.scale));
    l_unet.push_back(GgufValue::u32(uint32_t(l.unet_modules)));
    l_te.push_back(GgufValue::u32(uint32_t(l.text_encoder_modules)));
  }
  add("sdc.lora.name", GgufValue::string_array(l_names));
  add("sdc.lora.sha256", GgufValue::string_array(l_hashes));
  add("sdc.lora.format", GgufValue::string_array(l_formats));
  add("sdc.lora.scale", GgufValue::array(GgufType::F32, std::move(l_scales)));
  add("sdc.lora.unet_modules", GgufValue::array(GgufType::U32, std::move(l_unet)));
  add("sdc.lora.text_encoder_modules", GgufValue::array(GgufType::U32, std::move(l_te)));

  const RecommendedSettings& d = info.defaults;
  if (!d.sampler.empty()) add("sdc.defaults.sampler", GgufValue::string(d.sampler));
  if (!d.scheduler.empty()) add("sdc.defaults.scheduler", GgufValue::string(d.scheduler));
  if (d.steps > 0) add("sdc.defaults.steps", GgufValue::u32(uint32_t(d.steps)));
  if (d.cfg_scale >= 0) add("sdc.defaults.cfg_scale", GgufValue::f32(d.cfg_scale));
  if (!d.reason.empty()) add("sdc.defaults.reason", GgufValue::string(d.reason));
  return kv;
}

std::optional<CompiledInfo> read_compiled_info(const io::TensorFile& file) {
  if (file.format != io::FileFormat::Gguf || !file.metadata.is_object()) return std::nullopt;
  const nlohmann::json& m = file.metadata;
  if (!m.contains("sdc.version")) return std::nullopt;
  const std::string& f = file.path;
  auto get = [&](const std::string& key) -> const nlohmann::json* {
    auto it = m.find(key);
    return it == m.end() ? nullptr : &*it;
  };
  // An array of `n` entries parallel to a name array (a missing key counts as a wrong one).
  auto parallel = [&](const nlohmann::json* v, const std::string& key,
                      size_t n) -> const nlohmann::json& {
    static const nlohmann::json missing;
    return array_at(v ? *v : missing, f, key, n);
  };
  CompiledInfo info;
  info.version = uint32_t(int_of(m.at("sdc.version"), f, "sdc.version", 1, 1 << 30));
  if (info.version > kCompiledFormatVersion)
    throw Error(f, "sdc.version",
                "format version " + std::to_string(kCompiledFormatVersion) +
                    " or older (convert it again with this sdc)",
                std::to_string(info.version));
  if (auto* v = get("sdc.tool")) info.tool = str_of(*v, f, "sdc.tool");
  if (auto* v = get("general.name")) info.name = str_of(*v, f, "general.name");
  if (auto* v = get("sdc.base")) info.base = str_of(*v, f, "sdc.base");
  for (const char* c : {"unet", "text_encoder", "vae", "controlnet"}) {
    const std::string key = std::string("sdc.precision.") + c;
    if (auto* v = get(key)) {
      auto t = parse_precision_name(str_of(*v, f, key));
      if (!t) throw Error(f, key, "f32, f16 or bf16", v->dump());
      info.precision[c] = *t;
    }
  }
  for (auto [key, out] : {std::pair{"sdc.compute.unet", &info.unet_compute},
                          std::pair{"sdc.compute.vae", &info.vae_compute}}) {
    if (auto* v = get(key)) {
      *out = str_of(*v, f, key);
      if (*out != "int8") throw Error(f, key, "\"int8\"", v->dump());
    }
  }

  if (auto* v = get("sdc.tokenizer.vocab_json")) {
    info.tokenizer_vocab_json = str_of(*v, f, "sdc.tokenizer.vocab_json");
    const auto* merges = get("sdc.tokenizer.merges");
    if (!merges)
      throw Error(f, "sdc.tokenizer.merges", "the merges beside sdc.tokenizer.vocab_json", "none");
    info.tokenizer_merges = str_of(*merges, f, "sdc.tokenizer.merges");
  } else if (get("sdc.tokenizer.merges")) {
    throw Error(f, "sdc.tokenizer.vocab_json", "the vocabulary beside sdc.tokenizer.merges",
                "none");
  }

  if (auto* v = get("sdc.sizes")) {
    if (!v->is_array() || v->size() % 2 != 0)
      throw Error(f, "sdc.sizes", "an array of width, height pairs",
                  v->is_array() ? std::to_string(v->size()) + " numbers" : v->dump());
    for (size_t i = 0; i < v->size(); i += 2)
      info.sizes.emplace_back(int(int_of((*v)[i], f, "sdc.sizes", 8, 1 << 16)),
                              int(int_of((*v)[i + 1], f, "sdc.sizes", 8, 1 << 16)));
  }
  if (auto* v = get("sdc.batch")) info.batch = int(int_of(*v, f, "sdc.batch", 1, 1024));

  if (auto* roles = get("sdc.source.name")) {
    const size_t n = array_at(*roles, f, "sdc.source.name", size_t(-1)).size();
    const auto& role = parallel(get("sdc.source.role"), "sdc.source.role", n);
    const auto& size = parallel(get("sdc.source.size"), "sdc.source.size", n);
    const auto& hash = parallel(get("sdc.source.sha256"), "sdc.source.sha256", n);
    for (size_t i = 0; i < n; ++i) {
      SourceFile s;
      s.role = str_of(role[i], f, "sdc.source.role");
      s.name = str_of((*roles)[i], f, "sdc.source.name");
      s.size = uint64_t(int_of(size[i], f, "sdc.source.size", 0, INT64_MAX));
      s.sha256 = str_of(hash[i], f, "sdc.source.sha256");
      info.sources.push_back(std::move(s));
    }
  }
  if (auto* names = get("sdc.lora.name")) {
    const size_t n = array_at(*names, f, "sdc.lora.name", size_t(-1)).size();
    const auto& hash = parallel(get("sdc.lora.sha256"), "sdc.lora.sha256", n);
    const auto& format = parallel(get("sdc.lora.format"), "sdc.lora.format", n);
    const auto& scale = parallel(get("sdc.lora.scale"), "sdc.lora.scale", n);
    const auto& unet = parallel(get("sdc.lora.unet_modules"), "sdc.lora.unet_modules", n);
    const auto& te =
        parallel(get("sdc.lora.text_encoder_modules"), "sdc.lora.text_encoder_modules", n);
    for (size_t i = 0; i < n; ++i) {
      BakedLoraInfo l;
      l.name = str_of((*names)[i], f, "sdc.lora.name");
      l.sha256 = str_of(hash[i], f, "sdc.lora.sha256");
      l.format = str_of(format[i], f, "sdc.lora.format");
      l.scale = float(number_of(scale[i], f, "sdc.lora.scale"));
      l.unet_modules = int(int_of(unet[i], f, "sdc.lora.unet_modules", 0, 1 << 20));
      l.text_encoder_modules = int(int_of(te[i], f, "sdc.lora.text_encoder_modules", 0, 1 << 20));
      info.loras.push_back(std::move(l));
    }
  }

  RecommendedSettings& d = info.defaults;
  if (auto* v = get("sdc.defaults.sampler")) d.sampler = str_of(*v, f, "sdc.defaults.sampler");
  if (auto* v = get("sdc.defaults.scheduler"))
    d.scheduler = str_of(*v, f, "sdc.defaults.scheduler");
  if (auto* v = get("sdc.defaults.steps"))
    d.steps = int(int_of(*v, f, "sdc.defaults.steps", 1, 1000));
  if (auto* v = get("sdc.defaults.cfg_scale")) {
    d.cfg_scale = float(number_of(*v, f, "sdc.defaults.cfg_scale"));
    if (d.cfg_scale < 0 || d.cfg_scale > 100)
      throw Error(f, "sdc.defaults.cfg_scale", "a number in [0, 100]", v->dump());
  }
  if (auto* v = get("sdc.defaults.reason")) d.reason = str_of(*v, f, "sdc.defaults.reason");
  return info;
}

bool is_packed_tensor(const std::string& name) {
  return name.rfind(kPackedTensorPrefix, 0) == 0;
}

bool has_packed_section(const io::TensorFile& file) {
  const auto& all = file.tensors.all();
  const auto first = all.lower_bound(kPackedTensorPrefix);
  return first != all.end() && is_packed_tensor(first->first);
}

io::TensorFile without_packed_section(const io::TensorFile& file) {
  io::TensorFile out = file;
  auto& all = out.tensors.all();
  // The packed tensors sort together, under their prefix.
  auto first = all.lower_bound(kPackedTensorPrefix), last = first;
  while (last != all.end() && is_packed_tensor(last->first)) ++last;
  all.erase(first, last);
  return out;
}

}  // namespace sdc::model
