// A1111's model sigmas and every scheduler x steps of schedules.json, bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "common/error.h"
#include "sampling/a1111_fixture.h"
#include "sampling/beta_distribution.h"
#include "sampling/compvis_schedule.h"
#include "sampling/schedulers.h"

namespace sdc::sampling {
namespace {

// Bitwise equality of float32 values, reporting the first difference.
void expect_same_floats(const std::vector<float>& got, const nlohmann::json& want,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const float w = static_cast<float>(want[i].get<double>());
    EXPECT_EQ(got[i], w) << what << " [" << i << "]: " << got[i] << " vs " << w;
  }
}

SchedulerKind kind_of(const std::string& name) {
  for (const SchedulerInfo& s : all_schedulers())
    if (name == s.name) return s.kind;
  throw std::runtime_error("unknown scheduler " + name);
}

TEST(CompVisSchedule, ModelSigmasMatchA1111) {
  const auto& model = test::sampler_schedules()["model"];
  const CompVisSchedule& s = CompVisSchedule::sd15();
  expect_same_floats(s.sigmas(), model["sigmas_1000"], "sigmas_1000");
  EXPECT_EQ(s.sigma_min(), static_cast<float>(model["sigma_min"].get<double>()));
  EXPECT_EQ(s.sigma_max(), static_cast<float>(model["sigma_max"].get<double>()));
}

TEST(CompVisSchedule, SigmaToTRoundTripsTrainingSigmas) {
  const CompVisSchedule& s = CompVisSchedule::sd15();
  for (int t : {0, 1, 250, 500, 998, 999}) {
    EXPECT_NEAR(s.sigma_to_t(s.sigmas()[t]), static_cast<float>(t), 1e-3) << t;
    EXPECT_EQ(s.sigma_to_t_quantized(s.sigmas()[t]), t);
  }
  // Below sigma_min and above sigma_max the timestep is clamped to 0 and 999.
  EXPECT_EQ(s.sigma_to_t(0.001f), 0.0f);
  EXPECT_EQ(s.sigma_to_t(100.0f), 999.0f);
}

TEST(Schedulers, EverySchedulerAndStepCountMatchesA1111) {
  const auto& all = test::sampler_schedules()["schedulers"];
  int checked = 0;
  for (const auto& [name, entry] : all.items()) {
    const SchedulerKind kind = kind_of(name);
    EXPECT_EQ(entry["label"].get<std::string>(), scheduler_info(kind).label);
    for (const auto& [steps, values] : entry["steps"].items()) {
      const int n = std::stoi(steps);
      expect_same_floats(scheduler_sigmas(kind, n, {}), values["sigmas"], name + " " + steps);
      expect_same_floats(scheduler_sigmas(kind, n, {}, true), values["sigmas_discard_penultimate"],
                         name + " " + steps + " discard");
      ++checked;
    }
  }
  EXPECT_EQ(checked, 11 * 3);
}

TEST(Schedulers, OverridesAndBadOptions) {
  ScheduleOptions o;
  o.sigma_min = 0.1;
  o.sigma_max = 10.0;
  const std::vector<float> k = scheduler_sigmas(SchedulerKind::kKarras, 5, o);
  ASSERT_EQ(k.size(), 6u);
  EXPECT_FLOAT_EQ(k.front(), 10.0f);
  EXPECT_FLOAT_EQ(k[4], 0.1f);
  EXPECT_EQ(k.back(), 0.0f);
  o.rho = 3.0;  // changes the inner points only
  const std::vector<float> k3 = scheduler_sigmas(SchedulerKind::kKarras, 5, o);
  EXPECT_FLOAT_EQ(k3.front(), 10.0f);
  EXPECT_NE(k3[2], k[2]);

  ScheduleOptions bad;
  bad.sigma_min = 20.0;  // above the model's sigma_max
  try {
    scheduler_sigmas(SchedulerKind::kKarras, 5, bad);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_EQ(e.key(), "--sigma-min");
  }
  EXPECT_THROW(scheduler_sigmas(SchedulerKind::kUniform, 0, {}), UsageError);
  EXPECT_THROW(scheduler_sigmas(SchedulerKind::kAutomatic, 5, {}), Error);
}

TEST(BetaDistribution, QuantilesInvertTheDistribution) {
  // Symmetric: I_0.5(a, a) = 1/2; Beta(1, 1) is uniform.
  EXPECT_NEAR(regularized_incomplete_beta(0.5, 0.6, 0.6), 0.5, 1e-15);
  EXPECT_NEAR(beta_ppf(0.3, 1.0, 1.0), 0.3, 1e-15);
  for (double p : {1e-6, 0.01, 0.25, 0.5, 0.9, 0.999999})
    EXPECT_NEAR(regularized_incomplete_beta(beta_ppf(p, 0.6, 0.6), 0.6, 0.6), p, 1e-12) << p;
  EXPECT_EQ(beta_ppf(0.0, 0.6, 0.6), 0.0);
  EXPECT_EQ(beta_ppf(1.0, 0.6, 0.6), 1.0);
}

}  // namespace
}  // namespace sdc::sampling
