// Structure tests of the graph builders (no backend needed): every weight of each component is
// consumed exactly once, inputs/outputs have the documented shapes, bad weights and shapes give
// clear errors, and the full-size SD1.5 graphs build with the expected amount of work.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "common/error.h"
#include "graph/builders/builders.h"
#include "tiny_model.h"

namespace sdc::graph {
namespace {

using test::tiny_controlnet_params;
using test::tiny_controlnet_weights;
using test::tiny_text_encoder_params;
using test::tiny_unet_params;
using test::tiny_vae_params;
using test::tiny_weights;

Shape input_shape(const Graph& g, const std::string& name) {
  for (const auto& [n, v] : g.inputs())
    if (n == name) return g.shape(v);
  ADD_FAILURE() << "no input " << name;
  return {};
}

Shape output_shape(const Graph& g, const std::string& name) {
  for (const auto& [n, v] : g.outputs())
    if (n == name) return g.shape(v);
  ADD_FAILURE() << "no output " << name;
  return {};
}

std::set<std::string> names(const std::vector<std::pair<std::string, ValueId>>& list) {
  std::set<std::string> out;
  for (const auto& [n, v] : list) out.insert(n);
  return out;
}

Shape nchw_to_nhwc(const Shape& s) {
  return {s[0], s[2], s[3], s[1]};
}

// Expects `fn` to throw sdc::Error whose message contains every fragment.
template <typename F>
void expect_error(F fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const std::string& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(GraphBuilders, UNetUsesEveryWeightOnce) {
  for (bool control : {false, true}) {
    UNetShape s{1, 8, 8, 77, control};
    const Graph g = build_unet(tiny_weights(), tiny_unet_params(), s);
    const WeightUsage u = weight_usage({&g}, tiny_weights(), kUNetPrefix);
    EXPECT_TRUE(u.ok()) << u.report();
    EXPECT_EQ(u.used, tiny_weights().names_with_prefix(kUNetPrefix).size());
  }
}

TEST(GraphBuilders, UNetShapesFollowTheSkipConnections) {
  // 8x12 latents: 8x12 -> 4x6 -> 2x3 -> 1x2; the up path upsamples 1x2 to 2x3, not 2x4.
  UNetShape s{2, 8, 12, 154, true};
  const Graph g = build_unet(tiny_weights(), tiny_unet_params(), s);
  EXPECT_EQ(input_shape(g, "sample"), (Shape{2, 8, 12, 4}));
  EXPECT_EQ(input_shape(g, "timestep"), (Shape{2}));
  EXPECT_EQ(input_shape(g, "context"), (Shape{2, 154, 32}));
  EXPECT_EQ(output_shape(g, "eps"), (Shape{2, 8, 12, 4}));
  const std::vector<Shape> skips = unet_skip_shapes(tiny_unet_params(), 2, 8, 12);
  ASSERT_EQ(skips.size(), 12u);
  const Shape expected[12] = {{2, 8, 12, 32}, {2, 8, 12, 32}, {2, 8, 12, 32}, {2, 4, 6, 32},
                              {2, 4, 6, 32},  {2, 4, 6, 32},  {2, 2, 3, 32},  {2, 2, 3, 64},
                              {2, 2, 3, 64},  {2, 1, 2, 64},  {2, 1, 2, 64},  {2, 1, 2, 64}};
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(skips[size_t(i)], expected[i]) << i;
    EXPECT_EQ(input_shape(g, control_down_name(i)), expected[i]) << i;
  }
  EXPECT_EQ(input_shape(g, kControlMid), (Shape{2, 1, 2, 64}));
  std::vector<std::pair<int, int>> upsample_sizes;
  for (const Node& n : g.nodes())
    if (n.op == Op::UpsampleNearest) upsample_sizes.emplace_back(n.attrs.out_h, n.attrs.out_w);
  EXPECT_EQ(upsample_sizes, (std::vector<std::pair<int, int>>{{2, 3}, {4, 6}, {8, 12}}));
  EXPECT_EQ(names(g.inputs()).size(), 3u + 13u);
}

TEST(GraphBuilders, UNetWithoutControlHasOnlyTheThreeInputs) {
  const Graph g = build_unet(tiny_weights(), tiny_unet_params(), UNetShape{1, 16, 16, 77, false});
  EXPECT_EQ(names(g.inputs()), (std::set<std::string>{"sample", "timestep", "context"}));
  EXPECT_EQ(names(g.outputs()), (std::set<std::string>{"eps"}));
}

TEST(GraphBuilders, ControlNetUsesEveryWeightOnceAndMatchesTheReferenceShapes) {
  const Graph g = build_controlnet(tiny_controlnet_weights(), tiny_controlnet_params(), 1, 8, 8);
  const WeightUsage u = weight_usage({&g}, tiny_controlnet_weights(), kControlNetPrefix);
  EXPECT_TRUE(u.ok()) << u.report();
  EXPECT_EQ(u.used, tiny_controlnet_weights().size());
  EXPECT_EQ(input_shape(g, "hint"), (Shape{1, 64, 64, 3}));
  EXPECT_EQ(input_shape(g, "scale"), (Shape{1}));
  for (int i = 0; i < 12; ++i) {
    char ref[64];
    std::snprintf(ref, sizeof ref, "controlnet/scale1.0/down_residual_%02d", i);
    EXPECT_EQ(output_shape(g, controlnet_down_name(i)), nchw_to_nhwc(test::ref_shape(ref))) << i;
  }
  EXPECT_EQ(output_shape(g, kControlNetMid),
            nchw_to_nhwc(test::ref_shape("controlnet/scale1.0/mid_residual")));
}

TEST(GraphBuilders, TextEncoderUsesEveryWeightOnce) {
  const Graph both = build_text_encoder_both(tiny_weights(), tiny_text_encoder_params(), 2);
  WeightUsage u = weight_usage({&both}, tiny_weights(), kTextEncoderPrefix);
  EXPECT_TRUE(u.ok()) << u.report();
  EXPECT_EQ(input_shape(both, "input_ids"), (Shape{2, 77}));
  EXPECT_EQ(both.node(both.inputs().front().second).dtype, DType::I32);
  EXPECT_EQ(output_shape(both, "last_hidden_state"), (Shape{2, 77, 32}));
  EXPECT_EQ(output_shape(both, "penultimate_ln"), (Shape{2, 77, 32}));

  const Graph last = build_text_encoder(tiny_weights(), tiny_text_encoder_params(), 1);
  u = weight_usage({&last}, tiny_weights(), kTextEncoderPrefix);
  EXPECT_TRUE(u.ok()) << u.report();
}

TEST(GraphBuilders, ClipSkipTwoLeavesTheLastLayerOut) {
  const Graph g = build_text_encoder(tiny_weights(), tiny_text_encoder_params(), 1, 2);
  const WeightUsage u = weight_usage({&g}, tiny_weights(), kTextEncoderPrefix);
  EXPECT_TRUE(u.duplicated.empty() && u.foreign.empty()) << u.report();
  ASSERT_EQ(u.unused.size(), 16u) << u.report();  // 4 projections, 2 norms, 2 MLP linears, x2
  for (const std::string& name : u.unused)
    EXPECT_EQ(name.rfind(std::string(kTextEncoderPrefix) + "encoder.layers.2.", 0), 0u) << name;
  EXPECT_EQ(output_shape(g, "last_hidden_state"), (Shape{1, 77, 32}));
}

TEST(GraphBuilders, VaeEncoderAndDecoderTogetherUseEveryWeightOnce) {
  const Graph dec = build_vae_decoder(tiny_weights(), tiny_vae_params(), 1, 8, 12);
  const Graph enc = build_vae_encoder(tiny_weights(), tiny_vae_params(), 1, 64, 96);
  const WeightUsage u = weight_usage({&dec, &enc}, tiny_weights(), kVaePrefix);
  EXPECT_TRUE(u.ok()) << u.report();
  EXPECT_EQ(input_shape(dec, "latent"), (Shape{1, 8, 12, 4}));
  EXPECT_EQ(output_shape(dec, "image"), (Shape{1, 64, 96, 3}));
  EXPECT_EQ(input_shape(enc, "image"), (Shape{1, 64, 96, 3}));
  EXPECT_EQ(output_shape(enc, "mean"), (Shape{1, 8, 12, 4}));
  EXPECT_EQ(output_shape(enc, "logvar"), (Shape{1, 8, 12, 4}));
  // The decoder alone leaves exactly the encoder's weights unused.
  const WeightUsage d = weight_usage({&dec}, tiny_weights(), kVaePrefix);
  for (const std::string& name : d.unused)
    EXPECT_TRUE(name.find(".encoder.") != std::string::npos ||
                name.find(".quant_conv.") != std::string::npos)
        << name;
  EXPECT_FALSE(d.unused.empty());
}

TEST(GraphBuilders, WeightUsageReportsStrayAndDuplicatedWeights) {
  WeightMap w = tiny_weights();
  const std::string stray = std::string(kUNetPrefix) + "input_blocks.1.1.extra.weight";
  w.set(stray, w.get(std::string(kUNetPrefix) + "out.0.weight"));
  const Graph g = build_unet(w, tiny_unet_params(), UNetShape{1, 8, 8, 77, false});
  WeightUsage u = weight_usage({&g, &g}, w, kUNetPrefix);
  EXPECT_EQ(u.unused, std::vector<std::string>{stray});
  EXPECT_EQ(u.duplicated.size(), u.used);
  EXPECT_FALSE(u.ok());
  EXPECT_NE(u.report().find("unused: " + stray), std::string::npos);
  // A graph built from other bytes than the map's: that weight is foreign (and so unused).
  WeightMap other = tiny_weights();
  const std::string copied = std::string(kUNetPrefix) + "out.0.weight";
  const TensorRef& orig = other.get(copied);
  other.set(copied, TensorRef::from_f32(orig.to_f32(), orig.shape, DType::F32));
  const Graph h = build_unet(other, tiny_unet_params(), UNetShape{1, 8, 8, 77, false});
  u = weight_usage({&h}, tiny_weights(), kUNetPrefix);
  EXPECT_EQ(u.foreign, std::vector<std::string>{copied});
  EXPECT_EQ(u.unused, std::vector<std::string>{copied});
}

TEST(GraphBuilders, MissingWeightIsNamed) {
  WeightMap w = tiny_weights();
  const std::string name = std::string(kUNetPrefix) + "middle_block.1.proj_in.weight";
  w.erase(name);
  w.description = "tiny.safetensors";
  expect_error(
      [&] {
        build_unet(w, tiny_unet_params(), UNetShape{1, 8, 8, 77, false});
      },
      {"tiny.safetensors", name, "none"});
}

TEST(GraphBuilders, WrongWeightShapeIsNamed) {
  // The fixture has 8 heads but a 64-wide context would not fit attn2.to_k [C, 32].
  model::UNetParams p = tiny_unet_params();
  p.context_dim = 64;
  expect_error(
      [&] {
        build_unet(tiny_weights(), p, UNetShape{1, 8, 8, 77, false});
      },
      {"input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", "[32, 64]", "[32, 32]"});
  model::TextEncoderParams t = tiny_text_encoder_params();
  t.intermediate = 64;
  expect_error([&] { build_text_encoder(tiny_weights(), t, 1); },
               {"encoder.layers.0.mlp.fc1.weight", "[64, 32]", "[128, 32]"});
}

TEST(GraphBuilders, NonFloatWeightIsRefused) {
  WeightMap w = tiny_weights();
  const std::string name = std::string(kVaePrefix) + "post_quant_conv.bias";
  TensorRef t = w.get(name);
  t.dtype = DType::I32;
  t.source = "odd.safetensors";
  w.set(name, t);
  expect_error([&] { build_vae_decoder(w, tiny_vae_params(), 1, 8, 8); },
               {"odd.safetensors", name, "F32, F16 or BF16", "I32"});
}

TEST(GraphBuilders, BadSizesAreRefused) {
  expect_error([&] { build_vae_encoder(tiny_weights(), tiny_vae_params(), 1, 60, 64); },
               {"VAE encoder image size", "multiples of 8", "60x64"});
  expect_error([&] { build_text_encoder(tiny_weights(), tiny_text_encoder_params(), 1, 4); },
               {"clip_skip", "1..3", "4"});
  expect_error(
      [&] {
        build_unet(tiny_weights(), tiny_unet_params(), UNetShape{0, 8, 8, 77, false});
      },
      {"UNet shape", "positive"});
  model::TextEncoderParams t = tiny_text_encoder_params();
  t.activation = "relu";
  expect_error([&] { build_text_encoder(tiny_weights(), t, 1); }, {"activation", "relu"});
}

// Full-size SD1.5 graphs (weights without data: building needs only shapes).
TEST(GraphBuilders, FullSizeSd15GraphsBuildAndUseEveryWeight) {
  model::WeightShapes all = model::unet_weight_shapes({});
  for (auto part : {model::text_encoder_weight_shapes({}), model::vae_weight_shapes({}),
                    model::controlnet_weight_shapes({})})
    all.insert(all.end(), part.begin(), part.end());
  const WeightMap w = test::shapes_only(all);

  const Graph unet = build_unet(w, {}, UNetShape{1, 64, 64, 77, true});
  const Graph te = build_text_encoder(w, {}, 1);
  const Graph dec = build_vae_decoder(w, {}, 1, 64, 64);
  const Graph enc = build_vae_encoder(w, {}, 1, 512, 512);
  const Graph cn = build_controlnet(w, {}, 1, 64, 64);
  for (auto [graphs, prefix] :
       std::vector<std::pair<std::vector<const Graph*>, const char*>>{{{&unet}, kUNetPrefix},
                                                                      {{&te}, kTextEncoderPrefix},
                                                                      {{&dec, &enc}, kVaePrefix},
                                                                      {{&cn}, kControlNetPrefix}}) {
    const WeightUsage u = weight_usage(graphs, w, prefix);
    EXPECT_TRUE(u.ok()) << prefix << "\n" << u.report();
  }
  EXPECT_EQ(output_shape(unet, "eps"), (Shape{1, 64, 64, 4}));
  EXPECT_EQ(output_shape(te, "last_hidden_state"), (Shape{1, 77, 768}));
  EXPECT_EQ(output_shape(dec, "image"), (Shape{1, 512, 512, 3}));
  EXPECT_EQ(output_shape(enc, "mean"), (Shape{1, 64, 64, 4}));
  EXPECT_EQ(output_shape(cn, "mid"), (Shape{1, 8, 8, 1280}));
  EXPECT_EQ(output_shape(cn, "down_11"), (Shape{1, 8, 8, 1280}));

  // Multiply-adds of one run at 512x512 (64x64 latents), batch 1: the UNet's well-known ~0.4 T.
  const double g_unet = double(unet.macs()) / 1e9;
  std::printf(
      "SD1.5 at 512x512, batch 1 — GMACs: UNet %.1f, ControlNet %.1f, text encoder %.1f, "
      "VAE decoder %.1f, VAE encoder %.1f\n",
      g_unet, double(cn.macs()) / 1e9, double(te.macs()) / 1e9, double(dec.macs()) / 1e9,
      double(enc.macs()) / 1e9);
  EXPECT_GT(g_unet, 300.0);
  EXPECT_LT(g_unet, 450.0);
  EXPECT_GT(dec.macs(), 1000 * int64_t(1000000000));  // the decoder is the heaviest at 512x512
}

}  // namespace
}  // namespace sdc::graph
