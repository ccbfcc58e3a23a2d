// Counters and latency histograms the engine keeps for Prometheus' /metrics (queue depth is read
// live from the queue): jobs by outcome, seconds per sampler step and per image, model loads.
// Lock-free enough for the worker to record from inside the sampler loop.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace sdc::engine {

// A cumulative histogram with fixed upper bounds (Prometheus "le" buckets, +Inf implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf (= count)
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative), last = above every bound
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct EngineMetrics {
  EngineMetrics();
  std::atomic<uint64_t> jobs_submitted{0}, jobs_rejected{0};  // rejected: queue full
  std::atomic<uint64_t> jobs_succeeded{0}, jobs_failed{0}, jobs_cancelled{0};
  std::atomic<uint64_t> jobs_interrupted{0};  // succeeded with partial images
  std::atomic<uint64_t> images_generated{0};
  std::atomic<uint64_t> model_loads{0}, model_load_failures{0}, model_unloads{0};
  Histogram step_seconds;   // one sampler step (UNet call(s) for the whole batch)
  Histogram image_seconds;  // a batch's wall time divided by its images
  Histogram load_seconds;   // loading (and LoRA-merging) a model
};

}  // namespace sdc::engine
