// Plan::compile — the planner. In order:
//  1. fusion: Conv2d/Linear absorb following single-use Gelu/QuickGelu/Silu/Scale (oneDNN eltwise
//     post-ops) and full-shape Adds (sum post-op in place when the residual dies there, else a
//     binary post-op); a GroupNorm absorbs a preceding [N,C]-broadcast Add (the ResNet time
//     embedding); Reshape is an alias.
//  2. storage types: with BF16, a value whose every consumer is a conv/linear input or attention
//     is stored as bf16 by its producer (GroupNorm+SiLU, LayerNorm, GEGLU, attention, convs,
//     nearest upsampling ...);
//     otherwise it stays f32 and a Convert step makes a bf16 copy for the bf16 consumers.
//  3. liveness: steps in graph order; elementwise steps and sum post-ops reuse a dying input's
//     buffer; buffers get arena offsets (memory_plan.h).
//  4. primitives and weights: oneDNN convolution/matmul with format_tag::any weights, packed once
//     through the shared WeightCache.
#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "backend/cpu/attention.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/dnnl_util.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/plan_impl.h"
#include "common/error.h"

namespace sdc::cpu {
namespace {

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
  struct Post {
    Op op;
    ValueId node;
    ValueId operand = kNone;  // Add: the other operand
  };
  std::vector<Post> post;  // Conv2d/Linear post-ops in order
};

struct Store {
  enum Kind { Arena, Input, Weight } kind = Arena;
  DType dtype = DType::F32;
  size_t bytes = 0;
  int input = -1;
  std::shared_ptr<PackedWeight> weight;
  int parent = -1;  // in-place union-find
  int first = INT_MAX, last = -1;
  int buffer = -1;  // memory-plan buffer of a root arena store
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
  int64_t n = 0;  // element counts for Convert/Copy
  int tmp = -1;   // LinearGeglu: the f32 GELU(gate) buffer, live within the step
};

dt dnnl_dt(DType t) {
  return t == DType::BF16 ? dt::bf16 : dt::f32;
}

[[noreturn]] void fail(const Node& n, const std::string& expected, const std::string& found) {
  throw Error("plan", std::string(graph::op_name(n.op)) + (n.name.empty() ? "" : " " + n.name),
              expected, found);
}

class Planner {
 public:
  Planner(const Graph& g, const PlanOptions& o, CpuPlan& plan)
      : g_(g), opt_(o), plan_(plan), bf16_(o.precision == Precision::BF16) {}

  void compile() {
    analyse();
    fuse();
    choose_storage();
    build_specs();
    plan_in_place();
    prepare_and_bind();
  }

 private:
  const Graph& g_;
  PlanOptions opt_;
  CpuPlan& plan_;
  bool bf16_;
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
  const Shape& shape(ValueId v) const { return g_.shape(v); }

  // ---- 1. analysis and fusion -------------------------------------------------------------

  void analyse() {
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
        if (in < 0 || size_t(in) >= i)
          fail(n, "inputs defined before the node", std::to_string(in));
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

  // The single consumer node of v, if v has exactly one use and is not an output.
  ValueId sole_consumer(ValueId v) const {
    if (use_count_[size_t(v)] != 1 || is_output_[size_t(v)]) return kNone;
    return uses_[size_t(v)][0].first;
  }

  void fuse() {
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
        if (cn.op == Op::Gelu || cn.op == Op::QuickGelu || cn.op == Op::Silu ||
            cn.op == Op::Scale) {
          grp.post.push_back({cn.op, c, kNone});
        } else if (cn.op == Op::Add && shape(cn.inputs[0]) == shape(cn.inputs[1]) &&
                   cn.inputs[0] != cn.inputs[1]) {
          const ValueId other = cn.inputs[0] == grp.out ? cn.inputs[1] : cn.inputs[0];
          grp.post.push_back({Op::Add, c, other});
        } else {
          break;
        }
        grp.out = c;
      }
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

  void add_group(Group grp) {
    const int id = int(groups_.size());
    group_of_[size_t(grp.main)] = id;
    for (const auto& p : grp.post) group_of_[size_t(p.node)] = id;
    if (grp.gn_add != kNone) group_of_[size_t(grp.gn_add)] = id;
    groups_.push_back(std::move(grp));
  }

  Broadcast broadcast_of(const Node& n) const {
    const Shape &a = shape(n.inputs[0]), &b = shape(n.inputs[1]);
    if (a == b) return Broadcast::None;
    if (b == Shape{1}) return Broadcast::Scalar;
    return Broadcast::BatchChannel;
  }

  // The values a group reads and how it wants them (weights of conv/linear are not listed).
  std::vector<std::pair<ValueId, Role>> group_inputs(const Group& grp) const {
    std::vector<std::pair<ValueId, Role>> out;
    const Node& m = node(grp.main);
    switch (m.op) {
      case Op::Conv2d:
      case Op::Linear:
        out.emplace_back(m.inputs[0], Role::Bf16Src);
        for (const auto& p : grp.post)
          if (p.op == Op::Add) out.emplace_back(p.operand, Role::F32);
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

  bool can_emit_bf16(const Group& grp) const {
    switch (node(grp.main).op) {
      case Op::Conv2d:
      case Op::Linear:
        return std::none_of(grp.post.begin(), grp.post.end(),
                            [](const Group::Post& p) { return p.op == Op::Add; });
      case Op::GroupNorm:
      case Op::LayerNorm:
      case Op::Geglu:
      case Op::Gelu:
      case Op::QuickGelu:
      case Op::Silu:
      case Op::Scale:
      case Op::Attention:
      case Op::UpsampleNearest:
        return true;
      default:
        return false;
    }
  }

  // ---- 2. storage types ---------------------------------------------------------------------

  void choose_storage() {
    storage_.assign(nv_, DType::F32);
    needs_shadow_.assign(nv_, false);
    for (size_t i = 0; i < nv_; ++i)
      if (node(ValueId(i)).dtype == DType::I32) storage_[i] = DType::I32;
    if (!bf16_) return;
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
      if (can_emit_bf16(grp) && bf16_uses[o] + any_uses[o] > 0 && f32_uses[o] == 0 &&
          !is_output_[o])
        storage_[o] = DType::BF16;
    }
    for (size_t i = 0; i < nv_; ++i)
      if (storage_[i] == DType::F32 && bf16_uses[i] > 0) needs_shadow_[i] = true;
  }

  // ---- 3. specs and stores ------------------------------------------------------------------

  int new_store(Store s) {
    stores_.push_back(std::move(s));
    return int(stores_.size() - 1);
  }

  int arena_store(DType t, int64_t numel) {
    Store s;
    s.dtype = t;
    s.bytes = size_t(numel) * dtype_size(t);
    return new_store(std::move(s));
  }

  // The store holding value v for a consumer with `role`.
  int store_of(ValueId v, Role role) {
    const size_t r = size_t(root_[size_t(v)]);
    if (vstore_[r] < 0) {
      const Node& n = node(ValueId(r));
      if (n.op != Op::Weight) fail(n, "a computed value", "none (planner bug)");
      if (!is_float(n.weight.dtype))
        fail(n, "a float weight", std::string(dtype_name(n.weight.dtype)));
      Store s;
      s.kind = Store::Weight;
      s.weight = WeightCache::global().get(n.weight, "f32 " + shape_str(n.weight.shape),
                                           [&] { return pack_f32(n.weight); });
      s.bytes = s.weight->bytes();
      plan_.weights_.push_back(s.weight);
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
  std::vector<ValueId> shadowed_;

  // Inserts the Convert step of every bf16 shadow where it costs least memory: right after the
  // f32 value's last f32 use when that comes before the first bf16 use (the f32 buffer then
  // dies at the Convert), else right before the first bf16 use.
  void place_converts() {
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

  void build_specs() {
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
  std::vector<std::pair<ValueId, int>> copied_outputs_;

  void add_group_spec(const Group& grp) {
    const Node& m = node(grp.main);
    Spec s;
    s.node = &m;
    s.label = m.name;
    s.name = graph::op_name(m.op);
    const int64_t out_numel = shape_numel(shape(grp.out));
    auto in_f32 = [&](ValueId v) { return store_of(v, Role::F32); };
    switch (m.op) {
      case Op::Conv2d:
      case Op::Linear: {
        s.kind = m.op == Op::Conv2d ? SK::Conv : SK::Linear;
        if (node(m.inputs[1]).op != Op::Weight) fail(m, "a constant weight", "a computed value");
        if (m.inputs[2] != kNone && node(m.inputs[2]).op != Op::Weight)
          fail(m, "a constant bias", "a computed value");
        s.in = {store_of(m.inputs[0], Role::Bf16Src)};
        const Shape& ws = shape(m.inputs[1]);
        s.macs = shape_numel(m.shape) * (m.op == Op::Conv2d ? ws[1] * ws[2] * ws[3] : ws[1]);
        for (const auto& p : grp.post) {
          const Node& pn = node(p.node);
          if (p.op == Op::Geglu) {
            s.kind = SK::LinearGeglu;
            s.name += "+geglu";
            s.tmp = arena_store(DType::F32, shape_numel(pn.shape));
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
        break;
      case Op::Gelu:
      case Op::QuickGelu:
      case Op::Silu:
      case Op::Scale:
        s.kind = SK::Unary;
        s.unary = m.op == Op::Gelu        ? Unary::Gelu
                  : m.op == Op::QuickGelu ? Unary::QuickGelu
                  : m.op == Op::Silu      ? Unary::Silu
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
      case Op::Embedding:
        s.kind = SK::Embedding;
        s.in = {store_of(m.inputs[0], Role::F32), in_f32(m.inputs[1])};
        if (node(m.inputs[1]).dtype == DType::I32) fail(m, "a float table", "I32");
        break;
      default:
        fail(m, "an op the CPU backend runs", graph::op_name(m.op));
    }
    s.out = arena_store(storage_[size_t(grp.out)], out_numel);
    vstore_[size_t(grp.out)] = s.out;
    specs_.push_back(std::move(s));
  }

  // ---- 4. liveness and in-place -------------------------------------------------------------

  int find(int s) {
    while (stores_[size_t(s)].parent >= 0) s = stores_[size_t(s)].parent;
    return s;
  }

  void plan_in_place() {
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
        return x.kind == Store::Arena && x.last == i && x.dtype == o.dtype && x.bytes == o.bytes;
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

  // ---- 5. primitives, memory, binding -------------------------------------------------------

  struct Prepared {
    size_t scratch = 0;
    std::function<std::function<void()>()> bind;  // called once pointers are known
  };

  void* ptr(int st) const {
    if (st < 0) return nullptr;
    int r = st;
    while (stores_[size_t(r)].parent >= 0) r = stores_[size_t(r)].parent;
    const Store& x = stores_[size_t(r)];
    switch (x.kind) {
      case Store::Input:
        return plan_.inputs_[size_t(x.input)].buf->data();
      case Store::Weight:
        return x.weight->data();
      default:
        return static_cast<uint8_t*>(plan_.arena_->data()) + offsets_[size_t(x.buffer)];
    }
  }
  std::vector<size_t> offsets_;
  void* scratch() const { return plan_.scratch_ ? plan_.scratch_->data() : nullptr; }

  dnnl::post_ops make_post_ops(const Spec& s, const memory::desc& dst_f32) const {
    dnnl::post_ops po;
    for (const PostOp& p : s.post) {
      if (p.eltwise)
        po.append_eltwise(1.f, p.alg, p.alpha, p.beta);
      else if (p.sum)
        po.append_sum(1.f);
      else
        po.append_binary(dnnl::algorithm::binary_add, dst_f32);
    }
    return po;
  }

  std::shared_ptr<PackedWeight> packed(const Node& w, const memory::desc& src_md,
                                       const memory::desc& dst_md) {
    const TensorRef& t = w.weight;
    if (!is_float(t.dtype)) fail(w, "a float weight", std::string(dtype_name(t.dtype)));
    auto p = WeightCache::global().get(
        t, "dnnl " + std::string(dtype_name(t.dtype)) + shape_str(t.shape) + " " + md_key(dst_md),
        [&] { return pack_weight(t, src_md, dst_md, plan_.engine); });
    plan_.weights_.push_back(p);
    return p;
  }

  std::shared_ptr<PackedWeight> packed_f32(const Node& w) {
    auto p = WeightCache::global().get(w.weight, "f32 " + shape_str(w.weight.shape),
                                       [&] { return pack_f32(w.weight); });
    plan_.weights_.push_back(p);
    return p;
  }

  // A oneDNN primitive with its memories; binds pointers later.
  Prepared dnnl_step(const Spec& s, dnnl::primitive prim, const memory::desc& src_md,
                     const memory::desc& w_md, std::shared_ptr<PackedWeight> w,
                     const memory::desc& b_md, std::shared_ptr<PackedWeight> b,
                     const memory::desc& dst_md, const memory::desc& post_md,
                     const memory::desc& pad_md) {
    Prepared p;
    p.scratch = pad_md.get_size();
    const Spec* sp = &s;
    p.bind = [this, sp, prim, src_md, w_md, w, b_md, b, dst_md, post_md, pad_md]() {
      auto args = std::make_shared<std::unordered_map<int, memory>>();
      const dnnl::engine& e = plan_.engine;
      (*args)[DNNL_ARG_SRC] = memory(src_md, e, ptr(sp->in[0]));
      (*args)[DNNL_ARG_WEIGHTS] = memory(w_md, e, w->data());
      if (b) (*args)[DNNL_ARG_BIAS] = memory(b_md, e, b->data());
      (*args)[DNNL_ARG_DST] = memory(dst_md, e, ptr(sp->out));
      (*args)[DNNL_ARG_SCRATCHPAD] = memory(pad_md, e, scratch());
      for (size_t k = 0; k < sp->post.size(); ++k)
        if (!sp->post[k].eltwise && !sp->post[k].sum)
          (*args)[DNNL_ARG_ATTR_MULTIPLE_POST_OP(int(k)) | DNNL_ARG_SRC_1] =
              memory(post_md, e, ptr(sp->post[k].store));
      dnnl::stream* stream = &plan_.stream;
      return std::function<void()>([prim, args, stream] {
        prim.execute(*stream, *args);
        stream->wait();
      });
    };
    return p;
  }

  Prepared prepare_conv(const Spec& s) {
    const Node& m = *s.node;
    const Shape &xs = shape(m.inputs[0]), &ws = shape(m.inputs[1]), &ys = m.shape;
    const DType src_t = stores_[size_t(s.in[0])].dtype, dst_t = stores_[size_t(s.out)].dtype;
    const dt wt = dnnl_dt(src_t);
    const memory::desc src_md({xs[0], xs[3], xs[1], xs[2]}, dnnl_dt(src_t), tag::nhwc);
    const memory::desc w_any({ws[0], ws[1], ws[2], ws[3]}, wt, tag::any);
    const memory::desc dst_md({ys[0], ys[3], ys[1], ys[2]}, dnnl_dt(dst_t), tag::nhwc);
    const memory::desc post_md({ys[0], ys[3], ys[1], ys[2]}, dt::f32, tag::nhwc);
    const bool has_bias = m.inputs[2] != kNone;
    const memory::desc b_md = has_bias ? memory::desc({ws[0]}, dt::f32, tag::a) : memory::desc();
    const dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, w_any,
        b_md, dst_md, {m.attrs.stride, m.attrs.stride}, {m.attrs.pad_top, m.attrs.pad_left},
        {m.attrs.pad_bottom, m.attrs.pad_right});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(make_post_ops(s, post_md));
    const dnnl::convolution_forward::primitive_desc pd(d, attr, plan_.engine);
    auto w =
        packed(node(m.inputs[1]), memory::desc({ws[0], ws[1], ws[2], ws[3]}, dt::f32, tag::oihw),
               pd.weights_desc());
    auto b = has_bias ? packed_f32(node(m.inputs[2])) : nullptr;
    return dnnl_step(s, dnnl::convolution_forward(pd), src_md, pd.weights_desc(), w, b_md, b,
                     dst_md, post_md, pd.scratchpad_desc());
  }

  Prepared prepare_linear(const Spec& s) {
    const Node& m = *s.node;
    const Shape& ws = shape(m.inputs[1]);
    const int64_t K = ws[1], Nc = ws[0], M = shape_numel(m.shape) / Nc;
    const DType src_t = stores_[size_t(s.in[0])].dtype, dst_t = stores_[size_t(s.out)].dtype;
    const memory::desc src_md({M, K}, dnnl_dt(src_t), tag::ab);
    const memory::desc w_any({K, Nc}, dnnl_dt(src_t), tag::any);
    const memory::desc dst_md({M, Nc}, dnnl_dt(dst_t), tag::ab);
    const memory::desc post_md({M, Nc}, dt::f32, tag::ab);
    const bool has_bias = m.inputs[2] != kNone;
    const memory::desc b_md = has_bias ? memory::desc({1, Nc}, dt::f32, tag::ab) : memory::desc();
    const dnnl::matmul::desc d(src_md, w_any, b_md, dst_md);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(make_post_ops(s, post_md));
    const dnnl::matmul::primitive_desc pd(d, attr, plan_.engine);
    auto w = packed(node(m.inputs[1]), memory::desc({K, Nc}, dt::f32, tag::ba), pd.weights_desc());
    auto b = has_bias ? packed_f32(node(m.inputs[2])) : nullptr;
    return dnnl_step(s, dnnl::matmul(pd), src_md, pd.weights_desc(), w, b_md, b, dst_md, post_md,
                     pd.scratchpad_desc());
  }

  // Rows [r0, r0 + rows) of a [R, ...] weight or [R] bias, as a TensorRef on the same bytes.
  static TensorRef rows_of(const TensorRef& t, int64_t r0, int64_t rows) {
    TensorRef part = t;
    const int64_t row = t.numel() / t.shape[0];
    part.shape = t.shape.size() == 1 ? Shape{rows} : Shape{rows, row};
    part.data = static_cast<const uint8_t*>(t.data) + size_t(r0 * row) * dtype_size(t.dtype);
    part.nbytes = size_t(rows * row) * dtype_size(t.dtype);
    return part;
  }

  Prepared prepare_linear_geglu(const Spec& s) {
    const Node& m = *s.node;
    const Node& wn = node(m.inputs[1]);
    const Shape& ws = wn.shape;
    const int64_t K = ws[1], D = ws[0] / 2, M = shape_numel(m.shape) / ws[0];
    if (!is_float(wn.weight.dtype))
      fail(wn, "a float weight", std::string(dtype_name(wn.weight.dtype)));
    const DType src_t = stores_[size_t(s.in[0])].dtype, dst_t = stores_[size_t(s.out)].dtype;
    const memory::desc src_md({M, K}, dnnl_dt(src_t), tag::ab);
    const memory::desc w_any({K, D}, dnnl_dt(src_t), tag::any);
    const memory::desc g_md({M, D}, dt::f32, tag::ab);
    const memory::desc dst_md({M, D}, dnnl_dt(dst_t), tag::ab);
    const bool has_bias = m.inputs[2] != kNone;
    const memory::desc b_md = has_bias ? memory::desc({1, D}, dt::f32, tag::ab) : memory::desc();
    dnnl::primitive_attr gate_attr, value_attr;
    dnnl::post_ops gate_po, value_po;
    gate_po.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
    value_po.append_binary(dnnl::algorithm::binary_mul, g_md);
    gate_attr.set_post_ops(gate_po);
    value_attr.set_post_ops(value_po);
    gate_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    value_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::matmul::primitive_desc gate_pd(dnnl::matmul::desc(src_md, w_any, b_md, g_md),
                                               gate_attr, plan_.engine);
    const dnnl::matmul::primitive_desc value_pd(dnnl::matmul::desc(src_md, w_any, b_md, dst_md),
                                                value_attr, plan_.engine);
    // PyTorch's GEGLU: value = first half of the projection, gate = second half.
    auto pack_half = [&](const dnnl::matmul::primitive_desc& pd, int64_t r0) {
      const TensorRef part = rows_of(wn.weight, r0, D);
      auto p = WeightCache::global().get(
          part,
          "dnnl " + std::string(dtype_name(part.dtype)) + shape_str(part.shape) + " " +
              md_key(pd.weights_desc()),
          [&] {
            return pack_weight(part, memory::desc({K, D}, dt::f32, tag::ba), pd.weights_desc(),
                               plan_.engine);
          });
      plan_.weights_.push_back(p);
      return p;
    };
    auto bias_half = [&](int64_t r0) -> std::shared_ptr<PackedWeight> {
      if (!has_bias) return nullptr;
      const TensorRef part = rows_of(node(m.inputs[2]).weight, r0, D);
      auto p = WeightCache::global().get(part, "f32 " + shape_str(part.shape),
                                         [&] { return pack_f32(part); });
      plan_.weights_.push_back(p);
      return p;
    };
    auto w_value = pack_half(value_pd, 0), w_gate = pack_half(gate_pd, D);
    auto b_value = bias_half(0), b_gate = bias_half(D);
    Prepared p;
    p.scratch =
        std::max(gate_pd.scratchpad_desc().get_size(), value_pd.scratchpad_desc().get_size());
    const Spec* sp = &s;
    const dnnl::primitive gate_prim = dnnl::matmul(gate_pd), value_prim = dnnl::matmul(value_pd);
    p.bind = [=, this]() {
      const dnnl::engine& e = plan_.engine;
      auto gate_args = std::make_shared<std::unordered_map<int, memory>>();
      auto value_args = std::make_shared<std::unordered_map<int, memory>>();
      const memory src(src_md, e, ptr(sp->in[0])), g(g_md, e, ptr(sp->tmp));
      (*gate_args)[DNNL_ARG_SRC] = src;
      (*gate_args)[DNNL_ARG_WEIGHTS] = memory(gate_pd.weights_desc(), e, w_gate->data());
      (*gate_args)[DNNL_ARG_DST] = g;
      (*gate_args)[DNNL_ARG_SCRATCHPAD] = memory(gate_pd.scratchpad_desc(), e, scratch());
      (*value_args)[DNNL_ARG_SRC] = src;
      (*value_args)[DNNL_ARG_WEIGHTS] = memory(value_pd.weights_desc(), e, w_value->data());
      (*value_args)[DNNL_ARG_DST] = memory(dst_md, e, ptr(sp->out));
      (*value_args)[DNNL_ARG_SCRATCHPAD] = memory(value_pd.scratchpad_desc(), e, scratch());
      (*value_args)[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] = g;
      if (b_gate) {
        (*gate_args)[DNNL_ARG_BIAS] = memory(b_md, e, b_gate->data());
        (*value_args)[DNNL_ARG_BIAS] = memory(b_md, e, b_value->data());
      }
      dnnl::stream* stream = &plan_.stream;
      return std::function<void()>([gate_prim, value_prim, gate_args, value_args, stream] {
        gate_prim.execute(*stream, *gate_args);
        value_prim.execute(*stream, *value_args);
        stream->wait();
      });
    };
    return p;
  }

  template <class F>
  Prepared simple(size_t scratch_bytes, F make) {
    Prepared p;
    p.scratch = scratch_bytes;
    p.bind = [make]() { return std::function<void()>(make()); };
    return p;
  }

  Prepared prepare(const Spec& s) {
    const Spec* sp = &s;
    auto P = [this](int st) { return ptr(st); };
    auto F = [this](int st) { return static_cast<float*>(ptr(st)); };
    auto DT = [this](int st) { return stores_[size_t(st)].dtype; };
    switch (s.kind) {
      case SK::Conv:
        return prepare_conv(s);
      case SK::Linear:
        return prepare_linear(s);
      case SK::LinearGeglu:
        return prepare_linear_geglu(s);
      case SK::GroupNorm: {
        const Node& m = *s.node;
        const Shape& xs = m.shape;
        const int64_t N = xs[0], C = xs.back(), Pn = shape_numel(xs) / (N * C);
        return simple(group_norm_scratch_bytes(N, C, plan_.threads), [=, this]() {
          const void* x = P(sp->in[0]);
          const DType xt = DT(sp->in[0]);
          const float *add = F(sp->in[1]), *ga = F(sp->in[2]), *be = F(sp->in[3]);
          void* y = P(sp->out);
          const DType yt = DT(sp->out);
          void* scr = scratch();
          const int64_t G = m.attrs.groups;
          const float eps = m.attrs.eps;
          const bool silu = m.attrs.silu;
          return [=] { group_norm(x, xt, add, ga, be, N, Pn, C, G, eps, silu, y, yt, scr); };
        });
      }
      case SK::LayerNorm: {
        const Node& m = *s.node;
        const int64_t C = m.shape.back(), rows = shape_numel(m.shape) / C;
        return simple(0, [=]() {
          const void* x = P(sp->in[0]);
          const DType xt = DT(sp->in[0]);
          const float *ga = F(sp->in[1]), *be = F(sp->in[2]);
          void* y = P(sp->out);
          const DType yt = DT(sp->out);
          const float eps = m.attrs.eps;
          return [=] { layer_norm(x, xt, ga, be, rows, C, eps, y, yt); };
        });
      }
      case SK::Attention: {
        const Node& m = *s.node;
        AttentionShape as;
        as.N = shape(m.inputs[0])[0];
        as.Tq = shape(m.inputs[0])[1];
        as.Tk = shape(m.inputs[1])[1];
        as.C = shape(m.inputs[0])[2];
        as.heads = m.attrs.heads;
        as.causal = m.attrs.causal;
        as.in = DT(s.in[0]);
        as.out = DT(s.out);
        if (DT(s.in[1]) != as.in || DT(s.in[2]) != as.in)
          fail(m, "q, k, v of one storage type", "mixed (planner bug)");
        auto kernel = std::make_shared<AttentionKernel>(as, plan_.engine, plan_.threads);
        return simple(kernel->scratch_bytes(), [=, this]() {
          const void *q = P(sp->in[0]), *k = P(sp->in[1]), *v = P(sp->in[2]);
          void* y = P(sp->out);
          void* scr = scratch();
          return [=] { kernel->run(q, k, v, y, scr); };
        });
      }
      case SK::Unary: {
        const Node& m = *s.node;
        const int64_t n = shape_numel(m.shape);
        return simple(0, [=]() {
          const float* x = F(sp->in[0]);
          void* y = P(sp->out);
          const DType yt = DT(sp->out);
          const Unary op = sp->unary;
          const float sc = m.attrs.scale, bi = m.attrs.bias;
          return [=] { unary(op, x, y, yt, n, sc, bi); };
        });
      }
      case SK::Geglu: {
        const Node& m = *s.node;
        const int64_t D = m.shape.back(), rows = shape_numel(m.shape) / D;
        return simple(0, [=]() {
          const float* x = F(sp->in[0]);
          void* y = P(sp->out);
          const DType yt = DT(sp->out);
          return [=] { geglu(x, y, yt, rows, D); };
        });
      }
      case SK::Binary: {
        const Node& m = *s.node;
        const Shape& as = m.shape;
        const int64_t N = as.size() >= 3 ? as[0] : 1, C = as.back();
        const int64_t inner = shape_numel(as) / (N * C);
        return simple(0, [=]() {
          const float *a = F(sp->in[0]), *b = F(sp->in[1]);
          float* y = F(sp->out);
          const Binary op = sp->binary;
          const Broadcast bc = sp->bc;
          return [=] { binary(op, bc, a, b, y, N, inner, C); };
        });
      }
      case SK::Upsample: {
        const Shape &xs = shape(s.node->inputs[0]), &ys = s.node->shape;
        return simple(0, [=]() {
          const float* x = F(sp->in[0]);
          void* y = P(sp->out);
          const DType yt = DT(sp->out);
          return [=] { upsample_nearest(x, y, yt, xs[0], xs[1], xs[2], xs[3], ys[1], ys[2]); };
        });
      }
      case SK::Concat: {
        const int64_t Ca = shape(s.node->inputs[0]).back(), Cb = shape(s.node->inputs[1]).back();
        const int64_t rows = shape_numel(shape(s.node->inputs[0])) / Ca;
        return simple(0, [=]() {
          const float *a = F(sp->in[0]), *b = F(sp->in[1]);
          float* y = F(sp->out);
          return [=] { concat_last(a, b, y, rows, Ca, Cb); };
        });
      }
      case SK::Slice: {
        const int64_t C = shape(s.node->inputs[0]).back();
        const int64_t rows = shape_numel(s.node->shape) / s.node->shape.back();
        const int64_t b0 = s.node->attrs.begin, e0 = s.node->attrs.end;
        return simple(0, [=]() {
          const float* x = F(sp->in[0]);
          float* y = F(sp->out);
          return [=] { slice_last(x, y, rows, C, b0, e0); };
        });
      }
      case SK::Timestep: {
        const Node& m = *s.node;
        const int64_t N = m.shape[0];
        return simple(0, [=]() {
          const float* t = F(sp->in[0]);
          float* y = F(sp->out);
          return [=] {
            timestep_embedding(t, y, N, m.attrs.dim, m.attrs.flip_sin_to_cos, m.attrs.freq_shift);
          };
        });
      }
      case SK::Embedding: {
        const Node& m = *s.node;
        const Shape& ts = shape(m.inputs[1]);
        const int64_t n = shape_numel(shape(m.inputs[0]));
        return simple(0, [=]() {
          const int32_t* ids = static_cast<const int32_t*>(P(sp->in[0]));
          const float* table = F(sp->in[1]);
          float* y = F(sp->out);
          return [=] { embedding(ids, table, y, n, ts[0], ts[1]); };
        });
      }
      case SK::Convert: {
        const int64_t n = s.n;
        return simple(0, [=]() {
          const float* x = F(sp->in[0]);
          uint16_t* y = static_cast<uint16_t*>(P(sp->out));
          return [=] { convert_to_bf16(x, y, n); };
        });
      }
      case SK::Copy: {
        const int64_t n = s.n;
        return simple(0, [=]() {
          const float* x = F(sp->in[0]);
          float* y = F(sp->out);
          return [=] { copy_f32(x, y, n); };
        });
      }
    }
    throw Error("plan", "step", "a known step kind", "other");
  }

  void prepare_and_bind() {
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
    plan_.arena_ = std::make_unique<PackedWeight>(std::max<size_t>(mp.total, 64));
    plan_.scratch_ = std::make_unique<PackedWeight>(std::max<size_t>(scratch, 64));
    for (size_t i = 0; i < specs_.size(); ++i) {
      Step st;
      st.run = prepared[i].bind();
      st.info.kind = specs_[i].name;
      st.info.label = specs_[i].label;
      st.info.macs = specs_[i].macs;
      st.info.out_type = stores_[size_t(specs_[i].out)].dtype;
      plan_.steps_.push_back(std::move(st));
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
};

}  // namespace

std::unique_ptr<Plan> Plan::compile(const graph::Graph& g, const PlanOptions& options) {
  if (options.precision == Precision::BF16 && !cpu_features().avx512)
    throw UsageError("", "precision", "f32 on this CPU (bf16 needs AVX-512)", "bf16");
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
