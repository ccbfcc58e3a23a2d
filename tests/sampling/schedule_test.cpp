// Schedules against the fixture's pipeline cases (timesteps, sigmas, init_noise_sigma exactly as
// diffusers 0.28 computed them), sampler/schedule names, and the img2img start step.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "common/error.h"
#include "common/fixtures.h"
#include "sampling/noise_schedule.h"
#include "sampling/schedule.h"

namespace sdc::sampling {
namespace {

SamplerKind sampler_of_case(const nlohmann::json& c) {
  const std::string s = c["scheduler"].get<std::string>();
  if (s == "LCMScheduler") return SamplerKind::kLcm;
  if (s == "DDIMScheduler") return SamplerKind::kDdim;
  if (s == "EulerDiscreteScheduler") return SamplerKind::kEuler;
  if (s == "EulerAncestralDiscreteScheduler") return SamplerKind::kEulerA;
  if (s == "DPMSolverMultistepScheduler") return SamplerKind::kDpmpp2m;
  throw std::runtime_error("unknown scheduler " + s);
}

ScheduleKind schedule_of_case(const nlohmann::json& c) {
  const auto& cfg = c["scheduler_config"];
  return cfg.contains("use_karras_sigmas") && cfg["use_karras_sigmas"].get<bool>()
             ? ScheduleKind::kKarras
             : ScheduleKind::kDefault;
}

// The fixture's SD1.5 config is the one the schedules hard-code.
TEST(Schedule, FixtureConfigIsSd15) {
  for (const auto& c : test::cases()["cases"]) {
    if (c["kind"] != "pipeline") continue;
    const auto& cfg = c["scheduler_config"];
    EXPECT_EQ(cfg["num_train_timesteps"], 1000);
    EXPECT_DOUBLE_EQ(cfg["beta_start"].get<double>(), 0.00085);
    EXPECT_DOUBLE_EQ(cfg["beta_end"].get<double>(), 0.012);
    EXPECT_EQ(cfg["beta_schedule"], "scaled_linear");
    EXPECT_EQ(cfg["steps_offset"], 1);
    EXPECT_EQ(cfg["timestep_spacing"], "leading");
    EXPECT_EQ(cfg["prediction_type"], "epsilon");
    EXPECT_EQ(cfg["set_alpha_to_one"], false);
    if (cfg.contains("original_inference_steps")) {
      EXPECT_EQ(cfg["original_inference_steps"], kLcmOriginalSteps);
    }
    if (cfg.contains("timestep_scaling")) {
      EXPECT_DOUBLE_EQ(cfg["timestep_scaling"].get<double>(), kLcmTimestepScaling);
    }
    if (cfg.contains("final_sigmas_type")) {
      EXPECT_EQ(cfg["final_sigmas_type"], "zero");
      EXPECT_EQ(cfg["solver_order"], 2);
      EXPECT_EQ(cfg["algorithm_type"], "dpmsolver++");
      EXPECT_EQ(cfg["solver_type"], "midpoint");
      EXPECT_EQ(cfg["lower_order_final"], true);
    }
  }
}

TEST(Schedule, MatchesEveryPipelineCase) {
  int checked = 0;
  for (const auto& c : test::cases()["cases"]) {
    if (c["kind"] != "pipeline") continue;
    SCOPED_TRACE(c["id"].get<std::string>());
    const int steps = c["num_inference_steps"].get<int>();
    const Schedule s = make_schedule(sampler_of_case(c), schedule_of_case(c), steps);
    const auto full = c["scheduler_timesteps"].get<std::vector<double>>();
    ASSERT_EQ(s.timesteps.size(), full.size());
    for (size_t i = 0; i < full.size(); ++i) EXPECT_EQ(s.timesteps[i], full[i]) << i;
    // The timesteps actually run (img2img starts part-way).
    const auto run = c["timesteps"].get<std::vector<double>>();
    const int first = c.contains("strength")
                          ? img2img_first_step(s.sampler, steps, c["strength"].get<double>())
                          : 0;
    ASSERT_EQ(run.size(), size_t(steps - first));
    for (size_t i = 0; i < run.size(); ++i) EXPECT_EQ(s.timesteps[first + i], run[i]) << i;
    if (c.contains("sigmas")) {
      const auto sig = c["sigmas"].get<std::vector<double>>();
      ASSERT_EQ(s.sigmas.size(), sig.size());
      for (size_t i = 0; i < sig.size(); ++i) EXPECT_EQ(s.sigmas[i], float(sig[i])) << i;
    } else {
      EXPECT_TRUE(s.sigmas.empty());
    }
    EXPECT_EQ(s.init_noise_sigma, float(c["init_noise_sigma"].get<double>()));
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

std::string usage_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "no UsageError";
}

TEST(SamplerNames, ParseAndPrint) {
  for (const char* n : {"lcm", "ddim", "euler", "euler_a", "dpmpp_2m"})
    EXPECT_STREQ(sampler_name(parse_sampler(n)), n);
  EXPECT_EQ(parse_schedule("default"), ScheduleKind::kDefault);
  EXPECT_EQ(parse_schedule("automatic"), ScheduleKind::kDefault);
  EXPECT_EQ(parse_schedule("karras"), ScheduleKind::kKarras);
  EXPECT_STREQ(schedule_name(ScheduleKind::kKarras), "karras");
  EXPECT_EQ(usage_message([] { parse_sampler("Euler a"); }),
            "--sampler: expected one of lcm, ddim, euler, euler_a, dpmpp_2m, found Euler a");
  EXPECT_EQ(usage_message([] { parse_schedule("exponential"); }),
            "--scheduler: expected one of automatic, karras (with --compat diffusers), found "
            "exponential");
}

TEST(SamplerNames, A1111DisplayNames) {
  EXPECT_EQ(a1111_sampler_name(SamplerKind::kEulerA, ScheduleKind::kDefault), "Euler a");
  EXPECT_EQ(a1111_sampler_name(SamplerKind::kEuler, ScheduleKind::kDefault), "Euler");
  EXPECT_EQ(a1111_sampler_name(SamplerKind::kDpmpp2m, ScheduleKind::kKarras), "DPM++ 2M Karras");
  EXPECT_EQ(a1111_sampler_name(SamplerKind::kDpmpp2m, ScheduleKind::kDefault), "DPM++ 2M");
  EXPECT_EQ(a1111_sampler_name(SamplerKind::kLcm, ScheduleKind::kDefault), "LCM");
  EXPECT_EQ(a1111_sampler_name(SamplerKind::kDdim, ScheduleKind::kDefault), "DDIM");
}

TEST(Schedule, RejectsBadStepsAndKarrasForDdimLcm) {
  EXPECT_EQ(usage_message([] { make_schedule(SamplerKind::kDdim, ScheduleKind::kDefault, 0); }),
            "--steps: expected 1 to 999, found 0");
  EXPECT_EQ(usage_message([] { make_schedule(SamplerKind::kEuler, ScheduleKind::kKarras, 1000); }),
            "--steps: expected 1 to 999, found 1000");
  EXPECT_EQ(usage_message([] { make_schedule(SamplerKind::kLcm, ScheduleKind::kDefault, 51); }),
            "--steps: expected 1 to 50 for the lcm sampler (its original_inference_steps), "
            "found 51");
  EXPECT_EQ(usage_message([] { make_schedule(SamplerKind::kDdim, ScheduleKind::kKarras, 20); }),
            "--scheduler: expected default for the ddim sampler (karras applies to euler, "
            "euler_a, dpmpp_2m), found karras");
  EXPECT_EQ(usage_message([] { make_schedule(SamplerKind::kLcm, ScheduleKind::kKarras, 4); }),
            "--scheduler: expected default for the lcm sampler (karras applies to euler, "
            "euler_a, dpmpp_2m), found karras");
}

// Values worked out by hand from diffusers' formulas.
TEST(Schedule, LeadingSpacingOfEachSampler) {
  EXPECT_EQ(make_schedule(SamplerKind::kDdim, ScheduleKind::kDefault, 3).timesteps,
            (std::vector<float>{667, 334, 1}));
  // DPM-Solver divides by steps + 1: 1000 // 9 = 111.
  const Schedule dpm = make_schedule(SamplerKind::kDpmpp2m, ScheduleKind::kDefault, 8);
  EXPECT_EQ(dpm.timesteps, (std::vector<float>{889, 778, 667, 556, 445, 334, 223, 112}));
  ASSERT_EQ(dpm.sigmas.size(), 9u);
  EXPECT_EQ(dpm.sigmas[0], NoiseSchedule::sd15().sigma(889));
  EXPECT_EQ(dpm.sigmas[7], NoiseSchedule::sd15().sigma(112));
  EXPECT_EQ(dpm.sigmas[8], 0.0f);
  EXPECT_EQ(dpm.init_noise_sigma, 1.0f);
  // LCM: indices floor(i * 50 / 8) = 0 6 12 18 25 31 37 43 into 999, 979, ..., 19.
  EXPECT_EQ(make_schedule(SamplerKind::kLcm, ScheduleKind::kDefault, 8).timesteps,
            (std::vector<float>{999, 879, 759, 639, 499, 379, 259, 139}));
  EXPECT_EQ(make_schedule(SamplerKind::kLcm, ScheduleKind::kDefault, 1).timesteps,
            (std::vector<float>{999}));
  const Schedule euler = make_schedule(SamplerKind::kEuler, ScheduleKind::kDefault, 4);
  EXPECT_EQ(euler.timesteps, (std::vector<float>{751, 501, 251, 1}));
  const float s0 = NoiseSchedule::sd15().sigma(751);
  EXPECT_EQ(euler.init_noise_sigma, std::sqrt(s0 * s0 + 1.0f));
}

TEST(Schedule, EulerKarrasSpansTheLeadingSigmasWithFractionalTimesteps) {
  const NoiseSchedule& ns = NoiseSchedule::sd15();
  const Schedule s = make_schedule(SamplerKind::kEuler, ScheduleKind::kKarras, 10);
  ASSERT_EQ(s.sigmas.size(), 11u);
  EXPECT_FLOAT_EQ(s.sigmas[0], ns.sigma(901));
  EXPECT_FLOAT_EQ(s.sigmas[9], ns.sigma(1));
  EXPECT_EQ(s.sigmas[10], 0.0f);
  EXPECT_NEAR(s.timesteps[0], 901.0f, 1e-3);
  EXPECT_NEAR(s.timesteps[9], 1.0f, 1e-3);
  bool fractional = false;
  for (int i = 0; i < 10; ++i) {
    if (i > 0) {
      EXPECT_LT(s.sigmas[i], s.sigmas[i - 1]);
      EXPECT_LT(s.timesteps[i], s.timesteps[i - 1]);
    }
    // t lies between the training timesteps whose sigmas bracket sigma
    const int lo = int(std::floor(s.timesteps[i]));
    EXPECT_LE(ns.sigma(lo), s.sigmas[i] * (1 + 1e-6));
    EXPECT_GE(ns.sigma(std::min(lo + 1, 999)), s.sigmas[i] * (1 - 1e-6));
    fractional |= s.timesteps[i] != std::floor(s.timesteps[i]);
  }
  EXPECT_TRUE(fractional);
  // rho = 7: sigma^(1/7) is evenly spaced
  const double a = std::pow(double(s.sigmas[0]), 1 / 7.0),
               b = std::pow(double(s.sigmas[1]), 1 / 7.0),
               c = std::pow(double(s.sigmas[2]), 1 / 7.0);
  EXPECT_NEAR(a - b, b - c, 1e-6);
}

TEST(Schedule, SigmaToTInvertsTheTrainingSigmas) {
  const NoiseSchedule& ns = NoiseSchedule::sd15();
  for (int t : {0, 1, 250, 500, 998, 999})
    EXPECT_NEAR(ns.sigma_to_t(ns.sigma(t)), t, 1e-4) << t;  // log-sigmas are float32
  EXPECT_EQ(ns.sigma_to_t(1e-3), 0.0);                      // below sigma(0): clamped
  EXPECT_EQ(ns.sigma_to_t(100.0), 999.0);                   // above sigma(999): clamped
}

TEST(Img2ImgStart, DiffusersSemanticsForDdimAndLcm) {
  EXPECT_EQ(img2img_first_step(SamplerKind::kDdim, 10, 0.6), 4);  // the fixture's img2img case
  EXPECT_EQ(img2img_first_step(SamplerKind::kDdim, 10, 1.0), 0);
  EXPECT_EQ(img2img_first_step(SamplerKind::kDdim, 20, 0.45), 11);  // int(20 * 0.45) = 9
  EXPECT_EQ(img2img_first_step(SamplerKind::kLcm, 4, 0.5), 2);
  EXPECT_EQ(img2img_first_step(SamplerKind::kLcm, 4, 0.3), 3);  // int(1.2) = 1
  EXPECT_EQ(usage_message([] { img2img_first_step(SamplerKind::kDdim, 10, 0.05); }),
            "--strength: expected at least 1/10 with 10 ddim steps (no denoising step is left), "
            "found 0.05");
}

TEST(Img2ImgStart, A1111SemanticsForKSamplers) {
  // t_enc = int(min(strength, 0.999) * steps); first = steps - t_enc - 1
  EXPECT_EQ(img2img_first_step(SamplerKind::kEulerA, 20, 0.75), 4);
  EXPECT_EQ(img2img_first_step(SamplerKind::kEuler, 20, 1.0), 0);
  EXPECT_EQ(img2img_first_step(SamplerKind::kDpmpp2m, 20, 0.01), 19);
  EXPECT_EQ(img2img_first_step(SamplerKind::kDpmpp2m, 10, 0.6), 3);
}

TEST(Img2ImgStart, RejectsStrengthOutsideZeroOne) {
  for (double s : {0.0, -0.5, 1.5, std::nan("")})
    EXPECT_EQ(usage_message([s] {
                img2img_first_step(SamplerKind::kEuler, 10, s);
              }).rfind("--strength: expected a value in (0, 1], found ", 0),
              0u)
        << s;
}

}  // namespace
}  // namespace sdc::sampling
