// A1111's random sources layer by layer: Philox ("NV") against philox.safetensors, numpy's
// SeedSequence and the Brownian tree against the seeds and noise values recorded in cases.json.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"
#include "sampling/a1111_fixture.h"
#include "sampling/rng/brownian_tree.h"
#include "sampling/rng/philox.h"
#include "sampling/rng/seed_sequence.h"
#include "sampling/rng/torch_generator.h"

namespace sdc::sampling {
namespace {

size_t numel(const nlohmann::json& shape) {
  size_t n = 1;
  for (const auto& d : shape) n *= d.get<size_t>();
  return n;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

TEST(Philox, MatchesA1111NvGeneratorForEachSeedShapeAndOffset) {
  int checked = 0;
  for (const auto& e : test::sampler_cases()["philox"]["entries"]) {
    PhiloxGenerator g(e["seed"].get<uint64_t>());
    const size_t n = numel(e["shape"]);
    const std::vector<float> first = g.randn(n);
    const std::vector<float> second = g.randn(n);
    EXPECT_EQ(g.offset(), 2u);
    const std::vector<float> ref0 = test::philox_ref(e["offset0"].get<std::string>());
    const std::vector<float> ref1 = test::philox_ref(e["offset1"].get<std::string>());
    ASSERT_EQ(first.size(), ref0.size());
    EXPECT_EQ(max_abs_diff(first, ref0), 0.0) << e["offset0"];
    EXPECT_EQ(max_abs_diff(second, ref1), 0.0) << e["offset1"];
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

TEST(Philox, DocstringExample) {
  // rng_philox.py's own example: Generator(seed=0).randn((3, 4)), first row.
  PhiloxGenerator g(0);
  const std::vector<float> v = g.randn(12);
  const float expected[4] = {-0.92466259f, -0.42534415f, -2.6438457f, 0.14518388f};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(v[i], expected[i], 1e-6) << i;
}

// Every SDE case: the first Brownian-tree randn seed is the root's, and the set of seeds our
// tree draws equals the recorded set (torchsde's LRU cache re-draws some; values do not change).
TEST(BrownianTree, SeedsAndNoiseSamplerOutputsMatchEverySdeCase) {
  int checked = 0;
  for (const auto& [name, c] : test::sampler_cases()["cases"].items()) {
    if (!c.contains("brownian_tree") || c["brownian_tree"].is_null()) continue;
    const auto& bt = c["brownian_tree"];
    const uint64_t seed = bt["seeds"][0].get<uint64_t>();
    const std::vector<uint32_t> root = SeedSequence(seed, {}, 24).generate_state(3);
    EXPECT_EQ(root[0], bt["randn_calls"][0]["seed"].get<uint32_t>()) << name;

    const bool philox = c["rng"] == "philox";
    std::set<uint64_t> drawn;
    SeededRandn randn = [&](uint64_t s, std::span<float> out) {
      drawn.insert(s);
      if (philox)
        PhiloxGenerator(s).randn(out.data(), out.size());
      else
        TorchGenerator(s).randn(out.data(), out.size());
    };
    const size_t per_image = numel(c["latent_shape"]);
    BrownianNoiseSampler sampler(per_image, bt["sigma_min"].get<float>(),
                                 bt["sigma_max"].get<float>(), {seed}, randn);
    const std::vector<float> ref = test::sampler_ref(c["tensors"]["noise_sampler_outputs"]);
    size_t k = 0;
    double worst = 0;
    for (const auto& call : bt["noise_sampler_calls"]) {
      std::vector<float> out(per_image);
      sampler(call["sigma"].get<float>(), call["sigma_next"].get<float>(), out);
      const std::vector<float> want(ref.begin() + long(k * per_image),
                                    ref.begin() + long((k + 1) * per_image));
      worst = std::max(worst, max_abs_diff(out, want));
      ++k;
    }
    EXPECT_EQ(k * per_image, ref.size()) << name;
    EXPECT_EQ(worst, 0.0) << name;  // bit-identical
    std::set<uint64_t> recorded;
    for (const auto& r : bt["randn_calls"]) recorded.insert(r["seed"].get<uint64_t>());
    drawn.erase(root[0]);
    recorded.erase(root[0]);
    recorded.erase(root[1]);  // torchsde also draws the (unused) root space-time Levy area
    EXPECT_EQ(drawn, recorded) << name;
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

TEST(BrownianTree, IncrementsAddUpAndDoNotDependOnQueryOrder) {
  SeededRandn randn = [](uint64_t s, std::span<float> out) {
    TorchGenerator(s).randn(out.data(), out.size());
  };
  BrownianTree a(16, 0.03, 14.6, 7, randn), b(16, 0.03, 14.6, 7, randn);
  const std::vector<float> whole = a.increment(0.03, 14.6);
  const std::vector<float> lo = a.increment(0.03, 2.5), hi = a.increment(2.5, 14.6);
  const std::vector<float> hi_b = b.increment(2.5, 14.6), lo_b = b.increment(0.03, 2.5);
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_NEAR(lo[i] + hi[i], whole[i], 1e-5);
    EXPECT_EQ(lo[i], lo_b[i]);
    EXPECT_EQ(hi[i], hi_b[i]);
  }
  EXPECT_THROW(BrownianTree(4, 1.0, 1.0, 1, randn), Error);
}

}  // namespace
}  // namespace sdc::sampling
