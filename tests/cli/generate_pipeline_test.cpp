// `sdc generate` against the fixtures' whole pipelines (diffusers 0.28 on CPU): the saved final
// latents within the pipeline tolerance and the PNG within one level of the reference PNG, for
// every sampler the fixtures cover, img2img, ControlNet and an LCM-LoRA merged at load.
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/fixtures.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "pipeline/generation_params.h"

namespace sdc {
namespace {

struct PipelineRun {
  std::string id;
  std::vector<std::string> extra;  // sampler flags etc.
};

std::vector<std::string> base_args(const nlohmann::json& c, const test::TempDir& dir) {
  std::vector<std::string> a =
      test::tiny_generate({"--precision", "f32", "-o", dir.file("out.png"), "--save-latents",
                           dir.file("latents.safetensors")});
  const std::vector<std::string> own = test::case_args(c);
  a.insert(a.end(), own.begin(), own.end());
  return a;
}

void check_pipeline(const PipelineRun& run) {
  const nlohmann::json& c = test::find_case(run.id);
  test::TempDir dir;
  std::vector<std::string> args = base_args(c, dir);
  args.insert(args.end(), run.extra.begin(), run.extra.end());
  test::CommandResult r = test::run_sdc(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // Latents: the fixture holds every step; the last one is what --save-latents writes.
  io::TensorFile lat = io::read_safetensors(dir.file("latents.safetensors"));
  std::vector<float> mine = lat.tensors.get("latents").to_f32();
  std::vector<float> all =
      test::ref_f32(c["tensors"]["latents_after_each_step"].get<std::string>());
  ASSERT_GE(all.size(), mine.size());
  std::vector<float> last(all.end() - std::ptrdiff_t(mine.size()), all.end());
  const double d = test::rel_max_diff(mine.data(), last);
  EXPECT_LE(d, test::tolerance("pipeline_latents")) << run.id;
  std::printf("%s latents rel diff %.2e\n", run.id.c_str(), d);

  // Image: the reference float image rounds to the fixture PNG; ours may differ by one level
  // where a value lies within the tolerance of a rounding boundary.
  io::Image ours = io::read_image(dir.file("out.png"));
  io::Image ref = io::read_image(test::tiny(c["output_png"].get<std::string>()));
  ASSERT_EQ(ours.width, ref.width);
  ASSERT_EQ(ours.height, ref.height);
  int worst = 0;
  for (size_t i = 0; i < ours.rgb.size(); ++i)
    worst = std::max(worst, std::abs(int(ours.rgb[i]) - int(ref.rgb[i])));
  EXPECT_LE(worst, 1) << run.id;

  // The PNG carries A1111 parameters that read back.
  io::PngText text = io::read_png_text(dir.file("out.png"));
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(text[0].first, "parameters");
  pipeline::GenerationParams p = pipeline::parse_a1111_parameters(text[0].second);
  EXPECT_EQ(p.prompt, c["prompt"].get<std::string>());
  EXPECT_EQ(p.seed, c["seed"].get<int64_t>());
  EXPECT_EQ(p.steps, c["num_inference_steps"].get<int>());
  EXPECT_EQ(p.width, c["width"].get<int>());
  EXPECT_EQ(p.height, c["height"].get<int>());
  EXPECT_EQ(p.model, "model");
}

TEST(GeneratePipeline, Ddim) {
  check_pipeline({"pipeline/txt2img_ddim", {"--sampler", "ddim"}});
}

TEST(GeneratePipeline, EulerAncestral) {
  check_pipeline({"pipeline/txt2img_euler_a", {"--sampler", "euler_a"}});
}

TEST(GeneratePipeline, DpmPP2MKarras) {
  check_pipeline(
      {"pipeline/txt2img_dpmpp_2m_karras", {"--sampler", "dpmpp_2m", "--scheduler", "karras"}});
}

TEST(GeneratePipeline, LcmWithLoraMergedAtLoad) {
  check_pipeline({"pipeline/txt2img_lcm_lora",
                  {"--sampler", "lcm", "--lora", test::tiny("lora-kohya.safetensors") + ":1.0"}});
}

TEST(GeneratePipeline, Img2ImgDdim) {
  check_pipeline({"pipeline/img2img_ddim",
                  {"--sampler", "ddim", "--init-image", test::tiny("images/init_64x64.png"),
                   "--strength", "0.6"}});
}

TEST(GeneratePipeline, ControlNetDdim) {
  check_pipeline({"pipeline/controlnet_ddim",
                  {"--sampler", "ddim", "--control-net", test::tiny("controlnet.safetensors"),
                   "--control-image", test::tiny("images/hint_64x64.png")}});
}

TEST(GeneratePipeline, ControlNetFromDiffusersFolderGivesTheSameImage) {
  check_pipeline({"pipeline/controlnet_ddim",
                  {"--sampler", "ddim", "--control-net", test::tiny("controlnet-diffusers"),
                   "--control-image", test::tiny("images/hint_64x64.png")}});
}

TEST(GeneratePipeline, SameSeedSameImageAndBatchSeedsFollowA1111) {
  // Image 2 of a batch of 2 with seed S equals a single image with seed S+1.
  test::TempDir dir;
  auto common = [&](const std::string& out) {
    return test::tiny_generate({"-p", "a cat", "-W", "64", "-H", "64", "--steps", "3", "--sampler",
                                "euler_a", "--precision", "f32", "-o", dir.file(out)});
  };
  auto batch = common("b.png");
  batch.insert(batch.end(), {"--seed", "10", "--batch-size", "2"});
  auto single = common("s.png");
  single.insert(single.end(), {"--seed", "11"});
  ASSERT_EQ(test::run_sdc(batch).exit_code, 0);
  ASSERT_EQ(test::run_sdc(single).exit_code, 0);
  EXPECT_EQ(io::read_image(dir.file("b-2.png")).rgb, io::read_image(dir.file("s.png")).rgb);
}

}  // namespace
}  // namespace sdc

namespace sdc {
namespace {

TEST(InspectImage, ReadsTheParametersSdcWrote) {
  test::TempDir dir;
  auto r = test::run_sdc(test::tiny_generate({"-p", "a (red:1.2) fox", "-n", "blurry", "-W", "64",
                                              "-H", "64", "--steps", "2", "--sampler", "ddim",
                                              "--seed", "5", "-o", dir.file("fox.png")}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = test::run_sdc({"inspect", "--json", dir.file("fox.png")});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  nlohmann::json info = nlohmann::json::parse(j.out);
  EXPECT_EQ(info["kind"], "image");
  EXPECT_EQ(info["parameters"]["prompt"], "a (red:1.2) fox");
  EXPECT_EQ(info["parameters"]["negative_prompt"], "blurry");
  EXPECT_EQ(info["parameters"]["sampler"], "DDIM");
  EXPECT_EQ(info["parameters"]["seed"], 5);
  EXPECT_EQ(info["parameters"]["steps"], 2);
  auto h = test::run_sdc({"inspect", dir.file("fox.png")});
  // "Model hash" is the first 10 hex digits of the model file's sha256, as A1111 writes it.
  const std::string hash = io::sha256_file(test::tiny("model.safetensors")).substr(0, 10);
  EXPECT_NE(h.out.find("Steps: 2, Sampler: DDIM, CFG scale: 7, Seed: 5, Size: 64x64, Model hash: " +
                       hash + ", Model: model"),
            std::string::npos)
      << h.out;
}

}  // namespace
}  // namespace sdc
