// TAESD through the command line against the fixture tiny-sd15/taesd: diffusers'
// StableDiffusionPipeline with an AutoencoderTiny (txt2img, DDIM), the same decoder bundled by
// `sdc convert --taesd`, TAESD previews, img2img encoding, and the refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "io/image.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

const test::FeatureGroup& group() {
  return test::feature_group("taesd");
}

constexpr double kPipelineTol = 1e-3;  // README: pipeline latents and float image, fp32

// The pipeline case's flags, without the model.
std::vector<std::string> case_flags(const test::TempDir& dir) {
  const auto& c = group().find_case("taesd/pipeline/txt2img_ddim");
  return {"-p",
          c["prompt"],
          "-n",
          c["negative_prompt"],
          "-W",
          std::to_string(int(c["width"])),
          "-H",
          std::to_string(int(c["height"])),
          "--steps",
          std::to_string(int(c["num_inference_steps"])),
          "--cfg-scale",
          std::to_string(double(c["guidance_scale"])),
          "--seed",
          std::to_string(int(c["seed"])),
          "--sampler",
          "ddim",
          "--precision",
          "f32",
          "--decode-with",
          "taesd",
          "--save-latents",
          dir.file("lat.safetensors"),
          "-o",
          dir.file("out.png")};
}

void expect_pipeline_matches(const test::TempDir& dir, const std::string& what) {
  const auto& t = group().find_case("taesd/pipeline/txt2img_ddim")["tensors"];
  const std::vector<float> latents =
      io::read_safetensors(dir.file("lat.safetensors")).tensors.get("latents").to_f32();
  const std::vector<float> steps = group().f32(t["latents_after_each_step"]);
  const std::vector<float> final_latents(steps.end() - std::ptrdiff_t(latents.size()), steps.end());
  EXPECT_LE(test::rel_max_diff(latents.data(), final_latents), kPipelineTol) << what;
  // The PNG against the pipeline's float image [1,H,W,3]: at most one level off.
  const io::Image got = io::read_image(dir.file("out.png"));
  const std::vector<float> ref = group().f32(t["image"]);
  ASSERT_EQ(got.rgb.size(), ref.size()) << what;
  EXPECT_LE(test::max_level_diff(got, ref), 1) << what;
}

TEST(TaesdCli, DiffusersPipelineWithAutoencoderTinyMatches) {
  test::TempDir dir;
  std::vector<std::string> flags = case_flags(dir);
  flags.insert(flags.end(), {"--taesd", group().path("diffusers")});
  const test::CommandResult r = test::run_sdc(test::tiny_generate(flags));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_pipeline_matches(dir, "--taesd AutoencoderTiny folder");
}

TEST(TaesdCli, ConvertBundlesTheDecoderAndTheGgufDecodesAlike) {
  test::TempDir dir;
  const std::string gguf = dir.file("tiny-taesd.gguf");
  const test::CommandResult c =
      test::run_sdc({"convert", "--model", test::tiny("model.safetensors"), "--model-config",
                     test::tiny("diffusers"), "--taesd", group().path("taesd_decoder.safetensors"),
                     "-t", "f32", "-o", gguf});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const test::CommandResult i = test::run_sdc({"inspect", gguf});
  EXPECT_EQ(i.exit_code, 0) << i.err;
  std::vector<std::string> a = {"generate", "-m", gguf, "--compat", "diffusers"};
  const std::vector<std::string> flags = case_flags(dir);
  a.insert(a.end(), flags.begin(), flags.end());
  const test::CommandResult r = test::run_sdc(a);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_pipeline_matches(dir, "bundled by convert --taesd");
}

TEST(TaesdCli, PreviewIsFullSizeWithTaesdAndImg2ImgEncodes) {
  test::TempDir dir;
  const std::string preview = dir.file("preview.png");
  const test::CommandResult r = test::run_sdc(test::tiny_generate(
      {"-p", "a lighthouse", "-W", "96", "-H", "64", "--steps", "4", "--seed", "3", "--taesd",
       group().dir, "--preview", preview, "--preview-every", "2", "-o", dir.file("a.png")}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Image p = io::read_image(preview);
  EXPECT_EQ(p.width, 96);  // TAESD at full size, not the 1/8 cheap map
  EXPECT_EQ(p.height, 64);
  // img2img with the TAESD encoder (no posterior draw) and decoder, in both conventions.
  for (const char* compat : {"diffusers", "a1111"}) {
    const test::CommandResult e = test::run_sdc({"generate",
                                                 "-m",
                                                 test::tiny("model.safetensors"),
                                                 "--model-config",
                                                 test::tiny("diffusers"),
                                                 "--compat",
                                                 compat,
                                                 "-p",
                                                 "a lighthouse",
                                                 "-W",
                                                 "96",
                                                 "-H",
                                                 "64",
                                                 "--steps",
                                                 "4",
                                                 "--seed",
                                                 "3",
                                                 "--taesd",
                                                 group().dir,
                                                 "--init-image",
                                                 dir.file("a.png"),
                                                 "--strength",
                                                 "0.5",
                                                 "--encode-with",
                                                 "taesd",
                                                 "--decode-with",
                                                 "taesd",
                                                 "-o",
                                                 dir.file("b.png")});
    EXPECT_EQ(e.exit_code, 0) << compat << ": " << e.err;
    EXPECT_EQ(io::read_image(dir.file("b.png")).width, 96) << compat;
  }
}

TEST(TaesdCli, RefusalsAreOneLineAndWriteNothing) {
  test::TempDir dir;
  const std::string out = dir.file("out.png");
  struct Case {
    std::vector<std::string> flags;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"--decode-with", "taesd"}, "--taesd"},
      {{"--decode-with", "tiny"}, "--decode-with"},
      {{"--preview-method", "fancy"}, "--preview-method"},
      {{"--taesd", dir.file("none")}, "no such file"},
      {{"--taesd", test::tiny("model.safetensors")}, "a TAESD decoder or encoder"},
      {{"--taesd", group().path("taesd_decoder.safetensors"), "--init-image",
        group().path("images/taesd_encode_input_64x64.png"), "--encode-with", "taesd"},
       "TAESD encoder"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> flags = {"-p", "x", "--steps", "2", "-W", "64", "-H", "64", "-o", out};
    flags.insert(flags.end(), c.flags.begin(), c.flags.end());
    const test::CommandResult r = test::run_sdc(test::tiny_generate(flags));
    EXPECT_EQ(r.exit_code, 2) << c.expect << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(dir.list().empty()) << c.expect;
  }
}

}  // namespace
}  // namespace sdc
