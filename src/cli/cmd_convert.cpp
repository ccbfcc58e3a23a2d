// `sdc convert`: bake LoRAs (LCM-LoRA included), a ControlNet and a precision into ONE .gguf
// that `sdc generate -m` memory-maps and runs without converting again — or, with --format onnx,
// into a folder of ONNX models for accelerator compilers (export/onnx_folder.h).
//
//   sdc convert -u MODEL [-l LORA[:SCALE]]… [-c CONTROLNET] [--vae FILE] [--model-config DIR]
//               [-t f32|f16|bf16 | -t unet=bf16,vae=f32,…] [-s W H [W H …]] [-b BATCH] [-v sd15]
//               [--name NAME] [--defaults lcm|none] [--ignore-unmatched-lora-keys] -o OUT
//               [--format gguf|onnx [--static] [--force] [--controlnet-inputs] [--external-data]]
//
// Stages: read (open every input, parse and match the LoRAs), hash (sha256 of every input), then
// merge + cast + write streamed tensor by tensor (model/gguf_export.h). Everything that can be
// refused is refused before the output file is created; the file appears only when complete.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>

#include <unistd.h>

#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "export/onnx_folder.h"
#include "io/atomic_file.h"
#include "io/open_file.h"
#include "io/sha256.h"
#include "model/compiled_model.h"
#include "model/gguf_export.h"
#include "model/key_mapping.h"
#include "model/lora_arg.h"
#include "model/lora_file.h"
#include "model/lora_targets.h"
#include "model/model_loader.h"
#include "pipeline/builtin_vocab.h"
#include "pipeline/generation_request.h"
#include "pipeline/model_bundle.h"

#ifndef SDC_VERSION
#define SDC_VERSION "unknown"
#endif

namespace sdc::cli {
namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
  std::string model, controlnet, vae, model_config, output, name, version = "sd15";
  std::vector<std::string> loras;
  std::string type;  // default: f16 (gguf), f32 (onnx)
  std::string format = "gguf";
  bool fixed_shapes = false, force = false, control_inputs = false, external_data = false;
  std::vector<int> sizes;
  int batch = 1;
  std::string defaults = "auto";
  bool ignore_unmatched = false;
  int threads = 0;
};

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "-t bf16" (every component) or "-t unet=bf16,vae=f32,text_encoder=f32" (the others keep f16;
// the ControlNet follows the UNet unless named).
model::ComponentTypes parse_types(const std::string& arg) {
  auto one = [&](const std::string& v) {
    auto t = model::parse_precision_name(lower(v));
    if (!t) throw UsageError("", "-t/--type", "f32, f16 or bf16", "\"" + v + "\"");
    return *t;
  };
  model::ComponentTypes types;
  if (arg.find('=') == std::string::npos) {
    const DType t = one(arg);
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
      throw UsageError("", "-t/--type",
                       "COMPONENT=TYPE items (unet, text_encoder, vae, controlnet)",
                       "\"" + item + "\"");
    const std::string key = lower(item.substr(0, eq));
    const DType t = one(item.substr(eq + 1));
    if (!seen.insert(key).second)
      throw UsageError("", "-t/--type", "each component once", key + " twice");
    if (key == "unet")
      types.unet = t;
    else if (key == "text_encoder" || key == "te")
      types.text_encoder = t;
    else if (key == "vae")
      types.vae = t;
    else if (key == "controlnet") {
      types.controlnet = t;
      controlnet_set = true;
    } else
      throw UsageError("", "-t/--type", "unet, text_encoder, vae or controlnet", "\"" + key + "\"");
    start = comma + 1;
  }
  if (!controlnet_set) types.controlnet = types.unet;
  return types;
}

std::vector<std::pair<int, int>> parse_sizes(const std::vector<int>& v) {
  if (v.size() % 2 != 0)
    throw UsageError("", "-s/--sizes", "W H pairs", std::to_string(v.size()) + " numbers");
  std::vector<std::pair<int, int>> out;
  for (size_t i = 0; i < v.size(); i += 2) {
    for (int x : {v[i], v[i + 1]})
      if (x % 8 != 0 || x < pipeline::kMinImageSide || x > pipeline::kMaxImageSide)
        throw UsageError("", "-s/--sizes",
                         "multiples of 8 in [" + std::to_string(pipeline::kMinImageSide) + ", " +
                             std::to_string(pipeline::kMaxImageSide) + "]",
                         std::to_string(x));
    if (std::find(out.begin(), out.end(), std::make_pair(v[i], v[i + 1])) == out.end())
      out.emplace_back(v[i], v[i + 1]);
  }
  return out;
}

// The model's name: --name, else the file's stem (a folder's own name).
std::string model_name(const ConvertArgs& a) {
  if (!a.name.empty()) return a.name;
  fs::path p(a.model);
  if (p.filename().empty()) p = p.parent_path();
  std::error_code ec;
  return fs::is_directory(p, ec) ? p.filename().string() : p.stem().string();
}

// Creates and removes a temporary file beside `path`: a folder we cannot write to is refused
// before any work (sdc::Error naming the folder and the reason).
void probe_writable(const std::string& path) {
  io::AtomicFile probe(path);
}

// OUT.gguf, or OUT/NAME.gguf when OUT is an existing directory. Checked before any work.
std::string output_path(const ConvertArgs& a, const std::string& name) {
  std::error_code ec;
  if (a.output.empty())
    throw UsageError("", "-o/--output", "a .gguf path or a directory", "nothing");
  if (fs::is_directory(a.output, ec)) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      throw UsageError("", "--name", "a file name", "\"" + name + "\"");
    const std::string out = (fs::path(a.output) / (name + ".gguf")).string();
    probe_writable(out);
    return out;
  }
  const fs::path p(a.output);
  if (a.output.back() == '/' || p.extension() != ".gguf")
    throw UsageError(
        a.output, "-o/--output", "a .gguf file or an existing directory",
        a.output.back() == '/' ? "a directory that does not exist" : "neither (name it NAME.gguf)");
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  if (!fs::is_directory(dir, ec))
    throw UsageError(a.output, "-o/--output", "an existing output directory",
                     dir.string() + " does not exist");
  probe_writable(a.output);
  return a.output;
}

// An input file and what the compiled model records about it.
struct Source {
  std::string path;
  model::SourceFile info;
};

// Every distinct file the written weights come from, with its role: "model" for the -u file (or
// a file of the -u folder, named FOLDER/REL), else the component it supplies (--vae, -c).
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

// SIGINT/SIGTERM during the write: stop between tensors so the temporary file is removed.
std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt(int) {
  g_interrupted.store(true);
}

struct InterruptGuard {
  using Handler = void (*)(int);
  Handler old_int, old_term;
  InterruptGuard() {
    g_interrupted = false;
    old_int = std::signal(SIGINT, on_interrupt);
    old_term = std::signal(SIGTERM, on_interrupt);
  }
  ~InterruptGuard() {
    std::signal(SIGINT, old_int);
    std::signal(SIGTERM, old_term);
  }
};

// Progress lines: every update on a terminal, about every 10 % otherwise (logs stay short).
class ThrottledBar {
 public:
  explicit ThrottledBar(std::string label) : bar_(std::move(label)), terminal_(isatty(2) != 0) {}
  void update(size_t done, size_t total) {
    const int step = total ? int(done * 10 / total) : 10;
    if (!terminal_ && step == last_ && done != total) return;
    last_ = step;
    bar_.update(int(done), int(total));
  }
  void finish() { bar_.finish(); }

 private:
  ProgressBar bar_;
  bool terminal_;
  int last_ = -1;
};

// The ONNX export of the loaded model with its LoRAs merged in f32 (in LoRA order).
void write_onnx(model::LoadedModel& m, const model::CompiledInfo& info,
                const std::vector<std::unique_ptr<model::LoraFile>>& loras,
                const std::vector<model::LoraSpec>& specs, const ConvertArgs& a,
                const model::ComponentTypes& types, const std::vector<std::pair<int, int>>& sizes,
                const Stopwatch& total);

void run_convert(const ConvertArgs& a) {
  Stopwatch total;
  const bool onnx = a.format == "onnx";
  if (a.format != "gguf" && !onnx)
    throw UsageError("", "--format", "gguf or onnx", "\"" + a.format + "\"");
  if (!onnx && (a.fixed_shapes || a.force || a.control_inputs || a.external_data))
    throw UsageError("",
                     a.fixed_shapes     ? "--static"
                     : a.force          ? "--force"
                     : a.control_inputs ? "--controlnet-inputs"
                                        : "--external-data",
                     "--format onnx (an option of the ONNX export)", "--format gguf");
  if (a.model.empty())
    throw UsageError("", "-u/--model", "a model file or diffusers folder", "nothing");
  if (lower(a.version) != "sd15" && lower(a.version) != "sd1.5" && lower(a.version) != "sd1")
    throw UsageError("", "-v/--version", "sd15 (Stable Diffusion 1.x)", "\"" + a.version + "\"");
  if (a.batch < 1 || a.batch > 64)
    throw UsageError("", "-b/--batch", "a batch size in [1, 64]", std::to_string(a.batch));
  if (a.defaults != "auto" && a.defaults != "lcm" && a.defaults != "none")
    throw UsageError("", "--defaults", "lcm or none", "\"" + a.defaults + "\"");
  const model::ComponentTypes types = parse_types(a.type.empty() ? (onnx ? "f32" : "f16") : a.type);
  auto sizes = parse_sizes(a.sizes);
  std::vector<model::LoraSpec> specs;
  for (const auto& arg : a.loras) specs.push_back(model::parse_lora_arg(arg));
  const std::string name = model_name(a);
  if (onnx) {
    for (const auto& [component, t] : {std::pair{"unet", types.unet},
                                       {"text_encoder", types.text_encoder},
                                       {"vae", types.vae},
                                       {"controlnet", types.controlnet}})
      exporter::onnx_compute_type(t, component);
    exporter::check_onnx_output(a.output, a.force);
    if (sizes.empty()) sizes.emplace_back(512, 512);
  }
  const std::string out = onnx ? a.output : output_path(a, name);

  // --- read
  const int inputs = 1 + int(!a.controlnet.empty()) + int(specs.size());
  ProgressBar read_bar("read");
  int read_done = 0;
  model::LoadOptions lo;
  lo.model_config_dir = a.model_config;
  lo.vae_path = a.vae;
  const io::TensorFile file = io::open_tensor_file(a.model);
  model::LoadedModel m = model::load_model(file, lo);
  const auto source_info = model::read_compiled_info(file);
  read_bar.update(++read_done, inputs);
  if (!a.controlnet.empty()) {
    pipeline::attach_controlnet(m, a.controlnet, a.model_config);
    read_bar.update(++read_done, inputs);
  }
  const model::LoraTargets targets(m.weights);
  std::vector<std::unique_ptr<model::LoraFile>> lora_files;
  std::vector<model::LoraBake> bakes;
  std::vector<model::LoraReport> reports;
  for (const auto& spec : specs) {
    lora_files.push_back(std::make_unique<model::LoraFile>(model::load_lora(spec.path)));
    reports.emplace_back();
    bakes.push_back(model::prepare_lora_bake(m.weights, targets, *lora_files.back(), spec.scale,
                                             a.ignore_unmatched, reports.back()));
    read_bar.update(++read_done, inputs);
  }
  read_bar.finish();
  for (const auto& r : reports) {
    std::cerr << r.summary() << " (scale " << r.scale << ")";
    if (!r.skipped.empty()) std::cerr << ", " << r.skipped.size() << " modules skipped";
    std::cerr << "\n";
  }

  // --- recommended defaults
  model::CompiledInfo info;
  if (source_info) info = *source_info;  // re-converting a compiled file keeps what it baked
  info.version = model::kCompiledFormatVersion;
  info.tool = std::string("sdc ") + SDC_VERSION;
  info.name = name;
  info.base = "sd15";
  info.precision = types.by_component();
  info.sizes = sizes;
  info.batch = a.batch;
  if (a.defaults == "none") info.defaults = {};
  std::string lcm_reason;
  for (const auto& lf : lora_files)
    if (lcm_reason.empty()) lcm_reason = model::lcm_lora_evidence(*lf);
  if (a.defaults == "lcm" && lcm_reason.empty()) lcm_reason = "--defaults lcm";
  if (a.defaults != "none" && !lcm_reason.empty()) info.defaults = {"lcm", "", 4, 1.0f, lcm_reason};
  if (!info.defaults.empty())
    std::cerr << "recommended defaults: sampler " << info.defaults.sampler << ", "
              << info.defaults.steps << " steps, cfg " << info.defaults.cfg_scale << " ("
              << info.defaults.reason << ")\n";
  if (info.tokenizer_vocab_json.empty()) {
    info.tokenizer_vocab_json = std::string(pipeline::builtin_clip_vocab_json());
    info.tokenizer_merges = std::string(pipeline::builtin_clip_merges_txt());
  }

  // --- hash
  const std::vector<Source> sources = source_files(m, a.model);
  const size_t to_hash = sources.size() + lora_files.size();
  ProgressBar hash_bar("sha256");
  size_t hashed = 0;
  info.sources.clear();
  for (const Source& s : sources) {
    info.sources.push_back(s.info);
    info.sources.back().sha256 = io::sha256_file(s.path);
    hash_bar.update(int(++hashed), int(to_hash));
  }
  for (size_t i = 0; i < lora_files.size(); ++i) {
    model::BakedLoraInfo l;
    l.name = fs::path(specs[i].path).filename().string();
    l.sha256 = io::sha256_file(specs[i].path);
    l.format = reports[i].format;
    l.scale = specs[i].scale;
    l.unet_modules = reports[i].unet_modules;
    l.text_encoder_modules = reports[i].text_encoder_modules;
    info.loras.push_back(std::move(l));
    hash_bar.update(int(++hashed), int(to_hash));
  }
  hash_bar.finish();

  if (onnx) return write_onnx(m, info, lora_files, specs, a, types, sizes, total);

  // --- merge LoRA + cast + write
  const io::GgufMetadata metadata = model::compiled_metadata(info, m);
  ThrottledBar bar(bakes.empty() ? "cast + write" : "merge LoRA + cast + write");
  model::ExportOptions options;
  options.threads = a.threads;
  options.on_tensor = [&](size_t done, size_t n) {
    if (g_interrupted.load()) throw Error(out + ": interrupted; nothing written");
    bar.update(done, n);
  };
  InterruptGuard guard;
  const model::ExportResult r = model::export_gguf(out, m.weights, bakes, types, metadata, options);
  bar.finish();
  std::fprintf(stderr, "wrote %s: %zu tensors (%zu merged), %.1f MB in %.1f s (total %.1f s)\n",
               out.c_str(), r.tensors, r.merged, double(r.bytes) / 1e6, r.seconds, total.seconds());
  std::cout << out << "\n";
}

void write_onnx(model::LoadedModel& m, const model::CompiledInfo& info,
                const std::vector<std::unique_ptr<model::LoraFile>>& loras,
                const std::vector<model::LoraSpec>& specs, const ConvertArgs& a,
                const model::ComponentTypes& types, const std::vector<std::pair<int, int>>& sizes,
                const Stopwatch& total) {
  for (size_t i = 0; i < loras.size(); ++i)
    model::merge_lora(m.weights, *loras[i], specs[i].scale, a.ignore_unmatched);
  exporter::OnnxExportOptions o;
  o.dir = a.output;
  o.force = a.force;
  o.shapes.fixed = a.fixed_shapes;
  o.shapes.batch = a.batch;
  o.shapes.width = sizes.front().first;
  o.shapes.height = sizes.front().second;
  o.sizes = sizes;
  for (const auto& [component, t] : types.by_component())
    o.compute[component] = exporter::onnx_compute_type(t, component);
  o.control_inputs = a.control_inputs;
  o.external =
      a.external_data ? exporter::ExternalData::Always : exporter::ExternalData::WhenNeeded;
  o.tool = std::string("sdc ") + SDC_VERSION;
  std::string current;
  std::unique_ptr<ThrottledBar> bar;
  o.on_tensor = [&](const std::string& component, size_t done, size_t n) {
    if (g_interrupted.load()) throw Error(a.output + ": interrupted; nothing written");
    if (component != current) {
      if (bar) bar->finish();
      bar = std::make_unique<ThrottledBar>("onnx " + component);
      current = component;
    }
    if (done == n || isatty(2)) bar->update(done, n);  // logs: one line per component
  };
  InterruptGuard guard;
  Stopwatch write;
  const exporter::OnnxExportResult r = exporter::export_onnx_folder(m, info, o);
  if (bar) bar->finish();
  std::fprintf(stderr, "wrote %s: %zu files, %.1f MB in %.1f s (total %.1f s)\n", a.output.c_str(),
               r.files.size(), double(r.bytes) / 1e6, write.seconds(), total.seconds());
  std::cout << a.output << "\n";
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert", "Bake LoRAs, a ControlNet and a precision into one compiled .gguf");
  auto a = std::make_shared<ConvertArgs>();
  cmd->add_option("-u,--model", a->model,
                  "Model: .safetensors/.ckpt single file, diffusers folder or compiled .gguf")
      ->required();
  cmd->add_option("-l,--lora", a->loras, "LoRA FILE[:SCALE] to bake in (repeatable, in order)");
  cmd->add_option("-c,--controlnet", a->controlnet,
                  "ControlNet to bundle (file or diffusers folder)");
  cmd->add_option("--vae", a->vae, "VAE to use instead of (or in the absence of) the model's own");
  cmd->add_option("--model-config", a->model_config,
                  "Diffusers-style folder with unet/, text_encoder/, vae/ config.json");
  cmd->add_option("-t,--type", a->type,
                  "Stored precision: f32 | f16 | bf16, or per component: unet=bf16,vae=f32,… "
                  "(default f16; onnx: f32, and f16 graphs)");
  cmd->add_option("-s,--sizes", a->sizes, "Image sizes to plan at load: W H [W H …]")
      ->expected(2, 64);
  cmd->add_option("-b,--batch", a->batch, "Batch size to plan at load");
  cmd->add_option("-v,--version", a->version, "Model family: sd15");
  cmd->add_option("--name", a->name, "Model name (general.name; file name when -o is a folder)");
  cmd->add_option("--defaults", a->defaults,
                  "Recommended sampler settings: lcm (lcm, 4 steps, cfg 1) | none (default: "
                  "lcm when a LoRA is an LCM-LoRA)");
  cmd->add_flag("--ignore-unmatched-lora-keys", a->ignore_unmatched,
                "Bake the LoRA modules that match and skip the others (default: error)");
  cmd->add_option("--threads", a->threads, "Worker threads for merging and casting (0: all cores)");
  cmd->add_option("-o,--output", a->output,
                  "Output .gguf file, or an existing folder (--format onnx: the export folder)")
      ->required();
  cmd->add_option("--format", a->format,
                  "gguf (one compiled file) | onnx (a folder of ONNX opset-17 models, model.json "
                  "and compile recipes for tpu-mlir and TensorRT)");
  cmd->add_flag("--static", a->fixed_shapes,
                "ONNX: fix batch, height and width to -b and the first -s size (default symbolic)");
  cmd->add_flag("--force", a->force, "ONNX: replace an output folder that is not empty");
  cmd->add_flag("--controlnet-inputs", a->control_inputs,
                "ONNX: give the UNet the 13 ControlNet residual inputs even without -c");
  cmd->add_flag("--external-data", a->external_data,
                "ONNX: weights in external-data files always (default: above the 2 GB limit)");
  cmd->callback([a] { run_convert(*a); });
}

}  // namespace sdc::cli
