// Running a compiled plan: set the thread count, walk the prepared steps; buffer lookups by name
// for the caller's inputs and outputs; the GroupNorm statistics shared with the caller.
#include <omp.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <set>

#include "backend/cpu/layout.h"
#include "backend/cpu/plan_impl.h"
#include "common/error.h"

namespace sdc::cpu {
namespace {
double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
}  // namespace

float* CpuPlan::input_f32(const std::string& name) {
  for (InputBuf& in : inputs_) {
    if (in.name != name) continue;
    if (in.dtype != DType::F32)
      throw Error("plan", "input " + name, "element type F32", std::string(dtype_name(in.dtype)));
    return static_cast<float*>(in.buf->data());
  }
  throw Error("plan", "input " + name, "an input of the graph", "none");
}

int32_t* CpuPlan::input_i32(const std::string& name) {
  for (InputBuf& in : inputs_) {
    if (in.name != name) continue;
    if (in.dtype != DType::I32)
      throw Error("plan", "input " + name, "element type I32", std::string(dtype_name(in.dtype)));
    return static_cast<int32_t*>(in.buf->data());
  }
  throw Error("plan", "input " + name, "an input of the graph", "none");
}

const float* CpuPlan::output(const std::string& name) const {
  for (const OutputRef& o : outputs_)
    if (o.name == name) return o.data;
  throw Error("plan", "output " + name, "an output of the graph", "none");
}

const Shape& CpuPlan::input_shape(const std::string& name) const {
  for (const InputBuf& in : inputs_)
    if (in.name == name) return in.shape;
  throw Error("plan", "input " + name, "an input of the graph", "none");
}

const Shape& CpuPlan::output_shape(const std::string& name) const {
  for (const OutputRef& o : outputs_)
    if (o.name == name) return o.shape;
  throw Error("plan", "output " + name, "an output of the graph", "none");
}

size_t CpuPlan::weight_bytes() const {
  size_t total = 0;
  std::set<const void*> seen;  // a packed weight used twice counts once
  for (const auto& w : weights_)
    if (seen.insert(w.get()).second) total += w->bytes();
  return total;
}

std::vector<StepInfo> CpuPlan::steps() const {
  std::vector<StepInfo> out;
  out.reserve(steps_.size());
  for (const Step& s : steps_) out.push_back(s.info);
  return out;
}

void CpuPlan::set_group_norm_stats(NormStats mode, std::vector<GroupNormStats>* stats) {
  if (mode != NormStats::Compute && !stats)
    throw Error("plan", "GroupNorm statistics", "a vector to record into or replay from", "none");
  norm_mode_ = mode;
  norm_stats_ = mode == NormStats::Compute ? nullptr : stats;
  if (mode == NormStats::Replay) {
    try {
      check_replay_stats();
    } catch (...) {
      norm_mode_ = NormStats::Compute;  // a refused call leaves the plan computing its own
      norm_stats_ = nullptr;
      throw;
    }
  }
}

void CpuPlan::check_replay_stats() const {
  const std::vector<GroupNormStats>& st = *norm_stats_;
  if (st.size() != group_norm_sizes_.size())
    throw Error("plan", "GroupNorm statistics to replay",
                std::to_string(group_norm_sizes_.size()) + " entries (one per GroupNorm step)",
                std::to_string(st.size()));
  for (size_t k = 0; k < st.size(); ++k)
    if (st[k].mean.size() != group_norm_sizes_[k] || st[k].var.size() != group_norm_sizes_[k])
      throw Error("plan", "GroupNorm statistics to replay, entry " + std::to_string(k),
                  std::to_string(group_norm_sizes_[k]) + " means and variances (N x groups)",
                  std::to_string(st[k].mean.size()) + " means, " +
                      std::to_string(st[k].var.size()) + " variances");
}

GroupNormStatsIo CpuPlan::group_norm_stats_io(size_t index) const {
  GroupNormStatsIo io;
  if (norm_mode_ == NormStats::Compute) return io;
  GroupNormStats& st = (*norm_stats_)[index];
  if (norm_mode_ == NormStats::Record) {
    io.record_mean = st.mean.data();
    io.record_var = st.var.data();
  } else {
    io.replay_mean = st.mean.data();
    io.replay_var = st.var.data();
  }
  return io;
}

void CpuPlan::run_steps(bool profile) {
  if (norm_mode_ == NormStats::Replay) check_replay_stats();
  if (norm_mode_ == NormStats::Record) {
    norm_stats_->resize(group_norm_sizes_.size());
    for (size_t k = 0; k < group_norm_sizes_.size(); ++k) {
      (*norm_stats_)[k].mean.assign(group_norm_sizes_[k], 0.0);
      (*norm_stats_)[k].var.assign(group_norm_sizes_[k], 0.0);
    }
  }
  const uint64_t changed = changed_steady_inputs();
  steady_valid_ = false;  // until this run completes: a throw leaves the held outputs stale
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  try {
    for (size_t i = 0; i < steps_.size(); ++i) {
      const uint64_t needs = steady_needs_.empty() ? 0 : steady_needs_[i];
      steps_[i].info.skipped = needs != 0 && (needs & changed) == 0;
      if (steps_[i].info.skipped) {
        steps_[i].info.seconds = steps_[i].info.cpu_seconds = 0;
        continue;
      }
      if (profile) {
        const double c0 = process_cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        steps_[i].run();
        steps_[i].info.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        steps_[i].info.cpu_seconds = process_cpu_seconds() - c0;
      } else {
        steps_[i].run();
      }
      if (!poison_after_.empty())
        for (const auto& [p, n] : poison_after_[i]) std::memset(p, 0xff, n);
    }
  } catch (...) {
    omp_set_num_threads(saved);
    throw;
  }
  omp_set_num_threads(saved);
  steady_valid_ = true;
}

uint64_t CpuPlan::changed_steady_inputs() {
  uint64_t changed = 0;
  for (size_t k = 0; k < steady_.size(); ++k) {
    SteadyInput& s = steady_[k];
    const void* now = inputs_[size_t(s.input)].buf->data();
    if (steady_valid_ && std::memcmp(now, s.last.data(), s.last.size()) == 0) continue;
    std::memcpy(s.last.data(), now, s.last.size());
    changed |= uint64_t(1) << k;
  }
  return changed;
}

void CpuPlan::run() {
  run_steps(false);
}

std::vector<StepInfo> CpuPlan::profile_run() {
  run_steps(true);
  return steps();
}

namespace {
// Rows [first, first+count) of a tensor whose first dimension is the batch.
int64_t checked_rows(const Shape& s, const std::string& name, int64_t first, int64_t count) {
  const int64_t n = s.empty() ? 1 : s[0];
  if (count < 0) count = n - first;
  if (first < 0 || count < 0 || first + count > n)
    throw Error("plan", name, "batch rows within 0.." + std::to_string(n),
                std::to_string(first) + "+" + std::to_string(count));
  return count;
}
}  // namespace

void Plan::set_input_nchw(const std::string& name, const float* src, int64_t first, int64_t count) {
  const Shape& s = input_shape(name);
  count = checked_rows(s, name, first, count);
  const int64_t row = s.empty() ? 1 : shape_numel(s) / s[0];
  float* dst = input_f32(name) + first * row;
  if (s.size() == 4)
    nchw_to_nhwc(src, dst, count, s[3], s[1], s[2]);
  else
    std::memcpy(dst, src, size_t(count * row) * sizeof(float));
}

void Plan::read_output_nchw(const std::string& name, float* dst, int64_t first,
                            int64_t count) const {
  const Shape& s = output_shape(name);
  count = checked_rows(s, name, first, count);
  const int64_t row = s.empty() ? 1 : shape_numel(s) / s[0];
  const float* src = output(name) + first * row;
  if (s.size() == 4)
    nhwc_to_nchw(src, dst, count, s[3], s[1], s[2]);
  else
    std::memcpy(dst, src, size_t(count * row) * sizeof(float));
}

Shape Plan::output_shape_nchw(const std::string& name) const {
  const Shape& s = output_shape(name);
  if (s.size() != 4) return s;
  return {s[0], s[3], s[1], s[2]};
}

}  // namespace sdc::cpu
