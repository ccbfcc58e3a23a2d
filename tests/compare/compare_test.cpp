// `sdc compare` on the tiny fixture: f32 against itself is exactly zero everywhere; f32 against
// bf16 stays within the fixture's bf16 column; a copy with a perturbed text encoder names the
// text encoder as the first difference (UNet and VAE rows zero); a perturbed UNet block is named
// by --layers; bad arguments are refused. Also the statistics themselves.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "common/error.h"
#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "compare/diff_stats.h"
#include "compare/model_compare.h"
#include "compare/model_spec.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

using nlohmann::json;
using test::tiny;

json compare(const std::string& a, const std::string& b, std::vector<std::string> extra = {}) {
  // One thread: tiny graphs, and no spinning workers on a loaded machine.
  std::vector<std::string> args{"compare",
                                a,
                                b,
                                "--model-config",
                                tiny("diffusers"),
                                "-W",
                                "64",
                                "-H",
                                "64",
                                "--steps",
                                "2",
                                "--threads",
                                "1",
                                "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const test::CommandResult r = test::run_sdc(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

double rel(const json& report, const std::string& row) {
  for (const auto& c : report["components"])
    if (c["name"] == row) return c["rel_max"].get<double>();
  ADD_FAILURE() << "no row " << row;
  return -1;
}

// The tiny model with one tensor scaled, written to DIR/NAME.
std::string perturbed(const test::TempDir& dir, const std::string& name, const std::string& tensor,
                      float factor) {
  const io::TensorFile f = io::read_safetensors(tiny("model.safetensors"));
  WeightMap w = f.tensors;
  const TensorRef& t = w.get(tensor);
  std::vector<float> v = t.to_f32();
  for (float& x : v) x *= factor;
  w.set(tensor, TensorRef::from_f32(v, t.shape, DType::F32));
  const std::string path = dir.file(name);
  io::write_safetensors(path, w);
  return path;
}

TEST(DiffStats, TensorAndImageMetrics) {
  const compare::TensorDiff same = compare::tensor_diff({1, -2, 3}, {1, -2, 3});
  EXPECT_TRUE(same.identical());
  EXPECT_DOUBLE_EQ(same.cosine, 1.0);
  const compare::TensorDiff d = compare::tensor_diff({1, -2, 4}, {1, -1, 4});
  EXPECT_DOUBLE_EQ(d.max_abs, 1.0);
  EXPECT_DOUBLE_EQ(d.mean_abs, 1.0 / 3);
  EXPECT_DOUBLE_EQ(d.rel_max, 0.25);
  EXPECT_NEAR(d.rel_l2, 1.0 / std::sqrt(21.0), 1e-12);
  EXPECT_DOUBLE_EQ(same.rel_l2, 0.0);
  EXPECT_NEAR(d.cosine, 19.0 / std::sqrt(21.0 * 18.0), 1e-12);
  EXPECT_THROW(compare::tensor_diff({1, 2}, {1}), Error);
  const compare::ImageDiff i = compare::image_diff({0, 10, 255, 100}, {0, 12, 250, 100});
  EXPECT_EQ(i.max_level, 5);
  EXPECT_DOUBLE_EQ(i.mean_level, 7.0 / 4);
  EXPECT_NEAR(i.psnr_db, 10 * std::log10(255.0 * 255.0 / (29.0 / 4)), 1e-9);
  EXPECT_TRUE(std::isinf(compare::image_diff({1, 2}, {1, 2}).psnr_db));
}

TEST(FirstJump, NamesTheFirstBlockWellAboveTheOnesBefore) {
  using compare::LayerRow;
  auto rows = [](std::vector<double> r) {
    std::vector<LayerRow> out;
    for (size_t i = 0; i < r.size(); ++i) {
      LayerRow l;
      l.block = "b" + std::to_string(i);
      l.diff.rel_max = r[i];
      out.push_back(l);
    }
    return out;
  };
  EXPECT_EQ(compare::first_jump(rows({0, 0, 0})).first, "");
  EXPECT_EQ(compare::first_jump(rows({0, 0, 3e-3, 5e-3})).first, "b2");  // where it begins
  EXPECT_EQ(compare::first_jump(rows({0, 0, 3e-3, 5e-3})).second, 0.0);
  const auto j = compare::first_jump(rows({1e-3, 2e-3, 1.5e-3, 1e-2, 2e-2}));
  EXPECT_EQ(j.first, "b3");
  EXPECT_DOUBLE_EQ(j.second, 5.0);
}

TEST(Compare, TheSameModelAtF32IsExactlyZero) {
  const json r = compare(tiny("model.safetensors"), tiny("model.safetensors") + "@f32");
  ASSERT_EQ(r["components"].size(), 5u);
  for (const auto& c : r["components"]) {
    EXPECT_EQ(c["max_abs"].get<double>(), 0.0) << c.dump();
    EXPECT_EQ(c["cosine"].get<double>(), 1.0) << c.dump();
  }
  EXPECT_TRUE(r["image"]["identical"].get<bool>());
  EXPECT_TRUE(r["first_difference"].is_null());
}

TEST(Compare, Bf16DriftStaysWithinTheFixturesBf16Column) {
  if (!cpu::precision_available(cpu::Precision::BF16))
    GTEST_SKIP() << "no AVX-512: bf16 plans are refused here";
  const json r =
      compare(tiny("model.safetensors"), tiny("model.safetensors") + "@bf16", {"--layers"});
  EXPECT_GT(rel(r, "text_encoder"), 0.0);
  EXPECT_LE(rel(r, "text_encoder"), test::tolerance("text_encoder", "bf16"));
  for (const char* t : {"unet t=999", "unet t=500", "unet t=1"})
    EXPECT_LE(rel(r, t), test::tolerance("unet", "bf16")) << t;
  EXPECT_LE(rel(r, "vae_decode"), test::tolerance("vae_decode", "bf16"));
  EXPECT_EQ(r["first_difference"], "text_encoder");
  EXPECT_GT(r["image"]["psnr_db"].get<double>(), 25.0);  // the same picture, slightly moved
  ASSERT_EQ(r["layers"].size(), 12u + 1u + 12u + 1u);
  EXPECT_EQ(r["layers"][0]["block"], "input_blocks.0");
  EXPECT_EQ(r["layers"][12]["block"], "middle_block");
  EXPECT_EQ(r["layers"][25]["block"], "out");
}

TEST(Compare, ModelSpecsNameTheirPrecisionAndTheVaesInt8) {
  const auto spec = [](const std::string& arg) {
    const compare::ModelSpec s = compare::parse_model_spec(arg);
    return s.path + " " + s.precision + (s.vae_int8 ? " vae-int8" : "") +
           (s.direct ? " direct" : "");
  };
  EXPECT_EQ(spec("m.safetensors"), "m.safetensors f32");
  EXPECT_EQ(spec("m.safetensors@int8"), "m.safetensors int8");
  EXPECT_EQ(spec("m.safetensors@vae-int8"), "m.safetensors f32 vae-int8");
  EXPECT_EQ(spec("m.safetensors@int8+vae-int8"), "m.safetensors int8 vae-int8");
  EXPECT_EQ(spec("a@b/m.gguf"), "a@b/m.gguf f32");  // '@' in a folder name is the path's
  EXPECT_EQ(compare::parse_model_spec("m.gguf@bf16+vae-int8").label(), "m.gguf@bf16+vae-int8");
  EXPECT_EQ(spec("m.safetensors@bf16+direct"), "m.safetensors bf16 direct");
  EXPECT_EQ(spec("m.safetensors@vae-int8+direct"), "m.safetensors f32 vae-int8 direct");
  EXPECT_EQ(compare::parse_model_spec("m.gguf@int8+vae-int8+direct").label(),
            "m.gguf@int8+vae-int8+direct");
}

// @vae-int8 changes the VAE decoder only: text encoder and UNet rows exactly zero, the decoder's
// within a few per cent, and it is the first difference.
TEST(Compare, VaeInt8ChangesTheDecoderOnly) {
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  const json r = compare(tiny("model.safetensors"), tiny("model.safetensors") + "@vae-int8");
  for (const char* row : {"text_encoder", "unet t=999", "unet t=500", "unet t=1"})
    EXPECT_EQ(rel(r, row), 0.0) << row;
  EXPECT_GT(rel(r, "vae_decode"), 0.0);
  EXPECT_LT(rel(r, "vae_decode"), 0.1);
  EXPECT_EQ(r["first_difference"], "vae_decode");
  EXPECT_EQ(r["b"], tiny("model.safetensors") + "@f32+vae-int8");
  EXPECT_GT(r["image"]["psnr_db"].get<double>(), 30.0);
}

// --taesd adds the taesd_decode row (both sides get the TAESD): zero for the same model at f32,
// a small difference when B's image decoders run int8.
TEST(Compare, TaesdRowWithTaesd) {
  const std::string taesd = test::feature_group("taesd").path("diffusers");
  const json same =
      compare(tiny("model.safetensors"), tiny("model.safetensors"), {"--taesd", taesd});
  EXPECT_EQ(rel(same, "taesd_decode"), 0.0);
  EXPECT_TRUE(same["first_difference"].is_null());
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  const json r = compare(tiny("model.safetensors"), tiny("model.safetensors") + "@vae-int8",
                         {"--taesd", taesd});
  EXPECT_GT(rel(r, "taesd_decode"), 0.0);
  EXPECT_LT(rel(r, "taesd_decode"), 0.1);
}

TEST(Compare, APerturbedTextEncoderIsTheFirstDifference) {
  test::TempDir dir;
  const std::string other =
      perturbed(dir, "other-te.safetensors",
                "cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc1.weight", 1.05f);
  const json r = compare(tiny("model.safetensors"), other);
  EXPECT_EQ(r["first_difference"], "text_encoder");
  EXPECT_GT(rel(r, "text_encoder"), 1e-3);
  EXPECT_LT(r["components"][0]["cosine"].get<double>(), 1.0);
  for (const char* row : {"unet t=999", "unet t=500", "unet t=1", "vae_decode"})
    EXPECT_EQ(rel(r, row), 0.0) << row;  // the same UNet and VAE on the same inputs
  EXPECT_FALSE(r["image"]["identical"].get<bool>());
}

TEST(Compare, LayersNameThePerturbedUNetBlock) {
  test::TempDir dir;
  const std::string other =
      perturbed(dir, "other-unet.safetensors",
                "model.diffusion_model.output_blocks.4.0.out_layers.3.weight", 1.1f);
  const json r = compare(tiny("model.safetensors"), other, {"--layers"});
  EXPECT_EQ(r["first_difference"], "unet t=999");
  EXPECT_EQ(rel(r, "text_encoder"), 0.0);
  EXPECT_EQ(r["jump"]["block"], "output_blocks.4");
  for (const auto& l : r["layers"]) {
    if (l["block"] == "output_blocks.4") break;
    EXPECT_EQ(l["max_abs"].get<double>(), 0.0) << l.dump();
  }
  // The text report says the same.
  const test::CommandResult t = test::run_sdc(
      {"compare", tiny("model.safetensors"), other, "--model-config", tiny("diffusers"), "-W", "64",
       "-H", "64", "--steps", "1", "--threads", "1", "--layers"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("first difference: unet t=999"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("difference jumps at: output_blocks.4"), std::string::npos) << t.out;
}

// "Does my ONNX export match?": an f32 export's weights, read back from the .onnx files (inline
// and external data), run exactly as the source; a truncated file is refused by name.
TEST(Compare, AnOnnxExportFolderRunsLikeItsSource) {
  test::TempDir dir;
  const test::CommandResult c =
      test::run_sdc({"convert", "-u", tiny("model.safetensors"), "--model-config",
                     tiny("diffusers"), "-l", tiny("lora-kohya.safetensors"), "--format", "onnx",
                     "--external-data", "-o", dir.file("onnx")});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const test::CommandResult m = test::run_sdc(
      {"convert", "-u", tiny("model.safetensors"), "--model-config", tiny("diffusers"), "-l",
       tiny("lora-kohya.safetensors"), "-t", "f32", "-o", dir.file("merged.gguf")});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  const json r = compare(dir.file("merged.gguf"), dir.file("onnx"));
  for (const auto& row : r["components"]) EXPECT_EQ(row["max_abs"].get<double>(), 0.0) << row;
  EXPECT_TRUE(r["image"]["identical"].get<bool>());
  // Against the base model the baked LoRA shows, from the text encoder on.
  EXPECT_EQ(compare(tiny("model.safetensors"), dir.file("onnx"))["first_difference"],
            "text_encoder");

  std::filesystem::resize_file(dir.file("onnx/vae_decoder/vae_decoder.onnx"), 1000);
  const test::CommandResult t =
      test::run_sdc({"compare", tiny("model.safetensors"), dir.file("onnx"), "--model-config",
                     tiny("diffusers")});
  EXPECT_EQ(t.exit_code, 2) << t.err;
  EXPECT_NE(t.err.find("vae_decoder.onnx: ModelProto: field 7: expected"), std::string::npos)
      << t.err;
}

TEST(Compare, RefusesBadArguments) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("onnx"));
  std::ofstream(dir.file("onnx/model.json")) << "{}";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"compare", tiny("model.safetensors") + "@int4", tiny("model.safetensors")},
       "precision suffix: expected @f32, @bf16, @f16 or @int8, optionally +vae-int8 (or @vae-int8 "
       "alone), then optionally +direct, found @int4"},
      {{"compare", tiny("model.safetensors") + "@bf16+direct+vae-int8", tiny("model.safetensors")},
       "found @bf16+direct+vae-int8"},
      {{"compare", tiny("model.safetensors") + "@direct", tiny("model.safetensors")},
       "found @direct"},
      {{"compare", tiny("model.safetensors") + "@bf16+vae-int4", tiny("model.safetensors")},
       "found @bf16+vae-int4"},
      {{"compare", tiny("model.safetensors") + "@+vae-int8", tiny("model.safetensors")},
       "found @+vae-int8"},
      {{"compare", tiny("model.safetensors"), dir.file("onnx")},
       "model.json: format: expected \"sdc-onnx\" (an export of sdc convert --format onnx), "
       "found none"},
      {{"compare", tiny("model.safetensors"), dir.file("missing.safetensors"), "--model-config",
        tiny("diffusers")},
       "missing.safetensors"},
      {{"compare", tiny("model.safetensors"), tiny("model.safetensors"), "--model-config",
        tiny("diffusers"), "-W", "60"},
       "width"},
  };
  for (const auto& [args, message] : cases) {
    const test::CommandResult r = test::run_sdc(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace sdc
