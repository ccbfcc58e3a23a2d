// Image operations: tensors match diffusers' references exactly, decoded images round like numpy,
// alpha flattens like PIL, and resizing / A1111's resize modes match PIL bit for bit (the expected
// hashes were computed with Pillow 9.4: Image.resize(..., LANCZOS) and A1111's resize_image).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/fixtures.h"
#include "imaging/image_ops.h"
#include "io/image.h"

namespace sdc {
namespace {

using imaging::Filter;
using imaging::ResizeMode;

// Deterministic noise with every value 0…255 likely: the hardest input for exact resampling
// (ringing, clipping). Python: ((x*73856093 ^ y*19349663 ^ c*83492791) * 2654435761 mod 2^32)
// >> 24.
io::Image noise(int w, int h) {
  io::Image im(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const uint32_t v =
            (uint32_t(x) * 73856093u ^ uint32_t(y) * 19349663u ^ uint32_t(c) * 83492791u) *
            2654435761u;
        im.pixel(x, y)[c] = uint8_t(v >> 24);
      }
  return im;
}

// FNV-1a 64 of the RGB bytes.
uint64_t fnv(const io::Image& im) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : im.rgb) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

void expect_image(const io::Image& im, int w, int h, uint64_t hash) {
  EXPECT_EQ(im.width, w);
  EXPECT_EQ(im.height, h);
  EXPECT_EQ(fnv(im), hash) << std::hex << "got " << fnv(im);
  EXPECT_FALSE(im.has_alpha());
}

// ---- tensors against the fixtures ------------------------------------------------------------

TEST(ImageTensors, InitImageMatchesVaeEncoderInputExactly) {
  const io::Image init = io::read_image(test::tiny("images/init_64x64.png"));
  const std::vector<float> ref = test::ref_f32("vae/encode/image");  // 1×3×64×64 in [-1,1]
  const std::vector<float> t = imaging::image_to_signed_tensor(init);
  ASSERT_EQ(t.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(t[i], ref[i]) << "at " << i;
}

TEST(ImageTensors, HintImageMatchesControlNetHintExactly) {
  const io::Image hint = io::read_image(test::tiny("images/hint_64x64.png"));
  const std::vector<float> ref = test::ref_f32("controlnet/hint");  // 1×3×64×64 in [0,1]
  const std::vector<float> t = imaging::image_to_unit_tensor(hint);
  ASSERT_EQ(t.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(t[i], ref[i]) << "at " << i;
}

TEST(ImageTensors, PipelineImagesRoundToTheirPngs) {
  // Each pipeline's float image (NHWC, [0,1]) becomes its PNG by round-half-even of x·255.
  for (const char* id : {"txt2img_lcm_lora", "txt2img_ddim", "txt2img_euler_a",
                         "txt2img_dpmpp_2m_karras", "img2img_ddim", "controlnet_ddim"}) {
    SCOPED_TRACE(id);
    const auto& c = test::find_case(std::string("pipeline/") + id);
    const int w = c["width"], h = c["height"];
    const std::vector<float> nhwc = test::ref_f32(c["tensors"]["image"].get<std::string>());
    ASSERT_EQ(nhwc.size(), size_t(w * h * 3));
    std::vector<float> chw(nhwc.size());
    for (int i = 0; i < w * h; ++i)
      for (int ch = 0; ch < 3; ++ch) chw[size_t(ch * w * h + i)] = nhwc[size_t(i * 3 + ch)];
    const io::Image png = io::read_image(test::tiny(c["output_png"].get<std::string>()));
    const io::Image mine = imaging::image_from_unit_tensor(chw.data(), w, h);
    EXPECT_EQ(mine.rgb, png.rgb);
    // The same through the VAE-output path: x = 2u − 1 is exact for these floats.
    std::vector<float> signed_chw(chw.size());
    for (size_t i = 0; i < chw.size(); ++i) signed_chw[i] = chw[i] * 2.0f - 1.0f;
    EXPECT_EQ(imaging::image_from_signed_tensor(signed_chw.data(), w, h).rgb, png.rgb);
  }
}

TEST(ImageTensors, RoundsHalfToEvenAndClamps) {
  // u = (k + 0.5) / 255 in float gives u · 255 == k + 0.5 exactly; numpy rounds that to even.
  std::vector<float> chw(255 * 3, 0.0f);
  for (int k = 0; k < 255; ++k) {
    chw[size_t(k)] = float((k + 0.5) / 255.0);
    ASSERT_EQ(chw[size_t(k)] * 255.0f, float(k) + 0.5f);
  }
  const io::Image im = imaging::image_from_unit_tensor(chw.data(), 255, 1);
  for (int k = 0; k < 255; ++k) ASSERT_EQ(im.pixel(k, 0)[0], k % 2 == 0 ? k : k + 1) << k;

  // The VAE output path: clamp(x / 2 + 0.5, 0, 1); NaN becomes 0.
  const float r[6] = {-3.0f, 3.0f, NAN, 0.0f, 1.0f, -1.0f};
  std::vector<float> dec(18, 0.0f);
  std::memcpy(dec.data(), r, sizeof r);
  const io::Image d = imaging::image_from_signed_tensor(dec.data(), 6, 1);
  const uint8_t want[6] = {0, 255, 0, 128, 255, 0};  // 0 → 127.5 → 128 (even)
  for (int x = 0; x < 6; ++x) EXPECT_EQ(d.pixel(x, 0)[0], want[x]) << "pixel " << x;
}

TEST(ImageTensors, RoundTripIsExact) {
  const io::Image a = noise(13, 9);
  EXPECT_EQ(imaging::image_from_unit_tensor(imaging::image_to_unit_tensor(a).data(), 13, 9).rgb,
            a.rgb);
  EXPECT_EQ(imaging::image_from_signed_tensor(imaging::image_to_signed_tensor(a).data(), 13, 9).rgb,
            a.rgb);
  const std::vector<float> t = imaging::image_to_unit_tensor(a);
  EXPECT_EQ(t[0], a.pixel(0, 0)[0] / 255.0f);            // plane R first
  EXPECT_EQ(t[13 * 9 + 14], a.pixel(1, 1)[1] / 255.0f);  // then G, row-major
  EXPECT_EQ(t[2 * 13 * 9 + 13 * 9 - 1], a.pixel(12, 8)[2] / 255.0f);
}

// ---- alpha -----------------------------------------------------------------------------------

TEST(ImageAlpha, FlattensLikePilPaste) {
  // Expected values from PIL: Image.new("RGBA", size, bg).paste(img, mask=img).convert("RGB").
  io::Image im(6, 1);
  const uint8_t c[6] = {200, 0, 255, 17, 90, 3}, a[6] = {100, 128, 1, 254, 0, 255};
  for (int x = 0; x < 6; ++x) std::memset(im.pixel(x, 0), c[x], 3);
  im.alpha.assign(a, a + 6);
  io::Image white = im;
  imaging::flatten_alpha(white);
  const uint8_t want_white[6] = {233, 127, 255, 18, 255, 3};
  for (int x = 0; x < 6; ++x) EXPECT_EQ(white.pixel(x, 0)[1], want_white[x]) << x;
  EXPECT_FALSE(white.has_alpha());
  imaging::flatten_alpha(im, 10, 20, 30);
  EXPECT_EQ(im.pixel(0, 0)[0], 85);
  EXPECT_EQ(im.pixel(0, 0)[1], 91);
  EXPECT_EQ(im.pixel(0, 0)[2], 97);
  EXPECT_EQ(im.pixel(1, 0)[2], 15);
  EXPECT_EQ(im.pixel(4, 0)[1], 20);
}

// ---- resizing --------------------------------------------------------------------------------

TEST(ImageResize, MatchesPilLanczos) {
  const io::Image a = noise(23, 17);
  expect_image(imaging::resize(a, 10, 7), 10, 7, 0x413dd7dd1c415121ull);
  expect_image(imaging::resize(a, 41, 29), 41, 29, 0xd216c62878926de2ull);
  expect_image(imaging::resize(a, 23, 40), 23, 40, 0xa9037a87808da74dull);  // vertical only
  expect_image(imaging::resize(a, 7, 17), 7, 17, 0x31e0d0bf7e9e5e4full);    // horizontal only
  expect_image(imaging::resize(noise(300, 200), 64, 48), 64, 48, 0x66d0c55e71ddb78eull);
  expect_image(imaging::resize(a, 23, 17), 23, 17, fnv(a));  // same size: a copy
}

TEST(ImageResize, MatchesPilBicubicAndBoxes) {
  const io::Image a = noise(23, 17);
  expect_image(imaging::resize(noise(300, 200), 64, 48, Filter::Bicubic), 64, 48,
               0x32fc34b171ce8ecdull);
  expect_image(imaging::resize(a, 40, 30, Filter::Bicubic), 40, 30, 0x13fac6ab432345ebull);
  expect_image(imaging::resize(a, 5, 4, {2.5, 1.25, 20.75, 13.5}), 5, 4, 0x77ebfa8104a4788bull);
  expect_image(imaging::resize(a, 23, 3, {0, 0, 23, 0}), 23, 3, 0xa746dffd45c14cddull);
  expect_image(imaging::resize(a, 23, 3, {0, 17, 23, 17}), 23, 3, 0xf1c0d497cad8fea8ull);
}

TEST(ImageResize, ConstantImageStaysConstant) {
  io::Image flat(19, 11);
  for (size_t i = 0; i < flat.rgb.size(); i += 3)
    flat.rgb[i] = 7, flat.rgb[i + 1] = 128, flat.rgb[i + 2] = 255;
  for (auto [w, h] : {std::pair{5, 3}, std::pair{64, 40}}) {
    const io::Image r = imaging::resize(flat, w, h);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        ASSERT_EQ(r.pixel(x, y)[0], 7);
        ASSERT_EQ(r.pixel(x, y)[1], 128);
        ASSERT_EQ(r.pixel(x, y)[2], 255);
      }
  }
}

TEST(ImageFit, MatchesA1111ResizeModes) {
  const io::Image a = noise(23, 17);
  expect_image(imaging::fit_image(a, 16, 16, ResizeMode::Resize), 16, 16, 0xf9fa1ab4b20a5f6full);
  expect_image(imaging::fit_image(a, 16, 16, ResizeMode::Crop), 16, 16, 0x2b6f41c56e85590aull);
  expect_image(imaging::fit_image(a, 16, 16, ResizeMode::Fill), 16, 16, 0x4f59fba2b2f778d7ull);
  const io::Image b = noise(17, 23);
  expect_image(imaging::fit_image(b, 24, 16, ResizeMode::Crop), 24, 16, 0xce8bed152fba1e79ull);
  expect_image(imaging::fit_image(b, 24, 16, ResizeMode::Fill), 24, 16, 0x1eea5d9015899469ull);
  expect_image(imaging::fit_image(noise(40, 10), 16, 16, ResizeMode::Fill), 16, 16,
               0xcf74cd267c6ccd87ull);
  // Odd margins: A1111 leaves the last row / column black.
  const io::Image d = imaging::fit_image(noise(30, 12), 8, 9, ResizeMode::Fill);
  expect_image(d, 8, 9, 0x7cb28556c537eb57ull);
  const io::Image e = imaging::fit_image(noise(12, 30), 9, 8, ResizeMode::Fill);
  expect_image(e, 9, 8, 0xe6cab183d7f323f3ull);
}

TEST(ImageFit, CropCoversAndFillBandsRepeat) {
  // 40×10 into 16×16 "fill": the picture is 16×4 in rows 6…9, rows 0…5 all equal (a blend of the
  // top edge rows), rows 10…15 all equal.
  const io::Image f = imaging::fit_image(noise(40, 10), 16, 16, ResizeMode::Fill);
  for (int y = 1; y < 6; ++y) EXPECT_EQ(0, std::memcmp(f.pixel(0, y), f.pixel(0, 0), 16 * 3)) << y;
  for (int y = 11; y < 16; ++y)
    EXPECT_EQ(0, std::memcmp(f.pixel(0, y), f.pixel(0, 10), 16 * 3)) << y;
  const io::Image inner = imaging::resize(noise(40, 10), 16, 4);
  for (int y = 0; y < 4; ++y)
    EXPECT_EQ(0, std::memcmp(f.pixel(0, 6 + y), inner.pixel(0, y), 16 * 3));
  // "crop" of the same: scaled to 64×16, the middle 16 columns kept.
  const io::Image c = imaging::fit_image(noise(40, 10), 16, 16, ResizeMode::Crop);
  const io::Image wide = imaging::resize(noise(40, 10), 64, 16);
  for (int y = 0; y < 16; ++y) EXPECT_EQ(0, std::memcmp(c.pixel(0, y), wide.pixel(24, y), 16 * 3));
  // Same size: every mode is a copy.
  const io::Image a = noise(16, 16);
  for (auto m : {ResizeMode::Resize, ResizeMode::Crop, ResizeMode::Fill})
    EXPECT_EQ(imaging::fit_image(a, 16, 16, m).rgb, a.rgb);
}

TEST(ImageFit, ModeNames) {
  for (auto m : {ResizeMode::Resize, ResizeMode::Crop, ResizeMode::Fill})
    EXPECT_EQ(imaging::parse_resize_mode(imaging::resize_mode_name(m)), m);
  EXPECT_EQ(imaging::parse_resize_mode("Crop and resize"), ResizeMode::Crop);
  EXPECT_EQ(imaging::parse_resize_mode("Resize and fill"), ResizeMode::Fill);
  EXPECT_EQ(imaging::parse_resize_mode("Just resize"), ResizeMode::Resize);
  try {
    imaging::parse_resize_mode("stretch");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "resize mode: expected resize, crop or fill, found \"stretch\"");
  }
}

TEST(ImageFit, BadInput) {
  auto error_of = [](auto f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(error_of([] { imaging::fit_image(noise(4000, 8), 64, 64, ResizeMode::Fill); })
                .find("init image aspect ratio: expected one that still covers a pixel at 64x64, "
                      "found 4000x8"),
            std::string::npos);
  EXPECT_NE(error_of([] { imaging::resize(noise(8, 8), 0, 8); }).find("found 0x8"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              imaging::resize(noise(8, 8), 4, 4, {0, 0, 9, 8});
            }).find("resize box"),
            std::string::npos);
  EXPECT_NE(error_of([] { imaging::image_to_unit_tensor(io::Image()); }).find("found 0x0"),
            std::string::npos);
}

}  // namespace
}  // namespace sdc
