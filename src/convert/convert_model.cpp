// convert_model(): read → hash → merge + cast + write (see convert_model.h). Moved out of the CLI
// unchanged in behaviour so that the server's convert jobs run the very same code.
#include "convert/convert_model.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>

#include "io/open_file.h"
#include "io/sha256.h"
#include "model/key_mapping.h"
#include "model/lora_file.h"
#include "model/lora_targets.h"
#include "model/model_loader.h"
#include "pipeline/generation_request.h"
#include "pipeline/model_bundle.h"
#include "text/builtin_vocab.h"

namespace sdc::convert {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// An input file and what the compiled model records about it.
struct Source {
  std::string path;
  model::SourceFile info;
};

// Every distinct file the written weights come from, with its role: "model" for the model file
// (or a file of the model folder, named FOLDER/REL), else the component it supplies (VAE,
// ControlNet).
std::vector<Source> source_files(const model::LoadedModel& m, const std::string& model_path) {
  fs::path root = fs::path(model_path).lexically_normal();
  if (root.filename().empty()) root = root.parent_path();
  std::error_code ec;
  const bool folder = fs::is_directory(root, ec);
  std::vector<Source> out;
  std::set<std::string> seen;
  for (const auto& [name, t] : m.weights.all()) {
    if (t.source.empty() || !seen.insert(t.source).second) continue;
    const fs::path src = fs::path(t.source).lexically_normal();
    const fs::path rel = src.lexically_relative(root);
    const bool inside = folder && !rel.empty() && *rel.begin() != "..";
    Source s;
    s.path = t.source;
    s.info.name = inside ? (root.filename() / rel).string() : src.filename().string();
    if (inside || fs::equivalent(src, root, ec)) {
      s.info.role = "model";
    } else if (name.starts_with("taesd.")) {
      s.info.role = "taesd";
    } else {
      const auto c = model::component_of(name);
      s.info.role = !c                                    ? "model"
                    : *c == model::Component::Vae         ? "vae"
                    : *c == model::Component::ControlNet  ? "controlnet"
                    : *c == model::Component::TextEncoder ? "text_encoder"
                                                          : "model";
    }
    s.info.size = fs::file_size(src);
    out.push_back(std::move(s));
  }
  std::stable_sort(out.begin(), out.end(), [](const Source& x, const Source& y) {
    return x.info.role == "model" && y.info.role != "model";
  });
  return out;
}

std::string number_text(float v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

const char* stage_name(ConvertStage s) {
  switch (s) {
    case ConvertStage::Read:
      return "read";
    case ConvertStage::Hash:
      return "hash";
    case ConvertStage::Write:
      return "write";
  }
  return "?";
}

ConvertCancelled::ConvertCancelled(const std::string& output)
    : Error(output + ": interrupted; nothing written") {}

std::string default_model_name(const std::string& model_path) {
  fs::path p(model_path);
  if (p.filename().empty()) p = p.parent_path();
  std::error_code ec;
  return fs::is_directory(p, ec) ? p.filename().string() : p.stem().string();
}

model::ComponentTypes parse_component_types(const std::string& arg, const std::string& option) {
  auto one = [&](const std::string& v) {
    auto t = model::parse_precision_name(lower(v));
    if (!t)
      throw UsageError("", option, "f32, f16 or bf16 (int8: the unet and vae only)",
                       "\"" + v + "\"");
    return *t;
  };
  model::ComponentTypes types;
  if (arg.find('=') == std::string::npos) {
    // "int8" alone: the only int8 component is the UNet; everything is stored as f16.
    types.unet_int8 = lower(arg) == "int8";
    const DType t = types.unet_int8 ? DType::F16 : one(arg);
    types.unet = types.text_encoder = types.vae = types.controlnet = t;
    return types;
  }
  bool controlnet_set = false;
  std::set<std::string> seen;
  size_t start = 0;
  while (start <= arg.size()) {
    const size_t comma = std::min(arg.find(',', start), arg.size());
    const std::string item = arg.substr(start, comma - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos)
      throw UsageError("", option, "COMPONENT=TYPE items (unet, text_encoder, vae, controlnet)",
                       "\"" + item + "\"");
    const std::string key = lower(item.substr(0, eq));
    const bool int8 = (key == "unet" || key == "vae") && lower(item.substr(eq + 1)) == "int8";
    const DType t = int8 ? DType::F16 : one(item.substr(eq + 1));
    if (!seen.insert(key).second)
      throw UsageError("", option, "each component once", key + " twice");
    if (key == "unet") {
      types.unet = t;
      types.unet_int8 = int8;
    } else if (key == "text_encoder" || key == "te") {
      types.text_encoder = t;
    } else if (key == "vae") {
      types.vae = t;
      types.vae_int8 = int8;
    } else if (key == "controlnet") {
      types.controlnet = t;
      controlnet_set = true;
    } else {
      throw UsageError("", option, "unet, text_encoder, vae or controlnet", "\"" + key + "\"");
    }
    start = comma + 1;
  }
  if (!controlnet_set) types.controlnet = types.unet;
  return types;
}

std::vector<std::pair<int, int>> parse_sizes(const std::vector<int>& v, const std::string& option) {
  if (v.size() % 2 != 0)
    throw UsageError("", option, "W H pairs", std::to_string(v.size()) + " numbers");
  std::vector<std::pair<int, int>> out;
  for (size_t i = 0; i < v.size(); i += 2) {
    for (int x : {v[i], v[i + 1]})
      if (x % 8 != 0 || x < pipeline::kMinImageSide || x > pipeline::kMaxImageSide)
        throw UsageError("", option,
                         "multiples of 8 in [" + std::to_string(pipeline::kMinImageSide) + ", " +
                             std::to_string(pipeline::kMaxImageSide) + "]",
                         std::to_string(x));
    if (std::find(out.begin(), out.end(), std::make_pair(v[i], v[i + 1])) == out.end())
      out.emplace_back(v[i], v[i + 1]);
  }
  return out;
}

void check_batch(int batch, const std::string& option) {
  if (batch < 1 || batch > 64)
    throw UsageError("", option, "a batch size in [1, 64]", std::to_string(batch));
}

PreparedConversion prepare_conversion(const ConvertSpec& spec, const ConvertObserver& observer) {
  if (spec.model.empty())
    throw UsageError("", "model", "a model file or diffusers folder", "nothing");
  if (spec.output.empty()) throw UsageError("", "output", "a .gguf path", "nothing");
  check_batch(spec.batch, "batch");
  if (spec.defaults != "auto" && spec.defaults != "lcm" && spec.defaults != "none")
    throw UsageError("", "defaults", "lcm or none", "\"" + spec.defaults + "\"");
  auto progress = [&](ConvertStage s, const std::string& label, size_t done, size_t total) {
    if (observer.progress) observer.progress(s, label, done, total);
  };
  auto log = [&](const std::string& line) {
    if (observer.log) observer.log(line);
  };
  auto check_cancel = [&] {
    if (observer.cancelled && observer.cancelled()) throw ConvertCancelled(spec.output);
  };
  const std::string name = spec.name.empty() ? default_model_name(spec.model) : spec.name;

  // --- read
  const size_t inputs = 1 + size_t(!spec.controlnet.empty()) + spec.loras.size();
  size_t read_done = 0;
  progress(ConvertStage::Read, "read", 0, inputs);
  model::LoadOptions lo;
  lo.model_config_dir = spec.model_config;
  lo.vae_path = spec.vae;
  lo.taesd_path = spec.taesd;
  const io::TensorFile file = io::open_tensor_file(spec.model);
  PreparedConversion prepared{model::load_model(file, lo), {}, {}, {}};
  model::LoadedModel& m = prepared.model;
  const auto source_info = model::read_compiled_info(file);
  progress(ConvertStage::Read, "read", ++read_done, inputs);
  check_cancel();
  if (!spec.controlnet.empty()) {
    pipeline::attach_controlnet(m, spec.controlnet, spec.model_config);
    progress(ConvertStage::Read, "read", ++read_done, inputs);
    check_cancel();
  }
  const model::LoraTargets targets(m.weights);
  std::vector<std::unique_ptr<model::LoraFile>>& lora_files = prepared.lora_files;
  std::vector<model::LoraBake>& bakes = prepared.bakes;
  ConvertResult& result = prepared.result;
  result.reports.reserve(spec.loras.size());
  for (const auto& l : spec.loras) {
    lora_files.push_back(std::make_unique<model::LoraFile>(model::load_lora(l.path)));
    result.reports.emplace_back();
    bakes.push_back(model::prepare_lora_bake(m.weights, targets, *lora_files.back(), l.scale,
                                             spec.ignore_unmatched, result.reports.back()));
    progress(ConvertStage::Read, "read", ++read_done, inputs);
    check_cancel();
  }
  for (const auto& r : result.reports) {
    std::string line = r.summary() + " (scale " + number_text(r.scale) + ")";
    if (!r.skipped.empty()) line += ", " + std::to_string(r.skipped.size()) + " modules skipped";
    log(line);
  }

  // --- recommended defaults
  model::CompiledInfo& info = result.info;
  if (source_info) info = *source_info;  // re-converting a compiled file keeps what it baked
  info.version = model::kCompiledFormatVersion;
  info.tool = spec.tool;
  info.name = name;
  info.base = "sd15";
  info.precision = spec.types.by_component();
  if (spec.types.unet_int8) info.unet_compute = "int8";
  if (spec.types.vae_int8) info.vae_compute = "int8";
  info.sizes = spec.sizes;
  info.batch = spec.batch;
  if (spec.defaults == "none") info.defaults = {};
  std::string lcm_reason;
  for (const auto& lf : lora_files)
    if (lcm_reason.empty()) lcm_reason = model::lcm_lora_evidence(*lf);
  if (spec.defaults == "lcm" && lcm_reason.empty()) lcm_reason = "--defaults lcm";
  if (spec.defaults != "none" && !lcm_reason.empty())
    info.defaults = {"lcm", "", 4, 1.0f, lcm_reason};
  if (!info.defaults.empty())
    log("recommended defaults: sampler " + info.defaults.sampler + ", " +
        std::to_string(info.defaults.steps) + " steps, cfg " +
        number_text(info.defaults.cfg_scale) + " (" + info.defaults.reason + ")");
  if (info.tokenizer_vocab_json.empty()) {
    info.tokenizer_vocab_json = std::string(text::builtin_clip_vocab_json());
    info.tokenizer_merges = std::string(text::builtin_clip_merges_txt());
  }

  // --- hash
  const std::vector<Source> sources = source_files(m, spec.model);
  const size_t to_hash = sources.size() + lora_files.size();
  size_t hashed = 0;
  progress(ConvertStage::Hash, "sha256", 0, to_hash);
  info.sources.clear();
  for (const Source& s : sources) {
    info.sources.push_back(s.info);
    info.sources.back().sha256 = io::sha256_file(s.path);
    progress(ConvertStage::Hash, "sha256", ++hashed, to_hash);
    check_cancel();
  }
  for (size_t i = 0; i < lora_files.size(); ++i) {
    model::BakedLoraInfo l;
    l.name = fs::path(spec.loras[i].path).filename().string();
    l.sha256 = io::sha256_file(spec.loras[i].path);
    l.format = result.reports[i].format;
    l.scale = spec.loras[i].scale;
    l.unet_modules = result.reports[i].unet_modules;
    l.text_encoder_modules = result.reports[i].text_encoder_modules;
    info.loras.push_back(std::move(l));
    progress(ConvertStage::Hash, "sha256", ++hashed, to_hash);
    check_cancel();
  }

  return prepared;
}

ConvertResult convert_model(const ConvertSpec& spec, const ConvertObserver& observer) {
  auto check_cancel = [&] {
    if (observer.cancelled && observer.cancelled()) throw ConvertCancelled(spec.output);
  };
  PreparedConversion prepared = prepare_conversion(spec, observer);
  const model::LoadedModel& m = prepared.model;
  const std::vector<model::LoraBake>& bakes = prepared.bakes;
  ConvertResult& result = prepared.result;
  const model::CompiledInfo& info = result.info;

  // --- merge LoRA + cast + write
  const io::GgufMetadata metadata = model::compiled_metadata(info, m);
  const std::string label = bakes.empty() ? "cast + write" : "merge LoRA + cast + write";
  if (observer.progress) observer.progress(ConvertStage::Write, label, 0, m.weights.size());
  model::ExportOptions options;
  options.threads = spec.threads;
  options.on_tensor = [&](size_t done, size_t n) {
    check_cancel();
    if (observer.progress) observer.progress(ConvertStage::Write, label, done, n);
  };
  result.written = model::export_gguf(spec.output, m.weights, bakes, spec.types, metadata, options);
  result.path = spec.output;
  return std::move(result);
}

}  // namespace sdc::convert
