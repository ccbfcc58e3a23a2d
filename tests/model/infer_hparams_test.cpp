// Hyper-parameters read from the fixture's tensor shapes match the diffusers configs it was made
// from; configs supply head counts and are checked against the shapes.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/safetensors.h"
#include "model/infer_hparams.h"
#include "model_test_util.h"

namespace sdc {
namespace {

const WeightMap& single() {
  static const io::TensorFile f = io::read_safetensors(test::tiny("model.safetensors"));
  return f.tensors;
}
const WeightMap& control() {
  static const io::TensorFile f = io::read_safetensors(test::tiny("controlnet.safetensors"));
  return f.tensors;
}

nlohmann::json config(const std::string& rel) {
  std::ifstream in(test::tiny(rel));
  return nlohmann::json::parse(in);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(InferHparams, UNetFromShapes) {
  model::UNetParams p = model::infer_unet_params(single());
  EXPECT_EQ(p.in_channels, 4);
  EXPECT_EQ(p.out_channels, 4);
  EXPECT_EQ(p.block_out_channels, (std::vector<int>{32, 32, 64, 64}));
  EXPECT_EQ(p.attention_levels, (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(p.layers_per_block, 2);
  EXPECT_EQ(p.transformer_depth, 1);
  EXPECT_EQ(p.context_dim, 32);
  EXPECT_FALSE(p.use_linear_projection);
  EXPECT_EQ(p.num_heads, 8);
  EXPECT_EQ(p.time_embed_dim(), 128);
  model::apply_unet_config(p, config("diffusers/unet/config.json"), "unet/config.json");
  EXPECT_EQ(p.num_heads, 8);
  model::validate(p, "x");
}

TEST(InferHparams, TextEncoderFromShapesAndConfig) {
  model::TextEncoderParams p = model::infer_text_encoder_params(single());
  EXPECT_EQ(p.vocab_size, 49408);
  EXPECT_EQ(p.max_positions, 77);
  EXPECT_EQ(p.hidden, 32);
  EXPECT_EQ(p.layers, 3);
  EXPECT_EQ(p.intermediate, 128);
  EXPECT_EQ(p.heads, 1);  // width / 64, at least 1: the shapes cannot tell
  model::apply_text_encoder_config(p, config("diffusers/text_encoder/config.json"), "te");
  EXPECT_EQ(p.heads, 4);
  EXPECT_EQ(p.activation, "quick_gelu");
}

TEST(InferHparams, VaeFromShapesAndConfig) {
  model::VaeParams p = model::infer_vae_params(single());
  EXPECT_EQ(p.block_out_channels, (std::vector<int>{32, 32, 32, 32}));
  EXPECT_EQ(p.latent_channels, 4);
  EXPECT_EQ(p.in_channels, 3);
  EXPECT_EQ(p.out_channels, 3);
  EXPECT_EQ(p.layers_per_block, 2);
  nlohmann::json c = config("diffusers/vae/config.json");
  c["scaling_factor"] = 0.5;
  model::apply_vae_config(p, c, "vae");
  EXPECT_FLOAT_EQ(p.scaling_factor, 0.5f);
}

TEST(InferHparams, ControlNetFromShapes) {
  model::ControlNetParams p = model::infer_controlnet_params(control());
  EXPECT_EQ(p.hint_channels, (std::vector<int>{16, 16, 32, 32}));
  EXPECT_EQ(p.conditioning_channels, 3);
  EXPECT_EQ(p.unet.block_out_channels, (std::vector<int>{32, 32, 64, 64}));
  EXPECT_EQ(p.unet.context_dim, 32);
  model::apply_controlnet_config(p, config("controlnet-diffusers/config.json"), "cn");
}

TEST(InferHparams, ParameterCounts) {
  EXPECT_EQ(model::parameter_count(single(), "model.diffusion_model."), 2446788);
  EXPECT_EQ(model::parameter_count(single(), "first_stage_model."), 516519);
  EXPECT_EQ(model::parameter_count(single(), "cond_stage_model."), 1621696);
  EXPECT_EQ(model::parameter_count(control(), "control_model."), 1073200);
}

TEST(InferHparamsBadInput, ConfigThatDisagreesWithTheWeights) {
  model::UNetParams p = model::infer_unet_params(single());
  nlohmann::json c = config("diffusers/unet/config.json");
  c["block_out_channels"] = {320, 640, 1280, 1280};
  EXPECT_EQ(error_of([&] { model::apply_unet_config(p, c, "sd15/unet/config.json"); }),
            "sd15/unet/config.json: block_out_channels: expected [32,32,64,64] (what the weights "
            "have), found [320,640,1280,1280]");
  model::TextEncoderParams t = model::infer_text_encoder_params(single());
  EXPECT_EQ(error_of([&] {
              model::apply_text_encoder_config(t, {{"hidden_size", 768}}, "te/config.json");
            }),
            "te/config.json: hidden_size: expected 32 (what the weights have), found 768");
  EXPECT_EQ(error_of([&] {
              model::apply_unet_config(p, {{"attention_head_dim", {5, 10, 20, 20}}}, "u.json");
            }),
            "u.json: attention_head_dim: expected one head count for every level (SD1.x), found "
            "[5,10,20,20]");
}

TEST(InferHparamsBadInput, HeadsThatDoNotDivideTheWidth) {
  model::UNetParams p = model::infer_unet_params(single());
  p.num_heads = 5;
  EXPECT_EQ(error_of([&] { model::validate(p, "m"); }),
            "m: UNet heads: expected a divisor of the attention channels 32, found 5");
  model::TextEncoderParams t = model::infer_text_encoder_params(single());
  t.heads = 3;
  EXPECT_EQ(error_of([&] { model::validate(t, "m"); }),
            "m: text encoder heads: expected a divisor of the width 32, found 3");
}

TEST(InferHparamsBadInput, MissingTensor) {
  WeightMap m = test::fixture_subset("model.safetensors", [](const std::string& n) {
    return n != "first_stage_model.decoder.conv_in.weight";
  });
  m.description = "m.safetensors";
  EXPECT_EQ(error_of([&] { model::infer_vae_params(m); }),
            "m.safetensors: first_stage_model.decoder.conv_in.weight: expected a tensor of this "
            "name, found none");
}

}  // namespace
}  // namespace sdc
