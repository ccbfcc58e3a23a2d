// `sdc bench`: per-component times, GFLOP/s against a measured peak, seconds per image and peak
// RSS at the standard cases, on full-size SD1.5 with random weights (or -m MODEL). Each
// (case, precision) is measured by a fresh `sdc bench --internal-case …` child process, so every
// peak-RSS figure is that configuration's own; the parent measures the backend peak, gathers the
// children's JSON, prints the table and writes --json.
//
// Without -m, the parent writes the random model once as an fp16 safetensors checkpoint (and a
// ControlNet beside it), as a downloaded fine-tune would come, into unlinked temporary files that
// the children inherit: they load it exactly as `sdc generate -m FILE` does (memory-mapped), and
// nothing is left on disk, even after Ctrl-C. TAESD figures use the model's TAESD (--taesd, or
// bundled) or, without one, random full-size TAESD weights the children make themselves (2.4M
// parameters: nothing worth a file).
//
// `sdc bench --write-checkpoint FILE [--write-taesd DIR]` only writes the same random SD1.5 as an
// fp16 safetensors checkpoint (and a random TAESD as a diffusers AutoencoderTiny folder, which
// stable-diffusion.cpp's --taesd also reads), for comparing with other tools (bench/vs-sdcpp.sh).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "bench/benchmark.h"
#include "cli/child_process.h"
#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "common/huge_pages.h"
#include "common/stopwatch.h"
#include "engine/engine.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/random_model.h"
#include "model/taesd_file.h"

namespace sdc::cli {
namespace {

struct BenchArgs {
  bench::BenchSettings settings;
  std::string precision = "both";
  std::string vae_precision = "auto";
  std::string cases = "all";
  bool cases_set = false;
  std::string json;
  bool quick = false;
  int unet_steps = 2;
  std::string write_checkpoint, write_taesd;  // only write the random model, then stop
  // A child's job (hidden options).
  std::string internal_case, internal_precision, internal_extras, internal_out;
};

// A mkstemp/mkdtemp template for one of the bench's temporary files, in $TMPDIR or /tmp.
std::string temp_template(const std::string& stem) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/sdc-bench-" + stem + "XXXXXX";
}

// Full-size SD1.5 (and ControlNet) with random weights in unlinked fp16 safetensors files whose
// descriptors the children inherit; closed (and so gone) with this object.
class RandomModelFiles {
 public:
  RandomModelFiles(uint64_t seed, bool with_controlnet) {
    model::RandomModelParts base;
    model_fd_ = write(model::make_random_sd15(seed, DType::F16, base), "model");
    if (with_controlnet) {
      model::RandomModelParts cn;
      cn.unet = cn.text_encoder = cn.vae = false;
      cn.controlnet = true;
      controlnet_fd_ = write(model::make_random_sd15(seed + 1, DType::F16, cn), "controlnet");
    }
  }
  ~RandomModelFiles() {
    if (model_fd_ >= 0) close(model_fd_);
    if (controlnet_fd_ >= 0) close(controlnet_fd_);
  }
  RandomModelFiles(const RandomModelFiles&) = delete;
  RandomModelFiles& operator=(const RandomModelFiles&) = delete;

  // Paths that open the files in a child (descriptors are inherited across posix_spawn).
  std::string model_path() const { return fd_path(model_fd_); }
  std::string controlnet_path() const { return controlnet_fd_ < 0 ? "" : fd_path(controlnet_fd_); }

 private:
  static std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

  static int write(const WeightMap& weights, const std::string& what) {
    std::string path = temp_template(what + "-");
    const int tmp = mkstemp(path.data());
    if (tmp < 0) throw Error(path, "temporary file", "a writable folder", std::strerror(errno));
    close(tmp);
    try {
      io::write_safetensors(path, weights, {{"format", "pt"}});
    } catch (...) {
      std::remove(path.c_str());
      throw;
    }
    const int fd = open(path.c_str(), O_RDONLY);  // no O_CLOEXEC: the children read it
    const int open_errno = errno;
    std::remove(path.c_str());
    if (fd < 0) throw Error(path, "temporary file", "readable", std::strerror(open_errno));
    return fd;
  }

  int model_fd_ = -1, controlnet_fd_ = -1;
};

// `flag value` onto a child's arguments, nothing for an empty value.
void add_option(std::vector<std::string>& args, const char* flag, const std::string& value) {
  if (value.empty()) return;
  args.push_back(flag);
  args.push_back(value);
}

// The model a child loads, as generate and bench take it: -m, its companion files and LoRAs,
// threads (TAESD and ControlNet apart: not every child wants them).
std::vector<std::string> model_args(const BenchArgs& a, const RandomModelFiles* random) {
  const pipeline::BundleOptions& m = a.settings.model;
  std::vector<std::string> args;
  add_option(args, "-m", random ? random->model_path() : m.model);
  add_option(args, "--model-config", m.model_config);
  add_option(args, "--vae", m.vae);
  add_option(args, "--text-encoder", m.text_encoder);
  for (const std::string& l : m.loras) add_option(args, "--lora", l);
  if (m.ignore_unmatched_lora_keys) args.push_back("--ignore-unmatched-lora-keys");
  add_option(args, "--threads", std::to_string(a.settings.threads));
  return args;
}

// The options a child needs to measure the same model the same way.
std::vector<std::string> shared_args(const BenchArgs& a, const RandomModelFiles* random) {
  std::vector<std::string> args = model_args(a, random);
  add_option(args, "--taesd", a.settings.model.taesd);
  add_option(args, "--control-net",
             random ? random->controlnet_path() : a.settings.model.controlnet);
  add_option(args, "--seed", std::to_string(a.settings.seed));
  add_option(args, "--unet-steps", std::to_string(a.settings.unet_runs));
  add_option(args, "--e2e-max-steps", std::to_string(a.settings.end_to_end_max_steps));
  if (a.quick) args.push_back("--quick");
  if (a.settings.profile) args.push_back("--profile");
  add_option(args, "--profile-steps", a.settings.profile_steps);
  if (a.settings.vae_int8) add_option(args, "--vae-precision", "int8");
  if (!a.settings.winograd) args.push_back("--no-winograd");
  return args;
}

std::string join_components(const std::vector<bench::Component>& cs) {
  std::string out;
  for (bench::Component c : cs)
    out += (out.empty() ? "" : ",") + std::string(bench::component_key(c));
  return out;
}

// A temporary file name for a child's result; removed by the destructor.
class TempResult {
 public:
  TempResult() {
    std::string pattern = temp_template("");
    const int fd = mkstemp(pattern.data());
    if (fd < 0) throw Error(pattern, "temporary file", "a writable folder", std::strerror(errno));
    close(fd);
    path_ = pattern;
  }
  ~TempResult() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bench::CaseResult run_child(const BenchArgs& a, const RandomModelFiles* random,
                            const bench::BenchCase& c, cpu::Precision p,
                            const std::vector<bench::Component>& extras) {
  TempResult out;
  std::vector<std::string> args = {
      "bench",          "--internal-case", c.name, "--internal-precision", cpu::precision_name(p),
      "--internal-out", out.path()};
  if (!extras.empty()) {
    args.push_back("--internal-extras");
    args.push_back(join_components(extras));
  }
  for (const std::string& s : shared_args(a, random)) args.push_back(s);
  const int code = cli::run_self(args).status;
  const std::string what = c.name + " " + cpu::precision_name(p);
  // The child has already printed its one-line reason.
  if (code == 2) throw Error("", "bench " + what, "a successful measurement", "bad input (above)");
  if (code != 0)
    throw std::runtime_error("the " + what + " measurement failed (exit status " +
                             std::to_string(code) + ")");
  std::ifstream in(out.path());
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("the " + what + " measurement wrote no readable result: " + e.what());
  }
  return bench::case_from_json(j);
}

// A temporary folder (for the random TAESD a generate process reads); removed with its contents.
class TempFolder {
 public:
  TempFolder() {
    std::string pattern = temp_template("");
    if (!mkdtemp(pattern.data()))
      throw Error(pattern, "temporary folder", "a writable folder", std::strerror(errno));
    path_ = pattern;
  }
  ~TempFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One image of case `c` as a user makes it: a fresh `sdc generate` with the same model, LoRAs,
// precision, threads, size, sampler, steps and guidance (one-shot: each component goes after its
// last use). `taesd` non-empty: --taesd PATH --decode-with taesd ("-": the model's own TAESD).
struct ProcessFigures {
  double seconds = 0;
  int64_t peak_rss = 0;  // bytes, as the process reports its own high-water mark
};

ProcessFigures run_generate_process(const BenchArgs& a, const RandomModelFiles* random,
                                    const bench::BenchCase& c, cpu::Precision p,
                                    const std::string& taesd) {
  TempResult image, log;
  std::vector<std::string> args = {"generate"};
  for (std::string& arg : model_args(a, random)) args.push_back(std::move(arg));
  auto add = [&](const char* flag, const std::string& v) { add_option(args, flag, v); };
  add("--precision", cpu::precision_name(p));
  if (a.settings.vae_int8 && taesd.empty()) add("--vae-precision", "int8");
  if (!a.settings.winograd) args.push_back("--no-winograd");
  add("-W", std::to_string(c.width));
  add("-H", std::to_string(c.height));
  add("--steps", std::to_string(c.steps));
  add("--sampler", c.sampler);
  add("--cfg-scale", std::to_string(c.cfg_scale));
  add("--seed", std::to_string(a.settings.seed));
  add("-p", "a photo of a lighthouse at dusk");
  if (!taesd.empty()) {
    if (taesd != "-") add("--taesd", taesd);
    add("--decode-with", "taesd");
  }
  add("-o", image.path() + ".png");
  std::cerr << "[" << c.name << " " << cpu::precision_name(p) << "] one image in a fresh `sdc "
            << "generate`" << (taesd.empty() ? "" : " --decode-with taesd") << "…\n"
            << std::flush;
  const cli::ChildRun r = cli::run_self(args, log.path());
  std::remove((image.path() + ".png").c_str());
  std::ifstream in(log.path());
  std::stringstream text;
  text << in.rdbuf();
  if (r.status != 0)
    throw std::runtime_error("sdc generate for " + c.name + " failed (exit status " +
                             std::to_string(r.status) + "): " + text.str());
  // The process's own high-water mark, as it reports it (see child_process.h).
  const std::string log_text = text.str();
  const size_t at = log_text.rfind("peak RSS ");
  long long mib = -1;
  if (at == std::string::npos || std::sscanf(log_text.c_str() + at, "peak RSS %lld MiB", &mib) != 1)
    throw std::runtime_error("sdc generate for " + c.name + " reported no peak RSS: " + log_text);
  return {r.seconds, int64_t(mib) << 20};
}

void write_json(const std::string& path, const nlohmann::json& j) {
  const std::string text = j.dump(2) + "\n";
  io::AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

void run_internal_case(const BenchArgs& a) {
  const std::vector<bench::BenchCase> cases =
      bench::parse_bench_cases(a.internal_case, "--internal-case");
  if (cases.size() != 1) throw UsageError("", "--internal-case", "one case", a.internal_case);
  const cpu::Precision p = cpu::parse_precision(a.internal_precision);
  std::vector<bench::Component> extras;
  std::stringstream in(a.internal_extras);
  for (std::string key; std::getline(in, key, ',');) extras.push_back(bench::parse_component(key));
  const bench::CaseResult r = bench::measure_case(a.settings, cases[0], p, extras, std::cerr);
  write_json(a.internal_out, bench::case_to_json(r));
}

std::string command_line(const BenchArgs& a) {
  std::string cmd = "sdc bench --precision " + a.precision + " --cases " + a.cases;
  const std::vector<std::string> args = shared_args(a, nullptr);
  for (const std::string& s : args) cmd += " " + s;
  if (!a.json.empty()) cmd += " --json " + a.json;
  return cmd;
}

// The random TAESD as a diffusers AutoencoderTiny folder: config.json (madebyollin/taesd's) and
// diffusion_pytorch_model.safetensors with diffusers' keys (encoder.layers.N = taesd.py's encoder
// N; decoder.layers.N = its decoder N+1, the parameter-free clamp being layer 0 there).
void write_random_taesd(const std::string& dir, uint64_t seed) {
  model::RandomModelParts parts;
  parts.unet = parts.text_encoder = parts.vae = false;
  parts.taesd = true;
  const WeightMap random = model::make_random_sd15(seed, DType::F16, parts);
  WeightMap diffusers;
  const std::string dec = model::kTaesdDecoderPrefix, enc = model::kTaesdEncoderPrefix;
  for (const auto& [name, t] : random.all()) {
    if (name.starts_with(enc)) {
      diffusers.set("encoder.layers." + name.substr(enc.size()), t);
    } else {
      const std::string rest = name.substr(dec.size());  // "3.conv.0.weight"
      const size_t dot = rest.find('.');
      diffusers.set(
          "decoder.layers." + std::to_string(std::stoi(rest.substr(0, dot)) - 1) + rest.substr(dot),
          t);
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UsageError(dir, "--write-taesd", "a folder that can be created", ec.message());
  const nlohmann::json config = {{"_class_name", "AutoencoderTiny"},
                                 {"act_fn", "relu"},
                                 {"block_out_channels", {64, 64, 64, 64}},
                                 {"decoder_block_out_channels", {64, 64, 64, 64}},
                                 {"encoder_block_out_channels", {64, 64, 64, 64}},
                                 {"force_upcast", false},
                                 {"in_channels", 3},
                                 {"latent_channels", 4},
                                 {"latent_magnitude", 3},
                                 {"latent_shift", 0.5},
                                 {"num_decoder_blocks", {3, 3, 3, 1}},
                                 {"num_encoder_blocks", {1, 3, 3, 3}},
                                 {"out_channels", 3},
                                 {"scaling_factor", 1.0},
                                 {"upsample_fn", "nearest"},
                                 {"upsampling_scaling_factor", 2}};
  write_json(dir + "/config.json", config);
  io::write_safetensors(dir + "/diffusion_pytorch_model.safetensors", diffusers,
                        {{"format", "pt"}});
}

// --write-checkpoint FILE / --write-taesd DIR: the random model on disk, nothing measured.
void write_random_files(const BenchArgs& a) {
  if (!a.settings.model.model.empty())
    throw UsageError("", a.write_checkpoint.empty() ? "--write-taesd" : "--write-checkpoint",
                     "no -m (it writes the random model that sdc bench measures without one)",
                     a.settings.model.model);
  if (!a.write_checkpoint.empty()) {
    const std::filesystem::path dir = std::filesystem::path(a.write_checkpoint).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
      throw UsageError(a.write_checkpoint, "--write-checkpoint", "an existing output directory",
                       dir.string() + " does not exist");
    Stopwatch clock;
    model::RandomModelParts base;
    io::write_safetensors(a.write_checkpoint,
                          model::make_random_sd15(a.settings.seed, DType::F16, base),
                          {{"format", "pt"}});
    std::cerr << "wrote full-size SD1.5 with random weights (seed " << a.settings.seed
              << ", fp16 safetensors) to " << a.write_checkpoint << " in " << clock.seconds()
              << " s\n";
  }
  if (!a.write_taesd.empty()) {
    // The seed bench's children give a random TAESD (bench::measure_case).
    write_random_taesd(a.write_taesd, a.settings.seed + 2);
    std::cerr << "wrote a random TAESD (diffusers AutoencoderTiny) to " << a.write_taesd << "\n";
  }
}

void run_bench(BenchArgs& a) {
  if (a.unet_steps < 1)
    throw UsageError("", "--unet-steps", "1 or more", std::to_string(a.unet_steps));
  if (a.settings.end_to_end_max_steps < 0)
    throw UsageError("", "--e2e-max-steps", "0 or more",
                     std::to_string(a.settings.end_to_end_max_steps));
  if (a.settings.threads < 0)
    throw UsageError("", "--threads", "0 (all cores) or more", std::to_string(a.settings.threads));
  a.settings.vae_int8 = engine::parse_vae_precision(a.vae_precision);
  a.settings.unet_runs = a.quick ? 1 : a.unet_steps;
  a.settings.text_runs = a.quick ? 1 : 3;
  a.settings.taesd_runs = a.quick ? 1 : 3;
  if (!a.internal_case.empty()) return run_internal_case(a);
  if (!a.write_checkpoint.empty() || !a.write_taesd.empty()) return write_random_files(a);

  if (a.quick && !a.cases_set) a.cases = "lcm256";
  const std::vector<bench::BenchCase> cases = bench::parse_bench_cases(a.cases, "--cases");
  const std::vector<cpu::Precision> precisions =
      bench::parse_bench_precisions(a.precision, "--precision");
  if (!a.settings.profile_steps.empty()) {
    if (!a.settings.profile)
      throw UsageError("", "--profile-steps", "--profile beside it", "no --profile");
    // The children append; the file starts with its header.
    std::ofstream f(a.settings.profile_steps, std::ios::trunc);
    f << "case\tprecision\tplan\tindex\tkind\tlayer\tms\tcpu_ms\tgflops\n";
    if (!f)
      throw UsageError(a.settings.profile_steps, "--profile-steps", "a writable file",
                       std::strerror(errno));
  }
  if (!a.json.empty()) {
    const std::filesystem::path dir = std::filesystem::path(a.json).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
      throw UsageError(a.json, "--json", "an existing output directory",
                       dir.string() + " does not exist");
  }

  // Fail before measuring anything when the model is not there (the children load it).
  const std::string& model = a.settings.model.model;
  struct stat st {};
  if (!model.empty() && stat(model.c_str(), &st) != 0)
    throw Error(model, "", "an existing model file or diffusers folder", std::strerror(errno));

  bench::BenchReport report;
  report.model = a.settings.model.model.empty()
                     ? "full-size SD1.5 with random weights (seed " +
                           std::to_string(a.settings.seed) + ", fp16 safetensors)"
                     : a.settings.model.model;
  report.cpu = bench::cpu_model_name();
  report.huge_pages = anonymous_huge_pages().reason;
  report.hardware_threads = int(std::thread::hardware_concurrency());
  report.threads = a.settings.threads;
  report.quick = a.quick;
  report.unet_runs = a.settings.unet_runs;
  report.e2e_max_steps = a.settings.end_to_end_max_steps;
  report.command = command_line(a);
  report.loadavg_start = bench::load_average();

  for (cpu::Precision p : bench::peak_precisions(precisions, a.settings.vae_int8)) {
    std::cerr << "measuring the " << cpu::precision_name(p) << " peak…\n" << std::flush;
    report.peaks.push_back(bench::measure_peak(p, a.settings.threads, a.quick ? 1 : 3));
  }
  const std::vector<std::vector<bench::Component>> extras = bench::plan_extras(cases);
  std::unique_ptr<RandomModelFiles> random;
  if (model.empty()) {
    bool controlnet = false;
    for (const auto& e : extras)
      controlnet |= std::find(e.begin(), e.end(), bench::Component::ControlNetStep) != e.end();
    std::cerr << "writing full-size SD1.5" << (controlnet ? " and ControlNet" : "")
              << " with random weights (fp16 safetensors)…\n"
              << std::flush;
    Stopwatch clock;
    random = std::make_unique<RandomModelFiles>(a.settings.seed, controlnet);
    std::cerr << "written in " << clock.seconds() << " s\n";
  }
  std::unique_ptr<TempFolder> random_taesd;  // written when a TAESD process run needs it
  for (size_t i = 0; i < cases.size(); ++i)
    for (cpu::Precision p : precisions) {
      bench::CaseResult r = run_child(a, random.get(), cases[i], p, extras[i]);
      if (r.end_to_end_s > 0) {
        const ProcessFigures vae = run_generate_process(a, random.get(), cases[i], p, "");
        r.process_s = vae.seconds;
        r.process_peak_rss = vae.peak_rss;
      }
      if (r.e2e_taesd_s > 0) {
        // The TAESD the child measured: the model's, --taesd's, or the same random one on disk.
        std::string taesd = a.settings.model.taesd;
        if (taesd.empty() && r.taesd.starts_with("the model's")) taesd = "-";
        if (taesd.empty()) {
          if (!random_taesd) {
            random_taesd = std::make_unique<TempFolder>();
            write_random_taesd(random_taesd->path(), a.settings.seed + 2);
          }
          taesd = random_taesd->path();
        }
        const ProcessFigures t = run_generate_process(a, random.get(), cases[i], p, taesd);
        r.process_taesd_s = t.seconds;
        r.process_taesd_peak_rss = t.peak_rss;
      }
      report.cases.push_back(std::move(r));
    }
  report.loadavg_end = bench::load_average();

  report.print_table(std::cout);
  if (!a.json.empty()) write_json(a.json, report.to_json());
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench",
      "Measure speed and memory: per-component times, s/image and peak RSS at the standard cases");
  auto a = std::make_shared<BenchArgs>();
  add_model_options(*cmd, a->settings.model, false);
  cmd->add_option(
      "--precision", a->precision,
      "f32 | bf16 | auto | int8 | both (f32, bf16) | all (f32, bf16, int8); both and all "
      "leave out what this CPU refuses (bf16 without AVX-512, int8 without VNNI)");
  cmd->add_option("--vae-precision", a->vae_precision,
                  "auto (as --precision) | int8 (the VAE and TAESD decoders W8A8 in every case)");
  add_winograd_flag(*cmd, a->settings.winograd);
  cmd->add_option("--threads", a->settings.threads, "CPU threads (0 = all cores)");
  cmd->add_option("--cases", a->cases, "lcm512,euler512,lcm256 or all (--quick: lcm256)")
      ->each([a](const std::string&) { a->cases_set = true; });
  cmd->add_option("--json", a->json, "Also write the figures as JSON");
  cmd->add_flag("--quick", a->quick, "Smoke run: 256x256 only, 1 timed run of each component");
  cmd->add_option("--unet-steps", a->unet_steps,
                  "Timed UNet steps per batch size (after the first)");
  cmd->add_option("--seed", a->settings.seed, "Seed of the random weights");
  cmd->add_option("--e2e-max-steps", a->settings.end_to_end_max_steps,
                  "Also run cases of up to N steps end to end (4: the LCM cases; 0: none)");
  cmd->add_flag("--profile", a->settings.profile,
                "Also time one UNet step, VAE decode and TAESD decode per step kind (top costs)");
  cmd->add_option("--profile-steps", a->settings.profile_steps,
                  "With --profile: also write every profiled step (case, precision, plan, index, "
                  "kind, layer, ms, CPU ms, GFLOP/s) as tab-separated lines to FILE");
  cmd->add_option("--write-checkpoint", a->write_checkpoint,
                  "Only write the random full-size SD1.5 (--seed) as an fp16 .safetensors FILE");
  cmd->add_option("--write-taesd", a->write_taesd,
                  "Only write a random TAESD as a diffusers AutoencoderTiny folder DIR");
  cmd->add_option("--internal-case", a->internal_case)->group("");
  cmd->add_option("--internal-precision", a->internal_precision)->group("");
  cmd->add_option("--internal-extras", a->internal_extras)->group("");
  cmd->add_option("--internal-out", a->internal_out)->group("");
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace sdc::cli
