// A1111's inpainting image operations (imaging/a1111_masking.h) on synthetic images whose
// results follow from masking.py, images.py and PIL's integer arithmetic by hand.
#include "imaging/a1111_masking.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace sdc::imaging {
namespace {

io::Image grey(int w, int h, uint8_t v = 0) {
  io::Image g(w, h);
  std::fill(g.rgb.begin(), g.rgb.end(), v);
  return g;
}
void set(io::Image& g, int x, int y, uint8_t v) {
  std::fill_n(g.pixel(x, y), 3, v);
}
uint8_t at(const io::Image& g, int x, int y) {
  return g.pixel(x, y)[0];
}
io::Image pattern(int w, int h) {
  io::Image im(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.pixel(x, y);
      p[0] = uint8_t(x * 7 + y);
      p[1] = uint8_t(200 - y * 3);
      p[2] = uint8_t((x * y) % 256);
    }
  return im;
}

TEST(A1111Mask, AlphaMaskIsThresholdedAndColourMaskIsGrey) {
  io::Image rgba(4, 1);
  rgba.alpha = {0, 128, 129, 255};
  std::fill(rgba.rgb.begin(), rgba.rgb.end(), uint8_t(255));  // colours are ignored
  const io::Image a = a1111_mask_grey(rgba, true);
  EXPECT_EQ(at(a, 0, 0), 0);
  EXPECT_EQ(at(a, 1, 0), 0);  // > 128 only
  EXPECT_EQ(at(a, 2, 0), 255);
  EXPECT_EQ(at(a, 3, 0), 255);
  EXPECT_EQ(at(a1111_mask_grey(rgba, false), 1, 0), 128);  // mask_round false: as it is

  // An opaque alpha channel counts as none: PIL's convert("L") of the colours, not thresholded.
  io::Image rgb(2, 1);
  rgb.alpha = {255, 255};
  rgb.rgb = {100, 100, 100, 255, 0, 0};
  const io::Image g = a1111_mask_grey(rgb, true);
  EXPECT_EQ(at(g, 0, 0), 100);
  EXPECT_EQ(at(g, 1, 0), 76);  // (19595·255 + 2^15) >> 16
}

TEST(A1111Mask, BlurIsSeparableReflectedAndKeepsFlatAreas) {
  io::Image g = grey(21, 9);
  set(g, 10, 4, 255);
  const io::Image b = a1111_mask_blur(g, 2.0f, 0.0f);  // along x only
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 21; ++x)
      if (y != 4) {
        EXPECT_EQ(at(b, x, y), 0) << x << "," << y;
      }
  EXPECT_EQ(at(b, 9, 4), at(b, 11, 4));
  EXPECT_GT(at(b, 10, 4), at(b, 9, 4));
  EXPECT_EQ(at(b, 0, 4), 0);  // kernel radius int(2.5·2 + 0.5) = 5 does not reach
  EXPECT_EQ(at(b, 4, 4), 0);
  EXPECT_GT(at(b, 5, 4), 0);
  const io::Image flat = a1111_mask_blur(grey(8, 8, 77), 3.0f, 3.0f);
  for (uint8_t v : flat.rgb) EXPECT_EQ(v, 77);
}

TEST(A1111Mask, CropRegionIsTheBoxPlusPaddingClipped) {
  io::Image g = grey(100, 80);
  EXPECT_FALSE(mask_crop_region(g, 10).has_value());
  set(g, 30, 20, 1);
  set(g, 49, 39, 200);
  const CropRegion r = *mask_crop_region(g, 0);
  EXPECT_EQ(r.x1, 30);
  EXPECT_EQ(r.y1, 20);
  EXPECT_EQ(r.x2, 50);  // exclusive, as PIL's getbbox
  EXPECT_EQ(r.y2, 40);
  const CropRegion p = *mask_crop_region(g, 25);
  EXPECT_EQ(p.x1, 5);
  EXPECT_EQ(p.y1, 0);
  EXPECT_EQ(p.x2, 75);
  EXPECT_EQ(p.y2, 65);
}

TEST(A1111Mask, ExpandCropRegionFollowsMaskingPy) {
  // A 128×32 box for a square output becomes 128×128, centred (masking.py's own example).
  CropRegion r = expand_crop_region({100, 200, 228, 232}, 512, 512, 1000, 1000);
  EXPECT_EQ(r.x1, 100);
  EXPECT_EQ(r.x2, 228);
  EXPECT_EQ(r.y1, 152);  // diff 96: 48 above, 48 below
  EXPECT_EQ(r.y2, 280);
  // Sticking out at the bottom: shifted up inside the image.
  r = expand_crop_region({0, 90, 40, 100}, 64, 64, 200, 100);
  EXPECT_EQ(r.y2 - r.y1, 40);
  EXPECT_EQ(r.y2, 100);
  EXPECT_EQ(r.y1, 60);
  // Taller than wide for a wide output, near the left edge: widened, shifted right to 0.
  r = expand_crop_region({2, 0, 12, 40}, 128, 64, 300, 40);
  EXPECT_EQ(r.x1, 0);
  EXPECT_EQ(r.x2, 80);  // desired width 80: 70 more, 35 each side, then moved inside
  EXPECT_EQ(r.y1, 0);
  EXPECT_EQ(r.y2, 40);
  // Wider than the image allows: clipped to the image.
  r = expand_crop_region({0, 0, 10, 50}, 512, 128, 60, 50);
  EXPECT_EQ(r.x1, 0);
  EXPECT_EQ(r.x2, 60);
}

TEST(A1111Mask, PilGaussianBlurKeepsUniformImagesAtEveryRadius) {
  io::Image im = grey(37, 23, 200);
  im.alpha.assign(37 * 23, 255);
  for (float radius : {0.0f, 2.0f, 4.0f, 16.0f, 64.0f, 256.0f}) {
    const io::Image b = pil_gaussian_blur(im, radius);
    for (uint8_t v : b.rgb) ASSERT_EQ(v, 200) << radius;
    for (uint8_t v : b.alpha) ASSERT_EQ(v, 255) << radius;
  }
  // A single bright pixel spreads symmetrically and keeps (about) its sum.
  io::Image dot = grey(31, 31);
  dot.alpha.assign(31 * 31, 255);
  set(dot, 15, 15, 255);
  const io::Image b = pil_gaussian_blur(dot, 2.0f);
  EXPECT_EQ(at(b, 14, 15), at(b, 16, 15));
  EXPECT_EQ(at(b, 15, 14), at(b, 15, 16));
  EXPECT_LT(at(b, 15, 15), 255);
  int sum = 0;
  for (int y = 0; y < 31; ++y)
    for (int x = 0; x < 31; ++x) sum += at(b, x, y);
  EXPECT_NEAR(sum, 255, 40);  // 8-bit rounding of many small values
}

TEST(A1111Mask, FillKeepsUnmaskedPixelsAndSpreadsTheirColourIn) {
  io::Image im(32, 32);
  for (int i = 0; i < 32 * 32; ++i) {
    im.rgb[size_t(3 * i)] = 40;
    im.rgb[size_t(3 * i + 1)] = 120;
    im.rgb[size_t(3 * i + 2)] = 220;
  }
  io::Image mask = grey(32, 32);
  for (int y = 8; y < 24; ++y)
    for (int x = 8; x < 24; ++x) {
      set(mask, x, y, 255);
      std::fill_n(im.pixel(x, y), 3, uint8_t(0));  // what was there is hidden
    }
  const io::Image f = masked_content_fill(im, mask);
  ASSERT_FALSE(f.has_alpha());
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const uint8_t* p = f.pixel(x, y);
      // Premultiplied 8-bit colours of nearly transparent layers round coarsely (PIL's too).
      EXPECT_NEAR(p[0], 40, 6) << x << "," << y;
      EXPECT_NEAR(p[1], 120, 6) << x << "," << y;
      EXPECT_NEAR(p[2], 220, 6) << x << "," << y;
      if (at(mask, x, y) == 0) {
        EXPECT_TRUE(std::equal(p, p + 3, im.pixel(x, y)));
      }
    }
}

TEST(A1111Mask, OverlayRestoresUnmaskedPixelsAndBlendsSoftEdges) {
  const io::Image original = pattern(16, 8);
  io::Image generated(16, 8);
  std::fill(generated.rgb.begin(), generated.rgb.end(), uint8_t(9));
  io::Image mask = grey(16, 8);
  for (int y = 0; y < 8; ++y) {
    set(mask, 10, y, 255);
    set(mask, 11, y, 128);
  }
  const io::Image out =
      apply_inpaint_overlay(generated, std::nullopt, inpaint_overlay(original, mask));
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 16; ++x) {
      const uint8_t* p = out.pixel(x, y);
      if (x == 10) {
        EXPECT_TRUE(std::all_of(p, p + 3, [](uint8_t v) { return v == 9; }));
      } else if (x == 11) {  // half and half, to within PIL's rounding
        for (int c = 0; c < 3; ++c)
          EXPECT_NEAR(p[c], (original.pixel(x, y)[c] * 127 + 9 * 128) / 255.0, 1.5);
      } else {
        EXPECT_TRUE(std::equal(p, p + 3, original.pixel(x, y))) << x << "," << y;
      }
    }
  // doubled_mask: 128 and above become fully repainted.
  EXPECT_EQ(at(doubled_mask(mask), 11, 0), 255);
}

TEST(A1111Mask, PasteBackPutsTheResultIntoTheRegionOnly) {
  const io::Image original = pattern(40, 30);
  io::Image mask = grey(40, 30);
  for (int y = 10; y < 20; ++y)
    for (int x = 12; x < 22; ++x) set(mask, x, y, 255);
  const CropRegion region{12, 10, 22, 20};
  io::Image generated(64, 64);
  std::fill(generated.rgb.begin(), generated.rgb.end(), uint8_t(33));
  const io::Image out = apply_inpaint_overlay(generated, region, inpaint_overlay(original, mask));
  ASSERT_EQ(out.width, 40);
  ASSERT_EQ(out.height, 30);
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 40; ++x) {
      const uint8_t* p = out.pixel(x, y);
      if (at(mask, x, y) == 255)
        EXPECT_TRUE(std::all_of(p, p + 3, [](uint8_t v) { return v == 33; })) << x << "," << y;
      else
        EXPECT_TRUE(std::equal(p, p + 3, original.pixel(x, y))) << x << "," << y;
    }
}

TEST(A1111Mask, LatentMasksAreResizedOrSampledAndRounded) {
  io::Image g = grey(64, 32);
  for (int y = 0; y < 32; ++y)
    for (int x = 32; x < 64; ++x) set(g, x, y, 255);
  const std::vector<float> nmask = a1111_latent_mask(g, 8, 4, true);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8; ++x) EXPECT_EQ(nmask[size_t(y * 8 + x)], x < 4 ? 0.0f : 1.0f);
  // One column at 8k is sampled by the conditioning mask, one at 8k + 4 is not.
  io::Image lines = grey(64, 32);
  for (int y = 0; y < 32; ++y) {
    set(lines, 16, y, 255);
    set(lines, 44, y, 255);
  }
  const std::vector<float> cond = a1111_conditioning_mask(lines, 8, 4, true);
  for (int x = 0; x < 8; ++x) EXPECT_EQ(cond[size_t(x)], x == 2 ? 1.0f : 0.0f) << x;
  set(lines, 0, 0, 100);
  EXPECT_NEAR(a1111_conditioning_mask(lines, 8, 4, false)[0], 100.0f / 255.0f, 1e-7);
  EXPECT_EQ(a1111_conditioning_mask(lines, 8, 4, true)[0], 0.0f);
}

}  // namespace
}  // namespace sdc::imaging
