// The planner's W8A8 parts: which int8 steps share one quantised input, the scratch and operands
// of an int8 step, and its weights (scales and s8 values, through the weight cache).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "backend/cpu/dnnl_util.h"
#include "backend/cpu/int8_gemm.h"
#include "backend/cpu/int8_weights.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/planner.h"

namespace sdc::cpu {
namespace {
std::atomic<bool> g_int8_output_scales{false};
}  // namespace

void force_int8_output_scales(bool force) {
  g_int8_output_scales = force;
}
bool int8_output_scales_forced() {
  return g_int8_output_scales;
}

namespace detail {

void Planner::share_int8_inputs() {
  // Steps reading the same store read the same values in the same storage type, so they would
  // compute the same scale, zero point and codes: the first quantises, the others reuse.
  // Only steps with the same layout of codes share them: a convolution's codes have its frame.
  // Row-quantised codes (int8_gemm) and codes of one scale are not interchangeable either.
  using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, bool>;  // store, frame, rows
  std::map<Key, std::vector<size_t>> readers;  // input -> its int8 steps, in run order
  for (size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].int8 && !specs_[i].winograd) {  // Winograd quantises its transformed tiles
      const PaddedImages g = int8_codes_layout(specs_[i]);
      readers[{specs_[i].in[0], g.top, g.left, g.bottom, g.right, runs_row_gemm(specs_[i])}]
          .push_back(i);
    }
  for (const auto& [key, steps] : readers) {
    if (steps.size() < 2) continue;
    const int64_t n = int8_codes_layout(specs_[steps[0]]).codes();
    // One scale and zero point, or a scale and a zero point per row.
    const auto [M, K] = linear_rows(specs_[steps[0]]);
    const size_t bytes =
        std::get<5>(key) ? row_codes_bytes(M, K) : shared_codes_scale_offset(n) + 8;
    const int codes = arena_store(DType::U8, int64_t(bytes));
    for (size_t k = 0; k < steps.size(); ++k) {
      Spec& s = specs_[steps[k]];
      s.shared_codes = codes;
      s.reuses_codes = k > 0;
      if (s.reuses_codes) s.name.insert(s.name.find(".int8") + 5, ".reused");
    }
  }
}

void Planner::fuse_norm_codes() {
  if (!int8_) return;
  const std::set<int> kept = output_stores();  // their values must exist
  std::map<int, std::vector<size_t>> readers;  // store -> the steps reading it (any way)
  for (size_t i = 0; i < specs_.size(); ++i) {
    const Spec& s = specs_[i];
    for (int st : s.in)
      if (st >= 0) readers[find(st)].push_back(i);
    for (const PostOp& p : s.post)
      if (p.store >= 0) readers[find(p.store)].push_back(i);
  }
  for (Spec& norm : specs_) {
    if ((norm.kind != SK::LayerNorm && norm.kind != SK::GroupNorm) || norm.out < 0) continue;
    const int x = find(norm.out);
    const auto it = readers.find(x);
    if (kept.count(x) || it == readers.end()) continue;
    bool only_codes = true;
    for (size_t r : it->second) {
      const Spec& s = specs_[r];
      int reads = 0;
      for (int st : s.in) reads += st >= 0 && find(st) == x;
      for (const PostOp& p : s.post) reads += p.store >= 0 && find(p.store) == x;
      only_codes &= runs_row_gemm(s) && find(s.in[0]) == x && reads == 1;
    }
    if (!only_codes) continue;
    Spec& first = specs_[it->second.front()];
    int codes = first.shared_codes;
    if (codes < 0) {  // a single reader: a codes store of its own
      const auto [M, K] = linear_rows(first);
      codes = arena_store(DType::U8, int64_t(row_codes_bytes(M, K)));
    }
    for (size_t r : it->second) {
      Spec& s = specs_[r];
      s.shared_codes = codes;
      if (!s.reuses_codes) s.name.insert(s.name.find(".int8") + 5, ".reused");
      s.reuses_codes = true;
    }
    norm.codes_out = codes;
    norm.name += ".codes";
  }
}

size_t Planner::shared_codes_scale_offset(int64_t n) {
  return arena_aligned(size_t(n));
}

std::pair<int64_t, int64_t> Planner::linear_rows(const Spec& s) const {
  const Shape& ws = shape(s.node->inputs[1]);
  return {shape_numel(s.node->shape) / ws[0], ws[1]};
}

bool Planner::runs_row_gemm(const Spec& s) const {
  if (!s.int8) return false;
  const Shape& ws = shape(s.node->inputs[1]);
  if (s.kind == SK::LinearGeglu) return s.post.empty() && int8_gemm_fits(ws[1], ws[0] / 2);
  if (s.kind != SK::Linear || s.post.size() > 1) return false;
  if (!s.post.empty() && s.post[0].eltwise) return false;
  return int8_gemm_fits(ws[1], ws[0]);
}

Planner::Int8Scratch Planner::int8_scratch(size_t pad, int64_t n, int64_t channels) {
  Int8Scratch q;
  q.q = arena_aligned(pad);
  q.scales = arena_aligned(q.q + size_t(n));
  q.bias = arena_aligned(q.scales + size_t(channels) * sizeof(float));
  q.end = q.bias + size_t(channels) * sizeof(int32_t);
  return q;
}

void Planner::append_int8_rescale(dnnl::post_ops& po, const memory::desc& channel_md) {
  po.append_binary(dnnl::algorithm::binary_mul, channel_md);
}

void Planner::set_int8_output_scales(dnnl::primitive_attr& attr) {
  attr.set_output_scales(1 << 1, {DNNL_RUNTIME_F32_VAL});  // per output channel (dim 1)
}

void Planner::note_impl(const Spec& s, const char* impl_info) const {
  note_primitive(s.name + " " + s.label, impl_info);
}

int Planner::bind_int8_operands(std::unordered_map<int, memory>& args, const Int8Weight& w,
                                void* scales, void* bias) const {
  const dnnl::engine& e = plan_.engine;
  args[DNNL_ARG_BIAS] = memory(w.bias_md, e, bias);
  if (w.output_scales) {
    const memory::dim n = memory::dim(w.scales->bytes() / sizeof(float));
    args[DNNL_ARG_ATTR_OUTPUT_SCALES] = memory(memory::desc({n}, dt::f32, tag::a), e, scales);
    return 0;
  }
  args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] = memory(w.channel_md, e, scales);
  return 1;
}

void Planner::int8_channel_operands(const ActivationScale& a, const Int8Weight& w, float* scales,
                                    int32_t* bias) {
  const size_t n = w.scales->bytes() / sizeof(float);
  const float* ws = static_cast<const float*>(w.scales->data());
  const int32_t* sums = static_cast<const int32_t*>(w.sums->data());
  for (size_t o = 0; o < n; ++o) scales[o] = a.scale * ws[o];
  // |bias / scale| <= kMaxInt8Bias by the input's scale floor (min_input_scale).
  const float* b = w.bias ? static_cast<const float*>(w.bias->data()) : nullptr;
  for (size_t o = 0; o < n; ++o)
    bias[o] = (b ? int32_t(std::nearbyint(b[o] / scales[o])) : 0) - a.zero_point * sums[o];
}

PaddedImages Planner::int8_codes_layout(const Spec& s) const {
  PaddedImages g;
  const Shape& xs = shape(s.src);
  if (s.node->op != Op::Conv2d) {
    g.C = shape_numel(xs);
    return g;
  }
  g.N = xs[0], g.H = xs[1], g.W = xs[2], g.C = xs[3];
  if (s.upsample2x) {  // the phases' 2x2 convolution pads the small image by 1 (prepare_conv)
    g.top = g.left = g.bottom = g.right = 1;
  } else {
    const graph::Attrs& a = s.node->attrs;
    g.top = a.pad_top, g.left = a.pad_left, g.bottom = a.pad_bottom, g.right = a.pad_right;
  }
  return g;
}

void Planner::note_min_input_scale(const Spec& s, float min_scale) {
  if (s.shared_codes < 0) return;
  float& m = shared_min_scale_[s.shared_codes];
  m = std::max(m, min_scale);
}

Planner::Int8Input Planner::int8_input(const Spec& s, const Int8Scratch& q, float min_scale) const {
  Int8Input in;
  in.x = ptr(s.in[0]);
  in.type = stores_[size_t(s.in[0])].dtype;
  in.codes = int8_codes_layout(s);
  in.min_scale = min_scale;
  const int64_t n = in.codes.codes();
  if (s.shared_codes < 0) {
    in.q = static_cast<uint8_t*>(scratch()) + q.q;
    return in;
  }
  // Every sharer was prepared (and noted its floor) before any step binds.
  in.min_scale = shared_min_scale_.at(s.shared_codes);
  in.q = static_cast<uint8_t*>(ptr(s.shared_codes));
  in.scale = reinterpret_cast<float*>(in.q + shared_codes_scale_offset(n));
  in.zero_point = reinterpret_cast<int32_t*>(in.scale + 1);
  in.quantizes = !s.reuses_codes;
  return in;
}

Planner::Int8Weight Planner::int8_weight(const std::string& key, const TensorRef& w,
                                         const TensorRef* bias, const memory::desc& s8_src_md,
                                         const memory::desc& dst_md, const memory::desc& channel_md,
                                         const memory::desc& bias_md,
                                         const WeightTransform* transform) {
  if (!is_float(w.dtype))
    throw Error("plan", key, "a float weight to quantise", std::string(dtype_name(w.dtype)));
  Int8Weight q;
  q.channel_md = channel_md;
  const std::string what =
      WeightTransform::prefix(transform) + std::string(dtype_name(w.dtype)) + shape_str(w.shape);
  const size_t rows = size_t(w.shape.at(0) * (transform ? transform->rows : 1));
  // Scales and values come out of one pass over w, made at most once for both lookups, which
  // share w's content hash too.
  std::optional<Int8Packed> made;
  auto pack = [&]() -> const Int8Packed& {
    if (!made)
      made =
          pack_int8_weight(transform ? transform->weight(w) : w, s8_src_md, dst_md, plan_.engine);
    return *made;
  };
  std::optional<uint64_t> hash;
  q.scales = dnnl_weight(
      key, w, "int8 scales of " + what, rows * sizeof(float), [&] { return pack().scales; }, &hash);
  plan_.weights_.push_back(q.scales);
  q.sums = dnnl_weight(
      key, w, "int8 row sums of " + what, rows * sizeof(int32_t), [&] { return pack().sums; },
      &hash);
  plan_.weights_.push_back(q.sums);
  q.packed = dnnl_weight(
      key, w, "dnnl int8 " + what + " " + md_key(dst_md), dst_md.get_size(),
      [&] { return pack().values; }, &hash);
  plan_.weights_.push_back(q.packed);
  q.bias_md = bias_md;
  if (bias) {
    q.bias = f32_weight(key + " bias", *bias, transform);
    plan_.weights_.push_back(q.bias);
    const float* b = static_cast<const float*>(q.bias->data());
    const float* ws = static_cast<const float*>(q.scales->data());
    for (size_t o = 0; o < rows; ++o)
      q.min_input_scale = std::max(q.min_input_scale, std::fabs(b[o]) / (ws[o] * kMaxInt8Bias));
  }
  return q;
}

}  // namespace detail
}  // namespace sdc::cpu
