// Inpainting through `sdc generate --init-image --mask` against diffusers'
// StableDiffusionInpaintPipeline (fixture tiny-sd15/inpaint): the 9-channel model as one fp16
// file and as a diffusers folder, the normal 4-channel model with latent blending, and the bad
// inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "io/image.h"
#include "io/safetensors.h"

namespace sdc {
namespace {
namespace fs = std::filesystem;

const test::FeatureGroup& group() {
  return test::feature_group("inpaint");
}

constexpr double kPipelineTol = 1e-3;  // README: pipeline latents and float image, fp32

// The complete diffusers folder the README describes: the fixture's, then the inpaint one over it.
std::string inpaint_folder(const test::TempDir& dir) {
  const std::string out = dir.file("inpaint-diffusers");
  fs::copy(test::tiny("diffusers"), out, fs::copy_options::recursive);
  fs::copy(group().path("diffusers"), out,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  return out;
}

struct InpaintRun {
  std::vector<float> latents;
  io::Image image;
};

InpaintRun run_case(const nlohmann::json& c, const std::vector<std::string>& model_flags,
                    const std::string& strength_override = {}) {
  test::TempDir dir;
  const std::string name = c["id"].get<std::string>().substr(std::string("inpaint/").size());
  // The fixtures are diffusers' inpainting pipelines.
  std::vector<std::string> a = {"generate", "--compat", "diffusers"};
  a.insert(a.end(), model_flags.begin(), model_flags.end());
  a.insert(a.end(), {"-p",
                     c["prompt"],
                     "-W",
                     std::to_string(c["width"].get<int>()),
                     "-H",
                     std::to_string(c["height"].get<int>()),
                     "--steps",
                     std::to_string(c["num_inference_steps"].get<int>()),
                     "--cfg-scale",
                     std::to_string(c["guidance_scale"].get<double>()),
                     "--seed",
                     std::to_string(c["seed"].get<int64_t>()),
                     "--sampler",
                     c["scheduler"] == "DDIMScheduler" ? "ddim" : "euler_a",
                     "--precision",
                     "f32",
                     "--strength",
                     strength_override.empty() ? std::to_string(c["strength"].get<double>())
                                               : strength_override,
                     "--init-image",
                     group().path(c["init_image_png"]),
                     "--mask",
                     group().path(c["mask_png"]),
                     "--save-latents",
                     dir.file("lat.safetensors"),
                     "-o",
                     dir.file("out.png")});
  if (c["negative_prompt"].is_string()) a.insert(a.end(), {"-n", c["negative_prompt"]});
  const test::CommandResult r = test::run_sdc(a);
  EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
  if (r.exit_code != 0) return {};
  return {io::read_safetensors(dir.file("lat.safetensors")).tensors.get("latents").to_f32(),
          io::read_image(dir.file("out.png"))};
}

// The last step's latents of `steps_tensor` [steps, 1, 4, h, w].
std::vector<float> final_latents(const std::string& steps_tensor, size_t n) {
  const std::vector<float> all = group().f32(steps_tensor);
  return std::vector<float>(all.end() - std::ptrdiff_t(n), all.end());
}

// The PNG against the float image [1, H, W, 3] in [0, 1]: at most one level off (rounding of a
// value within the tolerance).
void expect_image_close(const io::Image& got, const std::string& ref_tensor,
                        const std::string& what) {
  const std::vector<float> ref = group().f32(ref_tensor);
  ASSERT_EQ(got.rgb.size(), ref.size()) << what;
  EXPECT_LE(test::max_level_diff(got, ref), 1) << what;
}

TEST(GenerateInpaint, NineChannelSingleFileFp16EveryCase) {
  test::TempDir cfg_dir;
  const std::string cfg = test::inpaint_model_config(cfg_dir);
  for (const char* id :
       {"inpaint/inpaint9_ddim", "inpaint/inpaint9_euler_a", "inpaint/inpaint9_ddim_strength075"}) {
    const auto& c = group().find_case(id);
    const InpaintRun r =
        run_case(c, {"-m", group().path("model-inpaint-fp16.safetensors"), "--model-config", cfg});
    ASSERT_FALSE(r.latents.empty()) << id;
    const std::string t = std::string(id) + "/single_file_fp16/";
    EXPECT_LE(test::rel_max_diff(r.latents.data(),
                                 final_latents(t + "latents_after_each_step", r.latents.size())),
              kPipelineTol)
        << id;
    expect_image_close(r.image, t + "image", id);
  }
}

TEST(GenerateInpaint, NineChannelDiffusersFolder) {
  test::TempDir dir;
  const std::string folder = inpaint_folder(dir);
  const auto& c = group().find_case("inpaint/inpaint9_ddim");
  const InpaintRun r = run_case(c, {"-m", folder});
  ASSERT_FALSE(r.latents.empty());
  const auto& t = c["tensors"];
  EXPECT_LE(test::rel_max_diff(r.latents.data(),
                               final_latents(t["latents_after_each_step"], r.latents.size())),
            kPipelineTol);
  expect_image_close(r.image, t["image"], "inpaint9_ddim (diffusers folder)");
}

// `sdc convert` keeps an inpainting model one: the .gguf alone (configs inside) inpaints as the
// file it came from.
TEST(GenerateInpaint, ConvertedModelStaysAnInpaintingModel) {
  test::TempDir dir;
  const test::CommandResult conv = test::run_sdc(
      {"convert", "-u", group().path("model-inpaint-fp16.safetensors"), "--model-config",
       test::inpaint_model_config(dir), "-t", "f32", "-o", dir.file("inpaint.gguf")});
  ASSERT_EQ(conv.exit_code, 0) << conv.err;
  const auto& c = group().find_case("inpaint/inpaint9_ddim");
  const InpaintRun r = run_case(c, {"-m", dir.file("inpaint.gguf")});
  ASSERT_FALSE(r.latents.empty());
  EXPECT_LE(
      test::rel_max_diff(r.latents.data(), final_latents("inpaint/inpaint9_ddim/single_file_fp16/"
                                                         "latents_after_each_step",
                                                         r.latents.size())),
      kPipelineTol);
}

TEST(GenerateInpaint, FourChannelLatentBlending) {
  const std::vector<std::string> model = {"-m", test::tiny("model.safetensors"), "--model-config",
                                          test::tiny("diffusers")};
  // Euler a at 0.75 over 8 steps: diffusers starts at index 8 − int(8·0.75) = 2, A1111's
  // k-sampler convention (sdc's default until --compat diffusers) at 8 − int(s·8) − 1, which is
  // also 2 for s = 0.7; the start latents (init + σ₂·noise) and everything after are then the same.
  for (const auto& [id, strength] :
       {std::pair{"inpaint/inpaint4_ddim", ""}, {"inpaint/inpaint4_euler_a_strength075", "0.7"}}) {
    const auto& c = group().find_case(id);
    const InpaintRun r = run_case(c, model, strength);
    ASSERT_FALSE(r.latents.empty()) << id;
    const auto& t = c["tensors"];
    EXPECT_LE(test::rel_max_diff(r.latents.data(),
                                 final_latents(t["latents_after_each_step"], r.latents.size())),
              kPipelineTol)
        << id;
    expect_image_close(r.image, t["image"], id);
  }
}

// With a 4-channel model and DDIM (no draws after the noise): a mask that repaints everything
// blends nothing back, so the result is img2img from the same init, seed and strength; a mask that
// keeps everything ends on the init image's latents whatever the prompt.
TEST(GenerateInpaint, AllOnesMaskIsImg2ImgAndAllZerosKeepsTheInit) {
  test::TempDir dir;
  io::Image white(64, 64), black(64, 64);
  std::fill(white.rgb.begin(), white.rgb.end(), uint8_t(255));
  io::write_png(dir.file("white.png"), white);
  io::write_png(dir.file("black.png"), black);
  const std::string init = group().path("images/init_inpaint4_ddim.png");
  auto run = [&](const std::string& prompt, std::vector<std::string> extra,
                 const std::string& out) {
    std::vector<std::string> f = {"-p",
                                  prompt,
                                  "-W",
                                  "64",
                                  "-H",
                                  "64",
                                  "--steps",
                                  "4",
                                  "--sampler",
                                  "ddim",
                                  "--seed",
                                  "9",
                                  "--precision",
                                  "f32",
                                  "--strength",
                                  "0.5",
                                  "--init-image",
                                  init,
                                  "--save-latents",
                                  dir.file(out),
                                  "-o",
                                  dir.file(out + ".png")};
    f.insert(f.end(), extra.begin(), extra.end());
    const test::CommandResult r = test::run_sdc(test::tiny_generate(f));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return io::read_safetensors(dir.file(out)).tensors.get("latents").to_f32();
  };
  EXPECT_EQ(run("a cat", {"--mask", dir.file("white.png")}, "a.safetensors"),
            run("a cat", {}, "b.safetensors"));
  const std::vector<float> kept = run("a cat", {"--mask", dir.file("black.png")}, "c.safetensors");
  EXPECT_EQ(kept, run("a dog", {"--mask", dir.file("black.png")}, "d.safetensors"));
  EXPECT_NE(kept, run("a dog", {"--mask", dir.file("white.png")}, "e.safetensors"));
}

void expect_refusal(const std::vector<std::string>& flags, const std::string& needle) {
  test::TempDir dir;
  std::vector<std::string> f = {"-p", "a cat",   "-W", "64", "-H",
                                "64", "--steps", "1",  "-o", dir.file("out.png")};
  f.insert(f.end(), flags.begin(), flags.end());
  const test::CommandResult r = test::run_sdc(test::tiny_generate(f));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(dir.list().empty());
}

TEST(GenerateInpaint, BadInputsAreRefusedInOneLine) {
  const std::string mask = group().path("images/mask_inpaint4_ddim.png");
  expect_refusal({"--mask", mask}, "--mask: expected an --init-image to inpaint, found none");
  expect_refusal({"--init-image", group().path("images/init_inpaint4_ddim.png"), "--mask",
                  group().path("cases.json")},
                 "cases.json");
  expect_refusal({"--init-image", group().path("images/init_inpaint4_ddim.png"), "--mask", mask,
                  "--mask-blur", "-1"},
                 "--mask-blur: expected a sigma from 0 (none) to 64 pixels, found -1");
}

TEST(GenerateInpaint, InpaintingModelNeedsAMask) {
  test::TempDir dir;
  const std::string cfg = test::inpaint_model_config(dir);
  const test::CommandResult r = test::run_sdc(
      {"generate", "-m", group().path("model-inpaint-fp16.safetensors"), "--model-config", cfg,
       "-p", "a cat", "-W", "64", "-H", "64", "--steps", "1", "-o", dir.file("out.png")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--mask: expected a mask and an --init-image for an inpainting model"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir.file("out.png")));
}

// A mask of another size is resized (Lanczos) to the image before thresholding.
TEST(GenerateInpaint, MaskOfAnotherSizeIsResized) {
  test::TempDir dir;
  io::Image small(16, 16);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) std::fill_n(small.pixel(x, y), 3, uint8_t(x < 8 ? 0 : 255));
  io::write_png(dir.file("mask.png"), small);
  const test::CommandResult r = test::run_sdc(
      test::tiny_generate({"-p", "a cat", "-W", "64", "-H", "64", "--steps", "1", "--init-image",
                           group().path("images/init_inpaint4_ddim.png"), "--mask",
                           dir.file("mask.png"), "-o", dir.file("out.png")}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir.file("out.png")));
}

}  // namespace
}  // namespace sdc
