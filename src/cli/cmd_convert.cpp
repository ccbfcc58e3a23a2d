// `sdc convert`: bake LoRAs (LCM-LoRA included), a ControlNet and a precision into ONE .gguf
// that `sdc generate -m` memory-maps and runs without converting again.
//
//   sdc convert -u MODEL [-l LORA[:SCALE]]… [-c CONTROLNET] [--vae FILE] [--model-config DIR]
//               [-t f32|f16|bf16 | -t unet=bf16,vae=f32,…] [-s W H [W H …]] [-b BATCH] [-v sd15]
//               [--name NAME] [--defaults auto|lcm|none] [--ignore-unmatched-lora-keys] -o OUT
//
// The work itself is convert::convert_model() (shared with the server's convert jobs): read,
// hash, then merge + cast + write streamed tensor by tensor. This file owns the flags, the output
// path rule, the progress bars, and SIGINT/SIGTERM (stop between tensors, nothing written).
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include <unistd.h>

#include "backend/cpu/prepacked_weights.h"
#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "convert/convert_model.h"
#include "io/atomic_file.h"
#include "model/lora_arg.h"
#include "pipeline/packed_section.h"

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

// The model's name: --name, else the file's stem (a folder's own name).
std::string model_name(const ConvertArgs& a) {
  return a.name.empty() ? convert::default_model_name(a.model) : a.name;
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

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void run_convert(const ConvertArgs& a) {
  Stopwatch total;
  if (a.model.empty())
    throw UsageError("", "-u/--model", "a model file or diffusers folder", "nothing");
  if (lower(a.version) != "sd15" && lower(a.version) != "sd1.5" && lower(a.version) != "sd1")
    throw UsageError("", "-v/--version", "sd15 (Stable Diffusion 1.x)", "\"" + a.version + "\"");
  convert::check_batch(a.batch, "-b/--batch");
  if (!a.target.empty()) cpu::limit_isa(a.target);  // refuses a bad name before any work
  if (a.defaults != "auto" && a.defaults != "lcm" && a.defaults != "none")
    throw UsageError("", "--defaults", "auto, lcm or none", "\"" + a.defaults + "\"");
  convert::ConvertSpec spec;
  spec.types = convert::parse_component_types(a.type, "-t/--type");
  spec.sizes = convert::parse_sizes(a.sizes, "-s/--sizes");
  for (const auto& arg : a.loras) spec.loras.push_back(model::parse_lora_arg(arg));
  spec.name = model_name(a);
  spec.output = output_path(a, spec.name);
  spec.model = a.model;
  spec.controlnet = a.controlnet;
  spec.vae = a.vae;
  spec.model_config = a.model_config;
  spec.batch = a.batch;
  spec.defaults = a.defaults;
  spec.ignore_unmatched = a.ignore_unmatched;
  spec.threads = a.threads;
  spec.tool = std::string("sdc ") + SDC_VERSION;

  // One bar per stage: "read", "sha256", then the write (throttled when not on a terminal).
  std::optional<ProgressBar> bar;
  std::optional<ThrottledBar> write_bar;
  convert::ConvertStage current = convert::ConvertStage::Read;
  bool started = false;
  // SIGINT/SIGTERM are caught only while writing (as before: earlier they end the process).
  std::optional<InterruptGuard> guard;
  auto end_bars = [&] {
    if (bar) bar->finish();
    if (write_bar) write_bar->finish();
  };
  convert::ConvertObserver observer;
  observer.progress = [&](convert::ConvertStage stage, const std::string& label, size_t done,
                          size_t n) {
    if (!started || stage != current) {
      end_bars();
      bar.reset();
      write_bar.reset();
      if (stage == convert::ConvertStage::Write) {
        write_bar.emplace(label);
        guard.emplace();
      } else {
        bar.emplace(label);
      }
      current = stage;
      started = true;
    }
    if (done == 0) return;
    if (write_bar)
      write_bar->update(done, n);
    else
      bar->update(int(done), int(n));
  };
  observer.log = [&](const std::string& line) {
    end_bars();
    std::cerr << line << "\n";
  };
  observer.cancelled = [] { return g_interrupted.load(); };
  const convert::ConvertResult r = convert::convert_model(spec, observer);
  end_bars();
  if (!a.target.empty()) {
    // What `generate --precision auto` will plan: bf16 where the capped ISA has it.
    const bool bf16 = cpu::cpu_has_bf16() && (a.target == "native" || a.target.find("avx512") == 0);
    pipeline::PackOptions po;
    po.target = a.target;
    po.precision = bf16 ? cpu::Precision::BF16 : cpu::Precision::F32;
    po.sizes = spec.sizes;
    po.batch = a.batch;
    po.threads = a.threads;
    pipeline::add_packed_section(r.path, po, std::cerr);
  }
  std::fprintf(stderr, "wrote %s: %zu tensors (%zu merged), %.1f MB in %.1f s (total %.1f s)\n",
               r.path.c_str(), r.written.tensors, r.written.merged,
               double(fs::file_size(r.path)) / 1e6, r.written.seconds, total.seconds());
  std::cout << r.path << "\n";
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
                  "Recommended sampler settings: auto (lcm when a LoRA is an LCM-LoRA) | lcm "
                  "(lcm, 4 steps, cfg 1) | none");
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
