// The CPU backend's public face: compile a graph::Graph once into a Plan (oneDNN primitives,
// weights reordered/cast to the kernels' layout, one activation arena sized by liveness), then
// run() it as often as needed with no allocation inside.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace sdc::cpu {

class ActivationArena;

// INT8: the graph's int8-eligible layers (graph::Attrs::int8: the UNet's big convolutions and
// linears) run W8A8 — weights s8 with one scale per output channel, activations u8 with a scale
// and zero point computed from the values on every run (no calibration): per row (token, pixel)
// for the linears int8_gemm runs (AVX-512 VNNI), per tensor for the rest; s32 accumulation,
// f32 out;
// every other step runs as `auto` would (bf16 where bf16_is_faster(), else f32).
enum class Precision { F32, BF16, INT8 };

// True when the CPU has AVX512-BF16 or AMX-BF16.
bool cpu_has_bf16();
// True when bf16 convolutions beat f32 ones here — AMX-BF16, or AMD's AVX512-BF16 — which is what
// `--precision auto` (and INT8's other steps) choose by; on other bf16-capable CPUs, bf16 only
// halves weight memory (`--precision bf16` still asks for that).
bool bf16_is_faster();
// "f32" | "bf16" | "auto" | "int8" -> Precision; throws sdc::UsageError for anything else. "bf16"
// on an AVX-512 CPU without native bf16 still works (oneDNN emulates, slowly); auto picks F32
// there. Plan::compile throws sdc::UsageError for BF16 on a CPU without AVX-512 (oneDNN has no bf16
// kernels for it).
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);
// Whether Plan::compile takes precision p on this CPU: f32 always, bf16 with AVX-512, int8 with a
// VNNI dot product (isa_has_int8_dot). What `sdc bench --precision both|all` and the tests that
// skip a refused precision go by.
bool precision_available(Precision p);
// Tests: W8A8 steps on oneDNN pass their rescale as runtime output scales, the form planned where
// the binary post-op form would run oneDNN's reference code (AVX-VNNI CPUs' residual linears).
void force_int8_output_scales(bool force);
bool int8_output_scales_forced();

struct PlanOptions {
  Precision precision = Precision::F32;  // BF16: bf16 matmul/conv inputs, f32 accumulation,
                                         // f32 norms/softmax/residual stream (but see below)
  // With BF16 (and INT8's bf16 storage): residual sums fused into a conv/linear may be stored
  // as bf16 too, as PyTorch autocast does (a sum read only by norms, matmuls and later fused
  // sums); the adds still accumulate in f32. Halves the bytes a memory-bound decoder moves.
  bool bf16_residuals = false;
  int threads = 0;  // 0 = all cores
  // With BF16: large 3x3 convolutions run as Winograd F(2x2, 3x3) where that is faster here
  // (winograd_pays, winograd_conv.h): the VAE decoder's layers and the UNet's from 16x16 pixels,
  // ~1.45x VAE decode and ~1.1x UNet step at 512x512, at ~3.5x a layer's bf16 error. INT8 plans'
  // W8A8 ones likewise with u8 x s8 products (winograd_int8_pays), at ~2.5x a layer's int8 error.
  // Convolutions over a fused 2x upsampling take the F(2x2, 2x2) phases (winograd_upsample.h).
  bool winograd = true;
  // With it, f32 plans' convolutions with enough 4x4 blocks take Winograd F(4x4, 3x3) instead of
  // F(2x2, 3x3) (winograd_f4_pays, winograd_f4.h): 1.78x fewer products, f32 error ~1e-6.
  bool winograd_f4 = true;
  // Check mode (tests): verify at compile that no two simultaneously live values share arena
  // bytes, and poison each buffer with NaN after its last use during run(), so that a planner
  // bug shows up as NaN outputs.
  bool check = false;
  // Where the activation arena and the kernels' scratch live: plans compiled with the same
  // (non-null) arenas share their bytes — the caller promises never to run two of them at once,
  // and reads a plan's outputs before running another. Null: the plan allocates its own.
  std::shared_ptr<ActivationArena> arena, scratch;
};

// One prepared step of a plan: what it runs (fused ops joined by '+', e.g.
// "Conv2d+sum", "GroupNorm+add+silu") and, after profile_run(), its time.
struct StepInfo {
  std::string kind;
  std::string label;
  DType out_type = DType::F32;  // storage of the value it writes (BF16 when read only as bf16)
  int64_t macs = 0;
  double seconds = 0;      // wall-clock time of the last profile_run()
  double cpu_seconds = 0;  // CPU time of all threads in it (robust on a loaded machine)
  // It depends on steady inputs alone (graph::Attrs::steady): run() runs it only when one of
  // them changed, and keeps its output in the plan's own memory in between.
  bool steady = false;
  bool skipped = false;  // profile_run(): it was not run (its steady inputs had not changed)
};

// The statistics one GroupNorm step normalised with, per (image, group): [N * G] each, row-major.
struct GroupNormStats {
  std::vector<double> mean, var;
};
// Where a plan's GroupNorm steps take their statistics from (see Plan::set_group_norm_stats).
enum class NormStats { Compute, Record, Replay };

class Plan {
 public:
  static std::unique_ptr<Plan> compile(const graph::Graph& g, const PlanOptions& options);
  virtual ~Plan() = default;

  // Buffers of the graph's inputs, filled by the caller before run(). Throws sdc::Error for an
  // unknown name or the wrong element type.
  virtual float* input_f32(const std::string& name) = 0;
  virtual int32_t* input_i32(const std::string& name) = 0;
  // Steps that depend on steady inputs alone (graph::Attrs::steady; StepInfo::steady) run only
  // when one of those inputs' bytes differ from the last complete run()'s.
  virtual void run() = 0;
  // Results of the last run() (valid until the next run()), f32, in the graph's shape.
  virtual const float* output(const std::string& name) const = 0;
  virtual const Shape& output_shape(const std::string& name) const = 0;
  virtual const Shape& input_shape(const std::string& name) const = 0;

  // Image-like (4-D) inputs and outputs in the caller's NCHW order, whatever layout the plan
  // keeps them in. `first`/`count` select batch rows of the plan's tensor (count -1: all from
  // first); `src`/`dst` hold exactly those rows. 2-D/3-D tensors are copied as they are.
  void set_input_nchw(const std::string& name, const float* src, int64_t first = 0,
                      int64_t count = -1);
  void read_output_nchw(const std::string& name, float* dst, int64_t first = 0,
                        int64_t count = -1) const;
  // NCHW shape of an output (the graph's NHWC shape reordered for 4-D outputs).
  Shape output_shape_nchw(const std::string& name) const;

  // Activation memory: the arena's, and the plan's own for the steady steps' outputs.
  virtual size_t arena_bytes() const = 0;
  virtual size_t weight_bytes() const = 0;   // weights as reordered/cast for the kernels
  virtual size_t scratch_bytes() const = 0;  // kernel scratch (oneDNN scratchpads, attention tiles)

  // The prepared steps in run order.
  virtual std::vector<StepInfo> steps() const = 0;
  // run() that also times every step (for `sdc bench` and the micro-benchmarks).
  virtual std::vector<StepInfo> profile_run() = 0;

  // GroupNorm statistics shared between runs (VAE tiling normalises every tile with the whole
  // image's). Compute (the default; `stats` unused): each step computes its own. Record: run()
  // also stores them in *stats, one entry per GroupNorm step in run order. Replay: run() uses
  // (*stats)[k] for the k-th GroupNorm step instead; throws sdc::Error (here and at run()) unless
  // *stats holds group_norm_count() entries of the sizes this plan's steps take. The plan keeps
  // the pointer until the next call.
  virtual void set_group_norm_stats(NormStats mode, std::vector<GroupNormStats>* stats) = 0;
  virtual size_t group_norm_count() const = 0;
};

}  // namespace sdc::cpu
