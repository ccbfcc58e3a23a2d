// `sdc convert`: bake LoRAs (LCM-LoRA included), a ControlNet and a precision into ONE .gguf
// that `sdc generate -m` memory-maps and runs without converting again.
//
//   sdc convert -u MODEL [-l LORA[:SCALE]]… [-c CONTROLNET] [--vae FILE] [--model-config DIR]
//               [-t f32|f16|bf16 | -t unet=bf16,vae=f32,…] [-s W H [W H …]] [-b BATCH] [-v sd15]
//               [--name NAME] [--defaults lcm|none] [--ignore-unmatched-lora-keys] -o OUT
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

#include "backend/cpu/prepacked_weights.h"
#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "common/error.h"
#include "common/stopwatch.h"
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
#include "pipeline/generation_request.h"
#include "pipeline/model_bundle.h"
#include "pipeline/packed_section.h"
#include "text/builtin_vocab.h"

#ifndef SDC_VERSION
#define SDC_VERSION "unknown"
#endif

namespace sdc::cli {
namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
  std::string model, controlnet, vae, model_config, output, name, version = "sd15";
  std::vector<std::string> loras;
  std::string type = "f16";
  std::vector<int> sizes;
  int batch = 1;
  std::string defaults = "auto";
  bool ignore_unmatched = false;
  int threads = 0;
  std::string target;  // --target: also store weights packed for this ISA ("" = portable only)
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

void run_convert(const ConvertArgs& a) {
  Stopwatch total;
  if (a.model.empty())
    throw UsageError("", "-u/--model", "a model file or diffusers folder", "nothing");
  if (lower(a.version) != "sd15" && lower(a.version) != "sd1.5" && lower(a.version) != "sd1")
    throw UsageError("", "-v/--version", "sd15 (Stable Diffusion 1.x)", "\"" + a.version + "\"");
  if (a.batch < 1 || a.batch > 64)
    throw UsageError("", "-b/--batch", "a batch size in [1, 64]", std::to_string(a.batch));
  if (!a.target.empty()) cpu::limit_isa(a.target);  // refuses a bad name before any work
  if (a.defaults != "auto" && a.defaults != "lcm" && a.defaults != "none")
    throw UsageError("", "--defaults", "lcm or none", "\"" + a.defaults + "\"");
  const model::ComponentTypes types = parse_types(a.type);
  const auto sizes = parse_sizes(a.sizes);
  std::vector<model::LoraSpec> specs;
  for (const auto& arg : a.loras) specs.push_back(model::parse_lora_arg(arg));
  const std::string name = model_name(a);
  const std::string out = output_path(a, name);

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
    info.tokenizer_vocab_json = std::string(text::builtin_clip_vocab_json());
    info.tokenizer_merges = std::string(text::builtin_clip_merges_txt());
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
  if (!a.target.empty()) {
    // What `generate --precision auto` will plan: bf16 where the capped ISA has it.
    const bool bf16 = cpu::cpu_has_bf16() && (a.target == "native" || a.target.find("avx512") == 0);
    pipeline::PackOptions po;
    po.target = a.target;
    po.precision = bf16 ? cpu::Precision::BF16 : cpu::Precision::F32;
    po.sizes = sizes;
    po.batch = a.batch;
    po.threads = a.threads;
    pipeline::add_packed_section(out, po, std::cerr);
  }
  std::fprintf(stderr, "wrote %s: %zu tensors (%zu merged), %.1f MB in %.1f s (total %.1f s)\n",
               out.c_str(), r.tensors, r.merged, double(fs::file_size(out)) / 1e6, r.seconds,
               total.seconds());
  std::cout << out << "\n";
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
                  "Stored precision: f32 | f16 | bf16, or per component: unet=bf16,vae=f32,…");
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
  cmd->add_option("--target", a->target,
                  "Also store the weights packed for a CPU so that loading maps them: native | "
                  "avx512_core_amx | avx512_core_bf16 | avx512_core | avx2 (default: none)");
  cmd->add_option("-o,--output", a->output, "Output .gguf file, or an existing folder")->required();
  cmd->callback([a] { run_convert(*a); });
}

}  // namespace sdc::cli
