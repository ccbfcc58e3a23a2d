// The graph IR: a flat list of typed nodes in topological order, built for ONE (batch, height,
// width) so every shape is known when the graph is made. Builders (graph/builders/) create
// graphs for the CLIP text encoder, UNet, VAE and ControlNet; a backend plans and runs them.
//
// Conventions every builder and backend relies on:
//  - Activations are logically f32. Images are NHWC [N, H, W, C]; sequences are [N, T, C]. An
//    image [N, H, W, C] and the sequence [N, H*W, C] share the same memory (Reshape is free),
//    which is why attention needs no transposes.
//  - Weights keep PyTorch's layout: conv [Co, Ci, kh, kw], linear [Co, Ci] (or [Co, Ci, 1, 1]).
//    The backend reorders and casts them once, when planning.
//  - Integer inputs (token ids) are I32.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/tensor.h"

namespace sdc::graph {

enum class Op : uint8_t {
  Input,              // a named input filled before each run
  Weight,             // a constant (TensorRef)
  Conv2d,             // x[N,H,W,Ci], w[Co,Ci,kh,kw], b[Co]? -> [N,Ho,Wo,Co]; stride, pads
  Linear,             // x[...,Ci], w[Co,Ci(,1,1)], b[Co]? -> [...,Co]
  GroupNorm,          // x[N,...,C], gamma[C], beta[C]; groups, eps, silu (fused SiLU after)
  LayerNorm,          // x[...,C], gamma[C], beta[C]; eps
  Attention,          // q[N,Tq,C], k[N,Tk,C], v[N,Tk,C] -> [N,Tq,C]; heads, causal
  Gelu,               // exact (erf) GELU
  QuickGelu,          // x * sigmoid(1.702 x)
  Silu,               // x * sigmoid(x)
  Relu,               // max(x, 0)
  Tanh,               // tanh(x)
  Geglu,              // x[...,2D] -> x[..., :D] * gelu(x[..., D:])
  Add,                // a + b; b: same shape, [N,C] broadcast over a's middle axes, or [1]
  Mul,                // a * b; same broadcasting as Add
  Scale,              // x * scale + bias (attributes)
  UpsampleNearest,    // x[N,H,W,C] -> [N,out_h,out_w,C]
  Concat,             // concatenation along the last (channel) axis
  Slice,              // x[..., begin:end] along the last axis
  Reshape,            // same elements, new shape
  TimestepEmbedding,  // t[N] (f32) -> [N, dim] sinusoidal (diffusers get_timestep_embedding)
  Embedding,          // ids[N,T] (I32), table[V,C] -> [N,T,C]
};

const char* op_name(Op op);

struct Attrs {
  int stride = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int groups = 0;                 // GroupNorm groups
  float eps = 1e-5f;              // norms
  bool silu = false;              // GroupNorm + SiLU fused
  int heads = 1;                  // attention heads
  bool causal = false;            // attention causal mask (CLIP)
  float scale = 1.f, bias = 0.f;  // Scale
  int64_t begin = 0, end = 0;     // Slice
  int dim = 0;                    // TimestepEmbedding
  bool flip_sin_to_cos = true;    // TimestepEmbedding
  float freq_shift = 0.f;         // TimestepEmbedding
  int out_h = 0, out_w = 0;       // UpsampleNearest
  // Conv2d/Linear: the model allows this layer to run W8A8 when a plan asks for int8; Attention:
  // int8 scores and probabilities (the builder's choice of which layers tolerate it; see
  // builders/int8_layers.h).
  bool int8 = false;
  // Input: usually the same from one run to the next (a prompt's context, a ControlNet's hint),
  // so a plan keeps what depends on nothing else and recomputes it only when it changes.
  bool steady = false;
};

using ValueId = int;
constexpr ValueId kNone = -1;

struct Node {
  Op op;
  std::vector<ValueId> inputs;  // value ids of earlier nodes (kNone for an absent bias)
  Shape shape;                  // output shape
  DType dtype = DType::F32;     // output dtype (F32, or I32 for an Input of ids)
  Attrs attrs;
  std::string name;  // Input: its name; Weight: tensor name; others: a debug label
  TensorRef weight;  // Weight only
};

class Graph {
 public:
  // Values are node indices: node i produces value i.
  ValueId input(const std::string& name, Shape shape, DType dtype = DType::F32);
  ValueId weight(const std::string& name, const TensorRef& t);

  ValueId conv2d(ValueId x, ValueId w, ValueId b, int stride, int pad,
                 const std::string& label = {});
  ValueId conv2d(ValueId x, ValueId w, ValueId b, int stride, int pad_top, int pad_left,
                 int pad_bottom, int pad_right, const std::string& label = {});
  ValueId linear(ValueId x, ValueId w, ValueId b, const std::string& label = {});
  ValueId group_norm(ValueId x, ValueId gamma, ValueId beta, int groups, float eps, bool silu,
                     const std::string& label = {});
  ValueId layer_norm(ValueId x, ValueId gamma, ValueId beta, float eps,
                     const std::string& label = {});
  ValueId attention(ValueId q, ValueId k, ValueId v, int heads, bool causal,
                    const std::string& label = {});
  ValueId gelu(ValueId x);
  ValueId quick_gelu(ValueId x);
  ValueId silu(ValueId x);
  ValueId relu(ValueId x);
  ValueId tanh(ValueId x);
  ValueId geglu(ValueId x);
  ValueId add(ValueId a, ValueId b, const std::string& label = {});
  ValueId mul(ValueId a, ValueId b, const std::string& label = {});
  ValueId scale(ValueId x, float scale, float bias = 0.f);
  ValueId upsample_nearest(ValueId x, int out_h, int out_w);
  ValueId concat(ValueId a, ValueId b);
  ValueId slice(ValueId x, int64_t begin, int64_t end);
  ValueId reshape(ValueId x, Shape shape);
  ValueId timestep_embedding(ValueId t, int dim, bool flip_sin_to_cos, float freq_shift);
  ValueId embedding(ValueId ids, ValueId table);

  void output(const std::string& name, ValueId v);
  // Marks a Conv2d/Linear/Attention node as one that may run in int8 (Attrs::int8).
  void allow_int8(ValueId v);
  // Marks an Input as steady (Attrs::steady).
  void mark_steady(ValueId input);

  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& node(ValueId v) const { return nodes_.at(size_t(v)); }
  const std::vector<std::pair<std::string, ValueId>>& outputs() const { return outputs_; }
  std::vector<std::pair<std::string, ValueId>> inputs() const;
  const Shape& shape(ValueId v) const { return node(v).shape; }

  // Multiply-accumulates of one run (conv, linear, attention matmuls): for GFLOP/s reports.
  int64_t macs() const;
  // Total bytes of all Weight tensors as stored.
  int64_t weight_bytes() const;

 private:
  ValueId push(Node n);
  std::vector<Node> nodes_;
  std::vector<std::pair<std::string, ValueId>> outputs_;
};

}  // namespace sdc::graph
