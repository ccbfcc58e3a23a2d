// Histogram buckets and the engine's metric set.
#include "engine/engine_metrics.h"

#include <algorithm>

namespace sdc::engine {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t i =
      size_t(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard lock(mutex_);
  counts_[i] += 1;
  sum_ += value;
  count_ += 1;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard lock(mutex_);
  Snapshot s;
  s.upper_bounds = bounds_;
  uint64_t running = 0;
  for (uint64_t c : counts_) {
    running += c;
    s.cumulative_counts.push_back(running);
  }
  s.count = count_;
  s.sum = sum_;
  return s;
}

// Buckets from a tiny model's milliseconds to a full-size 512×512 f32 step or image.
EngineMetrics::EngineMetrics()
    : step_seconds({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      image_seconds({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}),
      load_seconds({0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120}) {}

}  // namespace sdc::engine
