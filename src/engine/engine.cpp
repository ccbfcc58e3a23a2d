// Engine: the job queue and its worker, model selection, and assembling a job's result (PNG
// bytes with A1111 parameters, model hash, LoRA hashes, outputs written atomically).
#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>

#include "backend/cpu/arena_prefault.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "backend/cpu/reference_impls.h"
#include "common/stopwatch.h"
#include "engine/batch_runner.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "pipeline/compat.h"
#include "pipeline/generation_params.h"
#include "pipeline/image_infotext.h"
#include "pipeline/plan_warmup.h"
#include "sampling/rng/torch_generator.h"
#include "sampling/sampler_kind.h"

namespace sdc::engine {
namespace fs = std::filesystem;
namespace {

std::string new_job_id() {
  static std::mutex m;
  static std::mt19937_64 rng{std::random_device{}() ^ uint64_t(std::time(nullptr))};
  std::lock_guard lock(m);
  std::ostringstream s;
  s << std::hex << std::setfill('0') << std::setw(16) << rng() << std::setw(16) << rng();
  return s.str();
}

std::string timestamp_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

std::string weight_text(float w) {
  std::ostringstream s;
  s << std::setprecision(9) << w;
  return s.str();
}

}  // namespace

bool parse_vae_precision(const std::string& name) {
  if (name == "auto") return false;
  if (name == "int8") return true;
  throw UsageError("", "--vae-precision", "auto or int8", "\"" + name + "\"");
}

Engine::Engine(EngineOptions options) : options_(std::move(options)) {
  registry_ = std::make_unique<ModelRegistry>(options_.registry);
  settings_ = std::make_unique<SettingsStore>(options_.settings_file);
  if (options_.max_queue < 1)
    throw UsageError("", "--max-queue", "at least 1", std::to_string(options_.max_queue));
  if (options_.max_loaded < 1)
    throw UsageError("", "--max-loaded", "at least 1", std::to_string(options_.max_loaded));
  if (!options_.outputs_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options_.outputs_dir, ec);
    if (!fs::is_directory(options_.outputs_dir))
      throw UsageError(options_.outputs_dir, "--outputs-dir", "a folder that can be created",
                       ec ? ec.message() : "not a folder");
  }
  cpu::PlanOptions plan;
  plan.precision = cpu::parse_precision(options_.precision);
  plan.threads = options_.threads;
  plan.winograd = options_.winograd;
  cache_ = std::make_unique<ModelCache>(
      size_t(options_.max_loaded), plan, metrics_, options_.log ? *options_.log : std::cerr,
      options_.precision == "auto", parse_vae_precision(options_.vae_precision));

  // The model selected at start: the option, else the one the settings remember, else the first.
  const auto models = registry_->models();
  if (!options_.default_model.empty()) {
    current_model_ = registry_->find_model(options_.default_model).name;
  } else if (auto saved = settings_->get("sd_model_checkpoint"); saved.is_string()) {
    try {
      current_model_ = registry_->find_model(saved.get<std::string>()).name;
    } catch (const Error&) {
      // The remembered model is gone: fall back to the first one, as A1111 does.
    }
  }
  if (current_model_.empty() && !models.empty()) current_model_ = models.front().name;
  worker_ = std::thread([this] { worker_loop(); });
}

Engine::~Engine() {
  shutdown(true);
}

// ---------------------------------------------------------------- models

std::optional<ModelInfo> Engine::current_model_if_any() const {
  std::string name;
  {
    std::lock_guard lock(mutex_);
    name = current_model_;
  }
  if (name.empty()) return std::nullopt;
  try {
    return registry_->find_model(name);
  } catch (const NotFound&) {
    return std::nullopt;  // removed from the folder since (refresh-checkpoints)
  }
}

ModelInfo Engine::current_model() const {
  if (auto m = current_model_if_any()) return *m;
  throw NotFound("model", "(current model)", "a model in --models-dir");
}

ModelInfo Engine::select_model(const std::string& id) {
  ModelInfo m = registry_->find_model(id);
  m.sha256 = registry_->hash_model(m.name);
  LoadSpec spec;
  spec.model_name = m.name;
  spec.title = m.title();
  spec.short_hash = m.short_hash();
  spec.bundle.model = m.path;
  spec.bundle.model_config = m.model_config;
  if (spec.bundle.taesd.empty()) spec.bundle.taesd = options_.taesd;
  if (spec.bundle.embeddings_dir.empty()) spec.bundle.embeddings_dir = options_.embeddings_dir;
  cache_->acquire(spec);  // loads now, so the reply comes once the model is usable
  {
    std::lock_guard lock(mutex_);
    current_model_ = m.name;
  }
  settings_->update({{"sd_model_checkpoint", m.title()}, {"sd_checkpoint_hash", m.sha256}});
  return m;
}

void Engine::unload_all() {
  cache_->clear();
}

void Engine::reload_current() {
  cache_->clear();
  select_model(current_model().name);
}

std::vector<LoadedModelInfo> Engine::loaded_models() const {
  return cache_->list();
}

bool Engine::ready() const {
  const auto m = current_model_if_any();
  std::error_code ec;
  return m && fs::exists(m->path, ec) && !shutting_down();
}

// ---------------------------------------------------------------- jobs

void Engine::validate_request(JobRequest& r) const {
  if (r.task) return;  // a task job (convert) was checked by whoever made it
  if (!r.model.empty())
    registry_->find_model(r.model);
  else if (!current_model_if_any())
    current_model();  // throws NotFound
  for (const auto& l : r.loras) {
    registry_->find_lora(l.name);
    if (!std::isfinite(l.weight))
      throw UsageError("", "lora " + l.name, "a finite weight", weight_text(l.weight));
  }
  if (!r.controlnet.empty()) registry_->find_controlnet(r.controlnet);
  if (r.kind != "txt2img" && r.kind != "img2img")
    throw UsageError("", "kind", "txt2img or img2img", r.kind);
  if (r.preview_every < 0)
    throw UsageError("", "preview_every", "0 or more steps", std::to_string(r.preview_every));
  pipeline::validate(r.generation);
  pipeline::validate_sampling(r.generation);
  if (r.generation.seed < 0) r.generation.seed = int64_t(sampling::random_seed() & 0xffffffffULL);
  if (r.generation.subseed_strength != 0 && r.generation.subseed < 0)
    r.generation.subseed = int64_t(sampling::random_seed() & 0xffffffffULL);
}

std::shared_ptr<Job> Engine::submit(JobRequest request) {
  if (shutting_down()) throw ShuttingDown();
  validate_request(request);
  std::lock_guard lock(mutex_);
  if (stopping_) throw ShuttingDown();
  const int waiting = int(std::count_if(queue_.begin(), queue_.end(),
                                        [](const auto& j) { return !is_final(j->status()); }));
  if (waiting >= options_.max_queue) {
    metrics_.jobs_rejected++;
    throw QueueFull(options_.max_queue, retry_after_s());
  }
  auto job = std::make_shared<Job>(new_job_id(), std::move(request));
  jobs_[job->id()] = job;
  queue_.push_back(job);
  job->set_queue_position(waiting);
  metrics_.jobs_submitted++;
  work_.notify_one();
  return job;
}

std::shared_ptr<Job> Engine::find_job(const std::string& id) const {
  std::lock_guard lock(mutex_);
  const_cast<Engine*>(this)->purge_finished_locked();
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

std::shared_ptr<Job> Engine::current_job() const {
  std::lock_guard lock(mutex_);
  if (running_) return running_;
  for (const auto& j : queue_)
    if (!is_final(j->status())) return j;
  return nullptr;
}

int Engine::queue_depth() const {
  std::lock_guard lock(mutex_);
  return int(std::count_if(queue_.begin(), queue_.end(),
                           [](const auto& j) { return !is_final(j->status()); }));
}

bool Engine::busy() const {
  std::lock_guard lock(mutex_);
  return running_ != nullptr;
}

int Engine::retry_after_s() const {
  // Called with mutex_ held by submit(); reads only atomics and the job's own lock.
  double s = 1;
  const auto img = metrics_.image_seconds.snapshot();
  const double per_image = img.count ? img.sum / double(img.count) : 1.0;
  if (running_) {
    const JobSnapshot snap = running_->snapshot();
    s = snap.progress.eta_s > 0 ? snap.progress.eta_s : per_image;
  }
  return std::max(1, int(std::ceil(s)));
}

bool Engine::shutting_down() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void Engine::shutdown(bool cancel_running) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      for (auto& j : queue_) j->cancel("the server is shutting down");
      if (cancel_running && running_) running_->cancel("the server is shutting down");
    }
    work_.notify_all();
  }
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

void Engine::purge_finished_locked() {
  const auto now = std::chrono::steady_clock::now();
  while (!finished_.empty() && (now - finished_.front().first > options_.result_ttl ||
                                finished_.size() > options_.max_finished_jobs)) {
    jobs_.erase(finished_.front().second);
    finished_.pop_front();
  }
}

void Engine::worker_loop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      job = queue_.front();
      queue_.pop_front();
      if (!is_final(job->status())) {
        running_ = job;
        int pos = 0;
        for (auto& j : queue_)
          if (!is_final(j->status())) j->set_queue_position(pos++);
      }
    }
    if (running_ == job) run_job(*job);
    std::lock_guard lock(mutex_);
    if (running_ == job) running_.reset();
    finished_.emplace_back(std::chrono::steady_clock::now(), job->id());
    purge_finished_locked();
  }
}

void Engine::run_job(Job& job) {
  job.mark_started();
  Stopwatch job_clock;
  try {
    const JobRequest& r = job.request();
    if (r.task) {  // not a generation: a convert job (see JobRequest::task)
      auto result = std::make_shared<JobResult>();
      result->task_result = r.task(job);
      metrics_.jobs_succeeded++;
      job.finish_succeeded(std::move(result));
      return;
    }
    const ModelInfo m = r.model.empty() ? current_model() : registry_->find_model(r.model);

    LoadSpec spec;
    spec.model_name = m.name;
    spec.title = m.title();
    spec.short_hash = m.short_hash();
    spec.loras = r.loras;
    spec.controlnet = r.controlnet;
    if (!options_.registry.single_model.empty() &&
        fs::absolute(options_.registry.single_model).lexically_normal() == fs::path(m.path))
      spec.bundle = options_.single_model_extras;
    spec.bundle.model = m.path;
    spec.bundle.model_config = m.model_config;
    if (spec.bundle.taesd.empty()) spec.bundle.taesd = options_.taesd;
    if (spec.bundle.embeddings_dir.empty()) spec.bundle.embeddings_dir = options_.embeddings_dir;
    for (const auto& l : r.loras)
      spec.bundle.loras.push_back(registry_->find_lora(l.name).path + ":" + weight_text(l.weight));
    if (!r.controlnet.empty())
      spec.bundle.controlnet = registry_->find_controlnet(r.controlnet).path;

    // Load first (so a bad file is reported by the loader), then hash what was loaded: the
    // infotext's "Model hash" and the title A1111 clients match on need the sha256.
    std::shared_ptr<LoadedModel> loaded = cache_->acquire(spec);
    std::lock_guard run_lock(loaded->run_mutex);
    if (loaded->short_hash.empty()) {
      ModelInfo hashed = m;
      hashed.sha256 = registry_->hash_model(m.name);
      loaded->short_hash = hashed.short_hash();
      loaded->title = hashed.title();
      for (const auto& l : r.loras)
        loaded->lora_hashes.push_back(registry_->hash_lora(l.name).substr(0, 12));
    }
    pipeline::GenerationRequest g = r.generation;
    pipeline::apply_defaults(loaded->bundle, g);
    pipeline::validate(g);
    std::ostream& log = options_.log ? *options_.log : std::cerr;
    if (!loaded->warmed && !loaded->bundle.declared_sizes.empty()) {
      // A compiled model's `convert -s` sizes: plan them now, so the first image is as fast.
      Stopwatch clock;
      pipeline::WarmupSpec w{
          loaded->bundle.declared_sizes, {}, g.clip_skip, pipeline::uses_control(g)};
      // Guidance doubles the UNet batch.
      const bool cfg = pipeline::uses_cfg(g);
      w.unet_batches = {cfg ? 2 * loaded->bundle.declared_batch : loaded->bundle.declared_batch};
      if (options_.one_shot) {
        // One job, then exit (sdc generate): the other declared sizes, and the VAE when TAESD
        // decodes, would be planned for nothing; TAESD is planned now, beside the prefault,
        // rather than after the last step.
        w.sizes = {{g.width, g.height}};
        w.vae_decoder = g.decode_with != "taesd";
        w.taesd_decoder = !w.vae_decoder;
      }
      // A one-shot full VAE decode needs several times the UNet's activation memory (289
      // against 40 MiB at 512x512, int8): planned once the prefault has stopped, its extra pages
      // arrive when it first runs, after the UNet's weights were released (ReleaseAfterUse),
      // instead of being resident through sampling, where they set the process's peak.
      const bool decoder_after = options_.one_shot && w.vae_decoder;
      pipeline::WarmupSpec sampling = w;
      sampling.vae_decoder = w.vae_decoder && !decoder_after;
      size_t n = 0;
      {
        // Planning runs on one core; the other makes the plans' activation pages resident.
        const cpu::PlanOptions& o = loaded->sd->plans().options();
        cpu::ArenaPrefault prefault({o.arena, o.scratch});
        n = pipeline::warm_plans(loaded->sd->plans(), sampling);
      }
      if (decoder_after) {
        pipeline::WarmupSpec decoder = w;
        decoder.unet_batches.clear();  // and so no ControlNet either
        n += pipeline::warm_plans(loaded->sd->plans(), decoder);
      }
      log << "planned " << n << " plans for the declared sizes in " << int(clock.ms()) << " ms";
      if (const size_t mapped = cpu::PrepackedWeights::global().hits())
        log << " (" << mapped << " weights mapped already packed)";
      if (const size_t repacked = cpu::PrepackedWeights::global().misses())
        log << "; " << repacked
            << " packed again: the file stores them in another layout than these plans use ("
            << (loaded->sd->plans().options().winograd
                    ? "made by another sdc version or for another precision or size; convert it "
                      "again to map them)"
                    : "transformed for Winograd convolutions, which --no-winograd turns off, or "
                      "made by another sdc version or for another precision or size)");
      log << "\n";
      if (const std::string slow = cpu::reference_uses_notice(); !slow.empty()) log << slow << "\n";
    }
    loaded->warmed = true;

    auto result = std::make_shared<JobResult>();
    result->model_title = loaded->title;
    result->model_name = loaded->bundle.name;
    result->model_hash = loaded->short_hash;
    for (const auto& l : loaded->loras) result->lora_names.push_back(l.name);
    result->generation = g;
    result->job_timestamp = timestamp_now();

    for (int b = 0; b < g.batch_count; ++b) {
      const pipeline::StopRequest stop = job.stop_token().requested();
      if (stop == pipeline::StopRequest::Cancel) throw pipeline::GenerationCancelled();
      if (stop == pipeline::StopRequest::Interrupt) {
        result->interrupted = true;
        break;
      }
      job.stop_token().clear_skip();
      const int64_t seed = g.seed + int64_t(b) * g.batch_size;
      Stopwatch batch_clock;
      const bool last_use = options_.one_shot && b + 1 == g.batch_count;
      BatchContext ctx{job,           metrics_,        job_clock,           b,
                       g.batch_count, r.preview_every, {last_use, last_use}};
      pipeline::BatchResult br = run_batch(*loaded->sd, g, seed, ctx);
      const double per_image =
          batch_clock.seconds() / double(std::max<size_t>(1, br.images.size()));
      for (size_t i = 0; i < br.images.size(); ++i) {
        const pipeline::GeneratedImage& img = br.images[i];
        // describe_image adds what only the run knows (variation seed, TI hashes, mask keys).
        pipeline::GenerationParams params = pipeline::describe_image(loaded->bundle, g, br, i);
        params.model_hash = loaded->short_hash;
        params.model = loaded->bundle.name;
        for (size_t i = 0; i < params.loras.size() && i < loaded->lora_hashes.size(); ++i) {
          params.loras[i].name = loaded->loras[i].name;
          params.loras[i].hash = loaded->lora_hashes[i];
        }
        JobImage out;
        out.infotext = pipeline::format_a1111_parameters(params);
        const std::vector<uint8_t> png = io::encode_png(img.image, {{"parameters", out.infotext}});
        out.png.assign(png.begin(), png.end());
        out.seed = img.seed;
        out.width = img.image.width;
        out.height = img.image.height;
        if (r.save_outputs && !options_.outputs_dir.empty()) {
          const fs::path path = fs::path(options_.outputs_dir) /
                                (job.id() + "-" + std::to_string(result->images.size()) + ".png");
          io::AtomicFile f(path.string());
          f.write(out.png.data(), out.png.size());
          f.commit();
          out.output_path = path.string();
        }
        result->images.push_back(std::move(out));
        metrics_.images_generated++;
        metrics_.image_seconds.observe(per_image);
      }
      result->batch_timings.push_back(br.timings);
      // Interrupt ends the job with what it has; Skip only ended this batch.
      if (br.inpainting_conditioning) result->inpainting_conditioning = true;
      if (br.interrupted && job.stop_token().requested() == pipeline::StopRequest::Interrupt)
        result->interrupted = true;
      if (r.keep_inputs) {
        result->noise.insert(result->noise.end(), br.noise.begin(), br.noise.end());
        result->cond.insert(result->cond.end(), br.cond.begin(), br.cond.end());
        result->uncond.insert(result->uncond.end(), br.uncond.begin(), br.uncond.end());
        result->noise_shape.assign(br.latent_shape.begin(), br.latent_shape.end());
        result->noise_shape[0] = int64_t(result->images.size());
        result->context_tokens = br.context_tokens;
        result->context_width = br.context_width;
      }
      if (r.keep_latents) {
        result->latents.insert(result->latents.end(), br.latents.begin(), br.latents.end());
        result->latent_shape.assign(br.latent_shape.begin(), br.latent_shape.end());
        result->latent_shape[0] = int64_t(result->images.size());
      }
    }
    if (result->interrupted) metrics_.jobs_interrupted++;
    metrics_.jobs_succeeded++;
    job.finish_succeeded(std::move(result));
  } catch (const pipeline::GenerationCancelled&) {
    metrics_.jobs_cancelled++;
    job.finish_cancelled("cancelled");
  } catch (const Error& e) {
    metrics_.jobs_failed++;
    job.finish_failed(e.what(), "bad_request");
  } catch (const std::bad_alloc&) {
    metrics_.jobs_failed++;
    job.finish_failed("out of memory", "out_of_memory");
  } catch (const std::exception& e) {
    metrics_.jobs_failed++;
    job.finish_failed(e.what(), "internal");
  }
}

}  // namespace sdc::engine
