// Graph construction with shape checking: every builder mistake is caught here, when the graph
// is made, with the node's label and the shapes involved.
#include "graph/graph.h"

#include "common/error.h"

namespace sdc::graph {

const char* op_name(Op op) {
  switch (op) {
    case Op::Input:
      return "Input";
    case Op::Weight:
      return "Weight";
    case Op::Conv2d:
      return "Conv2d";
    case Op::Linear:
      return "Linear";
    case Op::GroupNorm:
      return "GroupNorm";
    case Op::LayerNorm:
      return "LayerNorm";
    case Op::Attention:
      return "Attention";
    case Op::Gelu:
      return "Gelu";
    case Op::QuickGelu:
      return "QuickGelu";
    case Op::Silu:
      return "Silu";
    case Op::Relu:
      return "Relu";
    case Op::Tanh:
      return "Tanh";
    case Op::Geglu:
      return "Geglu";
    case Op::Add:
      return "Add";
    case Op::Mul:
      return "Mul";
    case Op::Scale:
      return "Scale";
    case Op::UpsampleNearest:
      return "UpsampleNearest";
    case Op::Concat:
      return "Concat";
    case Op::Slice:
      return "Slice";
    case Op::Reshape:
      return "Reshape";
    case Op::TimestepEmbedding:
      return "TimestepEmbedding";
    case Op::Embedding:
      return "Embedding";
  }
  return "?";
}

namespace {
[[noreturn]] void fail(const std::string& label, const std::string& expected, const Shape& found) {
  throw Error("graph", label, expected, shape_str(found));
}
}  // namespace

ValueId Graph::push(Node n) {
  nodes_.push_back(std::move(n));
  return ValueId(nodes_.size() - 1);
}

ValueId Graph::input(const std::string& name, Shape shape, DType dtype) {
  Node n{Op::Input, {}, std::move(shape), dtype, {}, name, {}};
  return push(std::move(n));
}

ValueId Graph::weight(const std::string& name, const TensorRef& t) {
  Node n{Op::Weight, {}, t.shape, t.dtype, {}, name, t};
  return push(std::move(n));
}

ValueId Graph::conv2d(ValueId x, ValueId w, ValueId b, int stride, int pad,
                      const std::string& label) {
  return conv2d(x, w, b, stride, pad, pad, pad, pad, label);
}

ValueId Graph::conv2d(ValueId x, ValueId w, ValueId b, int stride, int pt, int pl, int pb, int pr,
                      const std::string& label) {
  const Shape& xs = shape(x);
  const Shape& ws = shape(w);
  if (xs.size() != 4) fail(label, "conv input [N,H,W,C]", xs);
  if (ws.size() != 4 || ws[1] != xs[3])
    fail(label, "conv weight [Co," + std::to_string(xs[3]) + ",kh,kw]", ws);
  if (b != kNone && shape(b) != Shape{ws[0]})
    fail(label, "bias [" + std::to_string(ws[0]) + "]", shape(b));
  const int64_t ho = (xs[1] + pt + pb - ws[2]) / stride + 1;
  const int64_t wo = (xs[2] + pl + pr - ws[3]) / stride + 1;
  if (ho <= 0 || wo <= 0) fail(label, "an input larger than the kernel", xs);
  Node n{Op::Conv2d, {x, w, b}, {xs[0], ho, wo, ws[0]}, DType::F32, {}, label, {}};
  n.attrs.stride = stride;
  n.attrs.pad_top = pt;
  n.attrs.pad_left = pl;
  n.attrs.pad_bottom = pb;
  n.attrs.pad_right = pr;
  return push(std::move(n));
}

ValueId Graph::linear(ValueId x, ValueId w, ValueId b, const std::string& label) {
  Shape xs = shape(x);
  const Shape& ws = shape(w);
  const bool ok = (ws.size() == 2 || (ws.size() == 4 && ws[2] == 1 && ws[3] == 1)) && !xs.empty() &&
                  ws[1] == xs.back();
  if (!ok) fail(label, "linear weight [Co," + std::to_string(xs.empty() ? 0 : xs.back()) + "]", ws);
  if (b != kNone && shape(b) != Shape{ws[0]})
    fail(label, "bias [" + std::to_string(ws[0]) + "]", shape(b));
  xs.back() = ws[0];
  return push(Node{Op::Linear, {x, w, b}, xs, DType::F32, {}, label, {}});
}

ValueId Graph::group_norm(ValueId x, ValueId gamma, ValueId beta, int groups, float eps, bool silu,
                          const std::string& label) {
  const Shape& xs = shape(x);
  if (xs.size() < 3 || groups <= 0 || xs.back() % groups != 0)
    fail(label, "[N,...,C] with C divisible by " + std::to_string(groups) + " groups", xs);
  if (shape(gamma) != Shape{xs.back()} || shape(beta) != Shape{xs.back()})
    fail(label, "norm weight [" + std::to_string(xs.back()) + "]", shape(gamma));
  Node n{Op::GroupNorm, {x, gamma, beta}, xs, DType::F32, {}, label, {}};
  n.attrs.groups = groups;
  n.attrs.eps = eps;
  n.attrs.silu = silu;
  return push(std::move(n));
}

ValueId Graph::layer_norm(ValueId x, ValueId gamma, ValueId beta, float eps,
                          const std::string& label) {
  const Shape& xs = shape(x);
  if (shape(gamma) != Shape{xs.back()} || shape(beta) != Shape{xs.back()})
    fail(label, "norm weight [" + std::to_string(xs.back()) + "]", shape(gamma));
  Node n{Op::LayerNorm, {x, gamma, beta}, xs, DType::F32, {}, label, {}};
  n.attrs.eps = eps;
  return push(std::move(n));
}

ValueId Graph::attention(ValueId q, ValueId k, ValueId v, int heads, bool causal,
                         const std::string& label) {
  const Shape &qs = shape(q), &ks = shape(k), &vs = shape(v);
  if (qs.size() != 3 || ks.size() != 3 || vs.size() != 3 || ks != vs || qs[0] != ks[0] ||
      qs[2] != ks[2] || heads <= 0 || qs[2] % heads != 0)
    fail(label, "q [N,Tq,C], k = v [N,Tk,C] with C divisible by heads; k is", ks);
  Node n{Op::Attention, {q, k, v}, qs, DType::F32, {}, label, {}};
  n.attrs.heads = heads;
  n.attrs.causal = causal;
  return push(std::move(n));
}

ValueId Graph::gelu(ValueId x) {
  return push(Node{Op::Gelu, {x}, shape(x), DType::F32, {}, {}, {}});
}
ValueId Graph::quick_gelu(ValueId x) {
  return push(Node{Op::QuickGelu, {x}, shape(x), DType::F32, {}, {}, {}});
}
ValueId Graph::silu(ValueId x) {
  return push(Node{Op::Silu, {x}, shape(x), DType::F32, {}, {}, {}});
}
ValueId Graph::relu(ValueId x) {
  return push(Node{Op::Relu, {x}, shape(x), DType::F32, {}, {}, {}});
}
ValueId Graph::tanh(ValueId x) {
  return push(Node{Op::Tanh, {x}, shape(x), DType::F32, {}, {}, {}});
}

ValueId Graph::geglu(ValueId x) {
  Shape s = shape(x);
  if (s.back() % 2 != 0) fail("geglu", "an even last axis", s);
  s.back() /= 2;
  return push(Node{Op::Geglu, {x}, s, DType::F32, {}, {}, {}});
}

namespace {
bool broadcastable(const Shape& a, const Shape& b) {
  if (a == b) return true;
  if (b == Shape{1}) return true;
  return b.size() == 2 && a.size() >= 3 && b[0] == a[0] && b[1] == a.back();
}
}  // namespace

ValueId Graph::add(ValueId a, ValueId b, const std::string& label) {
  if (!broadcastable(shape(a), shape(b)))
    fail(label, "a shape that broadcasts onto " + shape_str(shape(a)), shape(b));
  return push(Node{Op::Add, {a, b}, shape(a), DType::F32, {}, label, {}});
}

ValueId Graph::mul(ValueId a, ValueId b, const std::string& label) {
  if (!broadcastable(shape(a), shape(b)))
    fail(label, "a shape that broadcasts onto " + shape_str(shape(a)), shape(b));
  return push(Node{Op::Mul, {a, b}, shape(a), DType::F32, {}, label, {}});
}

ValueId Graph::scale(ValueId x, float s, float bias) {
  Node n{Op::Scale, {x}, shape(x), DType::F32, {}, {}, {}};
  n.attrs.scale = s;
  n.attrs.bias = bias;
  return push(std::move(n));
}

ValueId Graph::upsample_nearest(ValueId x, int out_h, int out_w) {
  Shape s = shape(x);
  if (s.size() != 4) fail("upsample", "[N,H,W,C]", s);
  s[1] = out_h;
  s[2] = out_w;
  Node n{Op::UpsampleNearest, {x}, s, DType::F32, {}, {}, {}};
  n.attrs.out_h = out_h;
  n.attrs.out_w = out_w;
  return push(std::move(n));
}

ValueId Graph::concat(ValueId a, ValueId b) {
  Shape sa = shape(a);
  const Shape& sb = shape(b);
  if (sa.size() != sb.size() || !std::equal(sa.begin(), sa.end() - 1, sb.begin()))
    fail("concat", "same shape but the last axis as " + shape_str(sa), sb);
  sa.back() += sb.back();
  return push(Node{Op::Concat, {a, b}, sa, DType::F32, {}, {}, {}});
}

ValueId Graph::slice(ValueId x, int64_t begin, int64_t end) {
  Shape s = shape(x);
  if (begin < 0 || end > s.back() || begin >= end)
    fail("slice", "0 <= begin < end <= last axis", s);
  s.back() = end - begin;
  Node n{Op::Slice, {x}, s, DType::F32, {}, {}, {}};
  n.attrs.begin = begin;
  n.attrs.end = end;
  return push(std::move(n));
}

ValueId Graph::reshape(ValueId x, Shape s) {
  if (shape_numel(s) != shape_numel(shape(x)))
    fail("reshape", "as many elements as " + shape_str(shape(x)), s);
  return push(Node{Op::Reshape, {x}, std::move(s), node(x).dtype, {}, {}, {}});
}

ValueId Graph::timestep_embedding(ValueId t, int dim, bool flip, float shift) {
  const Shape& ts = shape(t);
  if (ts.size() != 1 || dim % 2 != 0) fail("timestep_embedding", "t [N] and an even dim", ts);
  Node n{Op::TimestepEmbedding, {t}, {ts[0], dim}, DType::F32, {}, {}, {}};
  n.attrs.dim = dim;
  n.attrs.flip_sin_to_cos = flip;
  n.attrs.freq_shift = shift;
  return push(std::move(n));
}

ValueId Graph::embedding(ValueId ids, ValueId table) {
  const Shape& is = shape(ids);
  const Shape& ts = shape(table);
  if (node(ids).dtype != DType::I32 || is.size() != 2 || ts.size() != 2)
    fail("embedding", "ids [N,T] I32 and table [V,C]", is);
  return push(Node{Op::Embedding, {ids, table}, {is[0], is[1], ts[1]}, DType::F32, {}, {}, {}});
}

void Graph::allow_int8(ValueId v) {
  Node& n = nodes_.at(size_t(v));
  if (n.op != Op::Conv2d && n.op != Op::Linear && n.op != Op::Attention)
    throw Error("graph", n.name, "a Conv2d, Linear or Attention node to allow int8 on",
                op_name(n.op));
  n.attrs.int8 = true;
}

void Graph::mark_steady(ValueId input) {
  Node& n = nodes_.at(size_t(input));
  if (n.op != Op::Input) throw Error("graph", n.name, "an Input to mark steady", op_name(n.op));
  n.attrs.steady = true;
}

void Graph::output(const std::string& name, ValueId v) {
  outputs_.emplace_back(name, v);
}

std::vector<std::pair<std::string, ValueId>> Graph::inputs() const {
  std::vector<std::pair<std::string, ValueId>> out;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].op == Op::Input) out.emplace_back(nodes_[i].name, ValueId(i));
  return out;
}

int64_t Graph::macs() const {
  int64_t total = 0;
  for (const Node& n : nodes_) {
    switch (n.op) {
      case Op::Conv2d: {
        const Shape& w = node(n.inputs[1]).shape;
        total += shape_numel(n.shape) * w[1] * w[2] * w[3];
        break;
      }
      case Op::Linear: {
        const Shape& w = node(n.inputs[1]).shape;
        total += shape_numel(n.shape) * w[1];
        break;
      }
      case Op::Attention: {
        const Shape& q = node(n.inputs[0]).shape;
        const Shape& k = node(n.inputs[1]).shape;
        total += 2 * q[0] * q[1] * k[1] * q[2];  // Q K^T and P V
        break;
      }
      default:
        break;
    }
  }
  return total;
}

int64_t Graph::weight_bytes() const {
  int64_t total = 0;
  for (const Node& n : nodes_)
    if (n.op == Op::Weight) total += int64_t(n.weight.nbytes);
  return total;
}

}  // namespace sdc::graph
