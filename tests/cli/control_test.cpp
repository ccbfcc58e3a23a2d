// ControlNet and img2img options of `sdc generate`: the saved hint is what the network saw, Canny
// preprocessing, and the refusals of issue 5 (tiny/huge images, a non-ControlNet given as one).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/fixtures.h"
#include "imaging/canny.h"
#include "io/image.h"
#include "io/safetensors.h"

namespace sdc {
namespace {

std::vector<std::string> ring_ddim_args(const test::TempDir& dir) {
  return test::tiny_generate({"-p", "a ring", "-W", "64", "-H", "64", "--steps", "2", "--sampler",
                              "ddim", "--seed", "1", "--precision", "f32", "-o",
                              dir.file("out.png")});
}

TEST(ControlNetCli, SavesTheCannyHintItUsed) {
  test::TempDir dir;
  auto args = ring_ddim_args(dir);
  args.insert(args.end(),
              {"--control-net", test::tiny("controlnet.safetensors"), "--control-image",
               test::tiny("images/init_64x64.png"), "--control-preprocess", "canny", "--canny-low",
               "50", "--canny-high", "150", "--control-save-hint", dir.file("hint.png")});
  auto r = test::run_sdc(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  io::Image saved = io::read_image(dir.file("hint.png"));
  io::Image expected = imaging::canny(io::read_image(test::tiny("images/init_64x64.png")), 50, 150);
  EXPECT_EQ(saved.rgb, expected.rgb);
}

TEST(ControlNetCli, ControlScaleZeroEqualsNoControlNet) {
  test::TempDir dir;
  auto with = ring_ddim_args(dir);
  with.back() = dir.file("with.png");
  with.insert(with.end(), {"--control-net", test::tiny("controlnet.safetensors"), "--control-image",
                           test::tiny("images/hint_64x64.png"), "--control-scale", "0"});
  auto without = ring_ddim_args(dir);
  without.back() = dir.file("without.png");
  ASSERT_EQ(test::run_sdc(with).exit_code, 0);
  ASSERT_EQ(test::run_sdc(without).exit_code, 0);
  // Adding zero residuals changes nothing but the order of some float additions in fused kernels.
  const auto a = io::read_image(dir.file("with.png")).rgb,
             b = io::read_image(dir.file("without.png")).rgb;
  ASSERT_EQ(a.size(), b.size());
  int worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(int(a[i]) - int(b[i])));
  EXPECT_LE(worst, 1);
}

void expect_refused(std::vector<std::string> extra, const std::string& needle) {
  test::TempDir dir;
  auto args = ring_ddim_args(dir);
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = test::run_sdc(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("out.png")));
}

TEST(ControlNetCli, RefusesALoraGivenAsControlNet) {
  expect_refused({"--control-net", test::tiny("lora-kohya.safetensors"), "--control-image",
                  test::tiny("images/hint_64x64.png")},
                 "expected a ControlNet");
}

TEST(ControlNetCli, RefusesATinyInitImage) {
  test::TempDir img;
  io::Image one(1, 1);
  io::write_png(img.file("one.png"), one);
  expect_refused({"--init-image", img.file("one.png"), "--strength", "0.5"}, "found 1x1");
}

TEST(ControlNetCli, RefusesAHugeControlImageBeforeAllocating) {
  // A PNG header claiming 20000x20000 and nothing else.
  test::TempDir img;
  const unsigned char header[] = {0x89, 'P',  'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0,    0, 0,
                                  13,   'I',  'H', 'D', 'R',  0,    0,    0x4e, 0x20, 0, 0,
                                  0x4e, 0x20, 8,   2,   0,    0,    0,    0,    0,    0, 0};
  FILE* f = std::fopen(img.file("huge.png").c_str(), "wb");
  std::fwrite(header, 1, sizeof header, f);
  std::fclose(f);
  expect_refused({"--control-net", test::tiny("controlnet.safetensors"), "--control-image",
                  img.file("huge.png")},
                 "found 20000x20000");
}

TEST(ControlNetCli, RefusesATruncatedImage) {
  test::TempDir img;
  FILE* in = std::fopen(test::tiny("images/init_64x64.png").c_str(), "rb");
  std::vector<unsigned char> bytes(200);
  bytes.resize(std::fread(bytes.data(), 1, bytes.size(), in));
  std::fclose(in);
  FILE* out = std::fopen(img.file("cut.png").c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), out);
  std::fclose(out);
  expect_refused({"--init-image", img.file("cut.png"), "--strength", "0.5"}, "cut.png");
}

// The tiny ControlNet with every cross-attention key/value projection widened to `context` inputs
// (the layout of a ControlNet for a UNet with another text-encoder width), plus `extra` tensors.
std::string write_controlnet_variant(const test::TempDir& dir, const std::string& name,
                                     const std::string& source, int64_t context,
                                     const WeightMap& extra) {
  const io::TensorFile f = io::read_safetensors(source);
  WeightMap w;
  for (const auto& [key, t] : f.tensors.all()) {
    const bool kv = key.find("attn2.to_k.weight") != std::string::npos ||
                    key.find("attn2.to_v.weight") != std::string::npos;
    if (kv && context > 0) {
      const Shape shape{t.shape[0], context};
      w.set(key, TensorRef::from_f32(std::vector<float>(size_t(shape_numel(shape)), 0.01f), shape,
                                     DType::F32));
    } else {
      w.set(key, t);
    }
  }
  for (const auto& [key, t] : extra.all()) w.set(key, t);
  const std::string path = dir.file(name);
  io::write_safetensors(path, w, {});
  return path;
}

TEST(ControlNetCli, RefusesAControlNetForAnotherArchitecture) {
  test::TempDir cn;
  const std::string ldm = test::tiny("controlnet.safetensors");
  const std::string diffusers =
      test::tiny("controlnet-diffusers/diffusion_pytorch_model.safetensors");
  WeightMap sdxl_ldm, sdxl_diffusers;  // SDXL's pooled-text + size embedding
  sdxl_ldm.set("control_model.label_emb.0.0.weight",
               TensorRef::from_f32(std::vector<float>(32 * 2816), {32, 2816}, DType::F32));
  sdxl_diffusers.set("add_embedding.linear_1.weight",
                     TensorRef::from_f32(std::vector<float>(32 * 2816), {32, 2816}, DType::F32));
  const struct {
    std::string file, needle;
  } cases[] = {
      {write_controlnet_variant(cn, "sd2.safetensors", ldm, 1024, {}),
       "expected a ControlNet for SD1.x, found SD2.x"},
      {write_controlnet_variant(cn, "sdxl.safetensors", ldm, 2048, sdxl_ldm),
       "expected a ControlNet for SD1.x, found SDXL"},
      {write_controlnet_variant(cn, "sdxl-diffusers.safetensors", diffusers, 2048, sdxl_diffusers),
       "expected a ControlNet for SD1.x, found SDXL"},
      // SD1-shaped, but for a text encoder of another width than this model's (32).
      {write_controlnet_variant(cn, "ctx48.safetensors", ldm, 48, {}),
       "expected a ControlNet matching the UNet (context 32), found context 48"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    expect_refused(
        {"--control-net", c.file, "--control-image", test::tiny("images/hint_64x64.png")},
        c.needle);
  }
}

}  // namespace
}  // namespace sdc
