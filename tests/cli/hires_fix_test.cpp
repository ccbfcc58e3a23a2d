// Hires fix through `sdc generate --hires-…`: the Lanczos path equals, by construction, an
// img2img run of the upscaled first-pass image with the same seed; the Latent path draws its
// second-pass noise from a fresh generator at the hires shape; infotext keys; bad values.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/fixtures.h"
#include "imaging/image_ops.h"
#include "imaging/latent_resize.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "sampling/rng/torch_generator.h"

namespace sdc {
namespace {

std::string params_of(const std::string& png) {
  for (const auto& [key, value] : io::read_png_text(png))
    if (key == "parameters") return value;
  return {};
}

test::CommandResult gen(std::vector<std::string> flags) {
  std::vector<std::string> base = {"-p",          "a lighthouse", "--seed",    "21",
                                   "--precision", "f32",          "--sampler", "euler_a"};
  if (std::find(flags.begin(), flags.end(), "--steps") == flags.end())
    base.insert(base.end(), {"--steps", "3"});
  base.insert(base.end(), flags.begin(), flags.end());
  return test::run_sdc(test::tiny_generate(base));
}

TEST(GenerateHiresFix, LanczosEqualsImg2ImgOfTheUpscaledFirstPass) {
  test::TempDir dir;
  ASSERT_EQ(gen({"-W", "64", "-H", "64", "-o", dir.file("first.png")}).exit_code, 0);
  io::write_png(dir.file("up.png"),
                imaging::resize(io::read_image(dir.file("first.png")), 128, 96));
  const test::CommandResult ref =
      gen({"-W", "128", "-H", "96", "--init-image", dir.file("up.png"), "--strength", "0.6",
           "--steps", "2", "-o", dir.file("ref.png")});
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  const test::CommandResult hr =
      gen({"-W", "64", "-H", "64", "--hires-size", "128", "96", "--hires-upscaler", "lanczos",
           "--hires-denoise", "0.6", "--hires-steps", "2", "-o", dir.file("hr.png")});
  ASSERT_EQ(hr.exit_code, 0) << hr.err;
  const io::Image a = io::read_image(dir.file("hr.png")), b = io::read_image(dir.file("ref.png"));
  EXPECT_EQ(a.width, 128);
  EXPECT_EQ(a.height, 96);
  EXPECT_EQ(a.rgb, b.rgb);
  const std::string p = params_of(dir.file("hr.png"));
  EXPECT_NE(p.find("Size: 64x64"), std::string::npos) << p;
  EXPECT_NE(p.find("Denoising strength: 0.6, RNG: CPU, Hires resize: 128x96, Hires steps: 2, "
                   "Hires upscaler: Lanczos"),
            std::string::npos)
      << p;
}

TEST(GenerateHiresFix, LatentSecondPassNoiseIsAFreshDrawAtTheHiresShape) {
  test::TempDir dir;
  const test::CommandResult hr =
      gen({"-W", "64", "-H", "64", "--hires-scale", "1.5", "--save-noise",
           dir.file("noise.safetensors"), "--save-latents", dir.file("lat.safetensors"), "-o",
           dir.file("hr.png")});
  ASSERT_EQ(hr.exit_code, 0) << hr.err;
  const TensorRef noise = io::read_safetensors(dir.file("noise.safetensors")).tensors.get("noise");
  EXPECT_EQ(noise.shape, (Shape{1, 4, 12, 12}));
  EXPECT_EQ(noise.to_f32(), sampling::TorchGenerator(21).randn(4 * 12 * 12));
  EXPECT_EQ(io::read_safetensors(dir.file("lat.safetensors")).tensors.get("latents").shape,
            (Shape{1, 4, 12, 12}));
  EXPECT_EQ(io::read_image(dir.file("hr.png")).width, 96);
  const std::string p = params_of(dir.file("hr.png"));
  EXPECT_NE(p.find("Denoising strength: 0.7, RNG: CPU, Hires upscale: 1.5, Hires upscaler: Latent"),
            std::string::npos)
      << p;
}

// A1111 (sdc's default convention) runs the second pass with its steps passed explicitly
// (setup_img2img_steps): exactly that many steps of a schedule made for steps / denoise — the
// same as an img2img run with --img2img-fix-steps; at denoise 0 no step runs and the upscaled
// latents are decoded as they are.
TEST(GenerateHiresFix, A1111SecondPassRunsItsStepsOfALongerSchedule) {
  test::TempDir dir;
  auto a1111 = [](std::vector<std::string> flags, const std::string& sampler = "Euler a") {
    std::vector<std::string> base = {"-p",  "a lighthouse", "--seed", "21",      "--precision",
                                     "f32", "--sampler",    sampler,  "--steps", "3"};
    base.insert(base.end(), flags.begin(), flags.end());
    return test::run_sdc(test::tiny_generate_a1111(base));
  };
  ASSERT_EQ(a1111({"-W", "64", "-H", "64", "--save-latents", dir.file("first.safetensors"), "-o",
                   dir.file("first.png")})
                .exit_code,
            0);
  io::write_png(dir.file("up.png"),
                imaging::resize(io::read_image(dir.file("first.png")), 128, 96));
  const test::CommandResult ref =
      a1111({"-W", "128", "-H", "96", "--init-image", dir.file("up.png"), "--strength", "0.6",
             "--img2img-fix-steps", "--resize-mode", "resize", "-o", dir.file("ref.png")});
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  EXPECT_NE(ref.err.find("step 3/3"), std::string::npos) << ref.err;  // 3 of int(3 / 0.6) = 5
  const test::CommandResult hr =
      a1111({"-W", "64", "-H", "64", "--hires-size", "128", "96", "--hires-upscaler", "lanczos",
             "--hires-denoise", "0.6", "-o", dir.file("hr.png")});
  ASSERT_EQ(hr.exit_code, 0) << hr.err;
  EXPECT_EQ(io::read_image(dir.file("hr.png")).rgb, io::read_image(dir.file("ref.png")).rgb);

  const test::CommandResult zero =
      a1111({"-W", "64", "-H", "64", "--hires-scale", "2", "--hires-denoise", "0", "--save-latents",
             dir.file("zero.safetensors"), "-o", dir.file("zero.png")});
  ASSERT_EQ(zero.exit_code, 0) << zero.err;
  const TensorRef first =
      io::read_safetensors(dir.file("first.safetensors")).tensors.get("latents");
  EXPECT_EQ(io::read_safetensors(dir.file("zero.safetensors")).tensors.get("latents").to_f32(),
            imaging::resize_latents_bilinear(first.to_f32(), 1, 4, 8, 8, 16, 16));
  EXPECT_NE(params_of(dir.file("zero.png")).find("Denoising strength: 0,"), std::string::npos)
      << params_of(dir.file("zero.png"));
  // DDIM's schedule cannot have zero steps (A1111 fails too): refused in one line.
  const test::CommandResult ddim = a1111({"-W", "64", "-H", "64", "--hires-scale", "2",
                                          "--hires-denoise", "0", "-o", dir.file("ddim.png")},
                                         "DDIM");
  EXPECT_EQ(ddim.exit_code, 2) << ddim.err;
  EXPECT_NE(ddim.err.find("--hires-denoise: expected above 0 for DDIM"), std::string::npos)
      << ddim.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("ddim.png")));
}

TEST(GenerateHiresFix, BadValuesAreRefusedInOneLine) {
  auto refuse = [](std::vector<std::string> extra, const std::string& needle) {
    test::TempDir dir;
    extra.insert(extra.end(), {"-W", "64", "-H", "64", "-o", dir.file("o.png")});
    const test::CommandResult r = gen(extra);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(dir.list().empty());
  };
  refuse({"--hires-scale", "0.5"}, "--hires-scale: expected a factor from 1 to 8, found 0.5");
  refuse({"--hires-scale", "2", "--hires-upscaler", "esrgan"},
         "--hires-upscaler: expected one of latent, lanczos, found esrgan");
  refuse({"--hires-scale", "2", "--hires-denoise", "0"},
         "--hires-denoise: expected a value in (0, 1], found 0");
  refuse({"--hires-size", "4096", "64"}, "--hires-size: expected a multiple of 8 from 64 to 2048");
}

}  // namespace
}  // namespace sdc
