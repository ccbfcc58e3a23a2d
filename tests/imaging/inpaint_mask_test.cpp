// Mask preparation against the fixture's recorded tensors (tiny-sd15/inpaint): binarised mask,
// latent-size mask and masked image, exact.
#include <gtest/gtest.h>

#include "common/feature_fixtures.h"
#include "imaging/image_ops.h"
#include "imaging/inpaint_mask.h"

namespace sdc::imaging {
namespace {

const test::FeatureGroup& group() {
  return test::feature_group("inpaint");
}

TEST(InpaintMask, MatchesDiffusersForEveryCase) {
  for (const auto& c : group().cases["cases"]) {
    const int w = c["width"].get<int>(), h = c["height"].get<int>();
    const InpaintMask m =
        prepare_inpaint_mask(io::read_image(group().path(c["mask_png"])), w, h, false, 0.0f);
    const auto& t = c["tensors"];
    EXPECT_EQ(m.pixels, group().f32(t["mask"])) << c["id"];
    EXPECT_EQ(m.latent, group().f32(t["mask_latent"])) << c["id"];
    const std::vector<float> init =
        image_to_signed_tensor(io::read_image(group().path(c["init_image_png"])));
    EXPECT_EQ(init, group().f32(t["init_image"])) << c["id"];
    EXPECT_EQ(masked_image(init, m), group().f32(t["masked_image"])) << c["id"];
  }
}

TEST(InpaintMask, InvertRepaintsTheOtherSide) {
  const auto& c = group().find_case("inpaint/inpaint4_ddim");
  const io::Image png = io::read_image(group().path(c["mask_png"]));
  const InpaintMask m = prepare_inpaint_mask(png, 64, 64, false, 0.0f);
  const InpaintMask inv = prepare_inpaint_mask(png, 64, 64, true, 0.0f);
  // 255 − L >= 128 exactly where L <= 127: every pixel flips.
  for (size_t i = 0; i < m.pixels.size(); ++i) EXPECT_EQ(inv.pixels[i], 1.0f - m.pixels[i]) << i;
}

TEST(InpaintMask, RgbIsConvertedAsPilDoes) {
  io::Image rgb(8, 8);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) {
      uint8_t* p = rgb.pixel(x, y);
      // L = (19595·R + 38470·G + 7471·B + 32768) >> 16: (200, 100, 0) -> 118, (0, 200, 100) -> 129
      p[0] = x < 4 ? 200 : 0;
      p[1] = x < 4 ? 100 : 200;
      p[2] = x < 4 ? 0 : 100;
    }
  const InpaintMask m = prepare_inpaint_mask(rgb, 8, 8, false, 0.0f);
  EXPECT_EQ(m.pixels[0], 0.0f);
  EXPECT_EQ(m.pixels[7], 1.0f);
}

TEST(InpaintMask, BlurWidensTheMaskEdge) {
  io::Image half(16, 8);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 16; ++x) std::fill_n(half.pixel(x, y), 3, uint8_t(x < 8 ? 0 : 255));
  const InpaintMask sharp = prepare_inpaint_mask(half, 16, 8, false, 0.0f);
  const InpaintMask soft = prepare_inpaint_mask(half, 16, 8, false, 2.0f);
  // A symmetric blur keeps the 50% level on the edge: same threshold, same side.
  EXPECT_EQ(sharp.pixels[7], 0.0f);
  EXPECT_EQ(soft.pixels[8], 1.0f);
  EXPECT_EQ(soft.pixels[0], 0.0f);
  EXPECT_EQ(soft.pixels[15], 1.0f);
}

}  // namespace
}  // namespace sdc::imaging
