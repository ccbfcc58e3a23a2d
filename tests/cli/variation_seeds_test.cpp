// Variation seeds through `sdc generate` (fixture tiny-sd15/variation_seeds, CPU source): the
// initial noise written by --save-noise equals A1111's, the infotext names the variation seed,
// the progression continues across --batch-count, and bad values are refused in one line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "pipeline/generation_params.h"

namespace sdc {
namespace {

const test::FeatureGroup& group() {
  return test::feature_group("variation_seeds");
}

double max_abs(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

pipeline::GenerationParams params_of(const std::string& png) {
  for (const auto& [key, value] : io::read_png_text(png))
    if (key == "parameters") return pipeline::parse_a1111_parameters(value);
  ADD_FAILURE() << png << " has no parameters";
  return {};
}

std::vector<std::string> case_flags(const nlohmann::json& c) {
  std::vector<std::string> f = {"-p",           "a cat",
                                "--steps",      "1",
                                "--sampler",    "euler_a",
                                "-W",           std::to_string(c["width"].get<int>()),
                                "-H",           std::to_string(c["height"].get<int>()),
                                "--seed",       std::to_string(c["seed"].get<int64_t>()),
                                "--batch-size", std::to_string(c["batch_size"].get<int>())};
  if (!c["subseed"].is_null()) {
    f.insert(f.end(), {"--subseed", std::to_string(c["subseed"].get<int64_t>()),
                       "--subseed-strength", std::to_string(c["subseed_strength"].get<double>())});
  }
  if (c["seed_resize_from_w"].get<int>() > 0)
    f.insert(f.end(), {"--seed-resize-from", std::to_string(c["seed_resize_from_w"].get<int>()),
                       std::to_string(c["seed_resize_from_h"].get<int>())});
  return f;
}

TEST(GenerateVariationSeeds, SavedNoiseMatchesA1111ForEveryCpuCase) {
  int checked = 0;
  for (const auto& c : group().cases["cases"]) {
    if (c["randn_source"] != "CPU") continue;
    test::TempDir dir;
    std::vector<std::string> flags = case_flags(c);
    flags.insert(flags.end(),
                 {"--save-noise", dir.file("noise.safetensors"), "-o", dir.file("out.png")});
    const test::CommandResult r = test::run_sdc(test::tiny_generate(flags));
    ASSERT_EQ(r.exit_code, 0) << c["id"] << r.err;
    const io::TensorFile saved = io::read_safetensors(dir.file("noise.safetensors"));
    const TensorRef& noise = saved.tensors.get("noise");
    EXPECT_EQ(noise.shape, group().shape(c["tensors"]["noise"])) << c["id"];
    const bool slerp = c["subseed_strength"].get<double>() != 0;
    EXPECT_LE(max_abs(noise.to_f32(), group().f32(c["tensors"]["noise"])), slerp ? 1e-5 : 1e-6)
        << c["id"];

    // Infotext: A1111's keys, per image.
    const int batch = c["batch_size"].get<int>();
    for (int i = 0; i < batch; ++i) {
      const std::string png =
          batch == 1 ? dir.file("out.png") : dir.file("out-" + std::to_string(i + 1) + ".png");
      const pipeline::GenerationParams p = params_of(png);
      EXPECT_EQ(p.seed, c["seeds_per_image"][size_t(i)].get<int64_t>()) << c["id"];
      if (slerp) {
        ASSERT_TRUE(p.variation_seed) << c["id"];
        EXPECT_EQ(*p.variation_seed, c["subseeds_per_image"][size_t(i)].get<int64_t>());
        EXPECT_EQ(p.variation_strength, c["subseed_strength"].get<double>());
      } else {
        EXPECT_FALSE(p.variation_seed) << c["id"];
      }
      if (c["seed_resize_from_w"].get<int>() > 0) {
        ASSERT_TRUE(p.seed_resize_from) << c["id"];
        EXPECT_EQ(p.seed_resize_from->first, c["seed_resize_from_w"].get<int>());
        EXPECT_EQ(p.seed_resize_from->second, c["seed_resize_from_h"].get<int>());
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

// Two runs of one image continue the subseeds as one batch of two does (A1111: subseed + index
// over the whole run, the seed unchanged).
TEST(GenerateVariationSeeds, BatchCountContinuesTheSubseeds) {
  const auto& c = group().find_case("variation_seeds/batch2_subseed");
  test::TempDir dir;
  const test::CommandResult r = test::run_sdc(test::tiny_generate({"-p",
                                                                   "a cat",
                                                                   "--steps",
                                                                   "1",
                                                                   "-W",
                                                                   "64",
                                                                   "-H",
                                                                   "64",
                                                                   "--seed",
                                                                   "77",
                                                                   "--subseed",
                                                                   "88",
                                                                   "--subseed-strength",
                                                                   "0.5",
                                                                   "--batch-count",
                                                                   "2",
                                                                   "--save-noise",
                                                                   dir.file("noise.safetensors"),
                                                                   "-o",
                                                                   dir.file("out.png")}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::TensorFile saved = io::read_safetensors(dir.file("noise.safetensors"));
  EXPECT_LE(max_abs(saved.tensors.get("noise").to_f32(), group().f32(c["tensors"]["noise"])), 1e-5);
  EXPECT_EQ(*params_of(dir.file("out-2.png")).variation_seed, 89);
  EXPECT_EQ(params_of(dir.file("out-2.png")).seed, 77);
}

void expect_refusal(const std::vector<std::string>& extra, const std::string& needle) {
  test::TempDir dir;
  std::vector<std::string> flags = {"-p",           "a cat",
                                    "-W",           "64",
                                    "-H",           "64",
                                    "--steps",      "1",
                                    "-o",           dir.file("out.png"),
                                    "--save-noise", dir.file("noise.safetensors")};
  flags.insert(flags.end(), extra.begin(), extra.end());
  const test::CommandResult r = test::run_sdc(test::tiny_generate(flags));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(dir.list().empty());
}

TEST(GenerateVariationSeeds, BadValuesAreRefused) {
  expect_refusal({"--subseed-strength", "1.5"},
                 "--subseed-strength: expected a value in [0, 1], found 1.5");
  expect_refusal({"--subseed", "-7", "--subseed-strength", "0.5"},
                 "--subseed: expected -1 (random) or 0 to 2^48-1, found -7");
  expect_refusal({"--seed-resize-from", "4", "64"},
                 "--seed-resize-from: expected a width and height from 8 to 2048 (0 0: off), "
                 "found 4 64");
  expect_refusal({"--seed-resize-from", "64", "0"}, "--seed-resize-from");
}

TEST(GenerateVariationSeeds, SaveNoiseInAMissingFolderIsRefused) {
  test::TempDir dir;
  const test::CommandResult r = test::run_sdc(
      test::tiny_generate({"-p", "a cat", "-W", "64", "-H", "64", "--steps", "1", "-o",
                           dir.file("out.png"), "--save-noise", dir.file("no/noise.safetensors")}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--save-noise"), std::string::npos) << r.err;
  EXPECT_TRUE(dir.list().empty());
}

}  // namespace
}  // namespace sdc
