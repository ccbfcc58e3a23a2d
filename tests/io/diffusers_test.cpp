// Diffusers folders: the fixture pipeline folder and a single-component ControlNet folder load
// with component-prefixed names and their configs; broken folders are refused with the reason.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/diffusers_folder.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::string& dir) {
  try {
    io::read_diffusers_folder(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

size_t count_prefix(const WeightMap& m, const std::string& prefix) {
  return m.names_with_prefix(prefix).size();
}

TEST(Diffusers, ReadsFixturePipelineFolder) {
  const std::string dir = test::tiny("diffusers");
  io::TensorFile f = io::read_diffusers_folder(dir);
  EXPECT_EQ(f.format, io::FileFormat::Diffusers);
  EXPECT_EQ(count_prefix(f.tensors, "unet."), 684u);
  EXPECT_EQ(count_prefix(f.tensors, "vae."), 240u);
  EXPECT_EQ(count_prefix(f.tensors, "text_encoder."), 52u);
  EXPECT_EQ(f.tensors.size(), 684u + 240u + 52u);
  EXPECT_EQ(f.tensors.get("unet.conv_in.weight").shape, (Shape{32, 4, 3, 3}));
  EXPECT_EQ(f.tensors.get("vae.decoder.mid_block.attentions.0.to_q.weight").shape, (Shape{32, 32}));
  EXPECT_EQ(f.tensors.get("text_encoder.text_model.final_layer_norm.weight").shape, (Shape{32}));
  EXPECT_EQ(f.metadata["components"]["unet"]["config"]["block_out_channels"],
            nlohmann::json({32, 32, 64, 64}));
  EXPECT_EQ(f.metadata["components"]["text_encoder"]["config"]["num_attention_heads"], 4);
  EXPECT_EQ(f.metadata["model_index"]["_class_name"], "StableDiffusionPipeline");
  EXPECT_EQ(f.metadata["tokenizer"], dir + "/tokenizer");
  const uint64_t expected_size = fs::file_size(dir + "/unet/diffusion_pytorch_model.safetensors") +
                                 fs::file_size(dir + "/vae/diffusion_pytorch_model.safetensors") +
                                 fs::file_size(dir + "/text_encoder/model.safetensors");
  EXPECT_EQ(f.file_size, expected_size);
  // Zero-copy: the tensors are the same bytes as reading the component file directly.
  io::TensorFile unet = io::read_safetensors(dir + "/unet/diffusion_pytorch_model.safetensors");
  const TensorRef& a = unet.tensors.get("conv_in.weight");
  const TensorRef& b = f.tensors.get("unet.conv_in.weight");
  EXPECT_EQ(a.to_f32(), b.to_f32());
}

TEST(Diffusers, ReadsSingleComponentControlNetFolder) {
  io::TensorFile f = io::read_diffusers_folder(test::tiny("controlnet-diffusers"));
  EXPECT_EQ(f.tensors.size(), 338u);
  EXPECT_EQ(count_prefix(f.tensors, "controlnet."), 338u);
  EXPECT_TRUE(f.tensors.contains("controlnet.controlnet_mid_block.weight"));
  EXPECT_EQ(f.metadata["components"]["controlnet"]["config"]["_class_name"], "ControlNetModel");
  EXPECT_FALSE(f.metadata.contains("model_index"));
}

TEST(Diffusers, ReadsShardedWeights) {
  test::TempDir dir;
  fs::create_directory(dir.file("vae"));
  write_text(dir.file("model_index.json"), R"({"vae": ["diffusers", "AutoencoderKL"],
                                              "unet": [null, null]})");
  write_text(dir.file("vae/config.json"), R"({"_class_name": "AutoencoderKL"})");
  WeightMap a, b;
  a.set("x", TensorRef::from_f32({1, 2}, {2}, DType::F32));
  b.set("y", TensorRef::from_f32({3}, {1}, DType::F16));
  b.set("unlisted", TensorRef::from_f32({3}, {1}, DType::F16));
  io::write_safetensors(dir.file("vae/part-1.safetensors"), a);
  io::write_safetensors(dir.file("vae/part-2.safetensors"), b);
  write_text(dir.file("vae/diffusion_pytorch_model.safetensors.index.json"),
             R"({"weight_map": {"x": "part-1.safetensors", "y": "part-2.safetensors"}})");
  io::TensorFile f = io::read_diffusers_folder(dir.path());
  EXPECT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors.get("vae.x").to_f32(), (std::vector<float>{1, 2}));
  EXPECT_EQ(f.tensors.get("vae.y").dtype, DType::F16);
  EXPECT_EQ(f.metadata["components"]["vae"]["weights"].size(), 2u);

  write_text(dir.file("vae/diffusion_pytorch_model.safetensors.index.json"),
             R"({"weight_map": {"x": "../part-1.safetensors"}})");
  EXPECT_NE(error_of(dir.path()).find("weight_map.x: expected a file name in the same folder"),
            std::string::npos)
      << error_of(dir.path());
  write_text(dir.file("vae/diffusion_pytorch_model.safetensors.index.json"),
             R"({"weight_map": {"zz": "part-1.safetensors"}})");
  EXPECT_NE(error_of(dir.path()).find("part-1.safetensors: zz: expected the tensor listed in"),
            std::string::npos)
      << error_of(dir.path());
}

TEST(Diffusers, ReadsPyTorchBinWeights) {
  // A component whose only weights are a PyTorch zip checkpoint (here the fixture's model.ckpt,
  // linked, not copied): read through the restricted ckpt reader.
  test::TempDir dir;
  fs::create_directory(dir.file("unet"));
  write_text(dir.file("model_index.json"), R"({"unet": ["diffusers", "UNet2DConditionModel"]})");
  write_text(dir.file("unet/config.json"), R"({"_class_name": "UNet2DConditionModel"})");
  fs::create_symlink(test::tiny("model.ckpt"), dir.file("unet/diffusion_pytorch_model.bin"));
  io::TensorFile f = io::read_diffusers_folder(dir.path());
  EXPECT_EQ(f.tensors.size(), 976u);
  EXPECT_EQ(count_prefix(f.tensors, "unet."), 976u);
  EXPECT_EQ(f.tensors.get("unet.model.diffusion_model.out.2.weight").shape, (Shape{4, 32, 3, 3}));
  EXPECT_EQ(f.metadata["components"]["unet"]["weights"][0],
            dir.file("unet/diffusion_pytorch_model.bin"));
}

TEST(DiffusersBadInput, DirectoryThatIsNotADiffusersFolder) {
  test::TempDir dir;
  write_text(dir.file("readme.txt"), "hello");
  EXPECT_EQ(error_of(dir.path()),
            dir.path() +
                ": expected a diffusers folder (model_index.json, or config.json of one "
                "component), found a directory with neither");
  EXPECT_FALSE(io::looks_like_diffusers_folder(dir.path()));
}

TEST(DiffusersBadInput, ListedComponentFolderMissing) {
  test::TempDir dir;
  write_text(dir.file("model_index.json"), R"({"vae": ["diffusers", "AutoencoderKL"]})");
  EXPECT_EQ(error_of(dir.path()),
            dir.path() + ": vae: expected the folder vae/ that model_index.json lists, found none");
}

TEST(DiffusersBadInput, ComponentWithoutWeights) {
  test::TempDir dir;
  fs::create_directory(dir.file("unet"));
  write_text(dir.file("model_index.json"), R"({"unet": ["diffusers", "UNet2DConditionModel"]})");
  write_text(dir.file("unet/config.json"), R"({"_class_name": "UNet2DConditionModel"})");
  EXPECT_NE(error_of(dir.path())
                .find(dir.file("unet") + ": weights: expected diffusion_pytorch_model.safetensors"),
            std::string::npos)
      << error_of(dir.path());
}

TEST(DiffusersBadInput, ComponentWithoutConfig) {
  test::TempDir dir;
  fs::create_directory(dir.file("unet"));
  write_text(dir.file("model_index.json"), R"({"unet": ["diffusers", "UNet2DConditionModel"]})");
  EXPECT_EQ(error_of(dir.path()),
            dir.file("unet") + ": config.json: expected the component's config.json, found none");
}

TEST(DiffusersBadInput, InvalidModelIndex) {
  test::TempDir dir;
  write_text(dir.file("model_index.json"), "{ nope");
  EXPECT_NE(error_of(dir.path()).find("model_index.json: expected valid JSON, found invalid JSON"),
            std::string::npos)
      << error_of(dir.path());
}

TEST(DiffusersBadInput, NothingListed) {
  test::TempDir dir;
  write_text(dir.file("model_index.json"), R"({"scheduler": ["diffusers", "PNDMScheduler"]})");
  EXPECT_NE(error_of(dir.path()).find("expected at least one of unet, vae, text_encoder"),
            std::string::npos)
      << error_of(dir.path());
}

TEST(DiffusersBadInput, UnknownSingleComponentClass) {
  test::TempDir dir;
  write_text(dir.file("config.json"), R"({"_class_name": "PNDMScheduler"})");
  EXPECT_EQ(error_of(dir.path()),
            dir.file("config.json") +
                ": _class_name: expected UNet2DConditionModel, AutoencoderKL, ControlNetModel or "
                "CLIPTextModel, found PNDMScheduler");
}

}  // namespace
}  // namespace sdc
