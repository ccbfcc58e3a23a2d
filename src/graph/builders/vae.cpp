// VAE encoder/decoder graphs: ResnetBlocks (norm1/conv1/norm2/conv2/nin_shortcut), a single-head
// mid-block attention with 1x1-conv q/k/v/proj_out, asymmetric-pad downsampling, nearest x2
// upsampling.
#include "graph/builders/vae.h"

#include <string>

#include "common/error.h"
#include "graph/builders/int8_layers.h"
#include "graph/builders/weight_source.h"

namespace sdc::graph {

namespace {

void check(const model::VaeParams& p, int batch, int h, int w, const char* what) {
  if (batch <= 0 || h <= 0 || w <= 0 || p.block_out_channels.empty() || p.layers_per_block <= 0 ||
      p.norm_groups <= 0)
    throw Error("graph", what, "positive batch and size and non-empty VAE hyper-parameters",
                std::to_string(batch) + "x" + std::to_string(h) + "x" + std::to_string(w));
}

ValueId resnet(WeightSource& ws, ValueId x, const std::string& name, int64_t co,
               const model::VaeParams& p) {
  Graph& g = ws.graph();
  const int64_t ci = channels(g, x);
  // The shortcut first: x then dies at norm1, which overwrites it in place — at 512x512 the
  // decoder's first full-resolution ResNet (256 -> 128 channels) peaks at 512 MiB instead of 640.
  const ValueId skip = ci == co ? x : linear(ws, x, name + ".nin_shortcut", co, ci);
  ValueId h = group_norm(ws, x, name + ".norm1", p.norm_groups, p.norm_eps, true);
  h = conv(ws, h, name + ".conv1", co, ci, 3, 1, 1);
  h = group_norm(ws, h, name + ".norm2", p.norm_groups, p.norm_eps, true);
  h = conv(ws, h, name + ".conv2", co, co, 3, 1, 1);
  return g.add(skip, h, name);
}

ValueId attention(WeightSource& ws, ValueId x, const std::string& name, const model::VaeParams& p) {
  Graph& g = ws.graph();
  const Shape xs = g.shape(x);
  const int64_t c = xs[3];
  const Shape seq{xs[0], xs[1] * xs[2], c};
  const ValueId h = group_norm(ws, x, name + ".norm", p.norm_groups, p.norm_eps, false);
  const ValueId q = g.reshape(linear(ws, h, name + ".q", c, c), seq);
  const ValueId k = g.reshape(linear(ws, h, name + ".k", c, c), seq);
  const ValueId v = g.reshape(linear(ws, h, name + ".v", c, c), seq);
  const ValueId a = g.reshape(g.attention(q, k, v, 1, false, name), xs);
  return g.add(linear(ws, a, name + ".proj_out", c, c), x, name);
}

ValueId mid_block(WeightSource& ws, ValueId h, const std::string& name, const model::VaeParams& p) {
  const int64_t c = channels(ws.graph(), h);
  h = resnet(ws, h, name + ".block_1", c, p);
  h = attention(ws, h, name + ".attn_1", p);
  return resnet(ws, h, name + ".block_2", c, p);
}

}  // namespace

namespace {
// Channels of the features between the two parts (VaePart).
int64_t latent_features(const model::VaeParams& p, bool decoder) {
  const std::vector<int>& ch = p.block_out_channels;
  if (decoder || ch.size() == 1) return decoder ? ch.back() : ch.front();
  return ch[ch.size() - 2];  // the last downsample keeps its block's channels
}
}  // namespace

Graph build_vae_decoder(const WeightMap& weights, const model::VaeParams& p, int batch,
                        int latent_h, int latent_w, VaePart part, bool int8_layers) {
  check(p, batch, latent_h, latent_w, "VAE decoder shape");
  Graph g;
  WeightSource ws(g, weights, kVaePrefix);
  const int64_t lc = p.latent_channels;
  const std::vector<int>& ch = p.block_out_channels;
  const int levels = int(ch.size());
  ValueId h = kNone;
  if (part != VaePart::Tail) {
    h = g.input("latent", {batch, latent_h, latent_w, lc});
    h = linear(ws, h, "post_quant_conv", lc, lc);
    h = conv(ws, h, "decoder.conv_in", ch.back(), lc, 3, 1, 1);
    h = mid_block(ws, h, "decoder.mid", p);
  } else {
    h = g.input("features", {batch, latent_h, latent_w, latent_features(p, true)});
  }
  for (int l = levels - 1; l >= 0; --l) {
    const std::string up = "decoder.up." + std::to_string(l);
    // The head is everything at latent resolution: it ends before the first upsampling.
    if (part == VaePart::Head && l < levels - 1) break;
    if (part != VaePart::Tail || l < levels - 1)
      for (int i = 0; i <= p.layers_per_block; ++i)
        h = resnet(ws, h, up + ".block." + std::to_string(i), ch[size_t(l)], p);
    if (l > 0 && part != VaePart::Head) {
      const Shape s = g.shape(h);
      h = g.upsample_nearest(h, int(2 * s[1]), int(2 * s[2]));
      h = conv(ws, h, up + ".upsample.conv", ch[size_t(l)], ch[size_t(l)], 3, 1, 1);
    }
  }
  if (part == VaePart::Head) {
    g.output("features", h);
  } else {
    h = group_norm(ws, h, "decoder.norm_out", p.norm_groups, p.norm_eps, true);
    h = conv(ws, h, "decoder.conv_out", p.out_channels, ch.front(), 3, 1, 1);
    g.output("image", h);
  }
  if (int8_layers) mark_vae_decoder_int8_layers(g);
  return g;
}

Graph build_vae_encoder(const WeightMap& weights, const model::VaeParams& p, int batch, int height,
                        int width, VaePart part) {
  check(p, batch, height, width, "VAE encoder shape");
  const int factor = 1 << (p.block_out_channels.size() - 1);
  if (height % factor != 0 || width % factor != 0)
    throw Error("graph", "VAE encoder image size",
                "height and width multiples of " + std::to_string(factor),
                std::to_string(height) + "x" + std::to_string(width));
  Graph g;
  WeightSource ws(g, weights, kVaePrefix);
  const std::vector<int>& ch = p.block_out_channels;
  const int levels = int(ch.size());
  ValueId h = kNone;
  if (part != VaePart::Tail) {
    h = g.input("image", {batch, height, width, p.in_channels});
    h = conv(ws, h, "encoder.conv_in", ch.front(), p.in_channels, 3, 1, 1);
  } else {
    h = g.input("features", {batch, height / factor, width / factor, latent_features(p, false)});
  }
  for (int l = 0; l < levels; ++l) {
    const std::string down = "encoder.down." + std::to_string(l);
    // The head ends once at latent resolution (after the last downsample); the tail starts there.
    const bool in_head = l + 1 < levels;
    if (part == VaePart::Head && !in_head) break;
    if (part == VaePart::Tail && in_head) continue;
    for (int i = 0; i < p.layers_per_block; ++i)
      h = resnet(ws, h, down + ".block." + std::to_string(i), ch[size_t(l)], p);
    if (l + 1 < levels) {
      // LDM Downsample: pad right and bottom by one, then a stride-2 3x3 conv without padding.
      const int64_t c = ch[size_t(l)];
      const ValueId w = ws.get(down + ".downsample.conv.weight", {c, c, 3, 3});
      const ValueId b = ws.get(down + ".downsample.conv.bias", {c});
      h = g.conv2d(h, w, b, 2, 0, 0, 1, 1, down + ".downsample.conv");
    }
  }
  if (part == VaePart::Head) {
    g.output("features", h);
    return g;
  }
  h = mid_block(ws, h, "encoder.mid", p);
  h = group_norm(ws, h, "encoder.norm_out", p.norm_groups, p.norm_eps, true);
  const int64_t moments = 2 * p.latent_channels;
  h = conv(ws, h, "encoder.conv_out", moments, ch.back(), 3, 1, 1);
  h = linear(ws, h, "quant_conv", moments, moments);
  g.output("mean", g.slice(h, 0, p.latent_channels));
  g.output("logvar", g.slice(h, p.latent_channels, moments));
  return g;
}

}  // namespace sdc::graph
