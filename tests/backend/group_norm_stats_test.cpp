// Plan::set_group_norm_stats: Record stores each GroupNorm step's statistics in run order,
// Replay normalises with given ones (bit-identical to computing them when they are the plan's
// own), Compute is left untouched, and statistics that do not fit the plan are refused by name.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/plan.h"
#include "common/error.h"
#include "reference.h"

namespace sdc::test {
namespace {

using cpu::GroupNormStats;
using cpu::NormStats;
using cpu::Plan;

constexpr int64_t N = 2, H = 6, W = 5, C = 16;

// x -> GroupNorm(4 groups)+SiLU -> 3x3 conv -> GroupNorm(8 groups) -> y: two GroupNorm steps.
std::unique_ptr<Plan> two_norms() {
  graph::Graph g;
  const auto x = g.input("x", {N, H, W, C});
  auto h = g.group_norm(x, add_weight(g, "g1", random_vec(C, 2, 0.5f, 1.5f), {C}),
                        add_weight(g, "b1", random_vec(C, 3), {C}), 4, 1e-5f, true);
  h = g.conv2d(h, add_weight(g, "w", random_vec(C * C * 9, 4, -0.2f, 0.2f), {C, C, 3, 3}),
               add_weight(g, "cb", random_vec(C, 5), {C}), 1, 1);
  g.output("y", g.group_norm(h, add_weight(g, "g2", random_vec(C, 6, 0.5f, 1.5f), {C}),
                             add_weight(g, "b2", random_vec(C, 7), {C}), 8, 1e-6f, false));
  cpu::PlanOptions o;
  o.check = true;
  return Plan::compile(g, o);
}

Vec run(Plan& p, const Vec& x) {
  fill_input(p, "x", x);
  p.run();
  return Vec(p.output("y"), p.output("y") + N * H * W * C);
}

class GroupNormStatsModes : public testing::TestWithParam<bool> {
 protected:
  void SetUp() override { cpu::force_generic_kernels(GetParam()); }
  void TearDown() override { cpu::force_generic_kernels(false); }
};

TEST_P(GroupNormStatsModes, RecordThenReplayIsBitIdentical) {
  auto p = two_norms();
  ASSERT_EQ(p->group_norm_count(), 2u);
  const Vec x = random_vec(N * H * W * C, 1, -2.f, 3.f);
  const Vec computed = run(*p, x);
  std::vector<GroupNormStats> stats;
  p->set_group_norm_stats(NormStats::Record, &stats);
  EXPECT_EQ(run(*p, x), computed) << "recording does not change the result";
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].mean.size(), size_t(N * 4));
  EXPECT_EQ(stats[1].var.size(), size_t(N * 8));
  // The first norm's statistics are those of x itself (per image, groups of 4 channels).
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < 4; ++g) {
      double s = 0, ss = 0;
      for (int64_t q = 0; q < H * W; ++q)
        for (int64_t c = 4 * g; c < 4 * g + 4; ++c) s += x[size_t((n * H * W + q) * C + c)];
      const double mean = s / double(H * W * 4);
      for (int64_t q = 0; q < H * W; ++q)
        for (int64_t c = 4 * g; c < 4 * g + 4; ++c)
          ss += std::pow(x[size_t((n * H * W + q) * C + c)] - mean, 2);
      EXPECT_NEAR(stats[0].mean[size_t(n * 4 + g)], mean, 1e-6);  // f32 block sums
      EXPECT_NEAR(stats[0].var[size_t(n * 4 + g)], ss / double(H * W * 4), 1e-6);
    }
  // Replaying the plan's own statistics, even on another input, gives what computing gave.
  p->set_group_norm_stats(NormStats::Replay, &stats);
  EXPECT_EQ(run(*p, x), computed);
  const Vec other = random_vec(N * H * W * C, 8);
  const Vec replayed_other = run(*p, other);
  p->set_group_norm_stats(NormStats::Compute, nullptr);
  EXPECT_NE(run(*p, other), replayed_other) << "other input, its own statistics";
  EXPECT_EQ(run(*p, x), computed) << "back to computing";
}

TEST_P(GroupNormStatsModes, ReplayingOtherStatisticsChangesTheResult) {
  auto p = two_norms();
  const Vec x = random_vec(N * H * W * C, 1);
  std::vector<GroupNormStats> stats;
  p->set_group_norm_stats(NormStats::Record, &stats);
  const Vec computed = run(*p, x);
  for (size_t k = 0; k < stats.size(); ++k) {
    std::vector<GroupNormStats> changed = stats;
    changed[k].mean[1] += 0.25;
    p->set_group_norm_stats(NormStats::Replay, &changed);
    EXPECT_NE(run(*p, x), computed) << "mean of step " << k;
    changed = stats;
    changed[k].var[0] *= 2.0;
    p->set_group_norm_stats(NormStats::Replay, &changed);
    EXPECT_NE(run(*p, x), computed) << "variance of step " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, GroupNormStatsModes, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& i) {
                           return i.param ? "generic" : "native";
                         });

std::string refusal(Plan& p, NormStats mode, std::vector<GroupNormStats>* stats) {
  try {
    p.set_group_norm_stats(mode, stats);
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(GroupNormStats, StatisticsThatDoNotFitAreRefused) {
  auto p = two_norms();
  const Vec x = random_vec(N * H * W * C, 1);
  const Vec computed = run(*p, x);
  std::vector<GroupNormStats> stats;
  p->set_group_norm_stats(NormStats::Record, &stats);
  run(*p, x);

  std::vector<GroupNormStats> one = {stats[0]};
  std::string m = refusal(*p, NormStats::Replay, &one);
  EXPECT_NE(m.find("GroupNorm statistics to replay"), std::string::npos) << m;
  EXPECT_NE(m.find("2 entries (one per GroupNorm step)"), std::string::npos) << m;
  EXPECT_NE(m.find("found 1"), std::string::npos) << m;
  EXPECT_EQ(run(*p, x), computed) << "a refused call leaves the plan computing its own";

  std::vector<GroupNormStats> short_var = stats;
  short_var[1].var.pop_back();
  m = refusal(*p, NormStats::Replay, &short_var);
  EXPECT_NE(m.find("entry 1"), std::string::npos) << m;
  EXPECT_NE(m.find("16 means and variances"), std::string::npos) << m;
  EXPECT_NE(m.find("16 means, 15 variances"), std::string::npos) << m;

  for (NormStats mode : {NormStats::Record, NormStats::Replay}) {
    m = refusal(*p, mode, nullptr);
    EXPECT_NE(m.find("a vector to record into or replay from"), std::string::npos) << m;
  }
  EXPECT_EQ(refusal(*p, NormStats::Compute, nullptr), "(accepted)");

  // Changed after being accepted: run() checks again.
  std::vector<GroupNormStats> later = stats;
  p->set_group_norm_stats(NormStats::Replay, &later);
  later.pop_back();
  fill_input(*p, "x", x);
  try {
    p->run();
    ADD_FAILURE() << "run() replayed statistics of the wrong count";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 entries"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sdc::test
