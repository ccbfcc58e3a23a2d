// `sdc convert`: bake LoRAs (LCM-LoRA included), a ControlNet and a precision into ONE .gguf
// that `sdc generate -m` memory-maps and runs without converting again — or, with --format onnx,
// into a folder of ONNX models for accelerator compilers (export/onnx_folder.h).
//
//   sdc convert -u MODEL [-l LORA[:SCALE]]… [-c CONTROLNET] [--vae FILE] [--model-config DIR]
//               [-t f32|f16|bf16 | -t unet=bf16,vae=f32,…] [-s W H [W H …]] [-b BATCH] [-v sd15]
//               [--name NAME] [--defaults auto|lcm|none] [--ignore-unmatched-lora-keys]
//               [--target ISA] [--format gguf|onnx [--static] [--force] [--controlnet-inputs]
//               [--external-data]] -o OUT
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

#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "cli/user_cache.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "convert/convert_model.h"
#include "engine/hash_cache.h"
#include "export/onnx_folder.h"
#include "io/atomic_file.h"
#include "model/lora_arg.h"
#include "model/lora_merger.h"
#include "pipeline/packed_section.h"

#ifndef SDC_VERSION
#define SDC_VERSION "unknown"
#endif

namespace sdc::cli {
namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
  std::string model, controlnet, vae, taesd, model_config, output, name, version = "sd15";
  std::vector<std::string> loras;
  std::string type;  // default: f16 (gguf), f32 (onnx)
  std::vector<int> sizes;
  int batch = 1;
  std::string defaults = "auto";
  bool ignore_unmatched = false;
  int threads = 0;
  std::string target;  // --target: also store weights packed for this ISA ("" = portable only)
  std::string format = "gguf";
  bool fixed_shapes = false, force = false, control_inputs = false, external_data = false;
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

void write_onnx(const ConvertArgs& a, const convert::ConvertSpec& spec,
                const convert::ConvertObserver& observer, const Stopwatch& total);

// Rewrites the converted file at `path` with weights packed for --target.
void add_packed_section(const ConvertArgs& a, const convert::ConvertSpec& spec,
                        const std::string& path) {
  // What `generate --precision auto` will plan: here, bf16 where it beats f32; for another ISA,
  // bf16 where that ISA has it (what the machine it is meant for will likely choose); int8 for
  // a UNet marked unet=int8, and for the VAE decoder's int8 layers when vae=int8.
  const bool bf16 = a.target == "native"
                        ? cpu::bf16_is_faster()
                        : a.target == "avx512_core_amx" || a.target == "avx512_core_bf16";
  pipeline::PackOptions po;
  po.target = a.target;
  po.precision = spec.types.unet_int8 ? cpu::Precision::INT8
                 : bf16               ? cpu::Precision::BF16
                                      : cpu::Precision::F32;
  po.vae_int8 = spec.types.vae_int8;
  po.sizes = spec.sizes;
  po.batch = a.batch;
  po.threads = a.threads;
  pipeline::add_packed_section(path, po, std::cerr);
}

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
  if (onnx && !a.target.empty())
    throw UsageError("", "--target", "--format gguf (packed weights are for sdc's CPU backend)",
                     "--format onnx");
  if (a.model.empty())
    throw UsageError("", "-u/--model", "a model file or diffusers folder", "nothing");
  if (lower(a.version) != "sd15" && lower(a.version) != "sd1.5" && lower(a.version) != "sd1")
    throw UsageError("", "-v/--version", "sd15 (Stable Diffusion 1.x)", "\"" + a.version + "\"");
  convert::check_batch(a.batch, "-b/--batch");
  if (!a.target.empty()) cpu::limit_isa(a.target);  // refuses a bad name before any work
  if (a.defaults != "auto" && a.defaults != "lcm" && a.defaults != "none")
    throw UsageError("", "--defaults", "auto, lcm or none", "\"" + a.defaults + "\"");
  convert::ConvertSpec spec;
  spec.types =
      convert::parse_component_types(a.type.empty() ? (onnx ? "f32" : "f16") : a.type, "-t/--type");
  spec.sizes = convert::parse_sizes(a.sizes, "-s/--sizes");
  // The planner's own rule for int8, checked now rather than after the portable pass.
  if (!a.target.empty() && (spec.types.unet_int8 || spec.types.vae_int8) &&
      !cpu::precision_available(cpu::Precision::INT8))
    throw UsageError("", "--target",
                     "an ISA with a VNNI dot product for -t unet=int8 / vae=int8 (avx2_vnni, "
                     "avx512_core_vnni or newer)",
                     "\"" + a.target + "\" (oneDNN runs " + cpu::effective_isa_name() + ")");
  for (const auto& arg : a.loras) spec.loras.push_back(model::parse_lora_arg(arg));
  spec.name = model_name(a);
  if (onnx) {
    // Refuse what the export cannot write before reading gigabytes.
    for (const auto& [component, t] : {std::pair{"unet", spec.types.unet},
                                       {"text_encoder", spec.types.text_encoder},
                                       {"vae", spec.types.vae},
                                       {"controlnet", spec.types.controlnet}})
      exporter::onnx_compute_type(t, component);
    exporter::check_onnx_output(a.output, a.force);
    if (spec.sizes.empty()) spec.sizes.emplace_back(512, 512);
  }
  spec.output = onnx ? a.output : output_path(a, spec.name);
  spec.model = a.model;
  spec.controlnet = a.controlnet;
  spec.vae = a.vae;
  spec.taesd = a.taesd;
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
  if (onnx) {
    write_onnx(a, spec, observer, total);
    end_bars();
    return;
  }
  // With --target the file is written twice (portable, then with the packed section), so it
  // goes to a temporary sibling that replaces the output only once packed: a packing failure
  // leaves neither a half-made file nor an earlier file at the output replaced.
  const std::string output = spec.output;
  std::optional<io::StagedFile> unpacked;
  if (!a.target.empty()) {
    unpacked.emplace(output, "unpacked");
    spec.output = unpacked->path();
  }
  convert::ConvertResult r;
  try {
    r = convert::convert_model(spec, observer);
    end_bars();
    if (unpacked) {
      add_packed_section(a, spec, r.path);
      if (g_interrupted.load()) throw convert::ConvertCancelled(output);
      unpacked->publish();
      r.path = output;
    }
  } catch (const convert::ConvertCancelled&) {
    throw convert::ConvertCancelled(output);
  } catch (const Error& e) {
    // Errors name the file the user asked for, not the staged sibling.
    if (unpacked && e.file() == unpacked->path()) throw e.with_file(output);
    throw;
  }
  // The model hash (A1111's "Model hash") now, while the file is still in the page cache, so
  // that the first generate from it does not spend seconds reading it back to hash it.
  if (const std::string cache = user_hash_cache(); !cache.empty())
    engine::HashCache(cache).get_or_compute(r.path);
  std::fprintf(stderr, "wrote %s: %zu tensors (%zu merged), %.1f MB in %.1f s (total %.1f s)\n",
               r.path.c_str(), r.written.tensors, r.written.merged,
               double(fs::file_size(r.path)) / 1e6, r.written.seconds, total.seconds());
  std::cout << r.path << "\n";
}

// The ONNX export: the model as convert_model reads it, its LoRAs merged in f32 (in order), then
// export/onnx_folder.h writes the folder (atomically: a failure leaves nothing).
void write_onnx(const ConvertArgs& a, const convert::ConvertSpec& spec,
                const convert::ConvertObserver& observer, const Stopwatch& total) {
  convert::PreparedConversion p = convert::prepare_conversion(spec, observer);
  for (size_t i = 0; i < p.lora_files.size(); ++i)
    model::merge_lora(p.model.weights, *p.lora_files[i], spec.loras[i].scale,
                      spec.ignore_unmatched);
  exporter::OnnxExportOptions o;
  o.dir = a.output;
  o.force = a.force;
  o.shapes.fixed = a.fixed_shapes;
  o.shapes.batch = a.batch;
  o.shapes.width = spec.sizes.front().first;
  o.shapes.height = spec.sizes.front().second;
  o.sizes = spec.sizes;
  for (const auto& [component, t] : spec.types.by_component())
    o.compute[component] = exporter::onnx_compute_type(t, component);
  o.control_inputs = a.control_inputs;
  o.external =
      a.external_data ? exporter::ExternalData::Always : exporter::ExternalData::WhenNeeded;
  o.tool = spec.tool;
  std::string current;
  std::unique_ptr<ThrottledBar> bar;
  o.on_tensor = [&](const std::string& component, size_t done, size_t n) {
    if (g_interrupted.load()) throw Error(a.output + ": interrupted; nothing written");
    if (component != current) {
      if (bar) bar->finish();
      bar = std::make_unique<ThrottledBar>("onnx " + component);
      current = component;
    }
    bar->update(done, n);
  };
  InterruptGuard guard;
  Stopwatch write;
  const exporter::OnnxExportResult r = exporter::export_onnx_folder(p.model, p.result.info, o);
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
  cmd->add_option("--taesd", a->taesd,
                  "Bundle a TAESD (file or folder, as generate --taesd): the compiled model "
                  "carries its fast decoder for previews and --decode-with taesd");
  cmd->add_option("--model-config", a->model_config,
                  "Diffusers-style folder with unet/, text_encoder/, vae/ config.json");
  cmd->add_option("-t,--type", a->type,
                  "Stored precision: f32 | f16 | bf16, or per component: unet=bf16,vae=f32,… "
                  "(default f16; onnx: f32, and f16 graphs); unet=int8 (or int8): the UNet "
                  "stored f16 and run W8A8 by --precision auto")
      ->default_str("f16");
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
                  "avx512_core_amx | avx512_core_bf16 | avx512_core_vnni | avx512_core | "
                  "avx2_vnni | avx2 (default: none)");
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
