// WeightSource: how a builder takes weights out of a WeightMap into a Graph. Every fetch names the
// tensor by its LDM name (component prefix + local name), checks its shape against what the
// hyper-parameters imply and its element type, and adds one Weight node. The layer helpers below
// (linear, conv, norms) fetch `NAME.weight` / `NAME.bias` the way PyTorch modules store them.
#pragma once

#include <string>

#include "common/tensor.h"
#include "graph/graph.h"

namespace sdc::graph {

// LDM single-file prefixes of each component.
inline constexpr const char* kUNetPrefix = "model.diffusion_model.";
inline constexpr const char* kVaePrefix = "first_stage_model.";
inline constexpr const char* kTextEncoderPrefix = "cond_stage_model.transformer.text_model.";
inline constexpr const char* kControlNetPrefix = "control_model.";

class WeightSource {
 public:
  WeightSource(Graph& g, const WeightMap& weights, std::string prefix)
      : g_(g), weights_(weights), prefix_(std::move(prefix)) {}

  Graph& graph() { return g_; }
  const std::string& prefix() const { return prefix_; }

  // The tensor prefix + `name` with exactly `shape`, as a Weight node.
  ValueId get(const std::string& name, const Shape& shape);
  // A 1x1 projection weight: accepts [co, ci] or [co, ci, 1, 1] (both are valid for Linear).
  ValueId get_projection(const std::string& name, int64_t co, int64_t ci);
  // The tensor with `stored` shape, viewed with another shape of the same element count (no copy;
  // the node keeps the tensor's name so weight-usage checks still see it).
  ValueId get_view(const std::string& name, const Shape& stored, const Shape& view);

 private:
  const TensorRef& fetch(const std::string& full_name, const Shape& shape);
  Graph& g_;
  const WeightMap& weights_;
  std::string prefix_;
};

// y = x W^T + b over the last axis, from NAME.weight [co, ci] (or [co, ci, 1, 1]) and NAME.bias.
ValueId linear(WeightSource& ws, ValueId x, const std::string& name, int64_t co, int64_t ci,
               bool bias = true);
// 2-D convolution from NAME.weight [co, ci, k, k] and NAME.bias [co], symmetric padding.
ValueId conv(WeightSource& ws, ValueId x, const std::string& name, int64_t co, int64_t ci, int k,
             int stride, int pad);
// GroupNorm from NAME.weight / NAME.bias over the last axis (C), optionally followed by SiLU.
ValueId group_norm(WeightSource& ws, ValueId x, const std::string& name, int groups, float eps,
                   bool silu);
// LayerNorm from NAME.weight / NAME.bias over the last axis.
ValueId layer_norm(WeightSource& ws, ValueId x, const std::string& name, float eps);

// The channel count (last axis) of a value.
int64_t channels(const Graph& g, ValueId v);

}  // namespace sdc::graph
