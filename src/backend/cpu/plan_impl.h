// The compiled plan's internals: what a prepared step is and what CpuPlan owns. Compiling (the
// planner: fusion, storage types, in-place, liveness, primitives) lives in planner.cpp; running
// and the Plan interface in plan.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/kernels.h"
#include "backend/cpu/plan.h"
#include "backend/cpu/weight_cache.h"

namespace sdc::cpu {

struct Step {
  std::function<void()> run;
  StepInfo info;
};

class CpuPlan final : public Plan {
 public:
  float* input_f32(const std::string& name) override;
  int32_t* input_i32(const std::string& name) override;
  void run() override;
  const float* output(const std::string& name) const override;
  const Shape& output_shape(const std::string& name) const override;
  const Shape& input_shape(const std::string& name) const override;
  size_t arena_bytes() const override {
    return (arena_ ? arena_->bytes() : 0) + (held_ ? held_->bytes() : 0);
  }
  size_t weight_bytes() const override;
  size_t scratch_bytes() const override { return scratch_ ? scratch_->bytes() : 0; }
  std::vector<StepInfo> steps() const override;
  std::vector<StepInfo> profile_run() override;
  void set_group_norm_stats(NormStats mode, std::vector<GroupNormStats>* stats) override;
  size_t group_norm_count() const override { return group_norm_sizes_.size(); }
  // The statistics the GroupNorm step `index` (in run order) shares with the caller (the planner's
  // closures call this on every run: nothing to do in Compute mode).
  GroupNormStatsIo group_norm_stats_io(size_t index) const;

  struct InputBuf {
    std::string name;
    DType dtype;
    Shape shape;
    std::unique_ptr<PackedWeight> buf;
  };
  struct OutputRef {
    std::string name;
    Shape shape;
    const float* data = nullptr;
  };

  // Filled by the planner.
  int threads = 1;
  dnnl::engine engine;
  dnnl::stream stream;
  std::vector<Step> steps_;
  std::vector<InputBuf> inputs_;
  std::vector<OutputRef> outputs_;
  std::unique_ptr<PackedWeight> arena_, scratch_;
  std::vector<std::shared_ptr<PackedWeight>> weights_;
  std::vector<std::vector<std::pair<void*, size_t>>> poison_after_;  // check mode, per step
  std::vector<size_t> group_norm_sizes_;  // N * G of each GroupNorm step, in run order
  // Steady inputs (graph::Attrs::steady) that some step depends on alone, with their bytes at
  // the last complete run; bit k of steady_needs_[i] says step i depends on steady_[k] (0: a
  // step that runs every time). held_: the memory of the steady steps' outputs that other steps
  // read, which no other plan shares.
  struct SteadyInput {
    int input = -1;  // index in inputs_
    std::vector<uint8_t> last;
  };
  std::vector<SteadyInput> steady_;
  std::vector<uint64_t> steady_needs_;
  std::unique_ptr<PackedWeight> held_;

 private:
  void run_steps(bool profile);
  // Throws unless *norm_stats_ fits this plan's GroupNorm steps (Replay).
  void check_replay_stats() const;
  // The steady inputs whose bytes changed since the last complete run (a bit each; all of them
  // before the first), remembering the new bytes.
  uint64_t changed_steady_inputs();
  bool steady_valid_ = false;  // the held outputs are those of steady_[k].last
  NormStats norm_mode_ = NormStats::Compute;
  std::vector<GroupNormStats>* norm_stats_ = nullptr;
};

}  // namespace sdc::cpu
