// The IR -> ONNX walk: one emitter that keeps, per IR value, its ONNX tensor in each element type
// asked for (Cast nodes made once, on first use), deduplicated constants, and weights converted
// lazily into the form each use needs (as stored, transposed for MatMul, 1x1-conv, per-channel).
#include "export/graph_to_onnx.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "common/error.h"

namespace sdc::exporter {

namespace {

using IrNode = graph::Node;
using graph::Op;
using graph::ValueId;

std::string to_bytes(const std::vector<float>& v, ElemType t) {
  std::string out;
  if (t == ElemType::Float) {
    out.resize(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
  } else {
    out.resize(v.size() * 2);
    convert_from_f32(DType::F16, v.data(), out.data(), v.size());
  }
  return out;
}

// How a weight is laid out for one use.
enum class Form { Stored, Transposed, Conv1x1, PerChannel };

class Emitter {
 public:
  Emitter(const graph::Graph& g, const graph::Graph* probe, const GraphExportOptions& o)
      : g_(g), probe_(probe), o_(o) {
    if (probe_) {
      bool same = probe_->nodes().size() == g_.nodes().size();
      for (size_t i = 0; same && i < g_.nodes().size(); ++i)
        same = g_.nodes()[i].op == probe_->nodes()[i].op &&
               g_.nodes()[i].shape.size() == probe_->nodes()[i].shape.size();
      if (!same)
        throw Error("onnx export", o.graph_name, "a probe graph with the same nodes",
                    "a different graph");
    }
    m_.graph_name = o.graph_name;
    m_.doc = o.doc;
  }

  OnnxModel run() {
    for (ValueId v = 0; v < ValueId(g_.nodes().size()); ++v) emit(v);
    outputs();
    return std::move(m_);
  }

 private:
  const graph::Graph& g_;
  const graph::Graph* probe_;
  const GraphExportOptions& o_;
  OnnxModel m_;
  std::map<std::pair<ValueId, ElemType>, std::string> names_;  // IR value in a type -> tensor
  std::map<ValueId, ElemType> native_;                         // the type each value was made in
  std::map<std::tuple<ValueId, Form, ElemType>, std::string> weights_;
  std::map<std::string, std::string> constants_;  // type+dims+bytes -> initializer name
  int counter_ = 0;

  const IrNode& node(ValueId v) const { return g_.node(v); }
  bool image(ValueId v) const { return node(v).op != Op::Weight && node(v).shape.size() == 4; }
  bool varies(ValueId v, size_t axis) const {
    return probe_ && probe_->node(v).shape.at(axis) != node(v).shape.at(axis);
  }
  bool same_dims(ValueId a, ValueId b) const {
    return g_.shape(a) == g_.shape(b) && (!probe_ || probe_->shape(a) == probe_->shape(b));
  }
  std::string label(ValueId v) const {
    const std::string& n = node(v).name;
    return (n.empty() ? std::string(graph::op_name(node(v).op)) : n) + "#" + std::to_string(v);
  }
  [[noreturn]] void unsupported(ValueId v, const std::string& what) const {
    throw Error("onnx export", label(v), "an IR pattern the ONNX writer knows", what);
  }

  std::string fresh(const std::string& hint) { return hint + "_" + std::to_string(counter_++); }

  std::string add(const std::string& op, const std::string& where, std::vector<std::string> in,
                  std::vector<Attribute> attrs = {}, std::string out = {}) {
    if (out.empty()) out = fresh("t");
    Node n;
    n.op_type = op;
    n.name = where + "/" + op + "_" + std::to_string(counter_++);
    n.inputs = std::move(in);
    n.outputs = {out};
    n.attributes = std::move(attrs);
    m_.nodes.push_back(std::move(n));
    return out;
  }
  static Attribute ints(std::string name, std::vector<int64_t> v) {
    Attribute a;
    a.kind = Attribute::Kind::Ints;
    a.name = std::move(name);
    a.ints = std::move(v);
    return a;
  }
  static Attribute int_attr(std::string name, int64_t v) {
    Attribute a;
    a.kind = Attribute::Kind::Int;
    a.name = std::move(name);
    a.i = v;
    return a;
  }
  static Attribute float_attr(std::string name, float v) {
    Attribute a;
    a.kind = Attribute::Kind::Float;
    a.name = std::move(name);
    a.f = v;
    return a;
  }
  static Attribute string_attr(std::string name, std::string v) {
    Attribute a;
    a.kind = Attribute::Kind::String;
    a.name = std::move(name);
    a.s = std::move(v);
    return a;
  }

  // A constant initializer, shared by every use of the same type, dims and bytes.
  std::string constant(ElemType t, std::vector<int64_t> dims, std::string bytes) {
    std::string key = std::to_string(int(t)) + ":";
    for (int64_t d : dims) key += std::to_string(d) + ",";
    key += ":" + bytes;
    auto it = constants_.find(key);
    if (it != constants_.end()) return it->second;
    const std::string name = "const_" + std::to_string(constants_.size());
    Initializer init;
    init.name = name;
    init.type = t;
    init.dims = std::move(dims);
    init.data = [bytes] { return bytes; };
    m_.initializers.push_back(std::move(init));
    constants_.emplace(std::move(key), name);
    return name;
  }
  std::string i64s(const std::vector<int64_t>& v) {
    std::string b(v.size() * 8, '\0');
    std::memcpy(b.data(), v.data(), b.size());
    return constant(ElemType::Int64, {int64_t(v.size())}, b);
  }
  std::string floats(const std::vector<float>& v, std::vector<int64_t> dims, ElemType t) {
    return constant(t, std::move(dims), to_bytes(v, t));
  }
  std::string scalar(float x, ElemType t) { return floats({x}, {}, t); }

  // The weight of node `w` in the form and type one use needs.
  std::string weight(ValueId w, Form form, ElemType t) {
    const IrNode& n = node(w);
    if (n.op != Op::Weight) unsupported(w, "a computed value where a weight was expected");
    const auto key = std::make_tuple(w, form, t);
    auto it = weights_.find(key);
    if (it != weights_.end()) return it->second;
    std::vector<int64_t> dims = n.shape;
    std::string name = n.name;
    const bool transpose = form == Form::Transposed;
    if (form == Form::Transposed) {
      if (dims.size() == 4 && dims[2] == 1 && dims[3] == 1) dims.resize(2);
      if (dims.size() != 2) unsupported(w, "a 2-D projection weight, found " + shape_str(n.shape));
      dims = {dims[1], dims[0]};
      name += ".T";
    } else if (form == Form::Conv1x1) {
      if (dims.size() == 2) dims = {dims[0], dims[1], 1, 1};
      if (dims.size() != 4 || dims[2] != 1 || dims[3] != 1)
        unsupported(w, "a projection weight, found " + shape_str(n.shape));
      if (n.shape.size() == 2) name += ".1x1";
    } else if (form == Form::PerChannel) {
      if (dims.size() != 1) unsupported(w, "a per-channel vector, found " + shape_str(n.shape));
      dims = {dims[0], 1, 1};
      name += ".chw";
    }
    if (t != ElemType::Float) name += ".f16";
    Initializer init;
    init.name = name;
    init.type = t;
    init.dims = dims;
    init.data = [ref = n.weight, transpose, dims, t] {
      std::vector<float> v = ref.to_f32();
      ref.release_pages();
      if (transpose) {  // stored [co, ci], written [ci, co]
        const int64_t ci = dims[0], co = dims[1];
        std::vector<float> tr(v.size());
        for (int64_t o = 0; o < co; ++o)
          for (int64_t i = 0; i < ci; ++i) tr[size_t(i * co + o)] = v[size_t(o * ci + i)];
        v.swap(tr);
      }
      return to_bytes(v, t);
    };
    m_.initializers.push_back(std::move(init));
    weights_.emplace(key, name);
    return name;
  }

  // Tensor of IR value `v` in element type `t` (a Cast made on first use).
  std::string in(ValueId v, ElemType t) {
    auto it = names_.find({v, t});
    if (it != names_.end()) return it->second;
    auto nat = native_.find(v);
    if (nat == native_.end()) unsupported(v, "a value used before it is made");
    const std::string src = names_.at({v, nat->second});
    const std::string out =
        add("Cast", label(v), {src}, {int_attr("to", int64_t(t))}, fresh("v" + std::to_string(v)));
    names_[{v, t}] = out;
    return out;
  }
  std::string x(ValueId v) { return in(v, o_.compute); }
  void set(ValueId v, const std::string& name, ElemType t) {
    names_[{v, t}] = name;
    native_[v] = t;
  }

  int64_t last_axis(ValueId v) const { return image(v) ? 1 : -1; }

  const IoSpec& input_spec(ValueId v) const {
    for (const auto& s : o_.inputs)
      if (s.ir_name == node(v).name) return s;
    throw Error("onnx export", o_.graph_name, "an ONNX name for IR input " + node(v).name, "none");
  }

  void emit(ValueId v) {
    const IrNode& n = node(v);
    const std::string where = label(v);
    const ElemType c = o_.compute;
    auto arg = [&](size_t i) { return n.inputs.at(i); };
    switch (n.op) {
      case Op::Weight:
        return;  // emitted where used, in the form the use needs
      case Op::Input: {
        const IoSpec& s = input_spec(v);
        ValueInfo info;
        info.name = s.onnx_name;
        info.type = n.dtype == DType::I32 ? ElemType::Int32 : ElemType::Float;
        info.dims = s.dims;
        std::vector<int64_t> ir = n.shape;
        if (ir.size() == 4) ir = {ir[0], ir[3], ir[1], ir[2]};
        if (s.dims.size() != ir.size())
          throw Error("onnx export", s.onnx_name, std::to_string(ir.size()) + " dimensions",
                      std::to_string(s.dims.size()));
        for (size_t i = 0; i < ir.size(); ++i)
          if (s.dims[i].value >= 0 && s.dims[i].value != ir[i])
            throw Error("onnx export", s.onnx_name, "dimension " + std::to_string(ir[i]),
                        std::to_string(s.dims[i].value));
        m_.inputs.push_back(info);
        std::string name = s.onnx_name;
        if (s.scale != 1.f) name = add("Mul", where, {name, scalar(s.scale, ElemType::Float)});
        set(v, name, info.type);
        return;
      }
      case Op::Conv2d: {
        const auto& a = n.attrs;
        std::vector<std::string> ins{x(arg(0)), weight(arg(1), Form::Stored, c)};
        if (arg(2) != graph::kNone) ins.push_back(weight(arg(2), Form::Stored, c));
        const Shape& ws = g_.shape(arg(1));
        set(v,
            add("Conv", where, ins,
                {ints("kernel_shape", {ws[2], ws[3]}), ints("strides", {a.stride, a.stride}),
                 ints("pads", {a.pad_top, a.pad_left, a.pad_bottom, a.pad_right})}),
            c);
        return;
      }
      case Op::Linear: {
        std::string y;
        if (image(arg(0))) {
          std::vector<std::string> ins{x(arg(0)), weight(arg(1), Form::Conv1x1, c)};
          if (arg(2) != graph::kNone) ins.push_back(weight(arg(2), Form::Stored, c));
          y = add("Conv", where, ins, {ints("kernel_shape", {1, 1})});
        } else {
          y = add("MatMul", where, {x(arg(0)), weight(arg(1), Form::Transposed, c)});
          if (arg(2) != graph::kNone) y = add("Add", where, {y, weight(arg(2), Form::Stored, c)});
        }
        set(v, y, c);
        return;
      }
      case Op::GroupNorm: {
        if (!image(arg(0)))
          unsupported(v,
                      "GroupNorm on a rank-" + std::to_string(g_.shape(arg(0)).size()) + " value");
        const int64_t groups = n.attrs.groups;
        const std::string xf = in(arg(0), ElemType::Float);
        const std::string grouped = add("Reshape", where, {xf, i64s({0, groups, -1})});
        const std::vector<float> ones(size_t(groups), 1.f), zeros(size_t(groups), 0.f);
        const std::string normed = add("InstanceNormalization", where,
                                       {grouped, floats(ones, {groups}, ElemType::Float),
                                        floats(zeros, {groups}, ElemType::Float)},
                                       {float_attr("epsilon", n.attrs.eps)});
        const std::string shape = add("Shape", where, {xf});
        std::string y = add("Reshape", where, {normed, shape});
        y = add("Mul", where, {y, weight(arg(1), Form::PerChannel, ElemType::Float)});
        y = add("Add", where, {y, weight(arg(2), Form::PerChannel, ElemType::Float)});
        if (n.attrs.silu) {
          if (c != ElemType::Float) y = add("Cast", where, {y}, {int_attr("to", int64_t(c))});
          y = add("Mul", where, {y, add("Sigmoid", where, {y})});
          set(v, y, c);
        } else {
          set(v, y, ElemType::Float);
        }
        return;
      }
      case Op::LayerNorm: {
        if (image(arg(0))) unsupported(v, "LayerNorm over the channels of an image");
        set(v,
            add("LayerNormalization", where,
                {in(arg(0), ElemType::Float), weight(arg(1), Form::Stored, ElemType::Float),
                 weight(arg(2), Form::Stored, ElemType::Float)},
                {int_attr("axis", -1), float_attr("epsilon", n.attrs.eps)}),
            ElemType::Float);
        return;
      }
      case Op::Attention:
        return attention(v);
      case Op::Gelu:
        set(v, gelu(where, x(arg(0))), c);
        return;
      case Op::QuickGelu: {
        const std::string a = x(arg(0));
        const std::string s = add("Sigmoid", where, {add("Mul", where, {a, scalar(1.702f, c)})});
        set(v, add("Mul", where, {a, s}), c);
        return;
      }
      case Op::Silu: {
        const std::string a = x(arg(0));
        set(v, add("Mul", where, {a, add("Sigmoid", where, {a})}), c);
        return;
      }
      case Op::Relu:
        set(v, add("Relu", where, {x(arg(0))}), c);
        return;
      case Op::Tanh:
        set(v, add("Tanh", where, {x(arg(0))}), c);
        return;
      case Op::Geglu: {
        const int64_t half = g_.shape(arg(0)).back() / 2;
        Node split;
        split.op_type = "Split";
        split.name = where + "/Split_" + std::to_string(counter_++);
        split.inputs = {x(arg(0)), i64s({half, half})};
        split.outputs = {fresh("t"), fresh("t")};
        split.attributes = {int_attr("axis", last_axis(arg(0)))};
        m_.nodes.push_back(split);
        set(v, add("Mul", where, {split.outputs[0], gelu(where, split.outputs[1])}), c);
        return;
      }
      case Op::Add:
      case Op::Mul:
        set(v, add(n.op == Op::Add ? "Add" : "Mul", where, {x(arg(0)), broadcast(arg(1), arg(0))}),
            c);
        return;
      case Op::Scale: {
        std::string y = x(arg(0));
        if (n.attrs.scale != 1.f) y = add("Mul", where, {y, scalar(n.attrs.scale, c)});
        if (n.attrs.bias != 0.f) y = add("Add", where, {y, scalar(n.attrs.bias, c)});
        if (y == x(arg(0))) y = add("Identity", where, {y});
        set(v, y, c);
        return;
      }
      case Op::UpsampleNearest:
        return upsample(v);
      case Op::Concat:
        set(v, add("Concat", where, {x(arg(0)), x(arg(1))}, {int_attr("axis", last_axis(arg(0)))}),
            c);
        return;
      case Op::Slice: {
        const int64_t axis = last_axis(arg(0));
        set(v,
            add("Slice", where,
                {x(arg(0)), i64s({n.attrs.begin}), i64s({n.attrs.end}), i64s({axis})}),
            c);
        return;
      }
      case Op::Reshape:
        return reshape(v);
      case Op::TimestepEmbedding: {
        const int64_t half = n.attrs.dim / 2;
        // The same f32 frequencies as diffusers' get_timestep_embedding.
        std::vector<float> freq(static_cast<size_t>(half));
        const float neg_log = -std::log(10000.f);
        for (int64_t i = 0; i < half; ++i)
          freq[size_t(i)] = std::exp((neg_log * float(i)) / (float(half) - n.attrs.freq_shift));
        const std::string t = add("Unsqueeze", where, {in(arg(0), ElemType::Float), i64s({1})});
        const std::string a = add("Mul", where, {t, floats(freq, {1, half}, ElemType::Float)});
        const std::string s = add("Sin", where, {a}), co = add("Cos", where, {a});
        std::vector<std::string> parts = n.attrs.flip_sin_to_cos ? std::vector<std::string>{co, s}
                                                                 : std::vector<std::string>{s, co};
        set(v, add("Concat", where, parts, {int_attr("axis", 1)}), ElemType::Float);
        return;
      }
      case Op::Embedding:
        set(v,
            add("Gather", where, {weight(arg(1), Form::Stored, c), in(arg(0), ElemType::Int32)},
                {int_attr("axis", 0)}),
            c);
        return;
    }
    unsupported(v, graph::op_name(n.op));
  }

  std::string gelu(const std::string& where, const std::string& a) {
    const ElemType c = o_.compute;
    const std::string e = add("Erf", where, {add("Mul", where, {a, scalar(float(M_SQRT1_2), c)})});
    const std::string one_plus = add("Add", where, {e, scalar(1.f, c)});
    return add("Mul", where, {add("Mul", where, {a, one_plus}), scalar(0.5f, c)});
  }

  // `b` shaped to broadcast against `a` by ONNX (numpy) rules: same shape and [1] as they are,
  // [N, C] unsqueezed over a's middle axes (H, W of an NCHW image; T of a sequence).
  std::string broadcast(ValueId b, ValueId a) {
    const Shape& as = g_.shape(a);
    const Shape& bs = g_.shape(b);
    const bool weight_b = node(b).op == Op::Weight;
    const std::string y = weight_b ? weight(b, Form::Stored, o_.compute) : x(b);
    if (bs == as || bs == Shape{1}) return y;
    if (bs.size() == 2 && as.size() >= 3) {
      std::vector<int64_t> axes;
      if (image(a))
        axes = {2, 3};
      else
        for (size_t i = 1; i + 1 < as.size(); ++i) axes.push_back(int64_t(i));
      return add("Unsqueeze", label(b), {y, i64s(axes)});
    }
    unsupported(b, "a broadcast of " + shape_str(bs) + " against " + shape_str(as));
  }

  void attention(ValueId v) {
    const IrNode& n = node(v);
    const std::string where = label(v);
    const ElemType c = o_.compute;
    const int64_t heads = n.attrs.heads;
    const int64_t ch = g_.shape(n.inputs[0]).back(), d = ch / heads;
    auto split_heads = [&](ValueId t, std::vector<int64_t> perm) {
      const std::string r = add("Reshape", where, {x(t), i64s({0, 0, heads, d})});
      return add("Transpose", where, {r}, {ints("perm", std::move(perm))});
    };
    const std::string q = split_heads(n.inputs[0], {0, 2, 1, 3});
    const std::string kt = split_heads(n.inputs[1], {0, 2, 3, 1});
    const std::string vv = split_heads(n.inputs[2], {0, 2, 1, 3});
    // Scores q·k^T / sqrt(d) and the softmax in f32.
    std::string s = add("MatMul", where, {q, kt});
    if (c != ElemType::Float)
      s = add("Cast", where, {s}, {int_attr("to", int64_t(ElemType::Float))});
    s = add("Mul", where, {s, scalar(1.f / std::sqrt(float(d)), ElemType::Float)});
    if (n.attrs.causal) {
      const int64_t tq = g_.shape(n.inputs[0])[1], tk = g_.shape(n.inputs[1])[1];
      if (varies(n.inputs[0], 1) || varies(n.inputs[1], 1) || tq != tk)
        unsupported(v, "a causal mask over a symbolic or unequal sequence length");
      std::vector<float> mask(size_t(tq * tk), 0.f);
      for (int64_t i = 0; i < tq; ++i)
        for (int64_t j = i + 1; j < tk; ++j)
          mask[size_t(i * tk + j)] = std::numeric_limits<float>::lowest();
      s = add("Add", where, {s, floats(mask, {tq, tk}, ElemType::Float)});
    }
    s = add("Softmax", where, {s}, {int_attr("axis", -1)});
    if (c != ElemType::Float) s = add("Cast", where, {s}, {int_attr("to", int64_t(c))});
    std::string o = add("MatMul", where, {s, vv});
    o = add("Transpose", where, {o}, {ints("perm", {0, 2, 1, 3})});
    set(v, add("Reshape", where, {o, i64s({0, 0, ch})}), c);
  }

  // The latest image before `v` with v's IR dimensions (only H and W if `spatial_only`) in both
  // builds, i.e. with the same symbolic dimensions: the template whose Shape a symbolic
  // Reshape/Resize copies.
  ValueId earlier_image(ValueId v, bool spatial_only) const {
    auto match = [&](const Shape& s, const Shape& want) {
      return spatial_only ? s[1] == want[1] && s[2] == want[2] : s == want;
    };
    for (ValueId u = v - 1; u >= 0; --u)
      if (image(u) && match(g_.shape(u), g_.shape(v)) &&
          (!probe_ || match(probe_->shape(u), probe_->shape(v))))
        return u;
    return graph::kNone;
  }

  void upsample(ValueId v) {
    const IrNode& n = node(v);
    const std::string where = label(v);
    const ValueId a = n.inputs[0];
    const Shape& xs = g_.shape(a);
    const std::vector<Attribute> attrs{string_attr("mode", "nearest"),
                                       string_attr("coordinate_transformation_mode", "asymmetric"),
                                       string_attr("nearest_mode", "floor")};
    const bool symbolic = varies(v, 1) || varies(v, 2);
    if (symbolic) {
      // The size of an earlier value with the same spatial dimensions (the UNet's skip
      // connection: diffusers' upsample_size), else exactly x2 in both builds.
      const ValueId ref = earlier_image(v, true);
      if (ref != graph::kNone) {
        const std::string head =
            add("Shape", where, {x(a)}, {int_attr("start", 0), int_attr("end", 2)});
        const std::string tail =
            add("Shape", where, {x(ref)}, {int_attr("start", 2), int_attr("end", 4)});
        const std::string sizes = add("Concat", where, {head, tail}, {int_attr("axis", 0)});
        set(v, add("Resize", where, {x(a), "", "", sizes}, attrs), o_.compute);
        return;
      }
      const Shape& ps = probe_->shape(a);
      if (n.shape[1] != 2 * xs[1] || n.shape[2] != 2 * xs[2] || probe_->shape(v)[1] != 2 * ps[1] ||
          probe_->shape(v)[2] != 2 * ps[2])
        unsupported(v, "a symbolic upsample that is neither x2 nor the size of an earlier value");
    }
    if (n.shape[1] == 2 * xs[1] && n.shape[2] == 2 * xs[2]) {
      const std::string scales = floats({1.f, 1.f, 2.f, 2.f}, {4}, ElemType::Float);
      set(v, add("Resize", where, {x(a), "", scales}, attrs), o_.compute);
      return;
    }
    const std::string sizes = i64s({n.shape[0], n.shape[3], n.shape[1], n.shape[2]});
    set(v, add("Resize", where, {x(a), "", "", sizes}, attrs), o_.compute);
  }

  void reshape(ValueId v) {
    const IrNode& n = node(v);
    const std::string where = label(v);
    const ValueId a = n.inputs[0];
    const Shape& s = g_.shape(a);
    const Shape& t = n.shape;
    auto both = [&](auto pred) {
      return pred(s, t) && (!probe_ || pred(probe_->shape(a), probe_->shape(v)));
    };
    if (s.size() == 4 && t.size() == 3 && both([](const Shape& s, const Shape& t) {
          return t[0] == s[0] && t[2] == s[3] && t[1] == s[1] * s[2];
        })) {
      // NCHW image -> [N, H*W, C] sequence.
      const std::string flat = add("Reshape", where, {x(a), i64s({0, 0, -1})});
      set(v, add("Transpose", where, {flat}, {ints("perm", {0, 2, 1})}), o_.compute);
      return;
    }
    if (s.size() == 3 && t.size() == 4 && both([](const Shape& s, const Shape& t) {
          return t[0] == s[0] && t[3] == s[2] && t[1] * t[2] == s[1];
        })) {
      // [N, H*W, C] sequence -> NCHW image shaped like an earlier image.
      const std::string chw = add("Transpose", where, {x(a)}, {ints("perm", {0, 2, 1})});
      std::string shape;
      if (probe_) {
        const ValueId ref = earlier_image(v, false);
        if (ref == graph::kNone)
          unsupported(v, "a reshape to an image with no earlier image of its dimensions");
        shape = add("Shape", where, {x(ref)});
      } else {
        shape = i64s({t[0], t[3], t[1], t[2]});
      }
      set(v, add("Reshape", where, {chw, shape}), o_.compute);
      return;
    }
    if (image(a) || t.size() == 4)
      unsupported(v, "reshape " + shape_str(s) + " -> " + shape_str(t));
    std::vector<int64_t> target = t;
    int symbolic = 0;
    for (size_t i = 0; i < t.size(); ++i)
      if (varies(v, i)) {
        target[i] = -1;
        ++symbolic;
      }
    if (symbolic > 1) unsupported(v, "a reshape with more than one symbolic dimension");
    set(v, add("Reshape", where, {x(a), i64s(target)}), o_.compute);
  }

  void outputs() {
    std::set<std::string> graph_inputs;
    for (const auto& i : m_.inputs) graph_inputs.insert(i.name);
    for (const auto& spec : o_.outputs) {
      ValueId v = graph::kNone;
      for (const auto& [name, id] : g_.outputs())
        if (name == spec.ir_name) v = id;
      if (v == graph::kNone)
        throw Error("onnx export", o_.graph_name, "an IR output " + spec.ir_name, "none");
      const std::string t = in(v, ElemType::Float);
      ValueInfo info;
      info.name = spec.onnx_name;
      info.type = ElemType::Float;
      info.dims = spec.dims;
      m_.outputs.push_back(info);
      // Rename the tensor to the output's name where it is made (no Identity node), unless it is
      // a graph input or already another output.
      bool renamed = false;
      if (!graph_inputs.count(t) && !output_names_.count(t)) {
        for (auto& node : m_.nodes) {
          for (auto& o : node.outputs)
            if (o == t) {
              o = spec.onnx_name;
              renamed = true;
            }
          for (auto& i : node.inputs)
            if (i == t) i = spec.onnx_name;
        }
        for (auto& [key, name] : names_)
          if (name == t) name = spec.onnx_name;
      }
      if (!renamed) add("Identity", spec.onnx_name, {t}, {}, spec.onnx_name);
      output_names_.insert(spec.onnx_name);
    }
    if (m_.outputs.size() != g_.outputs().size())
      throw Error("onnx export", o_.graph_name,
                  std::to_string(g_.outputs().size()) + " declared outputs",
                  std::to_string(m_.outputs.size()));
  }
  std::set<std::string> output_names_;
};

}  // namespace

OnnxModel graph_to_onnx(const graph::Graph& g, const graph::Graph* probe,
                        const GraphExportOptions& options) {
  if (options.compute != ElemType::Float && options.compute != ElemType::Float16)
    throw Error("onnx export", options.graph_name, "f32 or f16 compute",
                elem_name(options.compute));
  return Emitter(g, probe, options).run();
}

}  // namespace sdc::exporter
