// Canny: the outline of a filled square, threshold behaviour, and bit-exact agreement with
// OpenCV 4.6's cv2.Canny(rgb, low, high) (expected patterns and hashes were computed with it).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/fixtures.h"
#include "imaging/canny.h"
#include "io/image.h"

namespace sdc {
namespace {

io::Image square(uint8_t r, uint8_t g, uint8_t b) {  // 16×16 black, [4,12)² filled
  io::Image im(16, 16);
  for (int y = 4; y < 12; ++y)
    for (int x = 4; x < 12; ++x) {
      uint8_t* p = im.pixel(x, y);
      p[0] = r, p[1] = g, p[2] = b;
    }
  return im;
}

int edge_count(const io::Image& e) {
  int n = 0;
  for (int y = 0; y < e.height; ++y)
    for (int x = 0; x < e.width; ++x) {
      const uint8_t* p = e.pixel(x, y);
      EXPECT_TRUE((p[0] == 0 || p[0] == 255) && p[1] == p[0] && p[2] == p[0]);
      n += p[0] == 255;
    }
  return n;
}

uint64_t fnv(const io::Image& im) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : im.rgb) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

// Same generators as the Python that produced the expected values.
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

io::Image shapes(int w, int h) {  // a disk over ramps: edges in every direction
  io::Image im(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.pixel(x, y);
      if ((x - 20) * (x - 20) + (y - 15) * (y - 15) < 100) {
        p[0] = 200, p[1] = 40, p[2] = 90;
      } else {
        p[0] = uint8_t((x * 5 + y * 3) & 255);
        p[1] = uint8_t((x * x / 7) & 255);
        p[2] = x + y < 30 ? 60 : 180;
      }
    }
  return im;
}

TEST(Canny, FilledSquareGivesItsOutline) {
  // OpenCV's non-maximum suppression keeps the first of two equal neighbours across a step, so
  // the top and left sides lie just outside the square, the bottom and right sides on its last
  // row/column, and the top-left corner is cut diagonally. Nothing inside or far outside.
  const char* want[16] = {
      "................", "................", "................", ".....######.....",
      "....#......#....", "...#.......#....", "...#.......#....", "...#.......#....",
      "...#.......#....", "...#.......#....", "...#.......#....", "....########....",
      "................", "................", "................", "................"};
  const io::Image e = imaging::canny(square(255, 255, 255), 100, 200);
  ASSERT_EQ(e.width, 16);
  ASSERT_EQ(e.height, 16);
  std::string got;
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) got += e.pixel(x, y)[0] ? '#' : '.';
    EXPECT_EQ(got.substr(size_t(y) * 16), want[y]) << "row " << y;
  }
  EXPECT_EQ(edge_count(e), 28);
  // Any single channel gives the same outline (the strongest channel decides).
  EXPECT_EQ(imaging::canny(square(0, 0, 255), 100, 200).rgb, e.rgb);
}

TEST(Canny, Thresholds) {
  const io::Image sq = square(255, 255, 255);
  // The square's strongest gradient (|dx| + |dy| at the corners) is 1530: edges need > high.
  EXPECT_EQ(edge_count(imaging::canny(sq, 100, 1530)), 0);
  EXPECT_EQ(edge_count(imaging::canny(sq, 100, 1529)), 28);
  // Side pixels have magnitude 1020: with low = 1020 they are no longer candidates, only the
  // corners that exceed it remain.
  EXPECT_EQ(edge_count(imaging::canny(sq, 1020, 1021)), 4);
  EXPECT_EQ(edge_count(imaging::canny(sq, 1019, 1019.5f)), 28);
  EXPECT_EQ(edge_count(imaging::canny(sq, 509.9f, 1100)), 28);
  // low > high is swapped, as OpenCV does.
  EXPECT_EQ(imaging::canny(sq, 1529, 100).rgb, imaging::canny(sq, 100, 1529).rgb);
  // A flat image has no edges at all.
  EXPECT_EQ(edge_count(imaging::canny(io::Image(9, 9), 0, 0)), 0);
}

TEST(Canny, MatchesOpenCv) {
  struct Case {
    io::Image image;
    float low, high;
    int edges;
    uint64_t hash;
  };
  const Case cases[] = {
      {noise(37, 29), 100, 200, 411, 0x565a0faf054a5012ull},
      {noise(37, 29), 50, 400, 410, 0x07b1ec6d7250bba5ull},
      {shapes(48, 36), 100, 200, 157, 0x4ad7ca3071d59660ull},
      {io::read_image(test::tiny("images/hint_64x64.png")), 100, 200, 273, 0x78dcce254aa46e94ull},
      {io::read_image(test::tiny("images/init_64x64.png")), 100, 200, 290, 0x9d53c261077353d5ull},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.image.width) + "x" + std::to_string(c.image.height));
    const io::Image e = imaging::canny(c.image, c.low, c.high);
    EXPECT_EQ(edge_count(e), c.edges);
    EXPECT_EQ(fnv(e), c.hash) << std::hex << fnv(e);
  }
}

TEST(Canny, BadInput) {
  try {
    imaging::canny(io::Image(), 1, 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "canny input: expected a non-empty RGB image, found 0x0 with 0 bytes");
  }
  try {
    imaging::canny(square(1, 2, 3), NAN, 2);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "canny thresholds: expected finite numbers, found NaN or infinity");
  }
}

}  // namespace
}  // namespace sdc

namespace sdc {
namespace {

TEST(GaussianBlur, KeepsFlatImagesAndTotalsAndSpreadsAnImpulse) {
  io::Image flat(9, 7);
  for (uint8_t& v : flat.rgb) v = 77;
  EXPECT_EQ(imaging::gaussian_blur(flat, 1.5f).rgb, flat.rgb);
  EXPECT_EQ(imaging::gaussian_blur(flat, 0.0f).rgb, flat.rgb);  // sigma 0: unchanged

  io::Image dot(21, 21);
  dot.pixel(10, 10)[0] = 255;
  const io::Image b = imaging::gaussian_blur(dot, 1.0f);
  // Symmetric about the centre, peaked there, monotone outwards, mass conserved (within rounding).
  EXPECT_EQ(b.pixel(9, 10)[0], b.pixel(11, 10)[0]);
  EXPECT_EQ(b.pixel(10, 9)[0], b.pixel(10, 11)[0]);
  EXPECT_GT(b.pixel(10, 10)[0], b.pixel(11, 10)[0]);
  EXPECT_GT(b.pixel(11, 10)[0], b.pixel(12, 10)[0]);
  EXPECT_EQ(b.pixel(14, 10)[0], 0);  // beyond 3 sigma
  int total = 0;
  for (int y = 0; y < 21; ++y)
    for (int x = 0; x < 21; ++x) total += b.pixel(x, y)[0];
  EXPECT_NEAR(total, 255, 12);
  EXPECT_EQ(b.pixel(10, 10)[1], 0);  // channels stay apart
  // 255 * g(0)^2 with sigma 1 over 7 taps: 255 * 0.3991^2 = 40.6.
  EXPECT_EQ(b.pixel(10, 10)[0], 41);
  EXPECT_THROW(imaging::gaussian_blur(dot, std::nanf("")), UsageError);
}

TEST(GaussianBlur, BeforeCannyRemovesTheEdgesOfNoiseButKeepsTheSquare) {
  io::Image im = square(200, 200, 200);
  // Speckle: every 3rd pixel of the background a little brighter.
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x)
      if ((x + 2 * y) % 3 == 0 && im.pixel(x, y)[0] == 0)
        im.pixel(x, y)[0] = im.pixel(x, y)[1] = 90;
  const int sharp = edge_count(imaging::canny(im, 100, 200));
  const io::Image blurred = imaging::canny(imaging::gaussian_blur(im, 1.0f), 100, 200);
  const int soft = edge_count(blurred);
  EXPECT_LT(soft, sharp);
  EXPECT_GT(soft, 0);
  // The square's outline survives: an edge on each side's middle row/column (within 1 px).
  auto edge_near = [&](int x, int y) {
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx)
        if (blurred.pixel(x + dx, y + dy)[0] == 255) return true;
    return false;
  };
  EXPECT_TRUE(edge_near(4, 8));
  EXPECT_TRUE(edge_near(11, 8));
  EXPECT_TRUE(edge_near(8, 4));
  EXPECT_TRUE(edge_near(8, 11));
}

}  // namespace
}  // namespace sdc
