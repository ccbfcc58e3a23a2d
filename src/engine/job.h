// Job: one generation request going through the engine's queue, as every caller sees it — its
// id, status, place in the queue, live progress (stage, step, overall fraction over all batches,
// ETA, A1111-style textinfo, the latest preview PNG), its result or error, the three ways to stop
// it (skip the current batch, interrupt = keep what is done, cancel = discard), a blocking wait,
// and an event log that SSE streams read with a cursor. All members are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/generation_control.h"
#include "pipeline/generation_request.h"
#include "pipeline/stable_diffusion.h"

namespace sdc::engine {

class Job;

// A LoRA to merge, as `<lora:name:weight>` names it (name resolved by the registry).
struct LoraUse {
  std::string name;
  float weight = 1.0f;
  bool operator==(const LoraUse&) const = default;
};

// What a caller submits. `generation` holds prompt, size, sampler, seed, batch_size and
// batch_count (A1111 n_iter); the in-memory init/control images, when given, are used instead of
// the path fields (the server never passes paths from a request).
struct JobRequest {
  pipeline::GenerationRequest generation;
  std::string model;             // registry id (any alias); empty: the current model
  std::vector<LoraUse> loras;    // merged at load, cached per combination
  std::string controlnet;        // registry name of a ControlNet; empty: none
  std::string kind = "txt2img";  // "txt2img" | "img2img": A1111's state.job is "scripts_" + kind
  int preview_every = 0;         // steps between previews (0: none)
  bool save_outputs = false;     // also write the PNGs to the engine's outputs folder
  bool keep_latents = false;     // return the final latents (sdc generate --save-latents)
  bool keep_inputs = false;      // return the initial noise and the text conditioning
  // A job that is not a generation (a convert, server/web_services.cpp): the worker runs it in
  // queue order instead of the pipeline. It reports through Job::update_progress, polls
  // stop_token(), throws pipeline::GenerationCancelled when stopped, and returns the JSON that
  // JobResult::task_result carries. `kind` names it ("convert").
  std::function<nlohmann::json(Job&)> task;
};

enum class JobStatus { Queued, Running, Succeeded, Failed, Cancelled };
const char* status_name(JobStatus s);  // "queued", "running", "succeeded", "failed", "cancelled"
inline bool is_final(JobStatus s) {
  return s != JobStatus::Queued && s != JobStatus::Running;
}

struct JobProgress {
  pipeline::GenerationStage stage = pipeline::GenerationStage::Preparing;
  int batch = 0;            // 0-based index of the batch running
  int batch_count = 1;      // batches in the job
  int step = 0;             // sampler steps done in this batch
  int total_steps = 0;      // sampler steps this batch runs
  double fraction = 0;      // 0..1 over the whole job (batches and steps)
  double elapsed_s = 0;     // since the job started running
  double eta_s = -1;        // seconds left for the whole job; -1 while unknown
  std::string textinfo;     // A1111's "Sampling step 3/20"-style line
  std::string preview_png;  // latest preview (PNG bytes); empty when none yet
  uint64_t preview_id = 0;  // increases with each new preview (clients skip repeats)
  std::string task_stage;   // a task job's stage ("download", "write" …); empty: `stage` holds
};

struct JobImage {
  std::string png;  // PNG bytes with the A1111 "parameters" text chunk
  int64_t seed = 0;
  std::string infotext;     // the same "parameters" text
  std::string output_path;  // where it was written under --outputs-dir; empty if not saved
  int width = 0, height = 0;
};

struct JobResult {
  std::vector<JobImage> images;
  bool interrupted = false;              // stopped early (skip/interrupt): partial images decoded
  bool inpainting_conditioning = false;  // an inpainting UNet got A1111's mask conditioning
  std::string model_title;               // ModelInfo::title() of the model used
  std::string model_name;                // ModelInfo::stem
  std::string model_hash;                // short hash (10 hex digits)
  std::vector<std::string> lora_names;
  pipeline::GenerationRequest generation;  // as run: concrete seed, model defaults applied
  std::string job_timestamp;               // YYYYMMDDHHMMSS when it started (A1111 info)
  std::vector<pipeline::StageTimings> batch_timings;  // one per batch run
  std::vector<float> latents;  // keep_latents: every batch's final latents, NCHW, concatenated
  std::vector<int64_t> latent_shape;  // [images, 4, h, w] when latents are kept
  // keep_inputs: every batch's initial noise (latent_shape per image) and UNet context rows
  // ([images, tokens, width]; uncond empty without classifier-free guidance).
  std::vector<float> noise, cond, uncond;
  std::vector<int64_t> noise_shape;  // [images, 4, h, w]
  int context_tokens = 0, context_width = 0;
  nlohmann::json task_result;  // a task job's result (JobRequest::task); null otherwise
};

enum class JobEventType { Queued, Started, Progress, Finished };
const char* event_name(JobEventType t);  // "queued", "started", "step", "finished"

struct JobEvent {
  uint64_t seq = 0;  // 1, 2, 3, … per job
  JobEventType type = JobEventType::Queued;
  JobStatus status = JobStatus::Queued;  // after this event
  JobProgress progress;                  // preview_png only on the latest event that had one
  int queue_position = 0;                // Queued: jobs ahead of this one
  std::string error;                     // Finished with Failed: the message
};

// A consistent copy of a job's state at one moment.
struct JobSnapshot {
  std::string id;
  JobStatus status = JobStatus::Queued;
  int queue_position = 0;  // jobs ahead of it while queued (0 = next); -1 otherwise
  JobProgress progress;
  std::shared_ptr<const JobResult> result;  // set when Succeeded (also after an interrupt)
  std::string error;                        // Failed: one-line message; Cancelled: the reason
  // Failed: "bad_request" (sdc::Error: bad input), "out_of_memory" or "internal" (a bug)
  std::string error_kind;
  std::chrono::system_clock::time_point created, started, finished;
  std::string kind;  // "txt2img" | "img2img"
};

class JobQueue;

class Job {
 public:
  Job(std::string id, JobRequest request);
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  const std::string& id() const { return id_; }
  const JobRequest& request() const { return request_; }

  JobSnapshot snapshot() const;
  JobStatus status() const;

  // Stop requests (A1111 /skip, /interrupt; DELETE /v1/jobs/{id}). A queued job that is
  // cancelled or interrupted never runs and ends Cancelled. Returns false when already final.
  bool skip();
  bool interrupt();
  bool cancel(std::string reason = "cancelled by the client");

  // Blocks until the job is final (or `timeout` passed: then returns nullopt).
  JobSnapshot wait() const;
  std::optional<JobSnapshot> wait_for(std::chrono::milliseconds timeout) const;

  // The events after sequence number `after` (0: from the start), waiting up to `timeout` for
  // at least one. An empty result means the timeout passed; once a Finished event has been
  // returned no more follow. Events are kept for the job's lifetime (steps ≤ 1000 per batch);
  // only the newest preview PNG is kept.
  std::vector<JobEvent> events_after(uint64_t after, std::chrono::milliseconds timeout) const;

  // --- used by the engine's worker ---
  const pipeline::StopToken& stop_token() const { return stop_; }
  pipeline::StopToken& stop_token() { return stop_; }
  void set_queue_position(int position);
  void mark_started();
  void update_progress(const JobProgress& p);  // emits a Progress event
  void finish_succeeded(std::shared_ptr<const JobResult> result);
  void finish_failed(const std::string& message, const std::string& kind);
  void finish_cancelled(const std::string& reason);

 private:
  void emit_locked(JobEventType type);
  void finish_locked(JobStatus s);

  const std::string id_;
  const JobRequest request_;
  pipeline::StopToken stop_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  JobSnapshot state_;
  std::string cancel_reason_;
  std::vector<JobEvent> events_;
};

}  // namespace sdc::engine
