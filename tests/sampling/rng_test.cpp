// TorchGenerator against PyTorch's own draws: the fixture's rng case and every randn of every
// pipeline case (drawn in order from one generator seeded with the case's seed).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <set>

#include "common/error.h"
#include "common/fixtures.h"
#include "sampling/rng/torch_generator.h"

namespace sdc::sampling {
namespace {

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

constexpr double kRandnTol = 1e-6;  // tolerances.json "rng": max_abs

size_t count_different(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) n += a[i] != b[i];
  return n;
}

TEST(TorchGenerator, MatchesTorchRandnSeed42) {
  const auto& c = test::find_case("rng/torch_cpu_randn_seed42");
  TorchGenerator g(42);
  const std::vector<float> got = g.randn(std::vector<int64_t>{1, 4, 8, 8});
  const std::vector<float> ref = test::ref_f32(c["tensors"]["output"].get<std::string>());
  ASSERT_EQ(got.size(), 256u);
  EXPECT_LE(max_abs_diff(got, ref), kRandnTol);
  // The float transform follows PyTorch's AVX2 kernel operation for operation: bit-identical.
  EXPECT_EQ(count_different(got, ref), 0u);
  const auto& first16 = c["first16"];
  ASSERT_EQ(first16.size(), 16u);
  for (size_t i = 0; i < 16; ++i) EXPECT_NEAR(got[i], first16[i].get<double>(), kRandnTol) << i;
}

TEST(TorchGenerator, MatchesEveryPipelineDraw) {
  int cases = 0, draws = 0;
  for (const auto& c : test::cases()["cases"]) {
    if (c["kind"] != "pipeline") continue;
    ++cases;
    TorchGenerator g(c["seed"].get<uint64_t>());
    for (const auto& d : c["randn_draws"]) {
      const auto shape = d["shape"].get<std::vector<int64_t>>();
      const std::vector<float> got = g.randn(shape);
      const std::vector<float> ref = test::ref_f32(d["tensor"].get<std::string>());
      EXPECT_LE(max_abs_diff(got, ref), kRandnTol) << d["tensor"];
      EXPECT_EQ(count_different(got, ref), 0u) << d["tensor"];
      ++draws;
    }
  }
  EXPECT_EQ(cases, 6);
  EXPECT_GE(draws, 18);
}

TEST(TorchGenerator, EngineIsMt19937OfTheLow32SeedBits) {
  TorchGenerator g(42);
  EXPECT_EQ(g.random(), 1608637542u);  // MT19937 seeded with 42: first output
  TorchGenerator a(5), b((uint64_t(7) << 32) | 5);
  EXPECT_EQ(a.random(), b.random());
  EXPECT_EQ(b.initial_seed(), (uint64_t(7) << 32) | 5);
  // random64: first output in the high word.
  TorchGenerator c(9), d(9);
  const uint64_t hi = c.random(), lo = c.random();
  EXPECT_EQ(d.random64(), (hi << 32) | lo);
}

// A tensor whose size is not a multiple of 16: its last 16 values are redrawn and transformed as
// one block, i.e. they equal a 16-value randn taken after the first n uniforms.
TEST(TorchGenerator, TailOfNonMultipleOf16IsRedrawnAsOneBlock) {
  TorchGenerator g(1234);
  const std::vector<float> v = g.randn(std::vector<int64_t>{20});
  TorchGenerator head(1234);
  const std::vector<float> first = head.randn(16);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(v[i], first[i]) << i;
  TorchGenerator tail(1234);
  for (int i = 0; i < 20; ++i) tail.random();  // the 20 uniforms of the first pass
  const std::vector<float> last = tail.randn(16);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(v[4 + i], last[i]) << i;
  // and both generators have consumed the same 36 outputs
  EXPECT_EQ(g.random(), tail.random());
}

// Fewer than 16 values: double Box-Muller from two 53-bit uniforms, the sine half cached.
TEST(TorchGenerator, SmallTensorsUseTheScalarPathWithCachedNormal) {
  TorchGenerator g(77);
  const std::vector<float> v = g.randn(3);
  TorchGenerator raw(77);
  std::vector<double> expect;
  for (int pair = 0; pair < 2; ++pair) {
    const double u1 = double(raw.random64() & ((uint64_t(1) << 53) - 1)) / 9007199254740992.0;
    const double u2 = double(raw.random64() & ((uint64_t(1) << 53) - 1)) / 9007199254740992.0;
    const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
    expect.push_back(r * std::cos(2.0 * std::numbers::pi * u1));
    expect.push_back(r * std::sin(2.0 * std::numbers::pi * u1));
  }
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(v[i], expect[i], 1e-6) << i;
  // The 4th normal is still cached: the next scalar draw returns it without using the engine.
  const std::vector<float> w = g.randn(1);
  EXPECT_NEAR(w[0], expect[3], 1e-6);
  EXPECT_EQ(g.random(), raw.random());
  // manual_seed drops the cache.
  g.manual_seed(77);
  EXPECT_EQ(g.randn(1)[0], v[0]);
}

TEST(TorchGenerator, RejectsNegativeDimensions) {
  TorchGenerator g(1);
  try {
    g.randn(std::vector<int64_t>{1, -4});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "randn shape: expected dimensions >= 0, found -4");
  }
}

TEST(TorchGenerator, RandomSeedIsBelow2To32) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 4; ++i) {
    const uint64_t s = random_seed();
    EXPECT_LT(s, uint64_t(1) << 32);
    seen.insert(s);
  }
  EXPECT_GT(seen.size(), 1u);  // 4 draws of 32 random bits all equal: p = 2^-96
}

}  // namespace
}  // namespace sdc::sampling
