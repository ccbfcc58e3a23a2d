// TAESD graphs: 3x3 convs, ReLU, Block(x) = ReLU(conv(ReLU(conv(ReLU(conv(x))))) + x), nearest x2
// upsampling (decoder) and stride-2 convs (encoder); the decoder's input clamp 3·tanh(x/3).
#include "graph/builders/taesd.h"

#include <string>

#include "common/error.h"
#include "graph/builders/weight_source.h"

namespace sdc::graph {

namespace {

constexpr int64_t C = kTaesdChannels;
constexpr int kLatentChannels = 4;

void check(int batch, int h, int w, const char* what) {
  if (batch <= 0 || h <= 0 || w <= 0)
    throw Error("graph", what, "positive batch and size",
                std::to_string(batch) + "x" + std::to_string(h) + "x" + std::to_string(w));
}

// A 3x3 convolution, padding 1; `bias` false for taesd.py's bias-free resampling convs.
ValueId conv3(WeightSource& ws, ValueId x, const std::string& name, int64_t co, int stride,
              bool bias = true) {
  Graph& g = ws.graph();
  const int64_t ci = g.shape(x).back();
  const ValueId w = ws.get(name + ".weight", {co, ci, 3, 3});
  const ValueId b = bias ? ws.get(name + ".bias", {co}) : kNone;
  return g.conv2d(x, w, b, stride, 1, name);
}

// taesd.py Block(64, 64): skip is the identity (same width), fuse is ReLU.
ValueId block(WeightSource& ws, ValueId x, int index) {
  Graph& g = ws.graph();
  const std::string n = std::to_string(index) + ".conv.";
  ValueId h = g.relu(conv3(ws, x, n + "0", C, 1));
  h = g.relu(conv3(ws, h, n + "2", C, 1));
  h = conv3(ws, h, n + "4", C, 1);
  return g.relu(g.add(h, x, std::to_string(index)));
}

}  // namespace

Graph build_taesd_decoder(const WeightMap& weights, int batch, int latent_h, int latent_w,
                          bool int8_layers) {
  check(batch, latent_h, latent_w, "TAESD decoder shape");
  Graph g;
  WeightSource ws(g, weights, kTaesdDecoderPrefix);
  ValueId x = g.input("latent", {batch, latent_h, latent_w, kLatentChannels});
  // 0: Clamp, x -> 3·tanh(x / 3).
  x = g.scale(g.tanh(g.scale(x, 1.f / 3.f)), 3.f);
  x = g.relu(conv3(ws, x, "1", C, 1));  // 1 conv, 2 ReLU
  int layer = 3;
  int h = latent_h, w = latent_w;
  for (int stage = 0; stage < 3; ++stage) {
    for (int i = 0; i < 3; ++i) x = block(ws, x, layer++);
    h *= 2;
    w *= 2;
    x = g.upsample_nearest(x, h, w);                                  // Upsample
    ++layer;                                                          // (no parameters)
    x = conv3(ws, x, std::to_string(layer++), C, 1, /*bias=*/false);  // conv, no bias
  }
  x = block(ws, x, layer++);                      // 18
  x = conv3(ws, x, std::to_string(layer), 3, 1);  // 19: 64 -> 3
  g.output("image", x);
  if (int8_layers)
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      const Node& n = g.nodes()[i];
      if (n.op == Op::Conv2d && n.shape.back() == C && g.shape(n.inputs[0]).back() == C)
        g.allow_int8(ValueId(i));
    }
  return g;
}

Graph build_taesd_encoder(const WeightMap& weights, int batch, int height, int width) {
  check(batch, height, width, "TAESD encoder shape");
  Graph g;
  WeightSource ws(g, weights, kTaesdEncoderPrefix);
  ValueId x = g.input("image", {batch, height, width, 3});
  x = conv3(ws, x, "0", C, 1);
  x = block(ws, x, 1);
  int layer = 2;
  for (int stage = 0; stage < 3; ++stage) {
    x = conv3(ws, x, std::to_string(layer++), C, 2, /*bias=*/false);  // out = ceil(in / 2)
    for (int i = 0; i < 3; ++i) x = block(ws, x, layer++);
  }
  x = conv3(ws, x, std::to_string(layer), kLatentChannels, 1);  // 14: 64 -> 4
  g.output("latent", x);
  return g;
}

}  // namespace sdc::graph
