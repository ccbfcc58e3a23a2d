// Job: state transitions, stop requests, waiting and the event log.
#include "engine/job.h"

namespace sdc::engine {

const char* status_name(JobStatus s) {
  switch (s) {
    case JobStatus::Queued:
      return "queued";
    case JobStatus::Running:
      return "running";
    case JobStatus::Succeeded:
      return "succeeded";
    case JobStatus::Failed:
      return "failed";
    case JobStatus::Cancelled:
      return "cancelled";
  }
  return "?";
}

const char* event_name(JobEventType t) {
  switch (t) {
    case JobEventType::Queued:
      return "queued";
    case JobEventType::Started:
      return "started";
    case JobEventType::Progress:
      return "step";
    case JobEventType::Finished:
      return "finished";
  }
  return "?";
}

Job::Job(std::string id, JobRequest request) : id_(std::move(id)), request_(std::move(request)) {
  state_.id = id_;
  state_.kind = request_.kind;
  state_.created = std::chrono::system_clock::now();
  state_.progress.batch_count = request_.generation.batch_count;
}

JobSnapshot Job::snapshot() const {
  std::lock_guard lock(mutex_);
  return state_;
}

JobStatus Job::status() const {
  std::lock_guard lock(mutex_);
  return state_.status;
}

bool Job::skip() {
  std::lock_guard lock(mutex_);
  if (state_.status != JobStatus::Running) return false;
  stop_.request(pipeline::StopRequest::Skip);
  return true;
}

bool Job::interrupt() {
  std::unique_lock lock(mutex_);
  if (is_final(state_.status)) return false;
  if (state_.status == JobStatus::Queued) {
    lock.unlock();
    return cancel("interrupted before it started");
  }
  stop_.request(pipeline::StopRequest::Interrupt);
  return true;
}

bool Job::cancel(std::string reason) {
  std::lock_guard lock(mutex_);
  if (is_final(state_.status)) return false;
  stop_.request(pipeline::StopRequest::Cancel);
  cancel_reason_ = std::move(reason);
  // A queued job ends now (the worker drops it); a running one ends when the pipeline notices.
  if (state_.status == JobStatus::Queued) {
    state_.error = cancel_reason_;
    finish_locked(JobStatus::Cancelled);
  }
  return true;
}

JobSnapshot Job::wait() const {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return is_final(state_.status); });
  return state_;
}

std::optional<JobSnapshot> Job::wait_for(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  if (!changed_.wait_for(lock, timeout, [&] { return is_final(state_.status); }))
    return std::nullopt;
  return state_;
}

std::vector<JobEvent> Job::events_after(uint64_t after, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return events_.size() > after; });
  if (events_.size() <= after) return {};
  return std::vector<JobEvent>(events_.begin() + long(after), events_.end());
}

void Job::set_queue_position(int position) {
  std::lock_guard lock(mutex_);
  if (state_.status != JobStatus::Queued) return;
  const bool first = events_.empty();
  if (!first && state_.queue_position == position) return;
  state_.queue_position = position;
  emit_locked(JobEventType::Queued);
}

void Job::mark_started() {
  std::lock_guard lock(mutex_);
  if (state_.status != JobStatus::Queued) return;
  state_.status = JobStatus::Running;
  state_.queue_position = -1;
  state_.started = std::chrono::system_clock::now();
  emit_locked(JobEventType::Started);
}

void Job::update_progress(const JobProgress& p) {
  std::lock_guard lock(mutex_);
  if (state_.status != JobStatus::Running) return;
  const bool new_preview = p.preview_id != state_.progress.preview_id;
  state_.progress = p;
  if (new_preview) {
    // Keep only the newest preview's bytes in the log: older step events lose theirs.
    for (auto& e : events_) e.progress.preview_png.clear();
  }
  emit_locked(JobEventType::Progress);
  if (!new_preview) events_.back().progress.preview_png.clear();
}

void Job::finish_succeeded(std::shared_ptr<const JobResult> result) {
  std::lock_guard lock(mutex_);
  if (is_final(state_.status)) return;
  state_.result = std::move(result);
  state_.progress.fraction = 1.0;
  state_.progress.eta_s = 0;
  state_.progress.stage = pipeline::GenerationStage::Done;
  finish_locked(JobStatus::Succeeded);
}

void Job::finish_failed(const std::string& message, const std::string& kind) {
  std::lock_guard lock(mutex_);
  if (is_final(state_.status)) return;
  state_.error = message;
  state_.error_kind = kind;
  finish_locked(JobStatus::Failed);
}

void Job::finish_cancelled(const std::string& reason) {
  std::lock_guard lock(mutex_);
  if (is_final(state_.status)) return;
  state_.error = cancel_reason_.empty() ? reason : cancel_reason_;
  finish_locked(JobStatus::Cancelled);
}

void Job::finish_locked(JobStatus s) {
  state_.status = s;
  state_.queue_position = -1;
  state_.finished = std::chrono::system_clock::now();
  emit_locked(JobEventType::Finished);
}

void Job::emit_locked(JobEventType type) {
  JobEvent e;
  e.seq = events_.size() + 1;
  e.type = type;
  e.status = state_.status;
  e.progress = state_.progress;
  e.queue_position = state_.queue_position;
  if (type == JobEventType::Finished && state_.status != JobStatus::Succeeded)
    e.error = state_.error;
  events_.push_back(std::move(e));
  changed_.notify_all();
}

}  // namespace sdc::engine
