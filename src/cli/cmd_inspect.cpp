// `sdc inspect FILE... [--json] [--model-config DIR]`: what a model file holds — its format, size,
// tensor count and dtypes, what kind of model it is, and per component the parameter count and
// hyper-parameters; a LoRA's format, modules and ranks; a GGUF's metadata. With --json, one JSON
// object per line per file (keys: file, format, file_size, tensors, dtypes, kind, architecture,
// supported, naming, [evidence], [components.{unet,vae,text_encoder,controlnet}.{params,hparams}],
// [lora], [metadata]).
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "common/error.h"
#include "io/image.h"
#include "io/mapped_file.h"
#include "io/open_file.h"
#include "model/classify.h"
#include "model/infer_hparams.h"
#include "model/key_mapping.h"
#include "model/lora_file.h"
#include "model/model_loader.h"
#include "pipeline/generation_params.h"

namespace sdc::cli {

namespace {

// Metadata can hold tokenizer vocabularies of 50 000 strings: long arrays are summarised.
constexpr size_t kMaxArrayItems = 16;
constexpr size_t kMaxStringBytes = 1024;

nlohmann::json summarised(const nlohmann::json& j) {
  if (j.is_array() && j.size() > kMaxArrayItems) {
    nlohmann::json first = nlohmann::json::array();
    for (size_t i = 0; i < 8; ++i) first.push_back(summarised(j[i]));
    return {{"array_length", j.size()}, {"first", first}};
  }
  if (j.is_array() || j.is_object()) {
    nlohmann::json out = j.is_array() ? nlohmann::json::array() : nlohmann::json::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (j.is_array())
        out.push_back(summarised(*it));
      else
        out[it.key()] = summarised(it.value());
    }
    return out;
  }
  // A compiled model's tokenizer files are megabyte strings: show their length and start.
  if (j.is_string() && j.get_ref<const std::string&>().size() > kMaxStringBytes) {
    const std::string& s = j.get_ref<const std::string&>();
    return {{"string_length", s.size()}, {"first", s.substr(0, 64)}};
  }
  return j;
}

// Metadata strings (GGUF) need not be UTF-8: replace what JSON cannot carry.
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json lora_section(const io::TensorFile& file, const model::Classification& c) {
  const model::LoraSummary s = model::summarize_lora(file);
  nlohmann::json kinds = nlohmann::json::object();
  for (const auto& [k, n] : s.kinds) kinds[k] = n;
  nlohmann::json alphas = nlohmann::json::array();
  for (float a : s.alphas) alphas.push_back(a);
  nlohmann::json j{{"format", model::lora_format_name(c.lora_format)},
                   {"description", s.format},
                   {"base", model::lora_base_name(s.base)},
                   {"unet_modules", s.unet_modules},
                   {"text_encoder_modules", s.text_encoder_modules},
                   {"min_rank", s.min_rank},
                   {"max_rank", s.max_rank},
                   {"alphas", alphas},
                   {"module_kinds", kinds}};
  if (s.text_encoder2_modules > 0) j["text_encoder_2_modules"] = s.text_encoder2_modules;
  if (!s.base_evidence.empty()) j["base_evidence"] = s.base_evidence;
  return j;
}

nlohmann::json components_section(const io::TensorFile& file, const std::string& model_config) {
  model::LoadOptions options;
  options.model_config_dir = model_config;
  options.require_unet = options.require_vae = options.require_text_encoder = false;
  const model::LoadedModel m = model::load_model(file, options);
  nlohmann::json comps = nlohmann::json::object();
  using model::Component;
  if (m.has_unet)
    comps["unet"] = {
        {"params", model::parameter_count(m.weights, model::ldm_prefix(Component::UNet))},
        {"hparams", model::to_json(m.unet)}};
  if (m.has_vae)
    comps["vae"] = {
        {"params", model::parameter_count(m.weights, model::ldm_prefix(Component::Vae))},
        {"hparams", model::to_json(m.vae)}};
  if (m.has_text_encoder)
    comps["text_encoder"] = {
        {"params", model::parameter_count(m.weights, model::ldm_prefix(Component::TextEncoder))},
        {"hparams", model::to_json(m.text_encoder)}};
  if (m.controlnet)
    comps["controlnet"] = {
        {"params", model::parameter_count(m.weights, model::ldm_prefix(Component::ControlNet))},
        {"hparams", model::to_json(*m.controlnet)}};
  return comps;
}

nlohmann::json describe(const std::string& path, const std::string& model_config) {
  const io::TensorFile file = io::open_tensor_file(path);
  nlohmann::json j{{"file", path},
                   {"format", io::format_name(file.format)},
                   {"file_size", file.file_size},
                   {"tensors", file.tensors.size()}};
  nlohmann::json dtypes = nlohmann::json::object();
  for (const auto& [name, t] : file.tensors.all()) {
    const std::string d(dtype_name(t.dtype));
    dtypes[d] = dtypes.value(d, 0) + 1;
  }
  j["dtypes"] = dtypes;

  const model::Classification c = model::classify(file);
  j["kind"] = model::kind_name(c.kind);
  j["architecture"] = model::architecture_name(c.architecture);
  j["supported"] = c.kind != model::ModelKind::Unknown && c.supported();
  j["naming"] = model::naming_name(c.naming);
  if (!c.evidence.empty()) j["evidence"] = c.evidence;

  if (c.kind == model::ModelKind::Lora) {
    j["lora"] = lora_section(file, c);
  } else if (c.kind != model::ModelKind::Unknown && c.supported()) {
    j["components"] = components_section(file, model_config);
  }
  // A diffusers folder's metadata is its configs (already reflected in the hyper-parameters).
  if (file.format != io::FileFormat::Diffusers && file.metadata.is_object() &&
      !file.metadata.empty())
    j["metadata"] = summarised(file.metadata);
  return j;
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string human(const nlohmann::json& j) {
  std::ostringstream o;
  o << j["file"].get<std::string>() << "\n";
  o << "  format:   " << j["format"].get<std::string>() << ", "
    << with_commas(j["file_size"].get<int64_t>()) << " bytes\n";
  o << "  tensors:  " << j["tensors"].get<size_t>();
  if (!j["dtypes"].empty()) {
    o << " (";
    bool first = true;
    for (auto it = j["dtypes"].begin(); it != j["dtypes"].end(); ++it, first = false)
      o << (first ? "" : ", ") << it.key() << " " << it.value().get<int>();
    o << ")";
  }
  o << "\n  kind:     " << j["kind"].get<std::string>();
  if (j["architecture"] != "unknown") o << ", " << j["architecture"].get<std::string>();
  if (!j["supported"].get<bool>()) o << " (not supported)";
  if (j["kind"] != "lora") o << ", " << j["naming"].get<std::string>() << " names";
  o << "\n";
  if (j.contains("evidence")) o << "  evidence: " << j["evidence"].get<std::string>() << "\n";
  if (j.contains("components")) {
    for (auto it = j["components"].begin(); it != j["components"].end(); ++it) {
      o << "  " << it.key() << ": " << with_commas(it.value()["params"].get<int64_t>())
        << " parameters\n";
      for (auto h = it.value()["hparams"].begin(); h != it.value()["hparams"].end(); ++h)
        o << "    " << h.key() << " = " << dump(h.value()) << "\n";
    }
  }
  if (j.contains("lora")) {
    o << "  lora:\n";
    for (auto it = j["lora"].begin(); it != j["lora"].end(); ++it)
      o << "    " << it.key() << " = " << dump(it.value()) << "\n";
  }
  if (j.contains("metadata")) {
    o << "  metadata:\n";
    for (auto it = j["metadata"].begin(); it != j["metadata"].end(); ++it)
      o << "    " << it.key() << " = " << dump(it.value()) << "\n";
  }
  return o.str();
}

// A PNG or JPEG: its size and, for PNGs that sdc (or A1111) wrote, the generation parameters.
std::optional<nlohmann::json> describe_image(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;  // describe() says why
  auto file = io::MappedFile::open(path);
  const io::ImageFormat format = io::sniff_image_format(file->data(), file->size());
  if (format == io::ImageFormat::Unknown) return std::nullopt;
  io::Image image = io::decode_image(file->data(), file->size(), path);
  nlohmann::json j{{"file", path},
                   {"format", format == io::ImageFormat::Png ? "png" : "jpeg"},
                   {"file_size", file->size()},
                   {"kind", "image"},
                   {"width", image.width},
                   {"height", image.height}};
  if (format == io::ImageFormat::Png) {
    for (const auto& [key, text] : io::decode_png_text(file->data(), file->size(), path)) {
      j["text"][key] = text;
      if (key != "parameters") continue;
      const pipeline::GenerationParams p = pipeline::parse_a1111_parameters(text);
      j["parameters"] = {{"prompt", p.prompt},       {"negative_prompt", p.negative_prompt},
                         {"steps", p.steps},         {"sampler", p.sampler},
                         {"cfg_scale", p.cfg_scale}, {"seed", p.seed},
                         {"width", p.width},         {"height", p.height},
                         {"model", p.model}};
    }
  }
  return j;
}

std::string human_image(const nlohmann::json& j) {
  std::ostringstream out;
  out << j["file"].get<std::string>() << ": " << j["format"].get<std::string>() << " image, "
      << j["width"] << "x" << j["height"] << ", " << j["file_size"] << " bytes\n";
  if (j.contains("text"))
    for (auto it = j["text"].begin(); it != j["text"].end(); ++it) {
      out << "  " << it.key() << ":\n    ";
      for (char ch : it.value().get<std::string>())
        out << (ch == '\n' ? std::string("\n    ") : std::string(1, ch));
      out << "\n";
    }
  return out.str();
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe model files, LoRAs, ControlNets and GGUFs");
  auto files = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  auto model_config = std::make_shared<std::string>();
  cmd->add_option("files", *files, "Model files or diffusers folders")->required();
  cmd->add_flag("--json", *json, "One JSON object per line per file");
  cmd->add_option("--model-config", *model_config,
                  "Diffusers-style folder whose unet/, text_encoder/, vae/ config.json give what "
                  "shapes cannot (head counts)");
  cmd->callback([files, json, model_config] {
    for (const auto& f : *files) {
      if (auto image = describe_image(f)) {
        std::cout << (*json ? image->dump() + "\n" : human_image(*image));
        continue;
      }
      nlohmann::json j;
      try {
        j = describe(f, *model_config);
      } catch (const Error& e) {
        // Every message names the file it is about; add it where a lower layer could not.
        if (std::string(e.what()).find(f) == std::string::npos) throw e.with_file(f);
        throw;
      }
      if (*json)
        std::cout << dump(j) << "\n";
      else
        std::cout << human(j);
      std::cout.flush();
    }
  });
}

}  // namespace sdc::cli
