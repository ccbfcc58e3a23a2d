// `sdc generate` refuses bad input with one line on stderr, exit code 2, and no PNG left behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "common/fixtures.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

struct Refusal {
  test::CommandResult result;
  std::vector<std::string> left;  // files in the output folder afterwards
};

Refusal refuse(std::vector<std::string> extra, const std::string& model = "") {
  test::TempDir dir;
  std::vector<std::string> args = {"generate",
                                   "-m",
                                   model.empty() ? test::tiny("model.safetensors") : model,
                                   "--model-config",
                                   test::tiny("diffusers"),
                                   "-p",
                                   "a cat",
                                   "-o",
                                   dir.file("out.png")};
  // Small defaults unless the case sets them itself (options may be given once only).
  for (const char* opt : {"-W", "-H", "--steps"})
    if (std::find(extra.begin(), extra.end(), opt) == extra.end()) {
      args.push_back(opt);
      args.push_back(std::string(opt) == "--steps" ? "2" : "64");
    }
  args.insert(args.end(), extra.begin(), extra.end());
  Refusal r{test::run_sdc(args, dir.path()), dir.list()};
  return r;
}

void expect_one_line(const Refusal& r, const std::string& needle) {
  EXPECT_EQ(r.result.exit_code, 2) << r.result.err;
  EXPECT_NE(r.result.err.find(needle), std::string::npos) << r.result.err;
  EXPECT_EQ(std::count(r.result.err.begin(), r.result.err.end(), '\n'), 1) << r.result.err;
  EXPECT_TRUE(r.left.empty()) << r.left.front();
}

TEST(GenerateBadInput, WidthNotMultipleOf8) {
  expect_one_line(refuse({"-W", "100"}),
                  "--width: expected a multiple of 8 from 64 to 2048, found 100");
}
TEST(GenerateBadInput, HeightTooLarge) {
  expect_one_line(refuse({"-H", "4096"}),
                  "--height: expected a multiple of 8 from 64 to 2048, found 4096");
}
TEST(GenerateBadInput, UnknownHugePageSetting) {
  setenv("SDC_HUGE_PAGES", "yes", 1);
  const Refusal r = refuse({});
  unsetenv("SDC_HUGE_PAGES");
  expect_one_line(r, "SDC_HUGE_PAGES: expected auto, advise or system, found \"yes\"");
}
TEST(GenerateBadInput, ZeroSteps) {
  expect_one_line(refuse({"--steps", "0"}), "--steps: expected 1 to 1000, found 0");
}
TEST(GenerateBadInput, TooManySteps) {
  expect_one_line(refuse({"--steps", "1001"}), "--steps: expected 1 to 1000, found 1001");
}
TEST(GenerateBadInput, UnknownSamplerListsValidOnes) {
  expect_one_line(refuse({"--sampler", "Euler b"}),
                  "--sampler: expected one of \"DPM++ 2M\" (dpmpp_2m), ");
  expect_one_line(refuse({"--sampler", "heun", "--compat", "diffusers"}),
                  "lcm, ddim, euler, euler_a or dpmpp_2m with --compat diffusers");
}
TEST(GenerateBadInput, UnknownSchedulerListsValidOnes) {
  expect_one_line(refuse({"--scheduler", "karas"}),
                  "--scheduler: expected one of \"Automatic\" (automatic), ");
}
TEST(GenerateBadInput, BadCompatRngAndSamplerOptions) {
  expect_one_line(refuse({"--compat", "comfy"}), "--compat: expected a1111");
  expect_one_line(refuse({"--rng", "gpu"}), "--rng: expected cpu or nv");
  expect_one_line(refuse({"--rng", "nv", "--compat", "diffusers"}),
                  "--rng: expected cpu with --compat diffusers, found nv");
  expect_one_line(refuse({"--eta", "-1"}), "--eta: expected a number >= 0, found -1");
  expect_one_line(refuse({"--sampler", "ddim", "--scheduler", "karras"}),
                  "--scheduler: expected Automatic: DDIM walks its own step list, found Karras");
  expect_one_line(refuse({"--scheduler", "karras", "--sigma-min", "30"}),
                  "--sigma-min: expected less than sigma max");
  expect_one_line(refuse({"--eta", "0.5", "--compat", "diffusers"}),
                  "--compat: expected a1111 for --eta");
}
TEST(GenerateBadInput, NegativeCfg) {
  expect_one_line(refuse({"--cfg-scale", "-2"}),
                  "--cfg-scale: expected a number from 0 to 100, found -2");
}
TEST(GenerateBadInput, EmptyModelPath) {
  test::TempDir dir;
  auto r = test::run_sdc({"generate", "-m", "", "-p", "x", "-o", dir.file("o.png")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("-m/--model"), std::string::npos) << r.err;
  EXPECT_TRUE(dir.list().empty());
}
TEST(GenerateBadInput, OutputInMissingDirectory) {
  test::TempDir dir;
  auto r = test::run_sdc({"generate", "-m", test::tiny("model.safetensors"), "--model-config",
                          test::tiny("diffusers"), "-p", "x", "-W", "64", "-H", "64", "-o",
                          dir.file("missing/o.png")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_TRUE(dir.list().empty());
}
TEST(GenerateBadInput, LoraForAnotherArchitecture) {
  // An SDXL LoRA: text encoder 2 modules and 2048-wide cross-attention.
  test::TempDir lora_dir;
  WeightMap m;
  std::vector<float> down(4 * 2048, 0.01f), up(640 * 4, 0.01f);
  m.set("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight",
        TensorRef::from_f32(down, {4, 2048}, DType::F32));
  m.set("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight",
        TensorRef::from_f32(up, {640, 4}, DType::F32));
  m.set("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
        TensorRef::from_f32(std::vector<float>(4 * 1280, 0.01f), {4, 1280}, DType::F32));
  m.set("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight",
        TensorRef::from_f32(std::vector<float>(1280 * 4, 0.01f), {1280, 4}, DType::F32));
  io::write_safetensors(lora_dir.file("sdxl.safetensors"), m);
  Refusal r = refuse({"--lora", lora_dir.file("sdxl.safetensors")});
  EXPECT_EQ(r.result.exit_code, 2);
  EXPECT_NE(r.result.err.find("SDXL"), std::string::npos) << r.result.err;
  EXPECT_TRUE(r.left.empty());
}
TEST(GenerateBadInput, StrengthOutOfRange) {
  expect_one_line(refuse({"--init-image", test::tiny("images/init_64x64.png"), "--strength", "0"}),
                  "--strength: expected a value in (0, 1], found 0");
  expect_one_line(
      refuse({"--init-image", test::tiny("images/init_64x64.png"), "--strength", "1.5"}),
      "--strength: expected a value in (0, 1], found 1.5");
}
TEST(GenerateBadInput, ControlImageWithoutControlNet) {
  expect_one_line(refuse({"--control-image", test::tiny("images/hint_64x64.png")}),
                  "--control-image");
}
TEST(GenerateBadInput, UnreadableInitImage) {
  expect_one_line(refuse({"--init-image", test::tiny("model.safetensors"), "--strength", "0.5"}),
                  "model.safetensors");
}

}  // namespace
}  // namespace sdc
