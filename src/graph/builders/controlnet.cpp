// ControlNet graph: hint encoder (input_hint_block), the UNet's down path + middle block with the
// hint added after conv_in, a zero conv per skip and middle_block_out, each times `scale`.
#include "graph/builders/controlnet.h"

#include <cstdio>

#include "common/error.h"
#include "graph/builders/int8_layers.h"
#include "graph/builders/unet_blocks.h"

namespace sdc::graph {

std::string controlnet_down_name(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "down_%02d", i);
  return buf;
}

namespace {
// input_hint_block: conv(cond -> c0), then per step conv(ci -> ci), conv(ci -> ci+1, stride 2),
// and a last conv to the UNet's first width; SiLU between convs. Conv indices 0, 2, 4, ... (the
// SiLUs take the odd indices in the original nn.Sequential).
ValueId hint_encoder(WeightSource& ws, ValueId hint, const model::ControlNetParams& p) {
  Graph& g = ws.graph();
  const std::vector<int>& ch = p.hint_channels;
  if (ch.empty()) throw Error("graph", "ControlNet hint_channels", "at least one width", "none");
  int index = 0;
  auto step = [&](ValueId x, int64_t co, int stride, bool act) {
    const std::string name = "input_hint_block." + std::to_string(index);
    index += 2;
    const ValueId y = conv(ws, x, name, co, channels(g, x), 3, stride, 1);
    return act ? g.silu(y) : y;
  };
  ValueId h = step(hint, ch[0], 1, true);
  for (size_t i = 0; i + 1 < ch.size(); ++i) {
    h = step(h, ch[i], 1, true);
    h = step(h, ch[i + 1], 2, true);
  }
  return step(h, p.unet.block_out_channels.front(), 1, false);
}
}  // namespace

Graph build_controlnet(const WeightMap& weights, const model::ControlNetParams& p,
                       const UNetShape& s) {
  const model::UNetParams& u = p.unet;
  if (s.batch <= 0 || s.height <= 0 || s.width <= 0 || s.context_tokens <= 0)
    throw Error("graph", "ControlNet shape", "positive batch, height, width and context tokens",
                std::to_string(s.batch) + "x" + std::to_string(s.height) + "x" +
                    std::to_string(s.width) + ", " + std::to_string(s.context_tokens) + " tokens");
  Graph g;
  WeightSource ws(g, weights, kControlNetPrefix);
  const ValueId sample = g.input("sample", {s.batch, s.height, s.width, u.in_channels});
  const ValueId t = g.input("timestep", {s.batch});
  const ValueId context = g.input("context", {s.batch, s.context_tokens, u.context_dim});
  const ValueId hint =
      g.input("hint", {s.batch, 8 * s.height, 8 * s.width, p.conditioning_channels});
  const ValueId scale = g.input("scale", {1});
  // The prompt's and the control image's for all the steps: cross-attention's K and V and the
  // hint encoder's output kept between them.
  g.mark_steady(context);
  g.mark_steady(hint);

  const ValueId emb = time_embedding_silu(ws, t, u);
  const ValueId guided = hint_encoder(ws, hint, p);
  if (g.shape(guided) != unet_skip_shapes(u, s.batch, s.height, s.width).front())
    throw Error("graph", "ControlNet hint", "a hint encoding of the latent's size",
                shape_str(g.shape(guided)));

  const SkipHook hook = [&](int i, ValueId h) {
    const std::string name = "zero_convs." + std::to_string(i) + ".0";
    const int64_t c = channels(g, h);
    const ValueId r = g.mul(linear(ws, h, name, c, c), scale, name + ".scale");
    g.output(controlnet_down_name(i), r);
    return r;
  };
  const DownPath down = down_path(ws, sample, emb, context, guided, u, hook);
  const int64_t cm = channels(g, down.mid);
  const ValueId mid = linear(ws, down.mid, "middle_block_out.0", cm, cm);
  g.output(kControlNetMid, g.mul(mid, scale, "middle_block_out.scale"));
  mark_int8_layers(g);  // the UNet's down path; hint encoder and zero convs stay float
  return g;
}

Graph build_controlnet(const WeightMap& weights, const model::ControlNetParams& params, int batch,
                       int height, int width, int context_tokens) {
  UNetShape s;
  s.batch = batch;
  s.height = height;
  s.width = width;
  s.context_tokens = context_tokens;
  return build_controlnet(weights, params, s);
}

}  // namespace sdc::graph
