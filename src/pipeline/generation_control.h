// How a caller steers and watches one generation: a stop token checked between sampler steps
// (skip / interrupt / cancel, A1111's and the job API's three ways to stop), progress events per
// stage and step with elapsed time and ETA, and an optional preview of the current latents.
#pragma once

#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>

#include "io/image.h"

namespace sdc::pipeline {

// What a caller asked for. The pipeline checks it between sampler steps (and between stages):
// - Skip / Interrupt: stop sampling now and decode the latents reached so far (A1111 returns
//   such partial images with 200). Skip ends only the current batch; Interrupt ends the job —
//   the difference matters to the caller looping over batches, not to the pipeline.
// - Cancel: abandon the work; the pipeline throws GenerationCancelled.
enum class StopRequest { None = 0, Skip = 1, Interrupt = 2, Cancel = 3 };

class StopToken {
 public:
  // A stronger request is never downgraded by a weaker one (Cancel beats Interrupt beats Skip).
  void request(StopRequest r) {
    int cur = state_.load();
    while (int(r) > cur && !state_.compare_exchange_weak(cur, int(r))) {
    }
  }
  // Skip applies to one batch: the caller clears it before the next batch.
  void clear_skip() {
    int expected = int(StopRequest::Skip);
    state_.compare_exchange_strong(expected, int(StopRequest::None));
  }
  StopRequest requested() const { return StopRequest(state_.load()); }
  bool stop_sampling() const { return state_.load() != int(StopRequest::None); }
  bool cancelled() const { return state_.load() == int(StopRequest::Cancel); }

 private:
  std::atomic<int> state_{0};
};

// Thrown out of the pipeline when a StopToken asked for Cancel.
class GenerationCancelled : public std::runtime_error {
 public:
  GenerationCancelled() : std::runtime_error("generation cancelled") {}
};

enum class GenerationStage { Preparing, EncodingText, InitialLatents, Denoising, Decoding, Done };
const char* stage_name(GenerationStage s);  // "preparing", "encoding_text", …

struct ProgressEvent {
  GenerationStage stage = GenerationStage::Preparing;
  int step = 0;          // sampler steps done in this batch (Denoising)
  int total_steps = 0;   // sampler steps this batch will run
  double elapsed_s = 0;  // since the batch started
  double eta_s = -1;     // estimated seconds left in this batch; -1 while unknown
  // Set on step events when a preview was asked for and is due: the current latents of the
  // first image as a picture (GenerationRequest::preview_method). Valid only during the callback.
  const io::Image* preview = nullptr;
};

struct GenerationObserver {
  const StopToken* stop = nullptr;                        // null: never stops
  std::function<void(const ProgressEvent&)> on_progress;  // called on the generating thread
  int preview_every = 0;                                  // steps between previews; 0 = none
};

}  // namespace sdc::pipeline
