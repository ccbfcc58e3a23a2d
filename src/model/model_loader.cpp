// load_model(): open, classify, refuse what is not SD1.x, normalise to LDM names, swap in --vae /
// --text-encoder, check the required components, then read hyper-parameters.
#include "model/model_loader.h"

#include "model/compiled_model.h"

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "io/open_file.h"
#include "model/infer_hparams.h"
#include "model/key_mapping.h"

namespace sdc::model {

namespace fs = std::filesystem;

namespace {

const char* kComponents[] = {"unet", "text_encoder", "vae", "controlnet"};

void refuse_unsupported(const std::string& path, const Classification& c) {
  if (c.kind == ModelKind::Lora)
    throw Error(path, "", "a Stable Diffusion model",
                std::string("a LoRA (") + lora_format_name(c.lora_format) +
                    " format); pass it with --lora");
  if (c.kind == ModelKind::Unknown)
    throw Error(path, "",
                "a Stable Diffusion 1.x checkpoint, diffusers folder or compiled sdc GGUF",
                c.evidence.empty()
                    ? "no UNet, VAE, text encoder or ControlNet weights"
                    : "no UNet, VAE, text encoder or ControlNet weights (" + c.evidence + ")");
  if (!c.supported())
    throw Error(path, "", "a Stable Diffusion 1.x model",
                std::string(architecture_name(c.architecture)) + " (" + c.evidence +
                    "), which is not supported yet");
}

nlohmann::json parse_config_value(const nlohmann::json& v, const std::string& source) {
  if (v.is_object()) return v;
  if (v.is_string()) {
    try {
      nlohmann::json j = nlohmann::json::parse(v.get<std::string>());
      if (j.is_object()) return j;
    } catch (const nlohmann::json::exception&) {
    }
  }
  throw Error(source, "", "a diffusers config (a JSON object)", v.dump().substr(0, 80));
}

// Only the LDM weights of `component` from a --vae / --text-encoder file, plus its config.
WeightMap component_weights(const std::string& path, Component component, const char* flag,
                            ConfigSet& configs) {
  io::TensorFile f = io::open_tensor_file(path);
  const Classification c = classify(f);
  const std::string prefix =
      component == Component::TextEncoder ? "cond_stage_model." : ldm_prefix(component);
  const std::string what = component == Component::Vae ? "a VAE" : "a text encoder";
  if (c.kind == ModelKind::Lora || c.kind == ModelKind::Unknown)
    throw Error(path, flag, what, c.kind == ModelKind::Lora ? "a LoRA" : "no recognisable weights");
  if (!c.supported()) refuse_unsupported(path, c);
  WeightMap all = to_ldm_weights(f, c);
  WeightMap out;
  out.description = path;
  for (const auto& n : all.names_with_prefix(prefix)) out.set(n, all.get(n));
  if (out.size() == 0)
    throw Error(path, flag, what + " (" + prefix + "* weights or their diffusers names)",
                std::string("a ") + kind_name(c.kind) + " without them");
  const ConfigSet own = configs_of(f);
  const char* name = component_name(component);
  if (auto it = own.find(name); it != own.end()) configs[name] = it->second;
  return out;
}

void replace_component(WeightMap& weights, const std::string& prefix, const WeightMap& with) {
  for (const auto& n : weights.names_with_prefix(prefix)) weights.erase(n);
  for (const auto& [n, t] : with.all()) weights.set(n, t);
}

}  // namespace

ConfigSet configs_of(const io::TensorFile& file) {
  ConfigSet out;
  if (!file.metadata.is_object()) return out;
  if (file.format == io::FileFormat::Diffusers) {
    auto comps = file.metadata.find("components");
    if (comps == file.metadata.end()) return out;
    for (const char* name : kComponents) {
      auto c = comps->find(name);
      if (c == comps->end() || !c->contains("config")) continue;
      out[name] = {c->at("config"), file.path + "/" + c->value("folder", name) + "/config.json"};
    }
  } else if (file.format == io::FileFormat::Gguf) {
    for (const char* name : kComponents) {
      const std::string key = std::string("sdc.config.") + name;
      auto it = file.metadata.find(key);
      if (it == file.metadata.end()) continue;
      out[name] = {parse_config_value(*it, file.path + ": " + key), file.path + ": " + key};
    }
  }
  return out;
}

ConfigSet read_model_config_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir, "--model-config", "a folder with unet/, text_encoder/, vae/ configs",
                "not a directory");
  ConfigSet out;
  for (const char* name : kComponents) {
    const fs::path p = fs::path(dir) / name / "config.json";
    if (!fs::is_regular_file(p, ec)) continue;
    std::ifstream in(p);
    try {
      nlohmann::json j = nlohmann::json::parse(in);
      if (!j.is_object()) throw Error(p.string(), "", "a JSON object", j.type_name());
      out[name] = {j, p.string()};
    } catch (const nlohmann::json::exception& e) {
      throw Error(p.string(), "", "valid JSON", std::string("invalid JSON (") + e.what() + ")");
    }
  }
  if (out.empty())
    throw Error(
        dir, "--model-config",
        "unet/config.json, text_encoder/config.json, vae/config.json or controlnet/config.json",
        "none of them");
  return out;
}

LoadedModel load_model(const std::string& path, const LoadOptions& options) {
  return load_model(io::open_tensor_file(path), options);
}

LoadedModel load_model(const io::TensorFile& packed_file, const LoadOptions& options) {
  // A compiled file's packed section is for the backend (offered at load), not model weights.
  // A bundled TAESD (sdc convert --taesd) is not part of the LDM checkpoint: set aside here and
  // checked by the TAESD reader below.
  io::TensorFile file = without_packed_section(packed_file);
  WeightMap bundled_taesd;
  if (file.format == io::FileFormat::Gguf)
    for (const auto& n : file.tensors.names_with_prefix("taesd.")) {
      bundled_taesd.set(n, file.tensors.get(n));
      file.tensors.erase(n);
    }
  const std::string& path = file.path;
  LoadedModel m;
  m.source = path;
  m.format = file.format;
  m.classification = classify(file);
  const Classification& c = m.classification;
  refuse_unsupported(path, c);
  if (options.require_unet && !c.has_unet && c.kind != ModelKind::Checkpoint &&
      c.kind != ModelKind::Compiled) {
    const char* how = c.kind == ModelKind::Vae           ? " (pass it with --vae)"
                      : c.kind == ModelKind::TextEncoder ? " (pass it with --text-encoder)"
                      : c.kind == ModelKind::ControlNet  ? " (pass it with --control-net)"
                                                         : "";
    throw Error(path, "", "a Stable Diffusion checkpoint",
                std::string("a standalone ") + kind_name(c.kind) + how);
  }

  m.weights = to_ldm_weights(file, c);
  m.weights.description = path;
  if (bundled_taesd.size()) add_bundled_taesd(path, bundled_taesd, m.weights);
  if (!options.taesd_path.empty()) load_taesd(options.taesd_path, m.weights, "--taesd");
  m.taesd = taesd_parts(m.weights);

  ConfigSet configs = configs_of(file);
  if (!options.vae_path.empty())
    replace_component(m.weights, ldm_prefix(Component::Vae),
                      component_weights(options.vae_path, Component::Vae, "--vae", configs));
  if (!options.text_encoder_path.empty())
    replace_component(m.weights, "cond_stage_model.",
                      component_weights(options.text_encoder_path, Component::TextEncoder,
                                        "--text-encoder", configs));
  if (!options.model_config_dir.empty())
    for (auto& [name, cfg] : read_model_config_dir(options.model_config_dir)) configs[name] = cfg;

  auto any = [&](const std::string& prefix) {
    return !m.weights.names_with_prefix(prefix).empty();
  };
  m.has_unet = any(ldm_prefix(Component::UNet));
  m.has_vae = any(ldm_prefix(Component::Vae));
  m.has_text_encoder = any(ldm_prefix(Component::TextEncoder));
  if (options.require_unet && !m.has_unet)
    throw Error(path, "UNet", "model.diffusion_model.* weights", "none");
  if (options.require_vae && !m.has_vae)
    throw Error(path, "VAE", "first_stage_model.* weights", "none (pass --vae FILE)");
  if (options.require_text_encoder && !m.has_text_encoder)
    throw Error(path, "text encoder", "cond_stage_model.transformer.text_model.* weights",
                "none (pass --text-encoder FILE)");

  auto config = [&](const char* name) -> const std::pair<nlohmann::json, std::string>* {
    auto it = configs.find(name);
    return it == configs.end() ? nullptr : &it->second;
  };
  if (m.has_unet) {
    m.unet = infer_unet_params(m.weights);
    if (auto* cfg = config("unet")) apply_unet_config(m.unet, cfg->first, cfg->second);
    validate(m.unet, path);
  }
  if (m.has_text_encoder) {
    m.text_encoder = infer_text_encoder_params(m.weights);
    if (auto* cfg = config("text_encoder"))
      apply_text_encoder_config(m.text_encoder, cfg->first, cfg->second);
    validate(m.text_encoder, path);
  }
  if (m.has_vae) {
    m.vae = infer_vae_params(m.weights);
    if (auto* cfg = config("vae")) apply_vae_config(m.vae, cfg->first, cfg->second);
    validate(m.vae, path);
  }
  if (any(ldm_prefix(Component::ControlNet))) {
    ControlNetParams cn = infer_controlnet_params(m.weights);
    // A ControlNet copies its UNet's attention layout: the UNet config serves when it has none.
    if (auto* cfg = config("controlnet"))
      apply_controlnet_config(cn, cfg->first, cfg->second);
    else if (auto* ucfg = config("unet"); ucfg && !m.has_unet)
      apply_controlnet_config(cn, ucfg->first, ucfg->second);
    else if (m.has_unet)
      cn.unet.num_heads = m.unet.num_heads;
    validate(cn.unet, path);
    m.controlnet = cn;
  }
  return m;
}

}  // namespace sdc::model
