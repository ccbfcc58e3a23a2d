// Key mapping: the LDM single file and the diffusers folder hold the same tensors under names the
// table maps onto each other exactly (UNet, VAE incl. the attention reshape, text encoder,
// ControlNet), both ways; unknown names are reported.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/diffusers_folder.h"
#include "io/safetensors.h"
#include "model/key_mapping.h"

namespace sdc {
namespace {

using model::diffusers_to_ldm;
using model::ldm_to_diffusers;

std::set<std::string> names(const WeightMap& m) {
  std::set<std::string> s;
  for (const auto& [n, t] : m.all()) s.insert(n);
  return s;
}

// Same names, shapes, dtypes and bytes.
void expect_identical(const WeightMap& a, const WeightMap& b) {
  ASSERT_EQ(names(a), names(b));
  for (const auto& [n, t] : a.all()) {
    const TensorRef& u = b.get(n);
    EXPECT_EQ(t.shape, u.shape) << n;
    EXPECT_EQ(t.dtype, u.dtype) << n;
    ASSERT_EQ(t.nbytes, u.nbytes) << n;
    EXPECT_EQ(std::memcmp(t.data, u.data, t.nbytes), 0) << n;
  }
}

TEST(KeyMapping, KnownPairs) {
  const std::vector<std::pair<std::string, std::string>> pairs{
      {"model.diffusion_model.input_blocks.1.1.proj_in.weight",
       "unet.down_blocks.0.attentions.0.proj_in.weight"},
      {"model.diffusion_model.input_blocks.0.0.weight", "unet.conv_in.weight"},
      {"model.diffusion_model.input_blocks.9.0.op.bias",
       "unet.down_blocks.2.downsamplers.0.conv.bias"},
      {"model.diffusion_model.input_blocks.11.0.skip_connection.weight",
       "unet.down_blocks.3.resnets.1.conv_shortcut.weight"},
      {"model.diffusion_model.input_blocks.4.0.emb_layers.1.weight",
       "unet.down_blocks.1.resnets.0.time_emb_proj.weight"},
      {"model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight",
       "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"},
      {"model.diffusion_model.middle_block.2.out_layers.3.weight",
       "unet.mid_block.resnets.1.conv2.weight"},
      {"model.diffusion_model.output_blocks.2.1.conv.weight",
       "unet.up_blocks.0.upsamplers.0.conv.weight"},
      {"model.diffusion_model.output_blocks.5.2.conv.bias",
       "unet.up_blocks.1.upsamplers.0.conv.bias"},
      {"model.diffusion_model.output_blocks.11.1.transformer_blocks.0.ff.net.0.proj.weight",
       "unet.up_blocks.3.attentions.2.transformer_blocks.0.ff.net.0.proj.weight"},
      {"model.diffusion_model.time_embed.2.weight", "unet.time_embedding.linear_2.weight"},
      {"model.diffusion_model.out.0.bias", "unet.conv_norm_out.bias"},
      {"model.diffusion_model.out.2.weight", "unet.conv_out.weight"},
      {"first_stage_model.decoder.up.3.block.0.conv1.weight",
       "vae.decoder.up_blocks.0.resnets.0.conv1.weight"},
      {"first_stage_model.decoder.up.1.upsample.conv.weight",
       "vae.decoder.up_blocks.2.upsamplers.0.conv.weight"},
      {"first_stage_model.encoder.down.1.block.0.nin_shortcut.weight",
       "vae.encoder.down_blocks.1.resnets.0.conv_shortcut.weight"},
      {"first_stage_model.encoder.mid.attn_1.norm.weight",
       "vae.encoder.mid_block.attentions.0.group_norm.weight"},
      {"first_stage_model.decoder.mid.attn_1.proj_out.weight",
       "vae.decoder.mid_block.attentions.0.to_out.0.weight"},
      {"first_stage_model.encoder.norm_out.bias", "vae.encoder.conv_norm_out.bias"},
      {"first_stage_model.post_quant_conv.weight", "vae.post_quant_conv.weight"},
      {"cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.bias",
       "text_encoder.text_model.encoder.layers.11.mlp.fc2.bias"},
      {"control_model.zero_convs.11.0.weight", "controlnet.controlnet_down_blocks.11.weight"},
      {"control_model.middle_block_out.0.bias", "controlnet.controlnet_mid_block.bias"},
      {"control_model.input_hint_block.0.weight",
       "controlnet.controlnet_cond_embedding.conv_in.weight"},
      {"control_model.input_hint_block.6.weight",
       "controlnet.controlnet_cond_embedding.blocks.2.weight"},
      {"control_model.input_hint_block.14.bias",
       "controlnet.controlnet_cond_embedding.conv_out.bias"},
      {"control_model.input_blocks.0.0.weight", "controlnet.conv_in.weight"},
      {"control_model.input_blocks.2.1.proj_out.weight",
       "controlnet.down_blocks.0.attentions.1.proj_out.weight"},
  };
  for (const auto& [l, d] : pairs) {
    EXPECT_EQ(ldm_to_diffusers(l).value_or("none"), d) << l;
    EXPECT_EQ(diffusers_to_ldm(d).value_or("none"), l) << d;
  }
}

TEST(KeyMapping, OlderTextEncoderPrefixAndLegacyVaeNames) {
  EXPECT_EQ(ldm_to_diffusers("cond_stage_model.transformer.embeddings.token_embedding.weight")
                .value_or(""),
            "text_encoder.text_model.embeddings.token_embedding.weight");
  EXPECT_EQ(ldm_to_diffusers("cond_stage_model.transformer.encoder.layers.0.self_attn.q_proj.bias")
                .value_or(""),
            "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(diffusers_to_ldm("vae.encoder.mid_block.attentions.0.query.weight").value_or(""),
            "first_stage_model.encoder.mid.attn_1.q.weight");
  EXPECT_EQ(diffusers_to_ldm("vae.decoder.mid_block.attentions.0.proj_attn.bias").value_or(""),
            "first_stage_model.decoder.mid.attn_1.proj_out.bias");
}

TEST(KeyMapping, UnknownNamesAreNotMapped) {
  for (const char* n :
       {"model.diffusion_model.input_blocks.1.1.bogus.weight",
        "model.diffusion_model.input_blocks.12.0.in_layers.0.weight",
        "model.diffusion_model.output_blocks.2.2.conv.weight",  // level 0 has no attention
        "model.diffusion_model.label_emb.0.0.weight",           // SDXL
        "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight",  // OpenCLIP
        "first_stage_model.decoder.up.0.upsample.conv.weight",  // last up level has none
        "control_model.zero_convs.12.0.weight", "control_model.input_hint_block.1.weight",
        "something.else", "", "."}) {
    EXPECT_FALSE(ldm_to_diffusers(std::string(n)).has_value()) << n;
    EXPECT_FALSE(diffusers_to_ldm(std::string(n)).has_value()) << n;
  }
  EXPECT_FALSE(diffusers_to_ldm("unet.up_blocks.3.upsamplers.0.conv.weight").has_value());
  EXPECT_FALSE(
      diffusers_to_ldm("text_encoder.text_model.encoder.layers.x.mlp.fc1.weight").has_value());
}

TEST(KeyMapping, SingleFileAndDiffusersFolderHoldTheSameTensors) {
  io::TensorFile single = io::read_safetensors(test::tiny("model.safetensors"));
  io::TensorFile folder = io::read_diffusers_folder(test::tiny("diffusers"));
  expect_identical(diffusers_to_ldm(folder.tensors), single.tensors);
  expect_identical(ldm_to_diffusers(single.tensors), folder.tensors);
  // Every single-file name survives the round trip.
  for (const auto& [n, t] : single.tensors.all())
    EXPECT_EQ(diffusers_to_ldm(ldm_to_diffusers(n).value_or("")).value_or(""), n);
}

TEST(KeyMapping, ControlNetFileAndFolderHoldTheSameTensors) {
  io::TensorFile single = io::read_safetensors(test::tiny("controlnet.safetensors"));
  io::TensorFile folder = io::read_diffusers_folder(test::tiny("controlnet-diffusers"));
  expect_identical(diffusers_to_ldm(folder.tensors), single.tensors);
  expect_identical(ldm_to_diffusers(single.tensors), folder.tensors);
}

TEST(KeyMapping, VaeAttentionReshapeKeepsTheBytes) {
  io::TensorFile single = io::read_safetensors(test::tiny("model.safetensors"));
  WeightMap d = ldm_to_diffusers(single.tensors);
  const TensorRef& conv = single.tensors.get("first_stage_model.decoder.mid.attn_1.q.weight");
  const TensorRef& lin = d.get("vae.decoder.mid_block.attentions.0.to_q.weight");
  EXPECT_EQ(conv.shape, (Shape{32, 32, 1, 1}));
  EXPECT_EQ(lin.shape, (Shape{32, 32}));
  EXPECT_EQ(lin.data, conv.data);  // a view, not a copy
  EXPECT_TRUE(model::is_vae_attention_weight("vae.encoder.mid_block.attentions.0.to_out.0.weight"));
  EXPECT_FALSE(model::is_vae_attention_weight("vae.encoder.mid_block.attentions.0.to_out.0.bias"));
}

TEST(KeyMapping, UnusedKeysAreDropped) {
  WeightMap m;
  auto t = TensorRef::from_f32({1}, {1}, DType::F32);
  for (const char* n : {"alphas_cumprod", "betas", "model_ema.decay",
                        "model_ema.diffusion_modelinput_blocks00weight",
                        "cond_stage_model.transformer.text_model.embeddings.position_ids", "logvar",
                        "posterior_mean_coef1", "sqrt_recipm1_alphas_cumprod"}) {
    EXPECT_TRUE(model::is_unused_key(n)) << n;
    m.set(n, t);
  }
  m.set("model.diffusion_model.out.2.bias", t);
  WeightMap d = ldm_to_diffusers(m);
  EXPECT_EQ(names(d), (std::set<std::string>{"unet.conv_out.bias"}));
  EXPECT_FALSE(model::is_unused_key("model.diffusion_model.out.2.bias"));
}

TEST(KeyMappingBadInput, UnknownNameInWeightMap) {
  WeightMap m;
  m.description = "x.safetensors";
  auto t = TensorRef::from_f32({1}, {1}, DType::F32);
  m.set("model.diffusion_model.out.2.bias", t);
  m.set("model.diffusion_model.label_emb.0.0.weight", t);
  m.set("model.diffusion_model.label_emb.0.0.bias", t);
  try {
    ldm_to_diffusers(m);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(
        std::string(e.what()),
        "x.safetensors: model.diffusion_model.label_emb.0.0.bias: expected a LDM weight name "
        "of the SD1.x UNet, VAE, text encoder or ControlNet, found an unknown name (2 unknown "
        "in all)");
  }
}

TEST(KeyMappingBadInput, TwoNamesForOneWeight) {
  WeightMap m;
  m.description = "x.safetensors";
  auto t = TensorRef::from_f32({1}, {1}, DType::F32);
  m.set("cond_stage_model.transformer.final_layer_norm.bias", t);
  m.set("cond_stage_model.transformer.text_model.final_layer_norm.bias", t);
  try {
    ldm_to_diffusers(m);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "a second name for text_encoder.text_model.final_layer_norm.bias"),
              std::string::npos)
        << e.what();
  }
}

TEST(KeyMapping, ComponentOf) {
  EXPECT_EQ(model::component_of("model.diffusion_model.out.2.bias"), model::Component::UNet);
  EXPECT_EQ(model::component_of("vae.quant_conv.weight"), model::Component::Vae);
  EXPECT_EQ(model::component_of("cond_stage_model.transformer.final_layer_norm.bias"),
            model::Component::TextEncoder);
  EXPECT_EQ(model::component_of("controlnet.conv_in.weight"), model::Component::ControlNet);
  EXPECT_FALSE(model::component_of("lora_unet_x.alpha").has_value());
}

}  // namespace
}  // namespace sdc
