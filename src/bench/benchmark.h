// Benchmark: how fast one model runs on this machine — per-component times (text encoder, UNet
// step at batch 1 and 2, VAE decode and encode, TAESD decode and encode, ControlNet+UNet step),
// the GFLOP/s they reach
// against a peak measured through the same backend, and seconds per image and peak memory at the
// standard cases (512x512 LCM 4 steps cfg 1, 512x512 euler_a 20 steps cfg 7, 256x256 LCM 4
// steps), each at f32 and bf16, also with the image decoded by TAESD (the Tiny AutoEncoder: the
// model's own, or full-size random weights when it has none). Used by `sdc bench`; the server can
// reuse it.
//
// Peak RSS is a per-process figure, so each (case, precision) is measured in a process of its
// own: the caller runs measure_case() once per process (sdc re-executes itself) and gathers the
// results with BenchReport. Plan compilation (graph build, weight packing, primitive creation) and
// the first run after it are reported apart from the steady per-run times.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cpu/plan.h"
#include "pipeline/model_bundle.h"

namespace sdc::bench {

struct BenchCase {
  std::string name;  // "lcm512"
  std::string sampler;
  int width = 512, height = 512, steps = 4;
  float cfg_scale = 1.0f;
  // Classifier-free guidance (cfg > 1) runs the UNet on [uncond, cond] and the text encoder twice.
  int unet_batch() const { return cfg_scale > 1.0f ? 2 : 1; }
  int text_encoder_passes() const { return cfg_scale > 1.0f ? 2 : 1; }
  std::string size() const { return std::to_string(width) + "x" + std::to_string(height); }
  std::string title() const;  // "LCM 4 steps", "euler_a 20 steps"
};

// lcm512, euler512, lcm256 (in this order).
const std::vector<BenchCase>& standard_cases();
// "lcm512,lcm256" or "all" -> cases in the standard order; sdc::UsageError naming `option` for an
// unknown or empty name.
std::vector<BenchCase> parse_bench_cases(const std::string& list, const std::string& option);
// "f32" | "bf16" | "auto" | "int8" | "both" (f32, and bf16 where the CPU runs it: AVX-512) | "all"
// (as both, and int8 where the CPU has a VNNI dot product) -> precisions;
// sdc::UsageError naming `option` otherwise.
std::vector<cpu::Precision> parse_bench_precisions(const std::string& name,
                                                   const std::string& option);

enum class Component {
  TextEncoder,
  UNetBatch1,
  UNetBatch2,
  VaeDecode,
  VaeEncode,
  ControlNetStep,
  TaesdDecode,
  TaesdEncode
};
const char* component_key(Component c);             // "unet_batch1" (JSON)
const char* component_title(Component c);           // "UNet step, batch 1" (table)
Component parse_component(const std::string& key);  // sdc::Error for an unknown key

// One component measured at one size and precision.
struct ComponentTiming {
  Component component = Component::TextEncoder;
  int width = 0, height = 0;  // image pixels
  cpu::Precision precision = cpu::Precision::F32;
  double compile_s = 0;        // graph build + plan compile, before the first run
  double first_run_ms = 0;     // the first run after compiling (page faults, caches, JIT)
  std::vector<double> run_ms;  // the timed runs after it
  double cpu_ms = 0;           // process CPU time per timed run, all threads
  int64_t macs = 0;            // multiply-accumulates of one run
  // Its int8-eligible layers ran W8A8 (the UNet and ControlNet of an int8 case, the VAE and TAESD
  // decoders with --vae-precision int8, which then also get a float row): its % of peak is
  // against the int8 peak.
  bool int8 = false;
  // Memory of its plan(s): weights as packed for the kernels (shared with other plans of the same
  // component), activation arena, kernel scratch. Bytes.
  int64_t weight_bytes = 0, arena_bytes = 0, scratch_bytes = 0;
  double ms() const;      // mean of run_ms
  double gflops() const;  // 2 * macs / mean time
};

// Time of one kind of prepared step ("Conv2d+sum", "Attention", …) summed over a profiled UNet run.
struct ProfileEntry {
  std::string kind;
  int count = 0;  // steps of this kind
  double ms = 0, cpu_ms = 0;
  int64_t macs = 0;
};

// One (case, precision), measured in one process.
struct CaseResult {
  BenchCase bench_case;
  cpu::Precision precision = cpu::Precision::F32;
  double load_s = 0;           // model load (or random weights generated)
  int64_t rss_after_load = 0;  // bytes
  int64_t peak_rss = 0;        // bytes: high-water mark after the case's own pipeline ran
  double loadavg_start = 0, loadavg_end = 0;  // 1-minute system load around the measurement
  std::vector<ComponentTiming> components;    // the case's own ones first, then the extras
  std::string note;                           // e.g. why a requested extra was skipped
  std::vector<ProfileEntry>
      unet_profile;  // --profile: the case's UNet step by step kind, slowest first
  std::vector<ProfileEntry> vae_profile;    // --profile: its VAE decode, likewise
  std::vector<ProfileEntry> taesd_profile;  // and its TAESD decode (none without TAESD)
  // A real generate_batch() of the case (plans already compiled and warm), when it was run:
  // wall seconds for one image (0: not run) and the pipeline's own stage times.
  double end_to_end_s = 0;
  double e2e_text_encoder_ms = 0, e2e_sampling_ms = 0, e2e_vae_decode_ms = 0;
  // The same image decoded by TAESD instead of the VAE (GenerationRequest::decode_with "taesd"):
  // wall seconds (0: not run), sampling and TAESD decode times.
  double e2e_taesd_s = 0, e2e_taesd_sampling_ms = 0, e2e_taesd_decode_ms = 0;
  std::string taesd;  // whose TAESD was measured: "the model's" or "random (seed N)"
  // One `sdc generate` of the case in a fresh process, as a user runs it (one-shot: each
  // component dropped after its last use): whole-process wall seconds and peak RSS bytes; with
  // the VAE and with TAESD decoding. 0: not run.
  double process_s = 0, process_taesd_s = 0;
  int64_t process_peak_rss = 0, process_taesd_peak_rss = 0;

  const ComponentTiming* find(Component c) const;
  // Estimated from the components: text encoder × passes + steps × UNet step at the case's batch
  // + VAE decode, in seconds.
  double seconds_per_image() const;
  // The same estimate with TAESD decode in place of the VAE's (0 without a TAESD decode time).
  double seconds_per_image_taesd() const;
  // A fresh process's first image: load + compiling the case's plans + their first runs + the
  // rest of the image at steady speed.
  double cold_first_image_s() const;
};

struct BenchSettings {
  pipeline::BundleOptions model;  // model.model empty: full-size SD1.5 with random weights
  uint64_t seed = 1;              // random weights
  int threads = 0;                // 0 = all cores
  int unet_runs = 2;              // timed UNet steps per batch size (after the first)
  int vae_runs = 1;               // timed VAE decodes / encodes
  int taesd_runs = 3;             // timed TAESD decodes / encodes
  int text_runs = 3;              // timed text encoder passes
  bool profile = false;           // also profile one UNet step of each case per step kind
  // --profile-steps: every profiled step appended to this file, one tab-separated line each
  // (case, precision, plan, index, kind, layer, ms, CPU ms, GFLOP/s); empty: none.
  std::string profile_steps;
  bool vae_int8 = false;  // --vae-precision int8: the VAE decoder W8A8 in every case
  bool winograd = true;   // --no-winograd: bf16's 3x3 convolutions all direct
  // Run each case end to end through StableDiffusion::generate_batch when it has at most this
  // many steps (LCM: 4); longer ones are only estimated from the components.
  int end_to_end_max_steps = 4;
};

// Which components each case's process measures: its own pipeline (text encoder, the UNet at its
// batch, VAE decode, TAESD decode) plus the components of its size that no other listed case
// measures (the other UNet batch, VAE encode, TAESD encode), and the ControlNet step at the
// largest size, once per precision.
std::vector<std::vector<Component>> plan_extras(const std::vector<BenchCase>& cases);

// Measures `bench_case` at `precision` in this process; progress lines go to `log`. Requested
// extras that cannot run (a ControlNet step for a model without one) are skipped with a note. A
// model without a TAESD (neither --taesd nor bundled) gets random full-size SD1.x TAESD weights
// (seed settings.seed + 2) for the TAESD figures.
CaseResult measure_case(const BenchSettings& settings, const BenchCase& bench_case,
                        cpu::Precision precision, const std::vector<Component>& extras,
                        std::ostream& log);

// The best GFLOP/s of a few large convolutions and a matmul (UNet shapes) through the CPU
// backend: the machine's practical peak, for the "% of peak" figures.
struct PeakResult {
  cpu::Precision precision = cpu::Precision::F32;
  double gflops = 0;
  std::string best_kernel;  // which shape reached it
};
// The peak of a precision: its best large conv/matmul through the backend (for int8, W8A8
// including the activation quantisation).
PeakResult measure_peak(cpu::Precision precision, int threads, int runs);
// The peaks a bench of `precisions` reports against: each one, for int8 also the precision its
// non-int8 steps run at (`auto`), and int8's when the VAE decoder runs int8 (vae_int8).
std::vector<cpu::Precision> peak_precisions(const std::vector<cpu::Precision>& precisions,
                                            bool vae_int8 = false);

// Everything one `sdc bench` run found.
struct BenchReport {
  std::string model;       // path, or "random SD1.5 (seed N)"
  std::string cpu;         // /proc/cpuinfo model name
  std::string huge_pages;  // how anonymous memory is advised here (anonymous_huge_pages())
  int hardware_threads = 0, threads = 0;
  bool quick = false;
  int unet_runs = 0;
  int e2e_max_steps = 0;  // cases with at most this many steps were also run end to end
  std::string command;    // how it was invoked, for reproducing
  double loadavg_start = 0, loadavg_end = 0;
  std::vector<PeakResult> peaks;
  std::vector<CaseResult> cases;

  const PeakResult* peak(cpu::Precision p) const;
  // The peak a component is measured against: one whose layers ran int8 (ComponentTiming::int8)
  // against the int8 peak; an int8 run's other components against the `auto` peak.
  const PeakResult* peak_for(const ComponentTiming& t) const;
  nlohmann::json to_json() const;
  void print_table(std::ostream& out) const;

 private:
  void print_taesd_cases(std::ostream& out) const;  // "LCM 4 steps + TAESD" rows
};

nlohmann::json case_to_json(const CaseResult& r);
CaseResult case_from_json(const nlohmann::json& j);  // sdc::Error for a malformed object

// 1-minute load average (/proc/loadavg), -1 if unreadable; the CPU's model name.
double load_average();
std::string cpu_model_name();

}  // namespace sdc::bench
