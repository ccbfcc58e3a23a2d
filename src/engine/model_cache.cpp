// ModelCache: LRU of loaded model+LoRA combinations, one load per key at a time.
#include "engine/model_cache.h"

#include <algorithm>
#include <sstream>

#include "backend/cpu/prepacked_weights.h"
#include "common/error.h"
#include "common/stopwatch.h"

namespace sdc::engine {

std::string LoadSpec::key() const {
  // LoRA order matters neither to the merge result's meaning nor to the user: sort for the key.
  std::vector<std::string> parts;
  for (const auto& l : loras) {
    std::ostringstream s;
    s << l.name << ':' << l.weight;
    parts.push_back(s.str());
  }
  std::sort(parts.begin(), parts.end());
  std::string k = model_name;
  for (const auto& p : parts) k += "|" + p;
  if (!controlnet.empty()) k += "|control:" + controlnet;
  return k;
}

ModelCache::ModelCache(size_t capacity, cpu::PlanOptions plan_options, EngineMetrics& metrics,
                       std::ostream& log, bool follow_model_precision, bool vae_int8)
    : capacity_(std::max<size_t>(1, capacity)),
      plan_options_(plan_options),
      follow_model_precision_(follow_model_precision),
      vae_int8_(vae_int8),
      metrics_(metrics),
      log_(log) {}

std::shared_ptr<LoadedModel> ModelCache::acquire(const LoadSpec& spec) {
  const std::string key = spec.key();
  std::unique_lock lock(mutex_);
  for (;;) {
    auto it = std::find_if(slots_.begin(), slots_.end(),
                           [&](const Slot& s) { return s.model->key == key; });
    if (it != slots_.end()) {
      it->last_used = std::chrono::steady_clock::now();
      slots_.splice(slots_.begin(), slots_, it);  // most recently used first
      return it->model;
    }
    if (!loading_.count(key)) break;
    loaded_.wait(lock);  // someone else is loading this key: take theirs
  }
  loading_.insert(key);
  lock.unlock();

  std::shared_ptr<LoadedModel> m;
  Stopwatch clock;
  try {
    m = std::make_shared<LoadedModel>();
    m->key = key;
    m->model_name = spec.model_name;
    m->title = spec.title;
    m->short_hash = spec.short_hash;
    m->loras = spec.loras;
    m->lora_hashes = spec.lora_hashes;
    m->bundle = pipeline::load_bundle(spec.bundle, log_);
    cpu::PlanOptions plan = plan_options_;
    if (follow_model_precision_ && m->bundle.unet_int8) {
      plan.precision = cpu::Precision::INT8;
      log_ << m->bundle.name << ": UNet int8 (compiled with -t unet=int8)\n";
    }
    bool vae_int8 = vae_int8_;
    const bool followed = follow_model_precision_ && m->bundle.vae_int8 && !vae_int8;
    // Refused here, at load, rather than when the first image is decoded after its sampling.
    if ((vae_int8 || followed) && !cpu::isa_has_int8_dot()) {
      const std::string why = "float decoders on this CPU (int8 needs AVX512-VNNI or AVX-VNNI; " +
                              std::string("oneDNN runs ") + cpu::effective_isa_name() + ")";
      if (!followed) throw UsageError("", "--vae-precision", why, "int8");
      throw UsageError(m->bundle.name, "sdc.compute.vae", why + "; --precision f32 runs them so",
                       "int8");
    }
    if (followed) {
      vae_int8 = true;
      log_ << m->bundle.name << ": VAE decoder int8 (compiled with -t vae=int8)\n";
    }
    m->sd = std::make_unique<pipeline::StableDiffusion>(
        m->bundle.model, plan, m->bundle.tokenizer(), m->bundle.name, vae_int8);
    if (!m->bundle.embeddings.embeddings.empty()) m->sd->use_embeddings(m->bundle.embeddings);
  } catch (...) {
    metrics_.model_load_failures++;
    lock.lock();
    loading_.erase(key);
    loaded_.notify_all();
    throw;
  }
  metrics_.model_loads++;
  metrics_.load_seconds.observe(clock.ms() / 1000.0);

  lock.lock();
  loading_.erase(key);
  slots_.push_front({m, std::chrono::steady_clock::now()});
  while (slots_.size() > capacity_) {
    slots_.pop_back();  // a job still holding it keeps it alive until it finishes
    metrics_.model_unloads++;
  }
  loaded_.notify_all();
  return m;
}

void ModelCache::clear() {
  std::lock_guard lock(mutex_);
  metrics_.model_unloads += slots_.size();
  slots_.clear();
}

std::vector<LoadedModelInfo> ModelCache::list() const {
  std::lock_guard lock(mutex_);
  std::vector<LoadedModelInfo> out;
  for (const auto& s : slots_)
    out.push_back({s.model->model_name, s.model->title, s.model->loras,
                   s.model->sd ? s.model->sd->plans().plan_count() : 0, s.last_used,
                   s.model->bundle.model.text_encoder.hidden});
  return out;
}

}  // namespace sdc::engine
