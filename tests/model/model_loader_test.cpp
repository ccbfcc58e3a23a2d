// load_model(): every source gives the same LDM-named weights and hyper-parameters; missing
// components and unsupported models are refused with a message saying what and how to fix it.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/model_loader.h"
#include "model_test_util.h"

namespace sdc {
namespace {

namespace fs = std::filesystem;
using test::starts_with;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

model::LoadOptions with_config() {
  model::LoadOptions o;
  o.model_config_dir = test::tiny("diffusers");
  return o;
}

void expect_same_weights(const WeightMap& a, const WeightMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [n, t] : a.all()) {
    const TensorRef* u = b.find(n);
    ASSERT_NE(u, nullptr) << n;
    EXPECT_EQ(t.shape, u->shape) << n;
    EXPECT_EQ(t.dtype, u->dtype) << n;
    ASSERT_EQ(t.nbytes, u->nbytes) << n;
    EXPECT_EQ(std::memcmp(t.data, u->data, t.nbytes), 0) << n;
  }
}

void expect_tiny_hparams(const model::LoadedModel& m) {
  EXPECT_EQ(m.unet.block_out_channels, (std::vector<int>{32, 32, 64, 64}));
  EXPECT_EQ(m.unet.num_heads, 8);
  EXPECT_EQ(m.unet.context_dim, 32);
  EXPECT_EQ(m.text_encoder.heads, 4);
  EXPECT_EQ(m.text_encoder.layers, 3);
  EXPECT_EQ(m.vae.block_out_channels, (std::vector<int>{32, 32, 32, 32}));
  EXPECT_FLOAT_EQ(m.vae.scaling_factor, 0.18215f);
}

const WeightMap& fixture_weights() {
  static const io::TensorFile f = io::read_safetensors(test::tiny("model.safetensors"));
  return f.tensors;
}

TEST(LoadModel, SingleFileWithModelConfig) {
  model::LoadedModel m = model::load_model(test::tiny("model.safetensors"), with_config());
  EXPECT_EQ(m.format, io::FileFormat::Safetensors);
  EXPECT_EQ(m.classification.kind, model::ModelKind::Checkpoint);
  EXPECT_TRUE(m.has_unet && m.has_vae && m.has_text_encoder);
  EXPECT_FALSE(m.controlnet.has_value());
  expect_tiny_hparams(m);
  expect_same_weights(m.weights, fixture_weights());
  // Zero-copy: the tensors point into the file's mapping, which they keep alive.
  const TensorRef& w = m.weights.get("model.diffusion_model.out.2.weight");
  EXPECT_NE(w.owner, nullptr);
  EXPECT_EQ(w.source, test::tiny("model.safetensors"));
}

TEST(LoadModel, SingleFileWithoutConfigUsesDefaults) {
  model::LoadedModel m = model::load_model(test::tiny("model.safetensors"), {});
  EXPECT_EQ(m.unet.num_heads, 8);
  EXPECT_EQ(m.text_encoder.heads, 1);  // width 32 / 64, at least 1
}

TEST(LoadModel, DiffusersFolderUsesItsOwnConfigs) {
  model::LoadedModel m = model::load_model(test::tiny("diffusers"), {});
  EXPECT_EQ(m.format, io::FileFormat::Diffusers);
  expect_tiny_hparams(m);
  expect_same_weights(m.weights, fixture_weights());
}

TEST(LoadModel, PyTorchCheckpoint) {
  model::LoadedModel m = model::load_model(test::tiny("model.ckpt"), with_config());
  EXPECT_EQ(m.format, io::FileFormat::Ckpt);
  expect_tiny_hparams(m);
  expect_same_weights(m.weights, fixture_weights());
}

TEST(LoadModel, Fp16File) {
  model::LoadedModel m = model::load_model(test::tiny("model-fp16.safetensors"), with_config());
  EXPECT_EQ(m.weights.size(), 976u);
  EXPECT_EQ(m.weights.get("model.diffusion_model.out.2.weight").dtype, DType::F16);
  expect_tiny_hparams(m);
}

TEST(LoadModel, CompiledGgufWithConfigsInMetadata) {
  test::TempDir dir;
  std::ifstream te(test::tiny("diffusers/text_encoder/config.json"));
  const std::string te_config((std::istreambuf_iterator<char>(te)), {});
  io::write_gguf(dir.file("m.gguf"), fixture_weights(),
                 {{"sdc.version", io::GgufValue::string("0.1.0")},
                  {"sdc.config.text_encoder", io::GgufValue::string(te_config)}});
  model::LoadedModel m = model::load_model(dir.file("m.gguf"), {});
  EXPECT_EQ(m.format, io::FileFormat::Gguf);
  EXPECT_EQ(m.classification.kind, model::ModelKind::Compiled);
  EXPECT_EQ(m.text_encoder.heads, 4);
  expect_same_weights(m.weights, fixture_weights());
}

TEST(LoadModel, ControlNetAlone) {
  model::LoadOptions o;
  o.require_unet = o.require_vae = o.require_text_encoder = false;
  for (const char* src : {"controlnet.safetensors", "controlnet-diffusers"}) {
    model::LoadedModel m = model::load_model(test::tiny(src), o);
    ASSERT_TRUE(m.controlnet.has_value()) << src;
    EXPECT_EQ(m.controlnet->hint_channels, (std::vector<int>{16, 16, 32, 32})) << src;
    EXPECT_EQ(m.controlnet->unet.num_heads, 8) << src;
    EXPECT_EQ(m.weights.size(), 338u) << src;
    EXPECT_FALSE(m.has_unet) << src;
  }
}

class MissingComponent : public ::testing::Test {
 protected:
  // model.safetensors without the tensors whose names start with `drop`.
  std::string without(const std::string& drop) {
    WeightMap m = test::fixture_subset(
        "model.safetensors", [drop](const std::string& n) { return !starts_with(n, drop); });
    const std::string path = dir.file("no-" + drop + "safetensors");
    io::write_safetensors(path, m);
    return path;
  }
  test::TempDir dir;
};

TEST_F(MissingComponent, VaeMessageSuggestsTheFlag) {
  const std::string p = without("first_stage_model.");
  EXPECT_EQ(error_of([&] { model::load_model(p, with_config()); }),
            p + ": VAE: expected first_stage_model.* weights, found none (pass --vae FILE)");
}

TEST_F(MissingComponent, TextEncoderMessageSuggestsTheFlag) {
  const std::string p = without("cond_stage_model.");
  EXPECT_EQ(error_of([&] { model::load_model(p, with_config()); }),
            p + ": text encoder: expected cond_stage_model.transformer.text_model.* weights, "
                "found none (pass --text-encoder FILE)");
}

TEST_F(MissingComponent, UNet) {
  const std::string p = without("model.diffusion_model.");
  EXPECT_EQ(error_of([&] { model::load_model(p, with_config()); }),
            p + ": UNet: expected model.diffusion_model.* weights, found none");
}

TEST_F(MissingComponent, VaeFromEveryKindOfVaeFile) {
  const std::string p = without("first_stage_model.");
  const WeightMap vae = test::fixture_subset("model.safetensors", [](const std::string& n) {
    return starts_with(n, "first_stage_model.");
  });
  io::write_safetensors(dir.file("vae-ldm.safetensors"), vae);
  io::write_safetensors(
      dir.file("vae-bare.safetensors"),
      test::fixture_subset(
          "model.safetensors",
          [](const std::string& n) { return starts_with(n, "first_stage_model."); },
          [](const std::string& n) { return n.substr(18); }));
  for (const std::string& v : {dir.file("vae-ldm.safetensors"), dir.file("vae-bare.safetensors"),
                               test::tiny("diffusers/vae"),
                               test::tiny("diffusers/vae/diffusion_pytorch_model.safetensors"),
                               test::tiny("model.safetensors")}) {
    model::LoadOptions o = with_config();
    o.vae_path = v;
    model::LoadedModel m = model::load_model(p, o);
    expect_same_weights(m.weights, fixture_weights());
  }
}

TEST_F(MissingComponent, TextEncoderFromDiffusersFolder) {
  const std::string p = without("cond_stage_model.");
  model::LoadOptions o;  // no --model-config: the text encoder folder's own config gives 4 heads
  o.text_encoder_path = test::tiny("diffusers/text_encoder");
  model::LoadedModel m = model::load_model(p, o);
  EXPECT_EQ(m.text_encoder.heads, 4);
  expect_same_weights(m.weights, fixture_weights());
}

TEST_F(MissingComponent, VaeFlagWithSomethingElse) {
  const std::string p = without("first_stage_model.");
  model::LoadOptions o = with_config();
  o.vae_path = test::tiny("lora-kohya.safetensors");
  EXPECT_EQ(error_of([&] { model::load_model(p, o); }),
            test::tiny("lora-kohya.safetensors") + ": --vae: expected a VAE, found a LoRA");
  o.vae_path = test::tiny("diffusers/text_encoder");
  EXPECT_EQ(error_of([&] { model::load_model(p, o); }),
            test::tiny("diffusers/text_encoder") +
                ": --vae: expected a VAE (first_stage_model.* weights or their diffusers names), "
                "found a text_encoder without them");
}

class Unsupported : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::function<void(WeightMap&)>& edit) {
    WeightMap m =
        test::fixture_subset("model.safetensors", [](const std::string&) { return true; });
    edit(m);
    io::write_safetensors(dir.file(name), m);
    return dir.file(name);
  }
  test::TempDir dir;
};

TEST_F(Unsupported, Sdxl) {
  const std::string p = write("xl.safetensors", [](WeightMap& m) {
    for (const auto& n : m.names_with_prefix("cond_stage_model.")) m.erase(n);
    m.set("conditioner.embedders.1.model.token_embedding.weight", test::zeros({8, 4}));
    m.set("model.diffusion_model.label_emb.0.0.weight", test::zeros({4, 8}));
  });
  EXPECT_EQ(
      error_of([&] { model::load_model(p, {}); }),
      p + ": expected a Stable Diffusion 1.x model, found SDXL "
          "(conditioner.embedders.1.model.token_embedding.weight), which is not supported yet");
}

TEST_F(Unsupported, Sd2ByOpenClip) {
  const std::string p = write("sd2.safetensors", [](WeightMap& m) {
    for (const auto& n : m.names_with_prefix("cond_stage_model.")) m.erase(n);
    m.set("cond_stage_model.model.token_embedding.weight", test::zeros({8, 4}));
  });
  EXPECT_EQ(error_of([&] { model::load_model(p, {}); }),
            p + ": expected a Stable Diffusion 1.x model, found SD2.x "
                "(cond_stage_model.model.token_embedding.weight), which is not supported yet");
}

TEST_F(Unsupported, Sd2ByContextWidth) {
  const std::string p = write("sd2-wide.safetensors", [](WeightMap& m) {
    m.set("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
          test::zeros({32, 1024}));
  });
  EXPECT_NE(
      error_of([&] { model::load_model(p, {}); })
          .find("found SD2.x (context width 1024 (model.diffusion_model.input_blocks.1.1."
                "transformer_blocks.0.attn2.to_k.weight [32, 1024])), which is not supported yet"),
      std::string::npos)
      << error_of([&] { model::load_model(p, {}); });
}

TEST(LoadModel, InpaintingSingleFileHasNineInputChannels) {
  const model::LoadedModel m =
      model::load_model(test::tiny("inpaint/model-inpaint-fp16.safetensors"), {});
  EXPECT_EQ(m.classification.architecture, model::Architecture::SD1Inpainting);
  EXPECT_EQ(m.unet.in_channels, 9);
  EXPECT_EQ(m.unet.out_channels, 4);
}

TEST(LoadModelBadInput, LoraGivenAsModel) {
  EXPECT_EQ(
      error_of([] { model::load_model(test::tiny("lora-peft.safetensors"), {}); }),
      test::tiny("lora-peft.safetensors") +
          ": expected a Stable Diffusion model, found a LoRA (peft format); pass it with --lora");
}

TEST(LoadModelBadInput, StandaloneComponentsGivenAsModel) {
  EXPECT_EQ(error_of([] { model::load_model(test::tiny("controlnet.safetensors"), {}); }),
            test::tiny("controlnet.safetensors") +
                ": expected a Stable Diffusion checkpoint, found a standalone controlnet (pass it "
                "with --control-net)");
  EXPECT_EQ(
      error_of([] { model::load_model(test::tiny("diffusers/vae"), {}); }),
      test::tiny("diffusers/vae") +
          ": expected a Stable Diffusion checkpoint, found a standalone vae (pass it with --vae)");
}

TEST(LoadModelBadInput, ModelConfigFolder) {
  test::TempDir dir;
  model::LoadOptions o;
  o.model_config_dir = dir.file("nope");
  EXPECT_EQ(
      error_of([&] { model::load_model(test::tiny("model.safetensors"), o); }),
      dir.file("nope") +
          ": --model-config: expected a folder with unet/, text_encoder/, vae/ configs, found "
          "not a directory");
  o.model_config_dir = dir.path();
  EXPECT_EQ(error_of([&] { model::load_model(test::tiny("model.safetensors"), o); }),
            dir.path() +
                ": --model-config: expected unet/config.json, text_encoder/config.json, "
                "vae/config.json or controlnet/config.json, found none of them");
  fs::create_directory(dir.file("unet"));
  std::ofstream(dir.file("unet/config.json"))
      << R"({"block_out_channels": [320, 640, 1280, 1280]})";
  EXPECT_EQ(error_of([&] { model::load_model(test::tiny("model.safetensors"), o); }),
            dir.file("unet/config.json") +
                ": block_out_channels: expected [32,32,64,64] (what the weights have), found "
                "[320,640,1280,1280]");
}

TEST(LoadModelBadInput, EmptyFile) {
  test::TempDir dir;
  std::ofstream(dir.file("e.safetensors")).close();
  EXPECT_EQ(error_of([&] { model::load_model(dir.file("e.safetensors"), {}); }),
            dir.file("e.safetensors") + ": expected a model file, found an empty file");
}

}  // namespace
}  // namespace sdc
