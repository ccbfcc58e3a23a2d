// ModelCache: the model+LoRA combinations held in memory, each a loaded ModelBundle with its
// StableDiffusion pipeline (and so its compiled plans). At most `capacity` are kept; loading one
// more unloads the least recently used first. Entries are shared_ptr: a job that holds one keeps
// it alive even if it is evicted meanwhile, so eviction never pulls weights from under a run.
// Loads of different keys may run in parallel with generation; two loads of the same key do not
// happen twice (the second caller waits for the first).
#pragma once

#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "backend/cpu/plan.h"
#include "engine/engine_metrics.h"
#include "engine/job.h"
#include "pipeline/model_bundle.h"
#include "pipeline/stable_diffusion.h"

namespace sdc::engine {

// A model+LoRA combination held in memory, as listed to callers.
struct LoadedModelInfo {
  std::string model;  // ModelInfo::name
  std::string title;
  std::vector<LoraUse> loras;
  size_t plans = 0;  // compiled plans held
  std::chrono::steady_clock::time_point last_used;
  int text_width = 768;  // the text encoder's width (what embeddings must match)
};

struct LoadedModel {
  std::string key;  // model name + LoRA combination
  std::string model_name, title, short_hash;
  std::vector<LoraUse> loras;
  std::vector<std::string> lora_hashes;  // short hashes, in `loras` order
  pipeline::ModelBundle bundle;
  std::unique_ptr<pipeline::StableDiffusion> sd;
  std::mutex run_mutex;  // one generation at a time per pipeline (plans own their buffers)
  bool warmed = false;   // a compiled model's declared sizes planned (under run_mutex)
};

// What to load: the bundle options (model path, config, LoRA paths with scales, …) and the
// names that make the cache key.
struct LoadSpec {
  std::string model_name;  // registry name
  std::string title, short_hash;
  std::vector<LoraUse> loras;
  std::vector<std::string> lora_hashes;
  std::string controlnet;  // registry name, part of the key
  pipeline::BundleOptions bundle;
  std::string key() const;
};

class ModelCache {
 public:
  // follow_model_precision (`--precision auto`): a compiled model marked int8 (convert -t
  // unet=int8) gets INT8 plans instead of plan_options' precision, and one marked vae=int8 an
  // int8 VAE decoder. vae_int8 (`--vae-precision int8`): every model's VAE decoder runs W8A8.
  ModelCache(size_t capacity, cpu::PlanOptions plan_options, EngineMetrics& metrics,
             std::ostream& log, bool follow_model_precision = false, bool vae_int8 = false);

  // The cached entry for spec.key(), or loads it (evicting the LRU entry beyond capacity).
  std::shared_ptr<LoadedModel> acquire(const LoadSpec& spec);
  void clear();
  std::vector<LoadedModelInfo> list() const;

 private:
  struct Slot {
    std::shared_ptr<LoadedModel> model;
    std::chrono::steady_clock::time_point last_used;
  };
  size_t capacity_;
  cpu::PlanOptions plan_options_;
  bool follow_model_precision_;
  bool vae_int8_;
  EngineMetrics& metrics_;
  std::ostream& log_;
  mutable std::mutex mutex_;
  std::condition_variable loaded_;
  std::list<Slot> slots_;          // most recently used first
  std::set<std::string> loading_;  // keys being loaded now
};

}  // namespace sdc::engine
