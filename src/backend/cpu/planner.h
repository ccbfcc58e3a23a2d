// The planner's internals, shared by its two files: the analysis (planner.cpp: fusion, storage
// types, Convert placement, liveness, memory) and the step builders (planner_steps.cpp: oneDNN
// primitives, weight packing, kernel closures). Not part of the backend's interface.
#pragma once

#include <climits>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/attention.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/plan_impl.h"
#include "backend/cpu/reference_impls.h"
#include "backend/cpu/weight_cache.h"
#include "backend/cpu/winograd_common.h"  // WinogradProducts::Type
#include "common/error.h"
#include "graph/graph.h"

namespace sdc::cpu {}  // namespace sdc::cpu

namespace sdc::cpu::detail {

using dnnl::memory;
using graph::Graph;
using graph::kNone;
using graph::Node;
using graph::Op;
using graph::ValueId;
using dt = memory::data_type;
using tag = memory::format_tag;

// How a consumer wants a value: f32; bf16 (conv/linear/attention inputs in BF16 mode); or
// either (norm inputs: statistics are f32 whatever the storage).
enum class Role { F32, Bf16Src, Any };

struct Group {
  ValueId main = kNone;    // node that defines the step
  ValueId out = kNone;     // value the step produces (its last node)
  ValueId gn_add = kNone;  // GroupNorm: the fused [N,C]-broadcast Add node feeding it
  // Conv2d: the 2x nearest upsampling feeding it, run as a 2x2 convolution over the small image
  // and a phase interleave (upsample_conv.h)
  ValueId upsample = kNone;
  struct Post {
    Op op;
    ValueId node;
    ValueId operand = kNone;  // Add: the other operand
  };
  std::vector<Post> post;  // Conv2d/Linear post-ops in order
};

struct Store {
  // Held: a steady step's output that other steps read, in the plan's own memory
  // (planner_steady.cpp).
  enum Kind { Arena, Input, Weight, Held } kind = Arena;
  DType dtype = DType::F32;
  size_t bytes = 0;
  int input = -1;
  std::shared_ptr<PackedWeight> weight;
  int parent = -1;  // in-place union-find
  int first = INT_MAX, last = -1;
  int buffer = -1;         // memory-plan buffer of a root arena store
  size_t held_offset = 0;  // of a Held store in CpuPlan::held_
};

enum class SK {
  Conv,
  Linear,
  LinearGeglu,
  GroupNorm,
  LayerNorm,
  Attention,
  Unary,
  Geglu,
  Binary,
  Upsample,
  Concat,
  Slice,
  Timestep,
  Embedding,
  Convert,
  Copy
};

struct PostOp {
  bool eltwise = true;
  dnnl::algorithm alg = dnnl::algorithm::undef;
  float alpha = 0, beta = 0;
  int store = -1;  // Add operand
  bool sum = false;
};

struct Spec {
  SK kind;
  std::string name, label;
  const Node* node = nullptr;
  std::vector<int> in;  // input stores (-1 for absent)
  int out = -1;
  std::vector<PostOp> post;
  int64_t macs = 0;
  Unary unary = Unary::Gelu;
  Binary binary = Binary::Add;
  Broadcast bc = Broadcast::None;
  int64_t n = 0;            // element counts for Convert/Copy
  ValueId src = kNone;      // the (first) value read: of an upsample-conv, the small image
  bool upsample2x = false;  // Conv: fused 2x nearest upsampling (Group::upsample)
  // LinearGeglu: the GELU(gate) buffer; upsample-conv: the four phases' output; live within the
  // step
  int tmp = -1;
  bool int8 = false;      // Conv/Linear/LinearGeglu: W8A8 (the input is quantised on every run)
  bool winograd = false;  // Conv: Winograd F(2x2, 3x3) (winograd_conv.h), bf16 or with int8 W8A8
  // with `winograd`: F(4x4, 3x3) instead (winograd_f4.h), f32 plans; with `upsample2x`, F(4x4, 2x2)
  // phases (winograd_upsample_f4.h)
  bool winograd4 = false;
  bool narrow = false;  // Conv: to a few output channels, input channels in lanes (narrow_conv.h)
  // W8A8 steps reading one input share its quantised form: an arena store of the u8 codes, the
  // activation scale and the zero point, written by the first of them on each run.
  int shared_codes = -1;
  bool reuses_codes = false;  // an earlier step quantised the input into shared_codes
  // LayerNorm/GroupNorm: the shared_codes store it writes its output into as W8A8 row codes
  // (only int8_gemm steps read that output), instead of the output itself; -1: the output.
  int codes_out = -1;
  TensorRef table;  // Embedding without a table store: the source weight, read in place
  // The steady inputs (bits of CpuPlan::steady_) it depends on alone; 0: it runs on every run.
  uint64_t steady_needs = 0;
};

inline dt dnnl_dt(DType t) {
  return t == DType::BF16 ? dt::bf16 : dt::f32;
}

// Weight-cache format of a tensor converted to plain f32 (biases, norm weights, tables).
inline std::string f32_format(const TensorRef& t) {
  return "f32 from " + std::string(dtype_name(t.dtype)) + shape_str(t.shape);
}

[[noreturn]] inline void fail(const Node& n, const std::string& expected,
                              const std::string& found) {
  throw Error("plan", std::string(graph::op_name(n.op)) + (n.name.empty() ? "" : " " + n.name),
              expected, found);
}

class Planner {
 public:
  Planner(const Graph& g, const PlanOptions& o, CpuPlan& plan)
      : g_(g),
        opt_(o),
        plan_(plan),
        bf16_(o.precision == Precision::BF16 ||
              (o.precision == Precision::INT8 && bf16_is_faster())),
        int8_(o.precision == Precision::INT8),
        bf16_residuals_(bf16_ && o.bf16_residuals) {}

  void compile() {
    analyse();
    fuse();
    choose_storage();
    build_specs();
    share_int8_inputs();
    fuse_norm_codes();
    hold_steady_values();
    plan_in_place();
    prepare_and_bind();
  }

 private:
  const Graph& g_;
  PlanOptions opt_;
  CpuPlan& plan_;
  bool bf16_;
  bool int8_;
  bool bf16_residuals_;  // PlanOptions::bf16_residuals, where values are stored as bf16 at all
  size_t nv_ = 0;
  std::vector<std::vector<std::pair<ValueId, int>>> uses_;  // consumer node, input slot
  std::vector<int> use_count_;
  std::vector<ValueId> root_;
  std::vector<bool> is_output_;
  std::vector<int> group_of_;  // node -> group index (or -1)
  std::vector<Group> groups_;
  std::vector<DType> storage_;      // per root value
  std::vector<bool> needs_shadow_;  // per root value: a bf16 copy for bf16 consumers
  std::vector<int> vstore_, vshadow_;
  std::vector<Store> stores_;
  std::vector<Spec> specs_;

  const Node& node(ValueId v) const { return g_.node(v); }
  // A node this plan may run in int8 (int8 plan, layer allowed by the graph): Conv2d/Linear W8A8;
  // Attention where Int8Attention also takes the shape.
  bool runs_int8(const Node& n) const { return int8_ && n.attrs.int8; }
  // The AttentionKernel shape of an Attention spec (its input stores chosen; s.int8 copied).
  AttentionShape attention_shape(const Node& m, const Spec& s) const;
  const Shape& shape(ValueId v) const { return g_.shape(v); }

  // ---- 1. analysis and fusion -------------------------------------------------------------

  void analyse();

  // The single consumer node of v, if v has exactly one use and is not an output.
  ValueId sole_consumer(ValueId v) const;

  void fuse();

  void add_group(Group grp);

  // The UpsampleNearest (exactly 2x, read only here) feeding a 3x3 stride-1 pad-1 Conv2d group
  // with no residual post-op, or kNone.
  ValueId fusable_upsample(const Group& conv) const;

  Broadcast broadcast_of(const Node& n) const;

  // The values a group reads and how it wants them (weights of conv/linear are not listed).
  std::vector<std::pair<ValueId, Role>> group_inputs(const Group& grp) const;

  bool can_emit_bf16(const Group& grp) const;

  // ---- 2. storage types ---------------------------------------------------------------------

  void choose_storage();
  // An int8 plan without bf16 activations (a CPU without AVX-512 BF16): a norm's output read by
  // W8A8 layers alone is stored bf16 all the same, as bf16 plans store it — it is quantised
  // anyway, and bf16 halves the bytes the norm writes and the layers' quantisers read (GroupNorm
  // + SiLU before each of the decoders' int8 convolutions).
  void store_int8_inputs_as_bf16();

  // ---- 3. specs and stores ------------------------------------------------------------------

  int new_store(Store s);

  int arena_store(DType t, int64_t numel);

  // The store holding value v for a consumer with `role`.
  int store_of(ValueId v, Role role);
  std::vector<ValueId> shadowed_;

  // Inserts the Convert step of every bf16 shadow where it costs least memory: right after the
  // f32 value's last f32 use when that comes before the first bf16 use (the f32 buffer then
  // dies at the Convert), else right before the first bf16 use.
  void place_converts();

  void build_specs();
  std::vector<std::pair<ValueId, int>> copied_outputs_;

  void add_group_spec(const Group& grp);

  // W8A8 steps reading the same store get one shared_codes store (planner_int8.cpp).
  void share_int8_inputs();
  // Byte offset of the activation scale (then the zero point) after n codes in shared_codes
  // (row-quantised codes lie as row_codes_in lays them).
  static size_t shared_codes_scale_offset(int64_t n);

  // A LayerNorm or GroupNorm whose output only int8_gemm steps read (as their input, nothing
  // else, not a graph output) writes their row codes itself (layer_norm_row_codes,
  // group_norm_row_codes): its output is never stored, and they all reuse the codes
  // (planner_int8.cpp).
  void fuse_norm_codes();
  // Whether a W8A8 linear or GEGLU projection runs as int8_gemm (int8_gemm.h: its input
  // quantised per row, the rescale, bias, residual and GEGLU in its own epilogue) rather than
  // oneDNN matmuls: a shape it fits and no post-op but a residual (sum or add; none after GEGLU).
  bool runs_row_gemm(const Spec& s) const;
  // The linear's input rows M and their length K.
  std::pair<int64_t, int64_t> linear_rows(const Spec& s) const;

  // Marks the steps that depend on steady inputs alone (Spec::steady_needs) and makes their
  // outputs that other steps read Held (planner_steady.cpp).
  void hold_steady_values();

  // The root stores of the graph's outputs (copied ones included): what the caller reads.
  std::set<int> output_stores();

  // ---- 4. liveness and in-place -------------------------------------------------------------

  int find(int s);

  void plan_in_place();

  // ---- 5. primitives, memory, binding -------------------------------------------------------

  struct Prepared {
    size_t scratch = 0;
    std::function<std::function<void()>()> bind;  // called once pointers are known
  };

  void* ptr(int st) const;
  std::vector<size_t> offsets_;
  void* scratch() const { return plan_.scratch_ ? plan_.scratch_->data() : nullptr; }

  // A binary post-op operand's descriptor: `f32_md`'s layout in the operand store's type.
  memory::desc operand_md(const memory::desc& f32_md, int store) const;
  // The step's post-ops; a W8A8 step first rescales by `int8_scale` (a per-output-channel
  // operand: activation scale x weight scale).
  dnnl::post_ops make_post_ops(const Spec& s, const memory::desc& dst_f32,
                               const memory::desc* int8_scale = nullptr) const;

  // W8A8 weights of a conv/linear (or rows of one, for GEGLU's halves): per-output-channel
  // scales and the s8 values packed as `dst_md`, both through the weight cache and the
  // ahead-of-time packed section under `key`.
  // A change of a weight (and its bias) made before packing — the upsample-conv's phase kernel —
  // named in the cache formats; `rows`: output rows per source row.
  struct WeightTransform {
    std::string name;
    std::function<TensorRef(const TensorRef&)> weight, bias;
    int64_t rows = 1;
    // What a cache format of a weight made by `t` starts with ("" for none).
    static std::string prefix(const WeightTransform* t) { return t ? t->name + " of " : ""; }
  };
  struct Int8Weight {
    std::shared_ptr<PackedWeight> packed, scales, bias;  // bias: f32 [Co] or null
    std::shared_ptr<PackedWeight> sums;  // s32 [Co]: each output channel's sum of s8 values
    memory::desc channel_md;             // a [Co] operand broadcast over the output (the scales)
    // The s32 bias in the sums' units, which also takes the input's zero point: every W8A8
    // primitive has one, with or without a bias of the layer's own.
    memory::desc bias_md;
    // The smallest activation scale at which every bias, in the sums' units, stays within
    // kMaxInt8Bias (int8_weight; 0 without a bias).
    float min_input_scale = 0.f;
    // The rescale goes to the primitive as runtime output scales, not as post-op 0
    // (int8_primitive_desc).
    bool output_scales = false;
  };
  // Biases in sums' units stay below 2^30: the s32 sums themselves stay below K * 255 * 127,
  // under 2^30 for any K up to 33000 (SD's largest is 23040, a 3x3 over 2560 channels), and so
  // does the zero point's share, zero point x the row's sum. The s32 bias (bias minus that share)
  // and the result, sum (q - zp) w plus the bias, both stay below 2^31.
  static constexpr float kMaxInt8Bias = 1073741824.f;
  // `channel_md` and `bias_md`: the primitive's descriptors of the rescale and bias operands.
  Int8Weight int8_weight(const std::string& key, const TensorRef& w, const TensorRef* bias,
                         const memory::desc& s8_src_md, const memory::desc& dst_md,
                         const memory::desc& channel_md, const memory::desc& bias_md,
                         const WeightTransform* transform = nullptr);
  // Scratch offsets of a W8A8 step after its oneDNN scratchpad of `pad` bytes: the u8 copy of
  // the input (`n` codes, a convolution's frame included; 0 with shared codes), and
  // `channels` per-output-channel scales and s32 biases.
  struct Int8Scratch {
    size_t q = 0, scales = 0, bias = 0, end = 0;
  };
  static Int8Scratch int8_scratch(size_t pad, int64_t n, int64_t channels);
  // A W8A8 primitive's first post-op: the rescale of the s32 sums (plus the s32 bias, which the
  // primitive adds itself) by a per-channel operand, activation scale x weight scale. A bias
  // as an f32 binary post-op instead cost oneDNN 2.6's int8 matmuls ~20 %.
  static void append_int8_rescale(dnnl::post_ops& po, const memory::desc& channel_md);
  // A W8A8 primitive descriptor from make(output_scales): the rescale as that binary post-op
  // (false), unless oneDNN answers it with its reference code and takes the same step as runtime
  // output scales (true) with a fast kernel — its AVX2 GEMM does not fuse the binary rescale
  // followed by a residual sum, so on AVX-VNNI CPUs every int8 linear with a residual ran the
  // reference loops (a 256x256 UNet step took minutes). `output_scales` says which one it is.
  template <class Make>
  static auto int8_primitive_desc(const Make& make, bool& output_scales) {
    auto pd = make(false);
    output_scales = false;
    const bool forced = int8_output_scales_forced();
    if (forced || is_reference_impl(pd.impl_info_str())) {
      try {
        auto alt = make(true);
        if (forced || !is_reference_impl(alt.impl_info_str())) pd = alt, output_scales = true;
      } catch (const dnnl::error&) {
        // No kernel at all takes output scales with these post-ops: the first form stays.
      }
    }
    return pd;
  }
  // The attribute of a W8A8 primitive whose rescale is runtime output scales (per channel).
  static void set_int8_output_scales(dnnl::primitive_attr& attr);
  // Records the step's oneDNN implementation where it is a reference one (reference_impls.h).
  void note_impl(const Spec& s, const char* impl_info) const;
  // Binds the rescale operand and the s32 bias (`scales` and `bias` in scratch); returns the
  // index of the step's own first post-op in the chain.
  int bind_int8_operands(std::unordered_map<int, memory>& args, const Int8Weight& w, void* scales,
                         void* bias) const;
  // What a W8A8 step computes before its primitives run, from the activation scale a.scale: the
  // rescale operand a.scale * weight scale, and the s32 bias round(bias / that) minus
  // a.zero_point x the channel's sum of s8 values. The primitives see the u8 codes as they are
  // (no oneDNN zero point), so the bias takes the zero point's share: sum (q - zp) w =
  // sum q w - zp sum w.
  static void int8_channel_operands(const ActivationScale& a, const Int8Weight& w, float* scales,
                                    int32_t* bias);
  // Where a W8A8 step's input codes go: a convolution's images with its padding as a frame of
  // zero points (its primitive then pads nothing), anything else as one dense row of values.
  PaddedImages int8_codes_layout(const Spec& s) const;
  // What a W8A8 step does before its primitives run: quantise its input (laid out as `codes`)
  // into `q` (scratch, or the shared codes) with a scale of at least `min_scale`, store the
  // scale and zero point for the steps sharing the codes, and return them. A step reusing
  // shared codes only reads them back.
  struct Int8Input {
    const void* x = nullptr;
    DType type = DType::F32;
    PaddedImages codes;
    uint8_t* q = nullptr;
    int32_t* zero_point = nullptr;  // shared codes only
    float* scale = nullptr;         // shared codes only
    float min_scale = 0.f;
    bool quantizes = true;
    ActivationScale quantize() const {
      if (!quantizes) return ActivationScale{*scale, *zero_point};
      const ActivationScale a = quantize_u8_padded(x, type, codes, q, min_scale);
      if (scale) *scale = a.scale, *zero_point = a.zero_point;
      return a;
    }
  };
  // The step's input; `min_scale` is the step's own floor (steps sharing codes quantise with
  // the largest floor of them all, noted by note_min_input_scale).
  Int8Input int8_input(const Spec& s, const Int8Scratch& q, float min_scale) const;
  void note_min_input_scale(const Spec& s, float min_scale);
  std::unordered_map<int, float> shared_min_scale_;  // shared_codes store -> largest floor

  // The weight of `w` (made by `transform` first, when given) packed as `dst_md`.
  std::shared_ptr<PackedWeight> packed(const Node& w, const memory::desc& src_md,
                                       const memory::desc& dst_md,
                                       const WeightTransform* transform = nullptr);

  // A bias or norm weight as plain f32 (made by `transform` first, when given), looked up as a
  // packed weight named `key` — so a compiled file holds these too and planning never reads the
  // sources, whose small tensors lie scattered among the big ones (cold, each read pulls a 2 MiB
  // page-cache folio from disk); packed_f32 also keeps it with the plan.
  std::shared_ptr<PackedWeight> f32_weight(const std::string& key, const TensorRef& t,
                                           const WeightTransform* transform = nullptr);
  std::shared_ptr<PackedWeight> packed_f32(const Node& w,
                                           const WeightTransform* transform = nullptr);
  // A weight in the form a step reads (a oneDNN layout, int8 scales or sums, plain f32): the
  // ahead-of-time packed copy when one is offered for (key, format) with the expected size, else
  // the shared cache's (packing with `make` if needed; `hash`: see WeightCache::get). Reported to
  // the PrepackedWeights recorder either way.
  std::shared_ptr<PackedWeight> dnnl_weight(const std::string& key, const TensorRef& t,
                                            const std::string& format, size_t packed_bytes,
                                            const WeightCache::Maker& make,
                                            std::optional<uint64_t>* hash = nullptr);

  // A oneDNN primitive with its memories; binds pointers later.
  Prepared dnnl_step(const Spec& s, dnnl::primitive prim, const memory::desc& src_md,
                     const memory::desc& w_md, std::shared_ptr<PackedWeight> w,
                     const memory::desc& b_md, std::shared_ptr<PackedWeight> b,
                     const memory::desc& dst_md, const memory::desc& post_md,
                     const memory::desc& pad_md, const Int8Weight* int8 = nullptr,
                     int64_t images = 1);
  // How many times a Linear spec's f32 matmul runs, once per image (the node's leading dimension),
  // rather than over all M rows at once: where oneDNN's f32 matmul is its GEMM (no AVX-512),
  // whose blocking follows M, so an image's rows came out a few ulps apart in a batch of 2 and
  // alone (an image of a batch then differed from the same seed alone); 1 elsewhere.
  int64_t matmul_images(const Spec& s, const dnnl::matmul::primitive_desc& pd) const;

  // Also a Conv spec with a fused 2x upsampling (Spec::upsample2x; upsample_conv.h).
  Prepared prepare_conv(const Spec& s);

  // Whether a Conv spec (its input store and post-ops chosen) runs as Winograd
  // (planner_winograd.cpp): 3x3, stride 1, padding 1, bf16 input, at most one residual add, a
  // shape winograd_pays (int8: winograd_int8_pays) for, and PlanOptions::winograd; with a fused
  // 2x upsampling, no post-op and a shape winograd_upsample_pays (int8:
  // winograd_upsample_int8_pays) for (then no tmp: it writes the big image itself).
  bool runs_winograd(const Spec& s) const;
  // Whether a Winograd spec of an f32 plan takes F(4x4, 3x3) (winograd_f4_pays), or with a fused
  // upsampling F(4x4, 2x2) phases (winograd_upsample_f4_pays); PlanOptions::winograd_f4 on.
  bool runs_winograd_f4(const Spec& s) const;
  // Whether a Conv spec is a 3x3 convolution, stride 1, padding 1 all round (the shape the
  // Winograd and narrow paths take).
  bool is_same_3x3(const Spec& s) const;
  // Whether a Conv spec's post-ops end in a plain ReLU (TAESD's blocks).
  static bool ends_in_relu(const Spec& s);
  // The products' type of a Winograd spec: int8 plans' W8A8, else the plan's precision.
  WinogradProducts::Type winograd_type(const Spec& s) const;
  Prepared prepare_winograd_conv(const Spec& s);
  Prepared prepare_winograd_upsample(const Spec& s);
  Prepared prepare_winograd_f4(const Spec& s);
  Prepared prepare_winograd_upsample_f4(const Spec& s);
  // Whether a Conv spec runs the few-output-channel path (planner_narrow_conv.cpp): a bf16 plan's
  // 3x3, stride 1, padding 1 convolution with no post-op and a shape narrow_conv_pays for.
  bool runs_narrow_conv(const Spec& s) const;
  Prepared prepare_narrow_conv(const Spec& s);
  // A Winograd int8 kernel's s8 rows (`rows`: the transform to a row per point and output
  // channel), packed as `packed_md` into `packed`, and their scales and sums.
  std::shared_ptr<WinogradInt8Kernels> winograd_int8_kernels(const Node& wn,
                                                             const WeightTransform& rows,
                                                             const memory::desc& packed_md,
                                                             std::shared_ptr<PackedWeight>& packed);

  Prepared prepare_linear(const Spec& s);
  Prepared prepare_row_gemm(const Spec& s);  // runs_row_gemm

  // Rows [r0, r0 + rows) of a [R, ...] weight or [R] bias, as a TensorRef on the same bytes.
  static TensorRef rows_of(const TensorRef& t, int64_t r0, int64_t rows);
  // The packed-weight name of those rows, "name[r0:r0 + rows]" (GEGLU's halves: oneDNN's and
  // int8_gemm's must match, a compiled file holding them under it).
  static std::string rows_name(const std::string& name, int64_t r0, int64_t rows);

  Prepared prepare_linear_geglu(const Spec& s);

  template <class F>
  Prepared simple(size_t scratch_bytes, F make) {
    Prepared p;
    p.scratch = scratch_bytes;
    p.bind = [make]() { return std::function<void()>(make()); };
    return p;
  }

  Prepared prepare(const Spec& s);

  void prepare_and_bind();
};

}  // namespace sdc::cpu::detail
