// UNet graph: down path (shared with ControlNet), up path with skip concatenations, output head.
#include "graph/builders/unet.h"

#include <cstdio>

#include "common/error.h"
#include "graph/builders/int8_layers.h"
#include "graph/builders/unet_blocks.h"

namespace sdc::graph {

std::string control_down_name(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "control_down_%02d", i);
  return buf;
}

Graph build_unet(const WeightMap& weights, const model::UNetParams& p, const UNetShape& s) {
  if (s.batch <= 0 || s.height <= 0 || s.width <= 0 || s.context_tokens <= 0)
    throw Error("graph", "UNet shape", "positive batch, height, width and context tokens",
                std::to_string(s.batch) + "x" + std::to_string(s.height) + "x" +
                    std::to_string(s.width) + ", " + std::to_string(s.context_tokens) + " tokens");
  Graph g;
  WeightSource ws(g, weights, kUNetPrefix);
  const ValueId sample = g.input("sample", {s.batch, s.height, s.width, p.in_channels});
  const ValueId t = g.input("timestep", {s.batch});
  const ValueId context = g.input("context", {s.batch, s.context_tokens, p.context_dim});
  g.mark_steady(context);  // one prompt's for all the steps: cross-attention's K and V kept

  const std::vector<Shape> skip_shapes = unet_skip_shapes(p, s.batch, s.height, s.width);
  std::vector<ValueId> control;
  ValueId control_mid = kNone;
  if (s.with_control) {
    for (size_t i = 0; i < skip_shapes.size(); ++i)
      control.push_back(g.input(control_down_name(int(i)), skip_shapes[i]));
    control_mid = g.input(kControlMid, unet_mid_shape(p, s.batch, s.height, s.width));
  }

  const ValueId emb = time_embedding_silu(ws, t, p);
  const SkipHook hook = [&](int i, ValueId h) {
    return s.with_control ? g.add(h, control.at(size_t(i)), control_down_name(i)) : h;
  };
  DownPath down = down_path(ws, sample, emb, context, kNone, p, hook);
  ValueId h = down.mid;
  if (s.with_control) h = g.add(h, control_mid, kControlMid);

  // Up path: each level takes layers_per_block + 1 skips (last in, first out); a level other than
  // the last ends with an Upsample to the size of the next skip (diffusers' upsample_size, which
  // differs from x2 when the latent size is not divisible by 8).
  std::vector<ValueId>& skips = down.skips;
  int block = 0;
  const int levels = int(p.block_out_channels.size());
  for (int l = levels - 1; l >= 0; --l) {
    const int64_t co = p.block_out_channels[size_t(l)];
    for (int i = 0; i <= p.layers_per_block; ++i) {
      const std::string name = "output_blocks." + std::to_string(block);
      if (s.ldm_upsampling) {
        const Shape hs = g.shape(h), sk = g.shape(skips.back());  // copies: nodes move shapes
        if (hs[1] != sk[1] || hs[2] != sk[2]) h = g.upsample_nearest(h, int(sk[1]), int(sk[2]));
      }
      h = g.concat(h, skips.back());
      skips.pop_back();
      h = res_block(ws, h, emb, name + ".0", co, p);
      int sub = 1;
      if (p.attention_levels[size_t(l)]) {
        h = spatial_transformer(ws, h, context, name + ".1", p);
        ++sub;
      }
      if (l > 0 && i == p.layers_per_block) {
        const Shape next = s.ldm_upsampling ? g.shape(h) : g.shape(skips.back());  // copies
        const int scale = s.ldm_upsampling ? 2 : 1;
        h = g.upsample_nearest(h, scale * int(next[1]), scale * int(next[2]));
        h = conv(ws, h, name + "." + std::to_string(sub) + ".conv", co, co, 3, 1, 1);
      }
      ++block;
    }
  }
  h = group_norm(ws, h, "out.0", p.norm_groups, p.resnet_eps, true);
  h = conv(ws, h, "out.2", p.out_channels, p.block_out_channels.front(), 3, 1, 1);
  g.output("eps", h);
  mark_int8_layers(g);
  return g;
}

}  // namespace sdc::graph
