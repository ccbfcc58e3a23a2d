// `sdc generate --preview FILE --preview-every N`: a PNG of the latents while sampling (the
// cheap linear projection, 1/8 of the image size), rewritten every N steps; a bad value or folder
// is refused in one line.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/fixtures.h"
#include "io/image.h"

namespace sdc {
namespace {

TEST(GeneratePreview, WritesTheLatestPreview) {
  test::TempDir dir;
  const test::CommandResult r = test::run_sdc(
      test::tiny_generate({"-p", "a cat", "-W", "64", "-H", "96", "--steps", "3", "--preview",
                           dir.file("p.png"), "--preview-every", "2", "-o", dir.file("out.png")}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Image p = io::read_image(dir.file("p.png"));
  EXPECT_EQ(p.width, 8);
  EXPECT_EQ(p.height, 12);
}

TEST(GeneratePreview, BadValuesAreRefused) {
  for (const auto& [flags, needle] : {std::pair<std::vector<std::string>, std::string>{
                                          {"--preview", "p.png", "--preview-every", "0"},
                                          "--preview-every: expected 1 to 1000, found 0"},
                                      {{"--preview", "missing/p.png"}, "--preview"}}) {
    test::TempDir dir;
    std::vector<std::string> f = {"-p", "a cat",   "-W", "64", "-H",
                                  "64", "--steps", "1",  "-o", dir.file("out.png")};
    for (const std::string& x : flags)
      f.push_back(x == "p.png" || x == "missing/p.png" ? dir.file(x) : x);
    const test::CommandResult r = test::run_sdc(test::tiny_generate(f));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(dir.list().empty());
  }
}

}  // namespace
}  // namespace sdc
