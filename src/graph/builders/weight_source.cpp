// Weight fetching with shape and element-type checks, and the PyTorch-module-shaped helpers.
#include "graph/builders/weight_source.h"

#include "common/error.h"

namespace sdc::graph {

const TensorRef& WeightSource::fetch(const std::string& full_name, const Shape& shape) {
  const TensorRef& t = weights_.get(full_name, shape);
  if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
    throw Error(t.source.empty() ? weights_.description : t.source, full_name,
                "element type F32, F16 or BF16", std::string(dtype_name(t.dtype)));
  return t;
}

ValueId WeightSource::get(const std::string& name, const Shape& shape) {
  const std::string full = prefix_ + name;
  return g_.weight(full, fetch(full, shape));
}

ValueId WeightSource::get_projection(const std::string& name, int64_t co, int64_t ci) {
  const std::string full = prefix_ + name;
  const TensorRef* t = weights_.find(full);
  const bool conv_form = t && t->shape.size() == 4;
  return g_.weight(full, fetch(full, conv_form ? Shape{co, ci, 1, 1} : Shape{co, ci}));
}

ValueId WeightSource::get_view(const std::string& name, const Shape& stored, const Shape& view) {
  const std::string full = prefix_ + name;
  TensorRef t = fetch(full, stored);
  if (shape_numel(view) != shape_numel(stored))
    throw Error("graph", full, "a view with " + std::to_string(shape_numel(stored)) + " elements",
                shape_str(view));
  t.shape = view;
  return g_.weight(full, t);
}

ValueId linear(WeightSource& ws, ValueId x, const std::string& name, int64_t co, int64_t ci,
               bool bias) {
  const ValueId w = ws.get_projection(name + ".weight", co, ci);
  const ValueId b = bias ? ws.get(name + ".bias", {co}) : kNone;
  return ws.graph().linear(x, w, b, name);
}

ValueId conv(WeightSource& ws, ValueId x, const std::string& name, int64_t co, int64_t ci, int k,
             int stride, int pad) {
  const ValueId w = ws.get(name + ".weight", {co, ci, k, k});
  const ValueId b = ws.get(name + ".bias", {co});
  return ws.graph().conv2d(x, w, b, stride, pad, name);
}

ValueId group_norm(WeightSource& ws, ValueId x, const std::string& name, int groups, float eps,
                   bool silu) {
  const int64_t c = channels(ws.graph(), x);
  const ValueId gamma = ws.get(name + ".weight", {c});
  const ValueId beta = ws.get(name + ".bias", {c});
  return ws.graph().group_norm(x, gamma, beta, groups, eps, silu, name);
}

ValueId layer_norm(WeightSource& ws, ValueId x, const std::string& name, float eps) {
  const int64_t c = channels(ws.graph(), x);
  const ValueId gamma = ws.get(name + ".weight", {c});
  const ValueId beta = ws.get(name + ".bias", {c});
  return ws.graph().layer_norm(x, gamma, beta, eps, name);
}

int64_t channels(const Graph& g, ValueId v) {
  return g.shape(v).back();
}

}  // namespace sdc::graph
