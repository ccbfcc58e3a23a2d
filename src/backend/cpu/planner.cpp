// Plan::compile — the planner. In order:
//  1. fusion: Conv2d/Linear absorb following single-use Gelu/QuickGelu/Silu/Relu/Tanh/Scale (oneDNN
//  eltwise
//     post-ops) and full-shape Adds (sum post-op in place when the residual dies there, else a
//     binary post-op); a GroupNorm absorbs a preceding [N,C]-broadcast Add (the ResNet time
//     embedding); Reshape is an alias.
//  2. storage types: with BF16, a value whose every consumer is a conv/linear input or attention
//     is stored as bf16 by its producer (GroupNorm+SiLU, LayerNorm, GEGLU, attention, convs,
//     nearest upsampling ...);
//     otherwise it stays f32 and a Convert step makes a bf16 copy for the bf16 consumers.
//  3. liveness: steps in graph order; elementwise steps, norms and sum post-ops reuse a dying
//     input's buffer; buffers get arena offsets (memory_plan.h).
//  4. primitives and weights: oneDNN convolution/matmul with format_tag::any weights, packed once
//     through the shared WeightCache.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "backend/cpu/activation_arena.h"
#include "backend/cpu/attention_int8.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/dnnl_util.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/planner.h"
#include "backend/cpu/prepacked_weights.h"

namespace sdc::cpu {
namespace detail {

namespace {
// The plan's block of a shared arena (which the plan then keeps alive), or its own allocation
// where there is none or the block does not fit its reservation.
std::unique_ptr<PackedWeight> arena_block(const std::shared_ptr<ActivationArena>& shared,
                                          size_t bytes) {
  if (shared)
    if (void* p = shared->acquire(bytes)) return std::make_unique<PackedWeight>(p, bytes, shared);
  return std::make_unique<PackedWeight>(bytes);
}
}  // namespace

void Planner::analyse() {
  const auto& nodes = g_.nodes();
  nv_ = nodes.size();
  uses_.assign(nv_, {});
  use_count_.assign(nv_, 0);
  root_.resize(nv_);
  is_output_.assign(nv_, false);
  for (size_t i = 0; i < nv_; ++i) {
    const Node& n = nodes[i];
    for (size_t s = 0; s < n.inputs.size(); ++s) {
      const ValueId in = n.inputs[s];
      if (in == kNone) continue;
      if (in < 0 || size_t(in) >= i) fail(n, "inputs defined before the node", std::to_string(in));
      uses_[size_t(in)].emplace_back(ValueId(i), int(s));
      ++use_count_[size_t(in)];
    }
    root_[i] = n.op == Op::Reshape ? root_[size_t(n.inputs[0])] : ValueId(i);
  }
  for (const auto& [name, v] : g_.outputs()) {
    if (v < 0 || size_t(v) >= nv_)
      throw Error("plan", "output " + name, "a value of the graph", std::to_string(v));
    is_output_[size_t(v)] = true;
    is_output_[size_t(root_[size_t(v)])] = true;
  }
}

ValueId Planner::sole_consumer(ValueId v) const {
  if (use_count_[size_t(v)] != 1 || is_output_[size_t(v)]) return kNone;
  return uses_[size_t(v)][0].first;
}

void Planner::fuse() {
  group_of_.assign(nv_, -1);
  const auto& nodes = g_.nodes();
  // Conv2d / Linear chains.
  for (size_t i = 0; i < nv_; ++i) {
    const Node& n = nodes[i];
    if (n.op != Op::Conv2d && n.op != Op::Linear) continue;
    Group grp;
    grp.main = grp.out = ValueId(i);
    for (;;) {
      const ValueId c = sole_consumer(grp.out);
      if (c == kNone || group_of_[size_t(c)] >= 0) break;  // taken by an earlier chain
      const Node& cn = node(c);
      if (n.op == Op::Linear && grp.post.empty() && cn.op == Op::Geglu) {
        // GEGLU after a projection: two matmuls (gate with a GELU post-op, value with a
        // multiply post-op), no 2x-wide intermediate.
        grp.post.push_back({Op::Geglu, c, kNone});
        grp.out = c;
        break;
      }
      if (cn.op == Op::Gelu || cn.op == Op::QuickGelu || cn.op == Op::Silu || cn.op == Op::Relu ||
          cn.op == Op::Tanh || cn.op == Op::Scale) {
        grp.post.push_back({cn.op, c, kNone});
      } else if (cn.op == Op::Add && shape(cn.inputs[0]) == shape(cn.inputs[1]) &&
                 cn.inputs[0] != cn.inputs[1]) {
        const ValueId other = cn.inputs[0] == grp.out ? cn.inputs[1] : cn.inputs[0];
        // Two projections meeting in an Add (a ResNet's conv2 and its 1x1 shortcut): the one made
        // last takes it, so the earlier one runs where it stands and its input can die there.
        const Node& on = node(other);
        if (size_t(other) > i && (on.op == Op::Conv2d || on.op == Op::Linear) &&
            sole_consumer(other) == c)
          break;
        grp.post.push_back({Op::Add, c, other});
      } else {
        break;
      }
      grp.out = c;
    }
    if (n.op == Op::Conv2d) grp.upsample = fusable_upsample(grp);
    add_group(std::move(grp));
  }
  // GroupNorm with a preceding time-embedding add.
  for (size_t i = 0; i < nv_; ++i) {
    const Node& n = nodes[i];
    if (n.op != Op::GroupNorm) continue;
    Group grp;
    grp.main = grp.out = ValueId(i);
    const ValueId x = n.inputs[0];
    const Node& xn = node(x);
    if (xn.op == Op::Add && group_of_[size_t(x)] < 0 && sole_consumer(x) == ValueId(i) &&
        broadcast_of(xn) == Broadcast::BatchChannel)
      grp.gn_add = x;
    add_group(std::move(grp));
  }
  // Everything else is its own step (Input/Weight/Reshape are not steps).
  for (size_t i = 0; i < nv_; ++i) {
    const Op op = nodes[i].op;
    if (group_of_[i] >= 0 || op == Op::Input || op == Op::Weight || op == Op::Reshape) continue;
    Group grp;
    grp.main = grp.out = ValueId(i);
    add_group(std::move(grp));
  }
}

ValueId Planner::fusable_upsample(const Group& conv) const {
  const Node& c = node(conv.main);
  const ValueId u = c.inputs[0];
  const Node& un = node(u);
  if (un.op != Op::UpsampleNearest || sole_consumer(u) != conv.main || group_of_[size_t(u)] >= 0)
    return kNone;
  const Shape &xs = shape(un.inputs[0]), &us = un.shape, &ws = shape(c.inputs[1]);
  if (us[1] != 2 * xs[1] || us[2] != 2 * xs[2] || ws[2] != 3 || ws[3] != 3) return kNone;
  const graph::Attrs& a = c.attrs;
  if (a.stride != 1 || a.pad_top != 1 || a.pad_left != 1 || a.pad_bottom != 1 || a.pad_right != 1)
    return kNone;
  // A residual operand has the big image's layout, not the phases'.
  for (const auto& p : conv.post)
    if (p.op == Op::Add || p.op == Op::Geglu) return kNone;
  // The phase kernel has 16 taps per channel pair against 9: planning packs 7 more. Fused only
  // where each run saves at least 2048 multiply-adds per extra packed value, so that the packing
  // (~30 ns a value on a 2-core Zen 5 VM, against ~2.5 ps a multiply-add) pays for itself within
  // the first runs: the VAE and TAESD decoders' upsamplers (11k-180k at 512x512) and the UNet's
  // last (2.8k; its 8x8 and 16x16 ones at 1280 channels, 144 and 656, would add ~0.7 s to a
  // checkpoint's planning for ~30 ms a step).
  const int64_t H = xs[1], W = xs[2];
  const int64_t saved_per_pair = xs[0] * (36 * H * W - 16 * (H + 1) * (W + 1));
  if (saved_per_pair < 2048 * 7) return kNone;
  return u;
}

void Planner::add_group(Group grp) {
  const int id = int(groups_.size());
  group_of_[size_t(grp.main)] = id;
  if (grp.upsample != kNone) group_of_[size_t(grp.upsample)] = id;
  for (const auto& p : grp.post) group_of_[size_t(p.node)] = id;
  if (grp.gn_add != kNone) group_of_[size_t(grp.gn_add)] = id;
  groups_.push_back(std::move(grp));
}

Broadcast Planner::broadcast_of(const Node& n) const {
  const Shape &a = shape(n.inputs[0]), &b = shape(n.inputs[1]);
  if (a == b) return Broadcast::None;
  if (b == Shape{1}) return Broadcast::Scalar;
  return Broadcast::BatchChannel;
}

std::vector<std::pair<ValueId, Role>> Planner::group_inputs(const Group& grp) const {
  std::vector<std::pair<ValueId, Role>> out;
  const Node& m = node(grp.main);
  switch (m.op) {
    case Op::Conv2d:
    case Op::Linear:
      // A W8A8 layer quantises whatever storage its input has.
      out.emplace_back(grp.upsample != kNone ? node(grp.upsample).inputs[0] : m.inputs[0],
                       runs_int8(m) ? Role::Any : Role::Bf16Src);
      for (const auto& p : grp.post)
        if (p.op == Op::Add) out.emplace_back(p.operand, bf16_residuals_ ? Role::Any : Role::F32);
      break;
    case Op::GroupNorm:
      if (grp.gn_add != kNone) {
        out.emplace_back(node(grp.gn_add).inputs[0], Role::Any);
        out.emplace_back(node(grp.gn_add).inputs[1], Role::F32);
      } else {
        out.emplace_back(m.inputs[0], Role::Any);
      }
      out.emplace_back(m.inputs[1], Role::F32);
      out.emplace_back(m.inputs[2], Role::F32);
      break;
    case Op::Attention:
      for (ValueId v : m.inputs) out.emplace_back(v, Role::Bf16Src);
      break;
    case Op::LayerNorm:
      out.emplace_back(m.inputs[0], Role::Any);
      out.emplace_back(m.inputs[1], Role::F32);
      out.emplace_back(m.inputs[2], Role::F32);
      break;
    default:
      for (ValueId v : m.inputs)
        if (v != kNone) out.emplace_back(v, Role::F32);
  }
  return out;
}

bool Planner::can_emit_bf16(const Group& grp) const {
  switch (node(grp.main).op) {
    case Op::Conv2d:
    case Op::Linear:
      return bf16_residuals_ || std::none_of(grp.post.begin(), grp.post.end(),
                                             [](const Group::Post& p) { return p.op == Op::Add; });
    case Op::GroupNorm:
    case Op::LayerNorm:
    case Op::Geglu:
    case Op::Gelu:
    case Op::QuickGelu:
    case Op::Silu:
    case Op::Relu:
    case Op::Tanh:
    case Op::Scale:
    case Op::Attention:
    case Op::UpsampleNearest:
      return true;
    default:
      return false;
  }
}

void Planner::choose_storage() {
  storage_.assign(nv_, DType::F32);
  needs_shadow_.assign(nv_, false);
  for (size_t i = 0; i < nv_; ++i)
    if (node(ValueId(i)).dtype == DType::I32) storage_[i] = DType::I32;
  if (!bf16_) {
    store_int8_inputs_as_bf16();
    return;
  }
  std::vector<int> f32_uses(nv_, 0), bf16_uses(nv_, 0), any_uses(nv_, 0);
  for (const Group& grp : groups_)
    for (const auto& [v, role] : group_inputs(grp)) {
      const size_t r = size_t(root_[size_t(v)]);
      ++(role == Role::F32 ? f32_uses : role == Role::Any ? any_uses : bf16_uses)[r];
    }
  // bf16 storage when nobody needs f32 (as PyTorch autocast: a conv output read only by a norm
  // is bf16; a residual read by an add stays f32).
  for (const Group& grp : groups_) {
    const size_t o = size_t(grp.out);
    if (can_emit_bf16(grp) && bf16_uses[o] + any_uses[o] > 0 && f32_uses[o] == 0 && !is_output_[o])
      storage_[o] = DType::BF16;
  }
  for (size_t i = 0; i < nv_; ++i)
    if (storage_[i] == DType::F32 && bf16_uses[i] > 0) needs_shadow_[i] = true;
}

void Planner::store_int8_inputs_as_bf16() {
  // The own AVX-512 kernels round to bf16 without AVX-512 BF16 (simd::store) and every W8A8
  // layer's quantiser reads bf16 as well as f32.
  if (!int8_ || !use_avx512_kernels()) return;
  std::vector<int> readers(nv_, 0), int8_readers(nv_, 0);
  for (const Group& grp : groups_) {
    const Node& m = node(grp.main);
    const bool w8a8 = (m.op == Op::Conv2d || m.op == Op::Linear) && runs_int8(m);
    const auto inputs = group_inputs(grp);
    for (size_t k = 0; k < inputs.size(); ++k) {
      const size_t r = size_t(root_[size_t(inputs[k].first)]);
      ++readers[r];
      if (w8a8 && k == 0) ++int8_readers[r];  // the layer's input, not a residual it adds
    }
  }
  for (const Group& grp : groups_) {
    const size_t o = size_t(grp.out);
    const Op op = node(grp.main).op;
    if ((op == Op::GroupNorm || op == Op::LayerNorm) && readers[o] > 0 &&
        int8_readers[o] == readers[o] && !is_output_[o])
      storage_[o] = DType::BF16;
  }
}

int Planner::new_store(Store s) {
  stores_.push_back(std::move(s));
  return int(stores_.size() - 1);
}

int Planner::arena_store(DType t, int64_t numel) {
  Store s;
  s.dtype = t;
  s.bytes = size_t(numel) * dtype_size(t);
  return new_store(std::move(s));
}

int Planner::store_of(ValueId v, Role role) {
  const size_t r = size_t(root_[size_t(v)]);
  if (vstore_[r] < 0) {
    const Node& n = node(ValueId(r));
    if (n.op != Op::Weight) fail(n, "a computed value", "none (planner bug)");
    if (!is_float(n.weight.dtype))
      fail(n, "a float weight", std::string(dtype_name(n.weight.dtype)));
    Store s;
    s.kind = Store::Weight;
    s.weight = packed_f32(n);
    s.bytes = s.weight->bytes();
    vstore_[r] = new_store(std::move(s));
  }
  if (role == Role::Bf16Src && bf16_ && stores_[size_t(vstore_[r])].dtype != DType::BF16) {
    if (!needs_shadow_[r]) fail(node(ValueId(r)), "a bf16 copy", "none (planner bug)");
    if (vshadow_[r] < 0) {  // its Convert step is placed by place_converts()
      vshadow_[r] = arena_store(DType::BF16, shape_numel(shape(ValueId(r))));
      shadowed_.push_back(ValueId(r));
    }
    return vshadow_[r];
  }
  return vstore_[r];
}

void Planner::place_converts() {
  const int nspecs = int(specs_.size());
  std::vector<std::vector<Spec>> before(size_t(nspecs) + 1);
  for (ValueId v : shadowed_) {
    const int f32_store = vstore_[size_t(v)], shadow = vshadow_[size_t(v)];
    int first_bf16 = nspecs, last_f32 = -1;
    for (int i = 0; i < nspecs; ++i) {
      const Spec& sp = specs_[size_t(i)];
      auto reads = [&](int st) {
        if (std::find(sp.in.begin(), sp.in.end(), st) != sp.in.end()) return true;
        return std::any_of(sp.post.begin(), sp.post.end(),
                           [&](const PostOp& p) { return p.store == st; });
      };
      if (reads(shadow)) first_bf16 = std::min(first_bf16, i);
      if (reads(f32_store) || sp.out == f32_store) last_f32 = i;
    }
    Spec c;
    c.kind = SK::Convert;
    c.name = "Convert";
    c.label = node(v).name;
    c.in = {f32_store};
    c.n = shape_numel(shape(v));
    c.out = shadow;
    before[size_t(std::min(first_bf16, last_f32 + 1))].push_back(std::move(c));
  }
  std::vector<Spec> placed;
  placed.reserve(specs_.size() + shadowed_.size());
  for (int i = 0; i <= nspecs; ++i) {
    for (Spec& c : before[size_t(i)]) placed.push_back(std::move(c));
    if (i < nspecs) placed.push_back(std::move(specs_[size_t(i)]));
  }
  specs_ = std::move(placed);
}

void Planner::build_specs() {
  vstore_.assign(nv_, -1);
  vshadow_.assign(nv_, -1);
  // Inputs.
  for (size_t i = 0; i < nv_; ++i) {
    const Node& n = node(ValueId(i));
    if (n.op != Op::Input) continue;
    if (n.dtype != DType::F32 && n.dtype != DType::I32)
      fail(n, "an F32 or I32 input", std::string(dtype_name(n.dtype)));
    CpuPlan::InputBuf in;
    in.name = n.name;
    in.dtype = n.dtype;
    in.shape = n.shape;
    in.buf = std::make_unique<PackedWeight>(size_t(shape_numel(n.shape)) * dtype_size(n.dtype));
    Store s;
    s.kind = Store::Input;
    s.dtype = n.dtype;
    s.bytes = in.buf->bytes();
    s.input = int(plan_.inputs_.size());
    plan_.inputs_.push_back(std::move(in));
    vstore_[i] = new_store(std::move(s));
  }
  // Groups in the order of their last node.
  std::vector<int> order(groups_.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return groups_[size_t(a)].out < groups_[size_t(b)].out; });
  for (int gi : order) {
    const Group& grp = groups_[size_t(gi)];
    add_group_spec(grp);
  }
  // Outputs that are not computed into the arena (an input or weight passed through).
  for (const auto& [name, v] : g_.outputs()) {
    const int st = store_of(v, Role::F32);
    if (stores_[size_t(st)].kind == Store::Arena) continue;
    if (stores_[size_t(st)].dtype != DType::F32) fail(node(v), "an f32 output", "I32");
    Spec s;
    s.kind = SK::Copy;
    s.name = "Copy";
    s.label = name;
    s.in = {st};
    s.n = shape_numel(shape(v));
    s.out = arena_store(DType::F32, s.n);
    copied_outputs_.emplace_back(v, s.out);
    specs_.push_back(std::move(s));
  }
  place_converts();
}

void Planner::add_group_spec(const Group& grp) {
  const Node& m = node(grp.main);
  Spec s;
  s.node = &m;
  s.label = m.name;
  s.name = graph::op_name(m.op);
  s.src = m.inputs.empty() ? kNone : m.inputs[0];
  const int64_t out_numel = shape_numel(shape(grp.out));
  auto in_f32 = [&](ValueId v) { return store_of(v, Role::F32); };
  switch (m.op) {
    case Op::Conv2d:
    case Op::Linear: {
      s.kind = m.op == Op::Conv2d ? SK::Conv : SK::Linear;
      if (node(m.inputs[1]).op != Op::Weight) fail(m, "a constant weight", "a computed value");
      if (m.inputs[2] != kNone && node(m.inputs[2]).op != Op::Weight)
        fail(m, "a constant bias", "a computed value");
      s.int8 = runs_int8(m);
      s.upsample2x = grp.upsample != kNone;
      if (s.upsample2x) s.name += ".up2x";
      if (s.int8) s.name += ".int8";
      if (s.upsample2x) s.src = node(grp.upsample).inputs[0];
      s.in = {store_of(s.src, s.int8 ? Role::Any : Role::Bf16Src)};
      const Shape& ws = shape(m.inputs[1]);
      s.macs = shape_numel(m.shape) * (m.op == Op::Conv2d ? ws[1] * ws[2] * ws[3] : ws[1]);
      if (s.upsample2x) {  // the work done: a 2x2 kernel, 4x the channels, over (H+1)x(W+1)
        const Shape& xs = shape(s.src);
        s.macs = xs[0] * (xs[1] + 1) * (xs[2] + 1) * 4 * ws[0] * ws[1] * 4;
      }
      int64_t gate_values = 0;
      for (const auto& p : grp.post) {
        const Node& pn = node(p.node);
        if (p.op == Op::Geglu) {
          s.kind = SK::LinearGeglu;
          s.name += "+geglu";
          gate_values = shape_numel(pn.shape);
          continue;
        }
        PostOp po;
        switch (p.op) {
          case Op::Gelu:
            po.alg = dnnl::algorithm::eltwise_gelu_erf;
            s.name += "+gelu";
            break;
          case Op::QuickGelu:
            po.alg = dnnl::algorithm::eltwise_swish;
            po.alpha = 1.702f;
            s.name += "+quickgelu";
            break;
          case Op::Silu:
            po.alg = dnnl::algorithm::eltwise_swish;
            po.alpha = 1.f;
            s.name += "+silu";
            break;
          case Op::Relu:
            po.alg = dnnl::algorithm::eltwise_relu;
            po.alpha = 0.f;
            s.name += "+relu";
            break;
          case Op::Tanh:
            po.alg = dnnl::algorithm::eltwise_tanh;
            s.name += "+tanh";
            break;
          case Op::Scale:
            po.alg = dnnl::algorithm::eltwise_linear;
            po.alpha = pn.attrs.scale;
            po.beta = pn.attrs.bias;
            s.name += "+scale";
            break;
          default:  // Add
            po.eltwise = false;
            po.store = in_f32(p.operand);
            s.name += "+add";
        }
        s.post.push_back(po);
      }
      // oneDNN's GEGLU keeps GELU(gate) in the matmul type (bf16 halves its round trip through
      // memory); int8_gemm's never leaves its registers.
      if (s.kind == SK::LinearGeglu && !runs_row_gemm(s))
        s.tmp = arena_store(bf16_ ? DType::BF16 : DType::F32, gate_values);
      if (s.kind == SK::Conv && runs_winograd(s)) {
        s.winograd = true;
        s.winograd4 = runs_winograd_f4(s);
        s.name.insert(std::string("Conv2d").size(), s.winograd4 ? ".wino4" : ".wino");
      } else if (s.kind == SK::Conv && runs_narrow_conv(s)) {
        s.narrow = true;
        s.name.insert(std::string("Conv2d").size(), ".narrow");
      }
      break;
    }
    case Op::GroupNorm:
      s.kind = SK::GroupNorm;
      if (grp.gn_add != kNone) {
        s.in = {store_of(node(grp.gn_add).inputs[0], Role::Any),
                in_f32(node(grp.gn_add).inputs[1])};
        s.name += "+add";
      } else {
        s.in = {store_of(m.inputs[0], Role::Any), -1};
      }
      s.in.push_back(in_f32(m.inputs[1]));
      s.in.push_back(in_f32(m.inputs[2]));
      if (m.attrs.silu) s.name += "+silu";
      break;
    case Op::LayerNorm:
      s.kind = SK::LayerNorm;
      s.in = {store_of(m.inputs[0], Role::Any), in_f32(m.inputs[1]), in_f32(m.inputs[2])};
      break;
    case Op::Attention:
      s.kind = SK::Attention;
      s.in = {store_of(m.inputs[0], Role::Bf16Src), store_of(m.inputs[1], Role::Bf16Src),
              store_of(m.inputs[2], Role::Bf16Src)};
      s.macs = 2 * shape(m.inputs[0])[0] * shape(m.inputs[0])[1] * shape(m.inputs[1])[1] *
               shape(m.inputs[0])[2];
      if (m.attrs.causal) s.name += "+causal";
      s.int8 = runs_int8(m) && Int8Attention::supported(attention_shape(m, s));
      if (s.int8) s.name += ".int8";
      break;
    case Op::Gelu:
    case Op::QuickGelu:
    case Op::Silu:
    case Op::Relu:
    case Op::Tanh:
    case Op::Scale:
      s.kind = SK::Unary;
      s.unary = m.op == Op::Gelu        ? Unary::Gelu
                : m.op == Op::QuickGelu ? Unary::QuickGelu
                : m.op == Op::Silu      ? Unary::Silu
                : m.op == Op::Relu      ? Unary::Relu
                : m.op == Op::Tanh      ? Unary::Tanh
                                        : Unary::Scale;
      s.in = {in_f32(m.inputs[0])};
      break;
    case Op::Geglu:
      s.kind = SK::Geglu;
      s.in = {in_f32(m.inputs[0])};
      break;
    case Op::Add:
    case Op::Mul:
      s.kind = SK::Binary;
      s.binary = m.op == Op::Add ? Binary::Add : Binary::Mul;
      s.bc = broadcast_of(m);
      s.in = {in_f32(m.inputs[0]), in_f32(m.inputs[1])};
      break;
    case Op::UpsampleNearest:
      s.kind = SK::Upsample;
      s.in = {in_f32(m.inputs[0])};
      break;
    case Op::Concat:
      s.kind = SK::Concat;
      s.in = {in_f32(m.inputs[0]), in_f32(m.inputs[1])};
      break;
    case Op::Slice:
      s.kind = SK::Slice;
      s.in = {in_f32(m.inputs[0])};
      break;
    case Op::TimestepEmbedding:
      s.kind = SK::Timestep;
      s.in = {in_f32(m.inputs[0])};
      break;
    case Op::Embedding: {
      s.kind = SK::Embedding;
      if (node(m.inputs[1]).dtype == DType::I32) fail(m, "a float table", "I32");
      // A weight table with an owner is read where it lies, a few rows a run: CLIP's 49408x768
      // table as an f32 copy was 152 MB of fresh memory (and its page zeroing) at every load.
      const Node& table = node(root_[size_t(m.inputs[1])]);
      const bool in_place =
          table.op == Op::Weight && table.weight.owner && is_float(table.weight.dtype);
      s.in = {store_of(m.inputs[0], Role::F32), in_place ? -1 : in_f32(m.inputs[1])};
      if (in_place) s.table = table.weight;
      break;
    }
    default:
      fail(m, "an op the CPU backend runs", graph::op_name(m.op));
  }
  s.out = arena_store(storage_[size_t(grp.out)], out_numel);
  vstore_[size_t(grp.out)] = s.out;
  if (s.upsample2x && !s.winograd) {  // the phases' output, before the interleave
    const Shape& xs = shape(s.src);
    s.tmp = arena_store(storage_[size_t(grp.out)],
                        xs[0] * (xs[1] + 1) * (xs[2] + 1) * 4 * shape(m.inputs[1])[0]);
  }
  specs_.push_back(std::move(s));
}

std::set<int> Planner::output_stores() {
  std::set<int> out;
  for (const auto& [name, v] : g_.outputs()) {
    (void)name;
    out.insert(find(vstore_[size_t(root_[size_t(v)])]));
  }
  for (const auto& [v, st] : copied_outputs_) {
    (void)v;
    out.insert(find(st));
  }
  return out;
}

int Planner::find(int s) {
  while (stores_[size_t(s)].parent >= 0) s = stores_[size_t(s)].parent;
  return s;
}

void Planner::plan_in_place() {
  const int nsteps = int(specs_.size());
  // Lifetimes of each store from the specs' reads and writes.
  for (int i = 0; i < nsteps; ++i) {
    const Spec& s = specs_[size_t(i)];
    auto touch = [&](int st) {
      if (st < 0) return;
      Store& x = stores_[size_t(st)];
      x.first = std::min(x.first, i);
      x.last = std::max(x.last, i);
    };
    for (int st : s.in) touch(st);
    for (const PostOp& p : s.post) touch(p.store);
    touch(s.out);
    touch(s.tmp);
    touch(s.shared_codes);
    touch(s.codes_out);
  }
  for (const auto& [name, v] : g_.outputs()) {
    (void)name;
    stores_[size_t(vstore_[size_t(root_[size_t(v)])])].last = nsteps;
  }
  for (const auto& [v, st] : copied_outputs_) {
    (void)v;
    stores_[size_t(st)].last = nsteps;
  }
  // In place: the output takes over an input's buffer when that input dies at this step.
  for (int i = 0; i < nsteps; ++i) {
    Spec& s = specs_[size_t(i)];
    auto dies_here = [&](int st) {
      if (st < 0) return false;
      const int r = find(st);
      const Store &x = stores_[size_t(r)], &o = stores_[size_t(s.out)];
      return x.kind == Store::Arena && o.kind == Store::Arena && x.last == i &&
             x.dtype == o.dtype && x.bytes == o.bytes;
    };
    auto merge = [&](int st) {
      const int r = find(st);
      Store& o = stores_[size_t(s.out)];
      Store& x = stores_[size_t(r)];
      o.parent = r;
      x.first = std::min(x.first, o.first);
      x.last = std::max(x.last, o.last);
    };
    switch (s.kind) {
      case SK::Unary:
        if (dies_here(s.in[0])) merge(s.in[0]);
        break;
      case SK::GroupNorm:
      case SK::LayerNorm:
        // Both take their statistics before writing anything and then read each element just
        // before writing it: safe in place (the VAE decoder's widest ResNets rely on it).
        if (dies_here(s.in[0])) merge(s.in[0]);
        break;
      case SK::Binary:
        if (dies_here(s.in[0]) && find(s.in[0]) != find(s.in[1]))
          merge(s.in[0]);
        else if (s.bc == Broadcast::None && dies_here(s.in[1]) && find(s.in[0]) != find(s.in[1]))
          merge(s.in[1]);
        break;
      case SK::Conv:
      case SK::Linear:
        // Sum post-op: only as the first post-op, on a residual read by nothing else here.
        if (!s.post.empty() && !s.post[0].eltwise && dies_here(s.post[0].store) &&
            find(s.post[0].store) != find(s.in[0])) {
          bool shared = false;
          for (size_t k = 1; k < s.post.size(); ++k)
            if (s.post[k].store >= 0 && find(s.post[k].store) == find(s.post[0].store))
              shared = true;
          if (!shared) {
            s.post[0].sum = true;
            merge(s.post[0].store);
            s.name.replace(s.name.find("+add"), 4, "+sum");
          }
        }
        break;
      default:
        break;
    }
  }
}

void Planner::prepare_and_bind() {
  std::vector<Prepared> prepared;
  prepared.reserve(specs_.size());
  size_t scratch = 0;
  for (const Spec& s : specs_) {
    prepared.push_back(prepare(s));
    scratch = std::max(scratch, prepared.back().scratch);
  }
  // Memory plan over the root arena stores.
  std::vector<BufferLife> lives;
  std::vector<int> buffer_store;
  for (size_t i = 0; i < stores_.size(); ++i) {
    Store& x = stores_[i];
    if (x.kind != Store::Arena || x.parent >= 0) continue;
    if (x.last < 0) x.last = x.first;  // written, never read (an unused value)
    x.buffer = int(lives.size());
    lives.push_back({x.bytes, x.first, x.last});
    buffer_store.push_back(int(i));
  }
  const MemoryPlan mp = plan_memory(lives);
  if (std::getenv("SDC_PLAN_DEBUG")) {
    int peak_step = 0;
    size_t peak = 0;
    for (int st = 0; st < int(specs_.size()); ++st) {
      size_t live = 0;
      for (const auto& l : lives)
        if (l.first <= st && st <= l.last) live += l.bytes;
      if (live > peak) peak = live, peak_step = st;
    }
    std::fprintf(stderr, "peak live %.1f MiB at step %d (%s), arena %.1f MiB\n", peak / 1048576.0,
                 peak_step, specs_[size_t(peak_step)].name.c_str(), mp.total / 1048576.0);
    for (size_t b = 0; b < lives.size(); ++b)
      if (lives[b].first <= peak_step && peak_step <= lives[b].last)
        std::fprintf(stderr, "  %.1f MiB [%d, %d] written by %s\n", lives[b].bytes / 1048576.0,
                     lives[b].first, lives[b].last, specs_[size_t(lives[b].first)].name.c_str());
  }
  if (opt_.check) check_memory_plan(lives, mp);
  offsets_ = mp.offsets;
  plan_.arena_ = arena_block(opt_.arena, std::max<size_t>(mp.total, 64));
  plan_.scratch_ = arena_block(opt_.scratch, std::max<size_t>(scratch, 64));
  for (size_t i = 0; i < specs_.size(); ++i) {
    Step st;
    st.run = prepared[i].bind();
    st.info.kind = specs_[i].name;
    st.info.label = specs_[i].label;
    st.info.macs = specs_[i].macs;
    st.info.out_type = stores_[size_t(specs_[i].out)].dtype;
    st.info.steady = specs_[i].steady_needs != 0;
    plan_.steps_.push_back(std::move(st));
  }
  if (!plan_.steady_.empty()) {
    plan_.steady_needs_.reserve(specs_.size());
    for (const Spec& s : specs_) plan_.steady_needs_.push_back(s.steady_needs);
  }
  if (opt_.check) {
    plan_.poison_after_.assign(specs_.size(), {});
    for (size_t b = 0; b < lives.size(); ++b)
      if (lives[b].last < int(specs_.size()))
        plan_.poison_after_[size_t(lives[b].last)].emplace_back(
            static_cast<uint8_t*>(plan_.arena_->data()) + mp.offsets[b], lives[b].bytes);
  }
  for (const auto& [name, v] : g_.outputs()) {
    CpuPlan::OutputRef o;
    o.name = name;
    o.shape = shape(v);
    int st = vstore_[size_t(root_[size_t(v)])];
    for (const auto& [cv, cs] : copied_outputs_)
      if (cv == v) st = cs;
    o.data = static_cast<const float*>(ptr(st));
    plan_.outputs_.push_back(std::move(o));
  }
}

}  // namespace detail

using detail::Planner;

bool precision_available(Precision p) {
  if (p == Precision::BF16) return cpu_features().avx512;
  if (p == Precision::INT8) return isa_has_int8_dot();
  return true;
}

std::unique_ptr<Plan> Plan::compile(const graph::Graph& g, const PlanOptions& options) {
  if (options.precision == Precision::BF16 && !precision_available(Precision::BF16))
    throw UsageError("", "precision", "f32 on this CPU (bf16 needs AVX-512)", "bf16");
  if (options.precision == Precision::INT8 && !precision_available(Precision::INT8))
    throw UsageError("", "precision",
                     "f32 or bf16 on this CPU (int8 needs AVX512-VNNI or AVX-VNNI; oneDNN runs " +
                         effective_isa_name() + ")",
                     "int8");
  auto plan = std::make_unique<CpuPlan>();
  plan->threads = resolve_threads(options.threads);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(plan->threads);
  try {
    plan->engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
    plan->stream = dnnl::stream(plan->engine);
    Planner(g, options, *plan).compile();
    release_packing_memory();
  } catch (const dnnl::error& e) {
    release_packing_memory();
    omp_set_num_threads(saved);
    throw Error("plan", "oneDNN", "a supported primitive", e.what());
  } catch (...) {
    release_packing_memory();
    omp_set_num_threads(saved);
    throw;
  }
  omp_set_num_threads(saved);
  return plan;
}

}  // namespace sdc::cpu
