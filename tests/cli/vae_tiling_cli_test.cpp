// `sdc generate --vae-tiling`: txt2img and img2img through tiles give an image of the asked size
// close to the untiled one; a bad tile size is one line, exit 2, nothing written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/fixtures.h"
#include "io/image.h"

namespace sdc {
namespace {

TEST(VaeTilingCli, TiledTxt2ImgAndImg2ImgAreCloseToUntiled) {
  test::TempDir dir;
  const std::vector<std::string> base = {"-p",  "a lighthouse", "-W", "256",    "-H",
                                         "192", "--steps",      "2",  "--seed", "5"};
  auto run = [&](std::vector<std::string> extra, const std::string& out) {
    std::vector<std::string> flags = base;
    flags.insert(flags.end(), extra.begin(), extra.end());
    flags.insert(flags.end(), {"-o", dir.file(out)});
    const test::CommandResult r = test::run_sdc(test::tiny_generate(flags));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return io::read_image(dir.file(out));
  };
  const io::Image full = run({}, "full.png");
  const io::Image tiled = run({"--vae-tiling", "--vae-tile-size", "128"}, "tiled.png");
  ASSERT_EQ(tiled.width, 256);
  ASSERT_EQ(tiled.height, 192);
  double sum = 0;
  for (size_t i = 0; i < full.rgb.size(); ++i)
    sum += std::abs(int(full.rgb[i]) - int(tiled.rgb[i]));
  EXPECT_LT(sum / double(full.rgb.size()), 8.0);  // whole image, seams included
  EXPECT_NE(full.rgb, tiled.rgb);                 // the tiles did run
  const io::Image i2i = run({"--vae-tiling", "--vae-tile-size", "128", "--init-image",
                             dir.file("full.png"), "--strength", "0.5"},
                            "i2i.png");
  EXPECT_EQ(i2i.width, 256);
}

TEST(VaeTilingCli, BadTileSizeIsOneLine) {
  test::TempDir dir;
  const test::CommandResult r = test::run_sdc(
      test::tiny_generate({"-p", "x", "-W", "64", "-H", "64", "--steps", "1", "--vae-tiling",
                           "--vae-tile-size", "100", "-o", dir.file("x.png")}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--vae-tile-size"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(dir.list().empty());
}

}  // namespace
}  // namespace sdc
