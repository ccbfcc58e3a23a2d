// Benchmark measurements: the standard cases, which process measures what, timing one case's
// components through the pipeline's own plan cache, and the backend's practical peak.
#include "bench/benchmark.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <sstream>
#include <utility>

#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/reference_impls.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "graph/builders/builders.h"
#include "model/random_model.h"
#include "model/taesd_file.h"
#include "pipeline/control_residuals.h"
#include "pipeline/plan_cache.h"
#include "pipeline/stable_diffusion.h"
#include "pipeline/text_conditioning.h"

namespace sdc::bench {
using pipeline::BatchResult;
using pipeline::encode_prompts;
using pipeline::GenerationRequest;
using pipeline::load_bundle;
using pipeline::ModelBundle;
using pipeline::PlanCache;
using pipeline::PromptContext;
using pipeline::StableDiffusion;
namespace {

constexpr Component kAllComponents[] = {Component::TextEncoder, Component::UNetBatch1,
                                        Component::UNetBatch2,  Component::VaeDecode,
                                        Component::VaeEncode,   Component::ControlNetStep,
                                        Component::TaesdDecode, Component::TaesdEncode};

const char* kPrompt = "a photograph of an astronaut riding a horse on the moon, highly detailed";

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Deterministic values with mean 0 and standard deviation `std` (uniform): input contents do not
// change the work done, only keep it free of NaNs and denormals.
void fill(float* p, size_t n, float std, uint32_t seed) {
  const float half_width = std * 1.7320508f;
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = half_width * (float(seed >> 8) * (2.0f / 16777216.0f) - 1.0f);
  }
}

void add_memory(ComponentTiming& t, const cpu::Plan& plan) {
  t.weight_bytes += int64_t(plan.weight_bytes());
  t.arena_bytes += int64_t(plan.arena_bytes());
  t.scratch_bytes += int64_t(plan.scratch_bytes());
}

Component unet_component(int batch) {
  return batch == 2 ? Component::UNetBatch2 : Component::UNetBatch1;
}

// The model under test: a loaded bundle, or full-size SD1.5 with random bf16 weights (half the
// memory of f32; the plans cast them to the precision measured, as they would a real file's).
ModelBundle load_bench_model(const BenchSettings& s, std::ostream& log) {
  if (!s.model.model.empty()) return load_bundle(s.model, log);
  ModelBundle b;
  model::RandomModelParts parts;  // UNet, text encoder, VAE
  b.model.weights = model::make_random_sd15(s.seed, DType::BF16, parts);
  b.model.source = "random SD1.5";
  b.model.has_unet = b.model.has_vae = b.model.has_text_encoder = true;
  b.name = "random-sd15";
  return b;
}

// Random ControlNet weights (full-size SD1.5 ControlNet) added to a random model.
void attach_random_controlnet(ModelBundle& b, uint64_t seed) {
  model::RandomModelParts parts;
  parts.unet = parts.text_encoder = parts.vae = false;
  parts.controlnet = true;
  WeightMap cn = model::make_random_sd15(seed + 1, DType::BF16, parts);
  for (auto& [name, t] : cn.all()) b.model.weights.set(name, t);
  b.model.controlnet = model::ControlNetParams{};
}

// Gives a model without a TAESD (or with only one of its networks) full-size random SD1.x TAESD
// weights for the missing network(s), through the loader's own layout check. Says whose TAESD
// the figures are of.
std::string ensure_taesd(ModelBundle& b, uint64_t seed) {
  const model::TaesdParts have = b.model.taesd;
  if (have.decoder && have.encoder) return "the model's";
  model::RandomModelParts parts;
  parts.unet = parts.text_encoder = parts.vae = false;
  parts.taesd = true;
  const WeightMap random = model::make_random_sd15(seed, DType::F16, parts);
  WeightMap missing;
  for (const auto& [name, t] : random.all())
    if (name.starts_with(model::kTaesdDecoderPrefix) ? !have.decoder : !have.encoder)
      missing.set(name, t);
  model::add_bundled_taesd("random TAESD", missing, b.model.weights);
  b.model.taesd = model::taesd_parts(b.model.weights);
  const std::string random_text = "random (seed " + std::to_string(seed) + ")";
  if (have.decoder) return "the model's decoder, encoder " + random_text;
  if (have.encoder) return "the model's encoder, decoder " + random_text;
  return random_text;
}

class CaseRunner {
 public:
  CaseRunner(const BenchSettings& s, const BenchCase& c, cpu::Precision p, std::ostream& log)
      : s_(s), case_(c), precision_(p), log_(log), h_(c.height / 8), w_(c.width / 8) {}

  CaseResult run(const std::vector<Component>& extras) {
    CaseResult r;
    r.bench_case = case_;
    r.precision = precision_;
    r.loadavg_start = load_average();
    Stopwatch clock;
    bundle_ = load_bench_model(s_, log_);
    r.load_s = clock.seconds();
    // TAESD is made for SD1.x's 4-channel latent space; other models get no TAESD figures.
    const bool taesd = bundle_.model.vae.latent_channels == 4;
    if (taesd) r.taesd = ensure_taesd(bundle_, s_.seed + 2);
    r.rss_after_load = current_rss_bytes();
    log_ << tag() << "model ready in " << fixed(r.load_s, 2) << " s, RSS "
         << r.rss_after_load / (1 << 20) << " MiB\n";
    cpu::PlanOptions options;
    options.precision = precision_;
    options.threads = s_.threads;
    options.winograd = s_.winograd;
    // The pipeline's own plan cache: the components are measured on the plans generate uses.
    sd_ = std::make_unique<StableDiffusion>(bundle_.model, options, bundle_.tokenizer(),
                                            bundle_.name, s_.vae_int8);
    plans_ = &sd_->plans();

    // The case's own pipeline, as generate runs it; then its peak memory.
    r.components.push_back(text_encoder());
    r.components.push_back(unet(case_.unet_batch()));
    if (s_.profile)
      r.unet_profile = profile(plans_->unet(case_.unet_batch(), h_, w_, context().tokens, false),
                               "unet batch " + std::to_string(case_.unet_batch()));
    r.components.push_back(vae_decode());
    if (s_.profile) r.vae_profile = profile(plans_->vae_decoder(1, h_, w_), "vae decode");
    if (case_.steps <= s_.end_to_end_max_steps) end_to_end(r);
    r.peak_rss = peak_rss_bytes();
    log_ << tag() << "peak RSS " << r.peak_rss / (1 << 20) << " MiB\n";

    // The same pipeline with TAESD decoding the image; after the peak RSS figure, which is the
    // VAE pipeline's (TAESD's plans would add to it).
    if (taesd) {
      r.components.push_back(taesd_decode());
      if (s_.profile) r.taesd_profile = profile(plans_->taesd_decoder(1, h_, w_), "taesd decode");
      if (case_.steps <= s_.end_to_end_max_steps) end_to_end_taesd(r);
    } else {
      add_note(r, "no TAESD figures: TAESD is for 4-channel latents (SD1.x)");
    }

    // With int8 image decoders, the float ones as well, side by side in this process (after the
    // peak RSS figure too: their plans add to it).
    if (s_.vae_int8) {
      PlanCache float_decoders(bundle_.model, plans_->options());
      PlanCache* pipeline = std::exchange(plans_, &float_decoders);
      float_decoders_ = true;
      r.components.push_back(vae_decode());
      if (taesd) r.components.push_back(taesd_decode());
      float_decoders_ = false;
      plans_ = pipeline;
    }

    for (Component c : extras) {
      if (r.find(c)) continue;
      switch (c) {
        case Component::TextEncoder:
          r.components.push_back(text_encoder());
          break;
        case Component::UNetBatch1:
          r.components.push_back(unet(1));
          break;
        case Component::UNetBatch2:
          r.components.push_back(unet(2));
          break;
        case Component::VaeDecode:
          r.components.push_back(vae_decode());
          break;
        case Component::VaeEncode:
          r.components.push_back(vae_encode());
          break;
        case Component::ControlNetStep:
          if (!bundle_.model.controlnet && !s_.model.model.empty()) {
            add_note(r, "no ControlNet step: the model has none (pass --control-net FILE)");
            break;
          }
          r.components.push_back(controlnet_step());
          break;
        case Component::TaesdDecode:
          if (taesd) r.components.push_back(taesd_decode());
          break;
        case Component::TaesdEncode:
          if (taesd) r.components.push_back(taesd_encode());
          break;
      }
    }
    r.loadavg_end = load_average();
    return r;
  }

 private:
  static std::string fixed(double v, int digits) {
    std::ostringstream o;
    o.setf(std::ios::fixed);
    o.precision(digits);
    o << v;
    return o.str();
  }
  void add_note(CaseResult& r, const std::string& note) {
    r.note += (r.note.empty() ? "" : "; ") + note;
    log_ << tag() << note << "\n";
  }
  std::string tag() const {
    return "[" + case_.name + " " + cpu::precision_name(precision_) + "] ";
  }

  // compile() builds the plans; run() is one run of the component. Runs once untimed-for-steady
  // (the first run after compiling) then `runs` times.
  template <typename Compile, typename Run>
  ComponentTiming measure(Component c, int runs, Compile compile, Run run) {
    ComponentTiming t;
    t.component = c;
    t.width = case_.width;
    t.height = case_.height;
    t.precision = precision_;
    t.int8 = c == Component::VaeDecode || c == Component::TaesdDecode
                 ? s_.vae_int8 && !float_decoders_
                 : precision_ == cpu::Precision::INT8 &&
                       (c == Component::UNetBatch1 || c == Component::UNetBatch2 ||
                        c == Component::ControlNetStep);
    log_ << tag() << component_title(c) << (t.int8 ? " (int8)" : "") << ": compiling…\n"
         << std::flush;
    Stopwatch clock;
    compile();
    t.compile_s = clock.seconds();
    // A step on oneDNN's reference code makes every figure below meaningless: say so.
    if (const size_t slow = cpu::reference_use_count(); slow > reference_seen_) {
      log_ << tag() << component_title(c) << ": " << cpu::reference_uses_notice(reference_seen_)
           << "\n"
           << std::flush;
      reference_seen_ = slow;
    }
    clock.reset();
    run();
    t.first_run_ms = clock.ms();
    const double cpu0 = process_cpu_seconds();
    for (int i = 0; i < runs; ++i) {
      clock.reset();
      run();
      t.run_ms.push_back(clock.ms());
    }
    t.cpu_ms = runs > 0 ? 1e3 * (process_cpu_seconds() - cpu0) / runs : 0;
    log_ << tag() << component_title(c) << ": compile " << fixed(t.compile_s, 2) << " s, first run "
         << fixed(t.first_run_ms, 1) << " ms, then " << fixed(t.ms(), 1) << " ms/run (" << runs
         << " runs)\n"
         << std::flush;
    return t;
  }

  ComponentTiming text_encoder() {
    ComponentTiming t = measure(
        Component::TextEncoder, s_.text_runs, [&] { plans_->text_encoder(1, 1); },
        [&] { context_ = encode_prompts(*plans_, bundle_.tokenizer(), kPrompt, "", 1, false); });
    add_memory(t, plans_->text_encoder(1, 1));
    t.macs =
        graph::build_text_encoder(bundle_.model.weights, bundle_.model.text_encoder, 1, 1).macs();
    return t;
  }

  const PromptContext& context() {
    if (context_.tokens == 0)
      context_ = encode_prompts(*plans_, bundle_.tokenizer(), kPrompt, "", 1, false);
    return context_;
  }

  // The UNet's fixed inputs: latents, timestep, the prompt's context in every batch row.
  void fill_unet_inputs(cpu::Plan& plan, int batch) {
    const PromptContext& ctx = context();
    const int c = bundle_.model.unet.in_channels;
    fill(plan.input_f32("sample"), size_t(batch) * size_t(h_ * w_ * c), 1.0f, 11);
    std::fill_n(plan.input_f32("timestep"), batch, 500.0f);
    float* dst = plan.input_f32("context");
    for (int i = 0; i < batch; ++i)
      std::copy(ctx.cond.begin(), ctx.cond.end(), dst + size_t(i) * ctx.cond.size());
  }

  ComponentTiming unet(int batch) {
    const int tokens = context().tokens;
    cpu::Plan* plan = nullptr;
    ComponentTiming t = measure(
        unet_component(batch), s_.unet_runs,
        [&] {
          plan = &plans_->unet(batch, h_, w_, tokens, false);
          fill_unet_inputs(*plan, batch);
        },
        [&] { plan->run(); });
    add_memory(t, *plan);
    t.macs = plans_->unet_macs(batch, h_, w_, tokens) - steady_macs(*plan);
    return t;
  }

  // One image through StableDiffusion::generate_batch, as `sdc generate` makes it, decoded by
  // `decode_with` ("vae" or "taesd"); wall seconds and the pipeline's stage times.
  std::pair<double, pipeline::StageTimings> generate_one(const std::string& decode_with) {
    GenerationRequest req;
    req.prompt = kPrompt;
    req.width = case_.width;
    req.height = case_.height;
    req.steps = case_.steps;
    req.cfg_scale = case_.cfg_scale;
    req.sampler = case_.sampler;
    req.decode_with = decode_with;
    const std::string what = decode_with == "taesd" ? "end to end with TAESD" : "end to end";
    log_ << tag() << what << " (" << case_.steps << " steps)…\n" << std::flush;
    Stopwatch clock;
    const BatchResult b = sd_->generate_batch(req, 1);
    const double s = clock.seconds();
    log_ << tag() << what << ": " << fixed(s, 2) << " s/image (text "
         << fixed(b.timings.text_encoder_ms, 1) << " ms, sampling "
         << fixed(b.timings.sampling_ms, 1) << " ms, " << (decode_with == "taesd" ? "TAESD" : "VAE")
         << " decode " << fixed(b.timings.vae_decode_ms, 1) << " ms)\n"
         << std::flush;
    return {s, b.timings};
  }

  void end_to_end(CaseResult& r) {
    const auto [s, t] = generate_one("vae");
    r.end_to_end_s = s;
    r.e2e_text_encoder_ms = t.text_encoder_ms;
    r.e2e_sampling_ms = t.sampling_ms;
    r.e2e_vae_decode_ms = t.vae_decode_ms;
  }

  void end_to_end_taesd(CaseResult& r) {
    const auto [s, t] = generate_one("taesd");
    r.e2e_taesd_s = s;
    r.e2e_taesd_sampling_ms = t.sampling_ms;
    r.e2e_taesd_decode_ms = t.vae_decode_ms;  // the decode stage, TAESD here
  }

  // One profiled run of a plan whose inputs are filled, its steps summed by kind, slowest first;
  // with --profile-steps each step also goes to that file as it ran.
  std::vector<ProfileEntry> profile(cpu::Plan& plan, const std::string& what) {
    const std::vector<cpu::StepInfo> steps = plan.profile_run();
    if (!s_.profile_steps.empty()) write_steps(steps, what);
    std::vector<ProfileEntry> out;
    for (const cpu::StepInfo& s : steps) {
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const ProfileEntry& e) { return e.kind == s.kind; });
      if (it == out.end()) it = out.insert(out.end(), ProfileEntry{s.kind});
      ++it->count;
      it->ms += 1e3 * s.seconds;
      it->cpu_ms += 1e3 * s.cpu_seconds;
      it->macs += s.macs;
    }
    std::sort(out.begin(), out.end(),
              [](const ProfileEntry& a, const ProfileEntry& b) { return a.ms > b.ms; });
    return out;
  }
  void write_steps(const std::vector<cpu::StepInfo>& steps, const std::string& what) const {
    std::ofstream f(s_.profile_steps, std::ios::app);
    const std::string head =
        case_.name + "\t" + cpu::precision_name(precision_) + "\t" + what + "\t";
    for (size_t i = 0; i < steps.size(); ++i) {
      const cpu::StepInfo& s = steps[i];
      const double gflops = s.seconds > 0 ? 2e-9 * double(s.macs) / s.seconds : 0.0;
      f << head << i << "\t" << s.kind << "\t" << s.label << "\t" << fixed(1e3 * s.seconds, 3)
        << "\t" << fixed(1e3 * s.cpu_seconds, 3) << "\t" << fixed(gflops, 1) << "\n";
    }
    if (!f) throw Error(s_.profile_steps, "", "a writable --profile-steps file", "write failed");
  }

  // One autoencoder network (VAE or TAESD, decoder or encoder) as the pipeline runs it: its
  // batch-1 plan from `plan_of`, its `input` filled with `count` values of spread `std`; the MACs
  // from its graph (`graph_of`), built after the timing as for the other components.
  template <class PlanOf, class GraphOf>
  ComponentTiming autoencoder(Component c, int runs, PlanOf plan_of, const char* input,
                              size_t count, float std, uint32_t seed, GraphOf graph_of) {
    cpu::Plan* plan = nullptr;
    ComponentTiming t = measure(
        c, runs,
        [&] {
          plan = &plan_of();
          fill(plan->input_f32(input), count, std, seed);
        },
        [&] { plan->run(); });
    add_memory(t, *plan);
    t.macs = graph_of().macs();
    return t;
  }

  ComponentTiming vae_decode() {
    const auto& vae = bundle_.model.vae;
    return autoencoder(
        Component::VaeDecode, s_.vae_runs,
        [&]() -> cpu::Plan& { return plans_->vae_decoder(1, h_, w_); }, "latent",
        size_t(h_ * w_ * vae.latent_channels), 1.0f / vae.scaling_factor, 12,
        [&] { return graph::build_vae_decoder(bundle_.model.weights, vae, 1, h_, w_); });
  }

  ComponentTiming vae_encode() {
    return autoencoder(
        Component::VaeEncode, s_.vae_runs,
        [&]() -> cpu::Plan& { return plans_->vae_encoder(1, h_, w_); }, "image",
        size_t(case_.width) * size_t(case_.height) * 3, 0.5f, 13,
        [&] {
          return graph::build_vae_encoder(bundle_.model.weights, bundle_.model.vae, 1, case_.height,
                                          case_.width);
        });
  }

  // TAESD as the pipeline runs it (taesd_codec: batch-1 plans), on the same latents / image
  // sizes as the VAE; its MACs counted from its graph, as the VAE's are.
  ComponentTiming taesd_decode() {
    return autoencoder(
        Component::TaesdDecode, s_.taesd_runs,
        [&]() -> cpu::Plan& { return plans_->taesd_decoder(1, h_, w_); }, "latent",
        size_t(h_ * w_ * 4), 1.0f, 15,
        [&] { return graph::build_taesd_decoder(bundle_.model.weights, 1, h_, w_); });
  }

  ComponentTiming taesd_encode() {
    return autoencoder(
        Component::TaesdEncode, s_.taesd_runs,
        [&]() -> cpu::Plan& { return plans_->taesd_encoder(1, case_.height, case_.width); },
        "image", size_t(case_.width) * size_t(case_.height) * 3, 0.25f, 16,
        [&] {
          return graph::build_taesd_encoder(bundle_.model.weights, 1, case_.height, case_.width);
        });
  }

  // One sampler step with a ControlNet at batch 1: the ControlNet, its residuals copied into the
  // UNet's control inputs, the UNet (as generate_batch does it).
  ComponentTiming controlnet_step() {
    if (!bundle_.model.controlnet) {
      Stopwatch clock;
      attach_random_controlnet(bundle_, s_.seed);
      log_ << tag() << "random ControlNet weights in " << fixed(clock.seconds(), 2) << " s\n";
    }
    const int tokens = context().tokens;
    cpu::Plan *cnet = nullptr, *unet = nullptr;
    auto run = [&] {
      cnet->run();
      pipeline::pass_control_residuals(*cnet, *unet);
      unet->run();
    };
    ComponentTiming t = measure(
        Component::ControlNetStep, s_.unet_runs,
        [&] {
          cnet = &plans_->controlnet(1, h_, w_, tokens);
          unet = &plans_->unet(1, h_, w_, tokens, true);
          fill_unet_inputs(*unet, 1);
          std::memcpy(cnet->input_f32("sample"), unet->input_f32("sample"),
                      size_t(h_ * w_ * bundle_.model.unet.in_channels) * sizeof(float));
          cnet->input_f32("timestep")[0] = 500.0f;
          std::copy(context_.cond.begin(), context_.cond.end(), cnet->input_f32("context"));
          fill(cnet->input_f32("hint"), size_t(shape_numel(cnet->input_shape("hint"))), 0.3f, 14);
          cnet->input_f32("scale")[0] = 1.0f;
        },
        run);
    add_memory(t, *cnet);
    add_memory(t, *unet);
    graph::UNetShape shape{1, h_, w_, tokens, true};
    t.macs =
        graph::build_controlnet(bundle_.model.weights, *bundle_.model.controlnet, shape).macs() +
        graph::build_unet(bundle_.model.weights, bundle_.model.unet, shape).macs() -
        steady_macs(*cnet) - steady_macs(*unet);
    if (s_.profile) profile_controlnet(*cnet);
    return t;
  }

  // The ControlNet's first step of an image (a new hint: its steady steps run) against a later
  // one, in the log and, with --profile-steps, step by step.
  void profile_controlnet(cpu::Plan& cnet) {
    fill(cnet.input_f32("hint"), size_t(shape_numel(cnet.input_shape("hint"))), 0.3f, 15);
    const std::vector<cpu::StepInfo> first = cnet.profile_run(), later = cnet.profile_run();
    if (!s_.profile_steps.empty()) {
      write_steps(first, "controlnet, new hint");
      write_steps(later, "controlnet");
    }
    double first_ms = 0, steady_ms = 0, later_ms = 0;
    for (const cpu::StepInfo& st : first) {
      first_ms += 1e3 * st.seconds;
      steady_ms += st.steady ? 1e3 * st.seconds : 0;
    }
    for (const cpu::StepInfo& st : later) later_ms += 1e3 * st.seconds;
    log_ << tag() << "ControlNet profile: " << fixed(first_ms, 1)
         << " ms with a new hint (its steady steps, the hint encoder and K/V: "
         << fixed(steady_ms, 1) << " ms), " << fixed(later_ms, 1) << " ms on the later steps\n"
         << std::flush;
  }

  // The MACs of a plan's steady steps (cross-attention's K and V, a ControlNet's hint encoder):
  // the timed runs after the first keep their outputs, so a step's GFLOP/s counts the rest.
  static int64_t steady_macs(const cpu::Plan& plan) {
    int64_t macs = 0;
    for (const cpu::StepInfo& s : plan.steps()) macs += s.steady ? s.macs : 0;
    return macs;
  }

  const BenchSettings& s_;
  const BenchCase& case_;
  cpu::Precision precision_;
  std::ostream& log_;
  const int h_, w_;
  ModelBundle bundle_;
  std::unique_ptr<StableDiffusion> sd_;
  PlanCache* plans_ = nullptr;
  bool float_decoders_ = false;  // measuring the float VAE/TAESD decoders beside int8 ones
  PromptContext context_;
  size_t reference_seen_ = 0;  // cpu::reference_use_count() already reported
};

// One kernel of the peak measurement: a graph of a single large op with random bf16 weights.
graph::Graph peak_graph(const std::string& kind) {
  graph::Graph g;
  auto weight = [&](Shape s) {
    std::vector<float> v(size_t(shape_numel(s)));
    fill(v.data(), v.size(), 0.02f, 21);
    return g.weight("w", TensorRef::from_f32(v, s, DType::BF16));
  };
  if (kind == "matmul 4096x1280x5120") {  // the UNet's GEGLU projection at 512x512
    const graph::ValueId x = g.input("x", {1, 4096, 1280});
    g.output("y", g.linear(x, weight({5120, 1280}), graph::kNone));
  } else if (kind == "conv3x3 320->320 64x64 b2") {  // UNet level 0 at 512x512, CFG batch
    const graph::ValueId x = g.input("x", {2, 64, 64, 320});
    g.output("y", g.conv2d(x, weight({320, 320, 3, 3}), graph::kNone, 1, 1));
  } else {  // "conv3x3 640->640 32x32 b2": UNet level 1
    const graph::ValueId x = g.input("x", {2, 32, 32, 640});
    g.output("y", g.conv2d(x, weight({640, 640, 3, 3}), graph::kNone, 1, 1));
  }
  g.allow_int8(g.outputs().front().second);  // as the UNet's layers (used by int8 plans only)
  return g;
}

std::string read_first_line_with(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return line;
  return {};
}

}  // namespace

std::string BenchCase::title() const {
  return (sampler == "lcm" ? std::string("LCM") : sampler) + " " + std::to_string(steps) + " steps";
}

const std::vector<BenchCase>& standard_cases() {
  static const std::vector<BenchCase> cases = {
      {"lcm512", "lcm", 512, 512, 4, 1.0f},
      {"euler512", "euler_a", 512, 512, 20, 7.0f},
      {"lcm256", "lcm", 256, 256, 4, 1.0f},
  };
  return cases;
}

std::vector<BenchCase> parse_bench_cases(const std::string& list, const std::string& option) {
  const std::string expected = "a comma-separated list of lcm512, euler512, lcm256, or all";
  if (list == "all") return standard_cases();
  std::vector<bool> wanted(standard_cases().size(), false);
  std::stringstream in(list);
  std::string name;
  bool any = false;
  while (std::getline(in, name, ',')) {
    size_t i = 0;
    while (i < standard_cases().size() && standard_cases()[i].name != name) ++i;
    if (i == standard_cases().size()) throw UsageError("", option, expected, "'" + name + "'");
    wanted[i] = any = true;
  }
  if (!any || list.back() == ',') throw UsageError("", option, expected, "'" + list + "'");
  std::vector<BenchCase> out;
  for (size_t i = 0; i < wanted.size(); ++i)
    if (wanted[i]) out.push_back(standard_cases()[i]);
  return out;
}

std::vector<cpu::Precision> parse_bench_precisions(const std::string& name,
                                                   const std::string& option) {
  // bf16 where this CPU runs it (AVX-512: an AVX2 desktop measures f32 alone rather than fail on
  // the default), int8 where it has a VNNI dot product.
  if (name == "both" || name == "all") {
    std::vector<cpu::Precision> out = {cpu::Precision::F32};
    if (cpu::precision_available(cpu::Precision::BF16)) out.push_back(cpu::Precision::BF16);
    if (name == "all" && cpu::precision_available(cpu::Precision::INT8))
      out.push_back(cpu::Precision::INT8);
    return out;
  }
  if (name == "f32" || name == "bf16" || name == "auto" || name == "int8")
    return {cpu::parse_precision(name)};
  throw UsageError("", option, "one of f32, bf16, auto, int8, both, all", "'" + name + "'");
}

std::vector<cpu::Precision> peak_precisions(const std::vector<cpu::Precision>& precisions,
                                            bool vae_int8) {
  std::vector<cpu::Precision> out = precisions;
  auto has = [&](cpu::Precision p) { return std::find(out.begin(), out.end(), p) != out.end(); };
  const cpu::Precision base = cpu::parse_precision("auto");
  if (has(cpu::Precision::INT8) && !has(base)) out.push_back(base);
  if (vae_int8 && !has(cpu::Precision::INT8)) out.push_back(cpu::Precision::INT8);
  return out;
}

const char* component_key(Component c) {
  switch (c) {
    case Component::TextEncoder:
      return "text_encoder";
    case Component::UNetBatch1:
      return "unet_batch1";
    case Component::UNetBatch2:
      return "unet_batch2";
    case Component::VaeDecode:
      return "vae_decode";
    case Component::VaeEncode:
      return "vae_encode";
    case Component::ControlNetStep:
      return "controlnet_unet_batch1";
    case Component::TaesdDecode:
      return "taesd_decode";
    case Component::TaesdEncode:
      return "taesd_encode";
  }
  return "?";
}

const char* component_title(Component c) {
  switch (c) {
    case Component::TextEncoder:
      return "text encoder (1 prompt)";
    case Component::UNetBatch1:
      return "UNet step, batch 1";
    case Component::UNetBatch2:
      return "UNet step, batch 2 (CFG)";
    case Component::VaeDecode:
      return "VAE decode";
    case Component::VaeEncode:
      return "VAE encode";
    case Component::ControlNetStep:
      return "ControlNet+UNet step, b1";
    case Component::TaesdDecode:
      return "TAESD decode";
    case Component::TaesdEncode:
      return "TAESD encode";
  }
  return "?";
}

Component parse_component(const std::string& key) {
  for (Component c : kAllComponents)
    if (key == component_key(c)) return c;
  throw Error("", "component",
              "text_encoder, unet_batch1, unet_batch2, vae_decode, vae_encode, "
              "controlnet_unet_batch1, taesd_decode or taesd_encode",
              "'" + key + "'");
}

double ComponentTiming::ms() const {
  if (run_ms.empty()) return first_run_ms;
  return std::accumulate(run_ms.begin(), run_ms.end(), 0.0) / double(run_ms.size());
}

double ComponentTiming::gflops() const {
  const double t = ms();
  return t > 0 ? 2.0 * double(macs) / (t * 1e6) : 0.0;
}

const ComponentTiming* CaseResult::find(Component c) const {
  for (const ComponentTiming& t : components)
    if (t.component == c) return &t;
  return nullptr;
}

double CaseResult::seconds_per_image() const {
  const ComponentTiming* te = find(Component::TextEncoder);
  const ComponentTiming* unet = find(unet_component(bench_case.unet_batch()));
  const ComponentTiming* dec = find(Component::VaeDecode);
  if (!te || !unet || !dec) return 0;
  return 1e-3 *
         (te->ms() * bench_case.text_encoder_passes() + unet->ms() * bench_case.steps + dec->ms());
}

double CaseResult::seconds_per_image_taesd() const {
  const ComponentTiming* dec = find(Component::VaeDecode);
  const ComponentTiming* taesd = find(Component::TaesdDecode);
  const double vae = seconds_per_image();
  if (!dec || !taesd || vae == 0) return 0;
  return vae + 1e-3 * (taesd->ms() - dec->ms());
}

double CaseResult::cold_first_image_s() const {
  double s = load_s + seconds_per_image();
  for (Component c :
       {Component::TextEncoder, unet_component(bench_case.unet_batch()), Component::VaeDecode})
    if (const ComponentTiming* t = find(c)) s += t->compile_s + 1e-3 * (t->first_run_ms - t->ms());
  return s;
}

std::vector<std::vector<Component>> plan_extras(const std::vector<BenchCase>& cases) {
  int largest = 0;
  for (const BenchCase& c : cases) largest = std::max(largest, c.width * c.height);
  std::vector<std::vector<Component>> extras(cases.size());
  std::vector<std::string> sizes_done;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string size = cases[i].size();
    if (std::find(sizes_done.begin(), sizes_done.end(), size) != sizes_done.end()) continue;
    sizes_done.push_back(size);
    // The other UNet batch, unless another case of this size runs it as its own.
    for (int batch : {1, 2}) {
      bool measured = false;
      for (const BenchCase& c : cases) measured |= c.size() == size && c.unet_batch() == batch;
      if (!measured) extras[i].push_back(unet_component(batch));
    }
    extras[i].push_back(Component::VaeEncode);
    extras[i].push_back(Component::TaesdEncode);
    if (cases[i].width * cases[i].height == largest) extras[i].push_back(Component::ControlNetStep);
  }
  return extras;
}

CaseResult measure_case(const BenchSettings& settings, const BenchCase& bench_case,
                        cpu::Precision precision, const std::vector<Component>& extras,
                        std::ostream& log) {
  return CaseRunner(settings, bench_case, precision, log).run(extras);
}

PeakResult measure_peak(cpu::Precision precision, int threads, int runs) {
  PeakResult best;
  best.precision = precision;
  cpu::PlanOptions options;
  options.precision = precision;
  options.threads = threads;
  options.winograd = false;  // the dense peak: every convolution direct
  for (const char* kind :
       {"conv3x3 320->320 64x64 b2", "conv3x3 640->640 32x32 b2", "matmul 4096x1280x5120"}) {
    const graph::Graph g = peak_graph(kind);
    std::unique_ptr<cpu::Plan> plan = cpu::Plan::compile(g, options);
    const auto [name, x] = g.inputs().front();
    fill(plan->input_f32(name), size_t(shape_numel(g.shape(x))), 1.0f, 22);
    plan->run();  // warm-up
    for (int r = 0; r < runs; ++r) {
      Stopwatch clock;
      plan->run();
      const double gflops = 2.0 * double(g.macs()) / (clock.seconds() * 1e9);
      if (gflops > best.gflops) {
        best.gflops = gflops;
        best.best_kernel = kind;
      }
    }
  }
  return best;
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double v = -1;
  if (!(in >> v)) return -1;
  return v;
}

std::string cpu_model_name() {
  const std::string line = read_first_line_with("/proc/cpuinfo", "model name");
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return "unknown CPU";
  return line.substr(line.find_first_not_of(" \t", colon + 1));
}

}  // namespace sdc::bench
