// Variation seeds against A1111's own ImageRNG (fixture tiny-sd15/variation_seeds): the batch seed
// progression, every ingredient draw, the slerped / resized first noise and the next draw.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/feature_fixtures.h"
#include "sampling/variation_noise.h"

namespace sdc::sampling {
namespace {

double max_abs(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

const test::FeatureGroup& group() {
  return test::feature_group("variation_seeds");
}

VariationSeeds seeds_of(const nlohmann::json& c) {
  const double strength = c["subseed_strength"].get<double>();
  const int64_t subseed = c["subseed"].is_null() ? 0 : c["subseed"].get<int64_t>();
  return batch_variation_seeds(c["seed"].get<int64_t>(), subseed, strength,
                               c["seed_resize_from_w"].get<int>(),
                               c["seed_resize_from_h"].get<int>(), 0, c["batch_size"].get<int>());
}

TEST(VariationNoise, BatchSeedProgressionAsA1111) {
  for (const auto& c : group().cases["cases"]) {
    const VariationSeeds v = seeds_of(c);
    EXPECT_EQ(v.seeds, c["seeds_per_image"].get<std::vector<int64_t>>()) << c["id"];
    if (c["subseeds_per_image"].is_null()) {
      EXPECT_FALSE(v.uses_subseed()) << c["id"];
    } else {
      EXPECT_EQ(v.subseeds, c["subseeds_per_image"].get<std::vector<int64_t>>()) << c["id"];
    }
  }
  // Later batches continue the run-wide index: seeds without a variation, subseeds with one.
  EXPECT_EQ(batch_variation_seeds(10, 20, 0.0, 0, 0, 4, 2).seeds, (std::vector<int64_t>{14, 15}));
  const VariationSeeds v = batch_variation_seeds(10, 20, 0.5, 0, 0, 4, 2);
  EXPECT_EQ(v.seeds, (std::vector<int64_t>{10, 10}));
  EXPECT_EQ(v.subseeds, (std::vector<int64_t>{24, 25}));
}

// Every CPU-source case: noise (slerp 1e-5, else 1e-6), next_noise and the ingredients. The NV
// (Philox) case needs A1111's Philox generator, which plugs in as another GeneratorFactory.
TEST(VariationNoise, MatchesA1111ImageRngOnTheCpuSource) {
  int checked = 0;
  for (const auto& c : group().cases["cases"]) {
    if (c["randn_source"] != "CPU") continue;
    const auto latent = c["latent_shape_per_image"].get<std::vector<int>>();
    const auto noise_shape = c["noise_shape_per_image"].get<std::vector<int>>();
    VariationSeeds v = seeds_of(c);
    VariationNoise rng(latent[0], latent[1], latent[2], v, torch_cpu_generators());
    const std::vector<float> first = rng.first();
    std::vector<float> next(first.size());
    rng.next(next);
    const auto& t = c["tensors"];
    const double tol = v.uses_subseed() ? 1e-5 : 1e-6;
    EXPECT_LE(max_abs(first, group().f32(t["noise"])), tol) << c["id"];
    EXPECT_LE(max_abs(next, group().f32(t["next_noise"])), 1e-6) << c["id"];
    const auto& f16 = c["first16"];
    for (size_t i = 0; i < 16; ++i) EXPECT_NEAR(first[i], f16[i].get<double>(), tol) << c["id"];
    // Ingredients, drawn by fresh generators.
    const size_t noise_n = size_t(noise_shape[0]) * noise_shape[1] * noise_shape[2];
    for (size_t i = 0; i < v.seeds.size(); ++i) {
      const std::string k = std::to_string(i);
      EXPECT_EQ(
          max_abs(TorchCpuNoise(v.seeds[i]).randn(noise_n), group().f32(t["seed_noise_" + k])),
          0.0);
      if (v.uses_subseed()) {
        EXPECT_EQ(max_abs(TorchCpuNoise(v.subseeds[i]).randn(noise_n),
                          group().f32(t["subseed_noise_" + k])),
                  0.0);
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

TEST(VariationNoise, SlerpEndpointsAndDegenerateBranch) {
  const int C = 2, H = 3, W = 4;
  const std::vector<float> a = TorchCpuNoise(1).randn(C * H * W);
  const std::vector<float> b = TorchCpuNoise(2).randn(C * H * W);
  EXPECT_LE(max_abs(a1111_slerp(0.0f, a, b, C, H, W), a), 1e-6);
  EXPECT_LE(max_abs(a1111_slerp(1.0f, a, b, C, H, W), b), 1e-5);
  // Identical inputs: the linear branch with A1111's swapped weights, low·val + high·(1 − val).
  std::vector<float> twice(a.size());
  for (size_t i = 0; i < a.size(); ++i) twice[i] = 2 * a[i];
  const std::vector<float> got = a1111_slerp(0.25f, a, twice, C, H, W);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(got[i], a[i] * 0.25f + twice[i] * 0.75f);
}

TEST(VariationNoise, PlainSeedsEqualOneDrawPerImage) {
  VariationNoise rng(4, 8, 8, batch_variation_seeds(5, 0, 0.0, 0, 0, 0, 2), torch_cpu_generators());
  const std::vector<float> first = rng.first();
  for (int i = 0; i < 2; ++i) {
    const std::vector<float> ref = TorchCpuNoise(5 + i).randn(256);
    EXPECT_EQ(
        max_abs(std::vector<float>(first.begin() + i * 256, first.begin() + (i + 1) * 256), ref),
        0.0);
  }
}

TEST(VariationNoise, RefusesBadResizeSource) {
  try {
    VariationNoise rng(4, 8, 8, batch_variation_seeds(1, 0, 0.0, 4, 64, 0, 1),
                       torch_cpu_generators());
    FAIL() << "accepted a 4-pixel resize source";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--seed-resize-from"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sdc::sampling
