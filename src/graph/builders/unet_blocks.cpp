// UNet building blocks shared by the UNet and ControlNet builders.
#include "graph/builders/unet_blocks.h"

#include "common/error.h"

namespace sdc::graph {

namespace {
int64_t half_up(int64_t x) {
  return (x + 1) / 2;
}  // stride-2, pad-1, 3x3 conv output size

void check_params(const model::UNetParams& p) {
  const size_t levels = p.block_out_channels.size();
  if (levels == 0 || p.attention_levels.size() != levels || p.layers_per_block <= 0 ||
      p.num_heads <= 0 || p.transformer_depth <= 0 || p.norm_groups <= 0)
    throw Error("graph", "UNet hyper-parameters",
                "block_out_channels and attention_levels of equal non-zero length, positive "
                "layers_per_block, heads, depth and groups",
                std::to_string(levels) + " levels, " + std::to_string(p.attention_levels.size()) +
                    " attention levels");
}
}  // namespace

std::vector<Shape> unet_skip_shapes(const model::UNetParams& p, int batch, int h, int w) {
  check_params(p);
  std::vector<Shape> out;
  int64_t hh = h, ww = w;
  out.push_back({batch, hh, ww, p.block_out_channels[0]});
  const size_t levels = p.block_out_channels.size();
  for (size_t l = 0; l < levels; ++l) {
    for (int i = 0; i < p.layers_per_block; ++i)
      out.push_back({batch, hh, ww, p.block_out_channels[l]});
    if (l + 1 < levels) {
      hh = half_up(hh);
      ww = half_up(ww);
      out.push_back({batch, hh, ww, p.block_out_channels[l]});
    }
  }
  return out;
}

Shape unet_mid_shape(const model::UNetParams& p, int batch, int h, int w) {
  Shape s = unet_skip_shapes(p, batch, h, w).back();
  s.back() = p.block_out_channels.back();
  return s;
}

ValueId time_embedding_silu(WeightSource& ws, ValueId t, const model::UNetParams& p) {
  Graph& g = ws.graph();
  const int64_t c0 = p.block_out_channels.front();
  const int64_t temb = p.time_embed_dim();
  // SD1.5: flip_sin_to_cos = true, downscale_freq_shift = 0 (diffusers get_timestep_embedding).
  ValueId e = g.timestep_embedding(t, int(c0), true, 0.f);
  e = linear(ws, e, "time_embed.0", temb, c0);
  e = g.silu(e);
  e = linear(ws, e, "time_embed.2", temb, temb);
  return g.silu(e);
}

ValueId res_block(WeightSource& ws, ValueId x, ValueId emb_silu, const std::string& name,
                  int64_t co, const model::UNetParams& p) {
  Graph& g = ws.graph();
  const int64_t ci = channels(g, x);
  ValueId h = group_norm(ws, x, name + ".in_layers.0", p.norm_groups, p.resnet_eps, true);
  h = conv(ws, h, name + ".in_layers.2", co, ci, 3, 1, 1);
  const ValueId e = linear(ws, emb_silu, name + ".emb_layers.1", co, channels(g, emb_silu));
  h = g.add(h, e, name + ".emb");  // [N, co] broadcast over H, W
  h = group_norm(ws, h, name + ".out_layers.0", p.norm_groups, p.resnet_eps, true);
  h = conv(ws, h, name + ".out_layers.3", co, co, 3, 1, 1);
  const ValueId skip = ci == co ? x : linear(ws, x, name + ".skip_connection", co, ci);
  return g.add(skip, h, name);
}

namespace {
// attn1 (self) or attn2 (cross): q from x, k/v from `kv`, output projection with bias.
ValueId attention_block(WeightSource& ws, ValueId x, ValueId kv, const std::string& name,
                        int heads) {
  Graph& g = ws.graph();
  const int64_t c = channels(g, x), ckv = channels(g, kv);
  const ValueId q = linear(ws, x, name + ".to_q", c, c, false);
  const ValueId k = linear(ws, kv, name + ".to_k", c, ckv, false);
  const ValueId v = linear(ws, kv, name + ".to_v", c, ckv, false);
  const ValueId a = g.attention(q, k, v, heads, false, name);
  return linear(ws, a, name + ".to_out.0", c, c);
}
}  // namespace

ValueId spatial_transformer(WeightSource& ws, ValueId x, ValueId context, const std::string& name,
                            const model::UNetParams& p) {
  Graph& g = ws.graph();
  const Shape xs = g.shape(x);
  const int64_t c = xs[3];
  ValueId h = group_norm(ws, x, name + ".norm", p.norm_groups, p.transformer_norm_eps, false);
  // proj_in/proj_out are 1x1 convs (use_linear_projection false) or linears: both are a Linear
  // over the channel axis in NHWC, so the two variants build the same graph.
  h = linear(ws, h, name + ".proj_in", c, c);
  ValueId s = g.reshape(h, {xs[0], xs[1] * xs[2], c});
  for (int d = 0; d < p.transformer_depth; ++d) {
    const std::string b = name + ".transformer_blocks." + std::to_string(d);
    ValueId n = layer_norm(ws, s, b + ".norm1", p.layer_norm_eps);
    s = g.add(attention_block(ws, n, n, b + ".attn1", p.num_heads), s, b + ".attn1.residual");
    n = layer_norm(ws, s, b + ".norm2", p.layer_norm_eps);
    s = g.add(attention_block(ws, n, context, b + ".attn2", p.num_heads), s, b + ".attn2.residual");
    n = layer_norm(ws, s, b + ".norm3", p.layer_norm_eps);
    ValueId f = linear(ws, n, b + ".ff.net.0.proj", 8 * c, c);  // GEGLU: 2 x (4C)
    f = g.geglu(f);
    f = linear(ws, f, b + ".ff.net.2", c, 4 * c);
    s = g.add(f, s, b + ".ff.residual");
  }
  h = g.reshape(s, xs);
  h = linear(ws, h, name + ".proj_out", c, c);
  return g.add(h, x, name);
}

DownPath down_path(WeightSource& ws, ValueId sample, ValueId emb_silu, ValueId context,
                   ValueId hint, const model::UNetParams& p, const SkipHook& hook) {
  check_params(p);
  Graph& g = ws.graph();
  DownPath out;
  const int64_t c0 = p.block_out_channels.front();
  ValueId h = conv(ws, sample, "input_blocks.0.0", c0, channels(g, sample), 3, 1, 1);
  if (hint != kNone) h = g.add(h, hint, "input_blocks.0.hint");
  int block = 0;
  out.skips.push_back(hook(block++, h));
  const size_t levels = p.block_out_channels.size();
  for (size_t l = 0; l < levels; ++l) {
    const int64_t co = p.block_out_channels[l];
    for (int i = 0; i < p.layers_per_block; ++i) {
      const std::string name = "input_blocks." + std::to_string(block);
      h = res_block(ws, h, emb_silu, name + ".0", co, p);
      if (p.attention_levels[l]) h = spatial_transformer(ws, h, context, name + ".1", p);
      out.skips.push_back(hook(block++, h));
    }
    if (l + 1 < levels) {
      const std::string name = "input_blocks." + std::to_string(block) + ".0.op";
      h = conv(ws, h, name, co, co, 3, 2, 1);
      out.skips.push_back(hook(block++, h));
    }
  }
  const int64_t cm = p.block_out_channels.back();
  h = res_block(ws, h, emb_silu, "middle_block.0", cm, p);
  h = spatial_transformer(ws, h, context, "middle_block.1", p);
  out.mid = res_block(ws, h, emb_silu, "middle_block.2", cm, p);
  return out;
}

}  // namespace sdc::graph
