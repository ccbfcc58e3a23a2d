// ImageRng as the one noise path: variation seeds and ENSD in both sources (CPU torch, NV
// Philox), checked against the generators drawn directly.
#include <gtest/gtest.h>

#include <cmath>

#include "sampling/rng/image_rng.h"
#include "sampling/rng/philox.h"
#include "sampling/rng/torch_generator.h"

namespace sdc::sampling {
namespace {

constexpr int kC = 4, kH = 8, kW = 8;
constexpr size_t kPer = size_t(kC) * kH * kW;

std::vector<float> direct(RngSource source, uint64_t seed, size_t skip, size_t n) {
  std::vector<float> v(skip + n);
  if (source == RngSource::kNv) {
    PhiloxGenerator g(seed);
    if (skip) g.randn(v.data(), skip);
    g.randn(v.data() + skip, n);
  } else {
    TorchGenerator g(seed);
    if (skip) g.randn(v.data(), skip);
    g.randn(v.data() + skip, n);
  }
  return {v.begin() + long(skip), v.end()};
}

double max_diff(const float* a, const std::vector<float>& b) {
  double d = 0;
  for (size_t k = 0; k < b.size(); ++k) d = std::max(d, std::abs(double(a[k]) - double(b[k])));
  return d;
}

class ImageRngVariation : public ::testing::TestWithParam<RngSource> {};

// Strength 1 gives the subseed's noise; the sampler's later draws come from the image seed's
// generator shifted by ENSD (A1111 re-seeds with seed + ENSD after the first draw).
TEST_P(ImageRngVariation, SubseedNoiseAndEnsdUseTheChosenSource) {
  const RngSource source = GetParam();
  VariationSeeds v;
  v.seeds = {100, 100};
  v.subseeds = {7, 8};
  v.strength = 1.0;
  ImageRng rng(source, v, kC, kH, kW, 31337);
  const std::vector<float> first = rng.first();
  ASSERT_EQ(first.size(), 2 * kPer);
  EXPECT_LE(max_diff(first.data(), direct(source, 7, 0, kPer)), 1e-5);
  EXPECT_LE(max_diff(first.data() + kPer, direct(source, 8, 0, kPer)), 1e-5);
  std::vector<float> next(2 * kPer);
  rng.next(next);
  EXPECT_EQ(max_diff(next.data(), direct(source, 100 + 31337, 0, kPer)), 0.0);
}

// Strength 0 is exactly the plain per-seed stream, whatever the subseeds; without ENSD later
// draws continue the same generator.
TEST_P(ImageRngVariation, ZeroStrengthIsThePlainStream) {
  const RngSource source = GetParam();
  VariationSeeds v;
  v.seeds = {5};
  v.subseeds = {9};
  ImageRng rng(source, v, kC, kH, kW);
  const std::vector<float> first = rng.first();
  EXPECT_EQ(max_diff(first.data(), direct(source, 5, 0, kPer)), 0.0);
  std::vector<float> next(kPer);
  rng.next(next);
  EXPECT_EQ(max_diff(next.data(), direct(source, 5, kPer, kPer)), 0.0);
}

// A half-way variation differs from both ends (the slerp really mixes the two draws).
TEST_P(ImageRngVariation, HalfStrengthMixesSeedAndSubseed) {
  const RngSource source = GetParam();
  VariationSeeds v;
  v.seeds = {5};
  v.subseeds = {9};
  v.strength = 0.5;
  ImageRng rng(source, v, kC, kH, kW);
  const std::vector<float> first = rng.first();
  EXPECT_GT(max_diff(first.data(), direct(source, 5, 0, kPer)), 0.1);
  EXPECT_GT(max_diff(first.data(), direct(source, 9, 0, kPer)), 0.1);
}

INSTANTIATE_TEST_SUITE_P(Sources, ImageRngVariation,
                         ::testing::Values(RngSource::kCpu, RngSource::kNv));

}  // namespace
}  // namespace sdc::sampling
