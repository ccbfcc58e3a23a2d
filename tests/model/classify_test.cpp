// Classification of every fixture and of synthetic SD2/SDXL/inpainting/LyCORIS/VAE files, and
// normalisation of every naming to the same LDM weights.
#include <gtest/gtest.h>

#include <cstring>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/gguf.h"
#include "io/open_file.h"
#include "io/safetensors.h"
#include "model/classify.h"
#include "model_test_util.h"

namespace sdc {
namespace {

using model::Architecture;
using model::LoraFormat;
using model::ModelKind;
using model::Naming;
using test::starts_with;

model::Classification classify_path(const std::string& path) {
  return model::classify(io::open_tensor_file(path));
}

model::Classification classify_map(const WeightMap& m) {
  io::TensorFile f;
  f.path = "synthetic";
  f.tensors = m;
  return model::classify(f);
}

TEST(Classify, FixtureCheckpoints) {
  for (const char* name : {"model.safetensors", "model-fp16.safetensors"}) {
    auto c = classify_path(test::tiny(name));
    EXPECT_EQ(c.kind, ModelKind::Checkpoint) << name;
    EXPECT_EQ(c.architecture, Architecture::SD1) << name;
    EXPECT_EQ(c.naming, Naming::Ldm) << name;
    EXPECT_TRUE(c.has_unet && c.has_vae && c.has_text_encoder) << name;
    EXPECT_FALSE(c.has_controlnet) << name;
  }
  auto d = classify_path(test::tiny("diffusers"));
  EXPECT_EQ(d.kind, ModelKind::Checkpoint);
  EXPECT_EQ(d.naming, Naming::Diffusers);
  EXPECT_EQ(d.architecture, Architecture::SD1);
  EXPECT_TRUE(d.has_unet && d.has_vae && d.has_text_encoder);
}

TEST(Classify, FixtureLorasAndControlNets) {
  auto k = classify_path(test::tiny("lora-kohya.safetensors"));
  EXPECT_EQ(k.kind, ModelKind::Lora);
  EXPECT_EQ(k.lora_format, LoraFormat::Kohya);
  auto p = classify_path(test::tiny("lora-peft.safetensors"));
  EXPECT_EQ(p.kind, ModelKind::Lora);
  EXPECT_EQ(p.lora_format, LoraFormat::Peft);
  auto c = classify_path(test::tiny("controlnet.safetensors"));
  EXPECT_EQ(c.kind, ModelKind::ControlNet);
  EXPECT_EQ(c.naming, Naming::Ldm);
  EXPECT_EQ(c.architecture, Architecture::SD1);
  auto cd = classify_path(test::tiny("controlnet-diffusers"));
  EXPECT_EQ(cd.kind, ModelKind::ControlNet);
  EXPECT_EQ(cd.naming, Naming::Diffusers);
  auto cb = classify_path(test::tiny("controlnet-diffusers/diffusion_pytorch_model.safetensors"));
  EXPECT_EQ(cb.kind, ModelKind::ControlNet);
  EXPECT_EQ(cb.naming, Naming::BareDiffusersControlNet);
}

TEST(Classify, LyCORISFormats) {
  WeightMap loha;
  loha.set("lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a", test::zeros({4, 4}));
  loha.set("lora_unet_down_blocks_0_attentions_0_proj_in.alpha", test::zeros({}));
  EXPECT_EQ(classify_map(loha).lora_format, LoraFormat::LoHa);
  WeightMap lokr;
  lokr.set("lora_unet_down_blocks_0_attentions_0_proj_in.lokr_w1", test::zeros({4, 4}));
  lokr.set("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", test::zeros({4, 4}));
  EXPECT_EQ(classify_map(lokr).lora_format, LoraFormat::LoKr);
  EXPECT_EQ(classify_map(lokr).kind, ModelKind::Lora);
}

TEST(Classify, ComponentFiles) {
  auto vae = classify_path(test::tiny("diffusers/vae/diffusion_pytorch_model.safetensors"));
  EXPECT_EQ(vae.kind, ModelKind::Vae);
  EXPECT_EQ(vae.naming, Naming::BareDiffusersVae);
  EXPECT_EQ(classify_path(test::tiny("diffusers/vae")).kind, ModelKind::Vae);
  auto te = classify_path(test::tiny("diffusers/text_encoder/model.safetensors"));
  EXPECT_EQ(te.kind, ModelKind::TextEncoder);
  EXPECT_EQ(te.naming, Naming::BareTextEncoder);
  auto unet = classify_path(test::tiny("diffusers/unet/diffusion_pytorch_model.safetensors"));
  EXPECT_EQ(unet.kind, ModelKind::UNet);
  EXPECT_EQ(unet.naming, Naming::BareDiffusersUNet);

  auto ldm_vae = classify_map(test::fixture_subset("model.safetensors", [](const std::string& n) {
    return starts_with(n, "first_stage_model.");
  }));
  EXPECT_EQ(ldm_vae.kind, ModelKind::Vae);
  EXPECT_EQ(ldm_vae.naming, Naming::Ldm);
  auto bare = classify_map(test::fixture_subset(
      "model.safetensors",
      [](const std::string& n) { return starts_with(n, "first_stage_model."); },
      [](const std::string& n) { return n.substr(std::string("first_stage_model.").size()); }));
  EXPECT_EQ(bare.kind, ModelKind::Vae);
  EXPECT_EQ(bare.naming, Naming::BareLdmVae);
}

TEST(Classify, RefusedArchitecturesAreRecognised) {
  auto sd1 = test::fixture_subset("model.safetensors", [](const std::string&) { return true; });

  WeightMap sdxl = sd1;
  sdxl.set("conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
           test::zeros({8, 4}));
  auto c = classify_map(sdxl);
  EXPECT_EQ(c.architecture, Architecture::SDXL);
  EXPECT_EQ(c.kind, ModelKind::Checkpoint);
  EXPECT_EQ(c.evidence,
            "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight");
  EXPECT_FALSE(c.supported());

  WeightMap sd2 = sd1;
  sd2.set("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight",
          test::zeros({12, 4}));
  EXPECT_EQ(classify_map(sd2).architecture, Architecture::SD2);

  WeightMap wide = sd1;
  wide.set("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
           test::zeros({32, 1024}));
  auto w = classify_map(wide);
  EXPECT_EQ(w.architecture, Architecture::SD2);
  EXPECT_NE(w.evidence.find("context width 1024"), std::string::npos) << w.evidence;

  WeightMap inpaint = sd1;
  inpaint.set("model.diffusion_model.input_blocks.0.0.weight", test::zeros({32, 9, 3, 3}));
  auto i = classify_map(inpaint);
  EXPECT_EQ(i.architecture, Architecture::SD1Inpainting);
  EXPECT_EQ(i.evidence, "model.diffusion_model.input_blocks.0.0.weight [32, 9, 3, 3]");
  EXPECT_TRUE(i.supported());  // generate inpaints with it (--init-image, --mask)
}

TEST(Classify, Gguf) {
  test::TempDir dir;
  WeightMap ldm = test::fixture_subset("model.safetensors", [](const std::string& n) {
    return starts_with(n, "first_stage_model.decoder.conv_");
  });
  io::write_gguf(dir.file("a.gguf"), ldm, {});
  EXPECT_EQ(classify_path(dir.file("a.gguf")).kind, ModelKind::Compiled);
  WeightMap none;
  io::write_gguf(dir.file("b.gguf"), none, {{"sdc.version", io::GgufValue::string("0.1.0")}});
  EXPECT_EQ(classify_path(dir.file("b.gguf")).kind, ModelKind::Compiled);
  WeightMap llm;
  llm.set("blk.0.attn_q.weight", test::zeros({4, 4}));
  io::write_gguf(dir.file("c.gguf"), llm,
                 {{"general.architecture", io::GgufValue::string("llama")}});
  auto c = classify_path(dir.file("c.gguf"));
  EXPECT_EQ(c.kind, ModelKind::Unknown);
  EXPECT_EQ(c.evidence, "general.architecture \"llama\"");
}

void expect_same_tensors(const WeightMap& a, const WeightMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [n, t] : a.all()) {
    const TensorRef* u = b.find(n);
    ASSERT_NE(u, nullptr) << n;
    EXPECT_EQ(t.shape, u->shape) << n;
    ASSERT_EQ(t.nbytes, u->nbytes) << n;
    EXPECT_EQ(std::memcmp(t.data, u->data, t.nbytes), 0) << n;
  }
}

TEST(ToLdm, EveryNamingGivesTheSameWeights) {
  io::TensorFile single = io::read_safetensors(test::tiny("model.safetensors"));
  io::TensorFile folder = io::open_tensor_file(test::tiny("diffusers"));
  expect_same_tensors(model::to_ldm_weights(folder, model::classify(folder)), single.tensors);

  auto only = [&](const std::string& prefix) {
    return test::fixture_subset("model.safetensors",
                                [prefix](const std::string& n) { return starts_with(n, prefix); });
  };
  auto ldm_of = [](const std::string& path) {
    io::TensorFile f = io::open_tensor_file(path);
    return model::to_ldm_weights(f, model::classify(f));
  };
  expect_same_tensors(ldm_of(test::tiny("diffusers/vae/diffusion_pytorch_model.safetensors")),
                      only("first_stage_model."));
  expect_same_tensors(ldm_of(test::tiny("diffusers/text_encoder/model.safetensors")),
                      only("cond_stage_model."));
  expect_same_tensors(ldm_of(test::tiny("diffusers/unet/diffusion_pytorch_model.safetensors")),
                      only("model.diffusion_model."));
  expect_same_tensors(
      ldm_of(test::tiny("controlnet-diffusers/diffusion_pytorch_model.safetensors")),
      io::read_safetensors(test::tiny("controlnet.safetensors")).tensors);

  // Bare LDM VAE names, and the older text encoder prefix, come back under the full LDM names.
  io::TensorFile bare;
  bare.path = "bare";
  bare.tensors = test::fixture_subset(
      "model.safetensors",
      [](const std::string& n) { return starts_with(n, "first_stage_model."); },
      [](const std::string& n) { return n.substr(std::string("first_stage_model.").size()); });
  expect_same_tensors(model::to_ldm_weights(bare, model::classify(bare)),
                      only("first_stage_model."));
  io::TensorFile old;
  old.path = "old";
  old.tensors = test::fixture_subset(
      "model.safetensors", [](const std::string& n) { return starts_with(n, "cond_stage_model."); },
      [](const std::string& n) {
        return "cond_stage_model.transformer." +
               n.substr(std::string("cond_stage_model.transformer.text_model.").size());
      });
  expect_same_tensors(model::to_ldm_weights(old, model::classify(old)), only("cond_stage_model."));
}

TEST(ToLdm, UnusedKeysAreDropped) {
  io::TensorFile f;
  f.path = "x";
  f.tensors = test::fixture_subset("model.safetensors", [](const std::string&) { return true; });
  f.tensors.set("alphas_cumprod", test::zeros({1000}));
  f.tensors.set("model_ema.decay", test::zeros({}));
  f.tensors.set("model_ema.diffusion_modelout2weight", test::zeros({4, 32, 3, 3}));
  f.tensors.set("cond_stage_model.transformer.text_model.embeddings.position_ids",
                test::zeros({1, 77}));
  EXPECT_EQ(model::to_ldm_weights(f, model::classify(f)).size(), 976u);
}

TEST(ToLdmBadInput, UnknownNamesAndLoras) {
  io::TensorFile f;
  f.path = "x.safetensors";
  f.tensors = test::fixture_subset("model.safetensors", [](const std::string&) { return true; });
  f.tensors.set("model.diffusion_model.extra.weight", test::zeros({1}));
  try {
    model::to_ldm_weights(f, model::classify(f));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "model.diffusion_model.extra.weight: expected a LDM weight name"),
              std::string::npos)
        << e.what();
  }
  io::TensorFile lora = io::open_tensor_file(test::tiny("lora-kohya.safetensors"));
  try {
    model::to_ldm_weights(lora, model::classify(lora));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected model weights, found a LoRA (kohya)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace sdc
