// Inpainting under A1111's convention (`sdc generate --mask` without --compat diffusers): the
// properties that follow from A1111 v1.10.1's processing.py on synthetic cases — an all-black
// mask gives the init image back, an all-white one is plain img2img, "Only masked" pastes into
// the original, the masked-content modes change only the masked region — and the refusals.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "imaging/image_ops.h"
#include "io/image.h"

namespace sdc {
namespace {

std::string init_png() {
  return test::feature_group("inpaint").path("images/init_inpaint4_ddim.png");  // 64×64
}

io::Image solid(int w, int h, uint8_t v) {
  io::Image im(w, h);
  std::fill(im.rgb.begin(), im.rgb.end(), v);
  return im;
}

// Sets [x0, x1) × [y0, y1) of a grey image to v.
void fill_rect(io::Image& im, int x0, int y0, int x1, int y1, uint8_t v) {
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) std::fill_n(im.pixel(x, y), 3, v);
}

// One A1111-convention run on the tiny model; the PNG it wrote, or an empty image on failure.
io::Image generate(const test::TempDir& dir, const std::string& out,
                   const std::vector<std::string>& extra, const std::string& init = init_png(),
                   const std::string& size = "64") {
  std::vector<std::string> f = {
      "-p",     "a red apple", "-W",         size,  "-H",           size, "--steps", "4",
      "--seed", "5",           "--strength", "0.6", "--init-image", init, "-o",      dir.file(out)};
  f.insert(f.end(), extra.begin(), extra.end());
  const test::CommandResult r = test::run_sdc(test::tiny_generate_a1111(f));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? io::read_image(dir.file(out)) : io::Image();
}

bool same_pixel(const io::Image& a, int ax, int ay, const io::Image& b, int bx, int by) {
  return std::equal(a.pixel(ax, ay), a.pixel(ax, ay) + 3, b.pixel(bx, by));
}

TEST(A1111Inpaint, AllBlackMaskGivesTheInitBackAndAllWhiteIsImg2Img) {
  test::TempDir dir;
  io::write_png(dir.file("black.png"), solid(64, 64, 0));
  io::write_png(dir.file("white.png"), solid(64, 64, 255));
  const io::Image init = io::read_image(init_png());
  for (const std::string sampler : {"Euler a", "DDIM"}) {
    const std::vector<std::string> s = {"--sampler", sampler};
    // Nothing to repaint: the overlay restores every pixel, whatever the masked content.
    for (const std::string content : {"original", "fill", "latent-noise", "latent-nothing"}) {
      std::vector<std::string> f = s;
      f.insert(f.end(), {"--mask", dir.file("black.png"), "--masked-content", content});
      const io::Image kept = generate(dir, "kept.png", f);
      EXPECT_EQ(kept.rgb, init.rgb) << sampler << " " << content;
    }
    // Everything repainted, no blur: the blend and the overlay change nothing.
    std::vector<std::string> f = s;
    f.insert(f.end(), {"--mask", dir.file("white.png")});
    EXPECT_EQ(generate(dir, "white.png.out.png", f).rgb, generate(dir, "plain.png", s).rgb)
        << sampler;
  }
}

TEST(A1111Inpaint, MaskedContentChangesOnlyTheMaskedRegion) {
  test::TempDir dir;
  io::Image mask = solid(64, 64, 0);
  fill_rect(mask, 24, 16, 56, 48, 255);
  io::write_png(dir.file("mask.png"), mask);
  const io::Image init = io::read_image(init_png());
  std::vector<io::Image> outs;
  for (const std::string content : {"original", "fill", "latent-noise", "latent-nothing"}) {
    outs.push_back(generate(dir, content + ".png",
                            {"--mask", dir.file("mask.png"), "--masked-content", content}));
    ASSERT_EQ(outs.back().width, 64);
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x)
        if (mask.pixel(x, y)[0] == 0) {
          ASSERT_TRUE(same_pixel(outs.back(), x, y, init, x, y)) << content << " " << x << "," << y;
        }
  }
  for (size_t i = 1; i < outs.size(); ++i) EXPECT_NE(outs[i].rgb, outs[0].rgb) << i;
  EXPECT_NE(outs[0].rgb, init.rgb);
}

TEST(A1111Inpaint, OnlyMaskedPastesIntoTheInitImageAtItsSize) {
  test::TempDir dir;
  // A 160×96 init image and a 12×10 mask box: generated at 64×64 around the box, pasted back.
  const io::Image small = io::read_image(init_png());
  const io::Image init = imaging::fit_image(small, 160, 96, imaging::ResizeMode::Resize);
  io::write_png(dir.file("init.png"), init);
  io::Image mask = solid(160, 96, 0);
  fill_rect(mask, 100, 40, 112, 50, 255);
  io::write_png(dir.file("mask.png"), mask);
  const io::Image out =
      generate(dir, "out.png",
               {"--mask", dir.file("mask.png"), "--inpaint-full-res", "--inpaint-padding", "6"},
               dir.file("init.png"));
  ASSERT_EQ(out.width, 160);
  ASSERT_EQ(out.height, 96);
  // The box 100..112 × 40..50 plus 6 is 94..118 × 34..56 (24×22), widened to 24×24: 94..118 ×
  // 33..57. Outside it nothing changes; inside, the masked pixels are new.
  int changed = 0;
  for (int y = 0; y < 96; ++y)
    for (int x = 0; x < 160; ++x) {
      const bool in_region = x >= 94 && x < 118 && y >= 33 && y < 57;
      if (!in_region || mask.pixel(x, y)[0] == 0)
        ASSERT_TRUE(same_pixel(out, x, y, init, x, y)) << x << "," << y;
      else
        changed += !same_pixel(out, x, y, init, x, y);
    }
  EXPECT_GT(changed, 12 * 10 / 2);
  const io::PngText text = io::read_png_text(dir.file("out.png"));
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text[0].second.find("Size: 64x64"), std::string::npos) << text[0].second;
  EXPECT_NE(text[0].second.find("Inpaint area: Only masked, Masked area padding: 6"),
            std::string::npos)
      << text[0].second;
}

TEST(A1111Inpaint, InfotextNamesMaskModeBlurAndContentInA1111Order) {
  test::TempDir dir;
  io::Image mask = solid(64, 64, 255);
  fill_rect(mask, 0, 0, 64, 32, 0);
  io::write_png(dir.file("mask.png"), mask);
  const io::Image out = generate(dir, "out.png",
                                 {"--mask", dir.file("mask.png"), "--mask-invert", "--mask-blur",
                                  "4", "--masked-content", "latent-noise"});
  ASSERT_EQ(out.width, 64);
  const io::PngText text = io::read_png_text(dir.file("out.png"));
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text[0].second.find(
                "Denoising strength: 0.6, RNG: NV, Mask mode: Inpaint not masked, Mask blur: 4, "
                "Masked content: latent noise"),
            std::string::npos)
      << text[0].second;
  // Inverted: the top half (black in the file) is repainted, the bottom half kept, apart from
  // the blur's reach (4 · 2.5 rows) around the edge.
  const io::Image init = io::read_image(init_png());
  for (int y = 44; y < 64; ++y)
    for (int x = 0; x < 64; ++x) ASSERT_TRUE(same_pixel(out, x, y, init, x, y)) << x << "," << y;
}

TEST(A1111Inpaint, InpaintingModelGetsA1111Conditioning) {
  test::TempDir dir;
  const test::FeatureGroup& g = test::feature_group("inpaint");
  const std::string cfg = test::inpaint_model_config(dir);
  auto run = [&](const std::string& mask, const std::string& out) {
    const test::CommandResult r = test::run_sdc({"generate",
                                                 "-m",
                                                 g.path("model-inpaint-fp16.safetensors"),
                                                 "--model-config",
                                                 cfg,
                                                 "-p",
                                                 "a cat",
                                                 "-W",
                                                 "64",
                                                 "-H",
                                                 "64",
                                                 "--steps",
                                                 "3",
                                                 "--seed",
                                                 "4",
                                                 "--init-image",
                                                 init_png(),
                                                 "--mask",
                                                 mask,
                                                 "--strength",
                                                 "1",
                                                 "-o",
                                                 dir.file(out)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? io::read_image(dir.file(out)) : io::Image();
  };
  const io::Image repainted = run(g.path("images/mask_inpaint9_ddim.png"), "a.png");
  const io::PngText text = io::read_png_text(dir.file("a.png"));
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text[0].second.find("Denoising strength: 1, Conditional mask weight: 1"),
            std::string::npos)
      << text[0].second;
  io::write_png(dir.file("black.png"), solid(64, 64, 0));
  EXPECT_EQ(run(dir.file("black.png"), "b.png").rgb, io::read_image(init_png()).rgb);
  EXPECT_NE(repainted.rgb, io::read_image(init_png()).rgb);
}

void expect_refusal(const std::vector<std::string>& flags, const std::string& needle,
                    bool diffusers = false) {
  test::TempDir dir;
  std::vector<std::string> f = {"-p",           "a cat",    "-W",     "64",      "-H",
                                "64",           "--steps",  "1",      "-o",      dir.file("o.png"),
                                "--init-image", init_png(), "--mask", init_png()};
  f.insert(f.end(), flags.begin(), flags.end());
  const test::CommandResult r =
      test::run_sdc(diffusers ? test::tiny_generate(f) : test::tiny_generate_a1111(f));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(dir.list().empty());
}

TEST(A1111Inpaint, BadOptionsAreRefusedInOneLine) {
  expect_refusal({"--masked-content", "blur"},
                 "--masked-content: expected one of fill, original, latent-noise, "
                 "latent-nothing, found blur");
  expect_refusal({"--inpaint-padding", "-3"}, "--inpaint-padding: expected 0 to 2048 pixels");
  expect_refusal({"--mask-blur-y", "99"}, "--mask-blur-y: expected a sigma from 0 (none) to 64");
  expect_refusal({"--inpaint-full-res"},
                 "--inpaint-full-res: expected --compat a1111 (diffusers has no such option)",
                 true);
  expect_refusal({"--masked-content", "fill"},
                 "--masked-content: expected original under --compat diffusers, found fill", true);
}

}  // namespace
}  // namespace sdc
