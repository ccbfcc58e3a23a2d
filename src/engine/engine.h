// Engine: the one object the CLI and the HTTP server drive. It owns
//   - the model registry (what can be served, A1111-style names, sha256 cached on disk),
//   - the loaded models (at most `max_loaded` model+LoRA combinations, least recently used
//     unloaded first, each with its compiled plans, so the second image of a model is fast),
//   - the current model (A1111's sd_model_checkpoint, persisted in the settings file),
//   - ONE bounded job queue with one worker thread: every generation, from any route, waits its
//     turn here (models are too large to run two at once on a CPU), and
//   - the settings file and the metrics.
// Typical use:
//   engine::Engine e(options);
//   auto job = e.submit(request);          // QueueFull when --max-queue jobs are waiting
//   JobSnapshot done = job->wait();        // or poll job->snapshot(), or read job->events_after()
// The engine never sees HTTP; its errors are typed (engine_errors.h) so the server maps them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine_errors.h"
#include "engine/engine_metrics.h"
#include "engine/job.h"
#include "engine/model_cache.h"
#include "engine/model_registry.h"
#include "engine/settings_store.h"
#include "pipeline/model_bundle.h"

namespace sdc::engine {

struct EngineOptions {
  RegistryOptions registry;
  // The -m model's companion files (--vae, --text-encoder, --lora FILE:SCALE, --control-net),
  // applied whenever registry.single_model is loaded. `model` and `model_config` are ignored.
  pipeline::BundleOptions single_model_extras;
  // TAESD for every model that has none bundled (sdc serve --taesd): TAESD previews on /progress
  // and in step events, and decode_with/encode_with "taesd".
  std::string taesd;
  // Textual-inversion embeddings for every model (sdc serve --embeddings; A1111's embeddings/).
  std::string embeddings_dir;
  std::string default_model;       // the model selected at start; empty: the settings file's
                                   // sd_model_checkpoint when it still exists, else the first model
  int max_loaded = 1;              // model+LoRA combinations kept loaded (LRU)
  int max_queue = 16;              // jobs waiting (the running one not counted); more → QueueFull
  int threads = 0;                 // CPU threads per generation (0: all cores)
  std::string precision = "auto";  // f32 | bf16 | auto | int8 (the UNet)
  std::string vae_precision = "auto";  // auto (as the rest) | int8 (VAE and TAESD decoders W8A8)
  bool winograd = true;  // bf16's large 3x3 convolutions as Winograd where faster (--no-winograd)
  std::string outputs_dir;                // where JobRequest::save_outputs writes; empty: nowhere
  std::string settings_file;              // empty: settings kept in memory only
  std::chrono::seconds result_ttl{3600};  // finished jobs (and their images) kept this long
  size_t max_finished_jobs = 256;         // and at most this many (oldest dropped first)
  std::ostream* log = nullptr;            // model loads, LoRA reports; null: std::cerr
  // The process ends after one job (sdc generate): its last batch drops each model component's
  // plans and packed weights after their last use, so peak memory is the largest component's.
  bool one_shot = false;
};

// EngineOptions::vae_precision: "auto" -> false, "int8" -> true (the VAE and TAESD decoders run
// W8A8); sdc::UsageError naming --vae-precision for anything else.
bool parse_vae_precision(const std::string& name);

class Engine {
 public:
  // Scans the folders and selects the default model (without loading it: load on first use or
  // select_model). Starts the worker thread.
  explicit Engine(EngineOptions options);
  ~Engine();  // shutdown(true)
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineOptions& options() const { return options_; }
  ModelRegistry& registry() { return *registry_; }
  const ModelRegistry& registry() const { return *registry_; }
  SettingsStore& settings() { return *settings_; }
  EngineMetrics& metrics() { return metrics_; }

  // ---- models ----
  // The model jobs use when they name none. NotFound when the registry is empty.
  ModelInfo current_model() const;
  std::optional<ModelInfo> current_model_if_any() const;
  // Makes `id` (any registry alias) current and loads it now (blocking the caller, not the
  // queue: a running job keeps its own model), hashing it if needed; records its title as
  // "sd_model_checkpoint" in the settings. BadName / NotFound / sdc::Error from the loader.
  ModelInfo select_model(const std::string& id);
  void unload_all();      // drop every loaded model (A1111 /unload-checkpoint)
  void reload_current();  // unload, then load the current model again (/reload-checkpoint)
  std::vector<LoadedModelInfo> loaded_models() const;
  // True when a model can be served: a current model whose file is still there.
  bool ready() const;

  // ---- jobs ----
  // Validates the request (ranges, sampler names, model/LoRA/ControlNet names: BadName,
  // NotFound, UsageError) and queues it. QueueFull when max_queue jobs are waiting; ShuttingDown
  // after shutdown(). The returned job is already Queued (its first event emitted).
  std::shared_ptr<Job> submit(JobRequest request);
  // A job by id while it is known (queued, running, or finished within the TTL); null otherwise.
  std::shared_ptr<Job> find_job(const std::string& id) const;
  // The job running now, else the oldest queued one, else null (A1111 /progress, /interrupt).
  std::shared_ptr<Job> current_job() const;
  int queue_depth() const;  // jobs waiting, not counting the running one
  int queue_capacity() const { return options_.max_queue; }
  bool busy() const;  // a job is running
  // Seconds a client should wait before retrying after QueueFull (ETA of the queue, ≥ 1).
  int retry_after_s() const;

  // Stops taking jobs (submit throws ShuttingDown), cancels every queued job and, when
  // `cancel_running`, the running one (else lets it finish), then joins the worker. Idempotent.
  void shutdown(bool cancel_running);
  bool shutting_down() const;

 private:
  void worker_loop();
  void run_job(Job& job);
  void purge_finished_locked();
  void validate_request(JobRequest& request) const;

  EngineOptions options_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<SettingsStore> settings_;
  EngineMetrics metrics_;
  std::unique_ptr<ModelCache> cache_;

  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::string current_model_;  // ModelInfo::name; empty: none
  std::deque<std::shared_ptr<Job>> queue_;
  std::shared_ptr<Job> running_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // every known job by id
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> finished_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace sdc::engine
