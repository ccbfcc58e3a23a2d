// The A1111 run set-up against every recorded case (schedule actually walked, number of UNet
// evaluations, infotext schedule label), the LCM schedule, and the name table.
#include <gtest/gtest.h>

#include "common/error.h"
#include "sampling/a1111_fixture.h"
#include "sampling/a1111_sampler.h"
#include "sampling/model_wrappers.h"
#include "sampling/rng/image_rng.h"
#include "sampling/sampler_catalog.h"

namespace sdc::sampling {
namespace {

A1111Settings settings_of(const nlohmann::json& c) {
  A1111Settings s;
  s.sampler = resolve_sampler(c["sampler_id"].get<std::string>()).sampler->id;
  s.scheduler = resolve_scheduler(c["scheduler_id"].get<std::string>());
  s.steps = c["steps"].get<int>();
  s.cfg_scale = c["cfg"].get<double>();
  if (c["mode"] == "img2img") {
    s.img2img = true;
    s.strength = c["denoising_strength"].get<double>();
  }
  return s;
}

TEST(A1111Sampler, EveryCaseWalksTheRecordedScheduleWithTheRecordedEvaluations) {
  int checked = 0;
  for (const auto& [name, c] : test::sampler_cases()["cases"].items()) {
    SCOPED_TRACE(name);
    const A1111Sampler run(settings_of(c));
    if (c.contains("sigmas")) {
      std::vector<float> want;
      for (const auto& v : c["sigmas"]) want.push_back(v.get<float>());
      EXPECT_EQ(run.sigmas(), want);
    } else {
      EXPECT_EQ(run.timesteps(), c["timesteps"].get<std::vector<int>>());
    }
    if (c["sampler_id"] != "dpm_adaptive") {
      EXPECT_EQ(run.planned_evaluations(), c["n_unet_calls"].get<int>());
    }
    const std::string info = c["infotext"].get<std::string>();
    EXPECT_NE(info.find("Schedule type: " + run.schedule_type_label() + ","), std::string::npos);
    for (const auto& [k, v] : run.extra_infotext())
      EXPECT_NE(info.find(k + ": " + v), std::string::npos) << k;
    ++checked;
  }
  EXPECT_EQ(checked, 39);
}

TEST(A1111Sampler, LcmSigmasMatchA1111) {
  for (const auto& [steps, values] :
       test::sampler_schedules()["samplers"]["LCM"]["sigmas"].items()) {
    std::vector<float> want;
    for (const auto& v : values) want.push_back(v.get<float>());
    EXPECT_EQ(LcmDenoiser::sigmas(std::stoi(steps)), want) << steps;
  }
  EXPECT_EQ(LcmDenoiser::sigma_to_t(14.6f), 999);
  EXPECT_EQ(LcmDenoiser::sigma_to_t(0.03f), 19);
}

TEST(A1111Sampler, RefusesBadSettings) {
  A1111Settings s;
  s.sampler = SamplerId::kDdim;
  s.scheduler = SchedulerKind::kKarras;
  EXPECT_THROW(A1111Sampler{s}, UsageError);  // DDIM has its own timesteps
  s = {};
  s.steps = 0;
  EXPECT_THROW(A1111Sampler{s}, UsageError);
  s = {};
  s.img2img = true;
  s.strength = 1.5;
  EXPECT_THROW(A1111Sampler{s}, UsageError);
  s = {};
  s.eta = -1.0;
  EXPECT_THROW(A1111Sampler{s}, UsageError);
  s = {};
  s.sampler = SamplerId::kDdim;
  s.img2img = true;
  s.steps = 10;
  s.strength = 0.15;  // int(1.5) = 1 timestep: no step left
  EXPECT_THROW(A1111Sampler{s}, UsageError);
}

TEST(SamplerCatalog, AllTwentySamplersAndTwelveSchedulersResolveByEveryName) {
  EXPECT_EQ(all_samplers().size(), 20u);
  EXPECT_EQ(all_schedulers().size(), 12u);
  for (const SamplerInfo& s : all_samplers()) {
    EXPECT_EQ(resolve_sampler(s.name).sampler, &s);
    EXPECT_EQ(resolve_sampler(s.id_name).sampler, &s);
    for (const std::string& a : s.aliases) EXPECT_EQ(resolve_sampler(a).sampler, &s) << a;
  }
  EXPECT_EQ(resolve_sampler("dpm++ 2m sde").sampler->id, SamplerId::kDpmpp2mSde);
  EXPECT_EQ(resolve_sampler("K_EULER_A").sampler->id, SamplerId::kEulerA);
  // A1111's older combined names carry the scheduler.
  const ResolvedSampler r = resolve_sampler("DPM++ 2M Karras");
  EXPECT_EQ(r.sampler->id, SamplerId::kDpmpp2m);
  EXPECT_EQ(r.scheduler, SchedulerKind::kKarras);
  EXPECT_EQ(resolve_sampler("DPM++ 2M SDE Heun").sampler->id, SamplerId::kDpmpp2mSdeHeun);
  EXPECT_FALSE(resolve_sampler("DPM++ 2M SDE Heun").scheduler.has_value());
  EXPECT_EQ(resolve_sampler("Euler SGMUniform").scheduler, SchedulerKind::kSgmUniform);
  EXPECT_EQ(resolve_scheduler("karras"), SchedulerKind::kKarras);
  EXPECT_EQ(resolve_scheduler("Align Your Steps"), SchedulerKind::kAlignYourSteps);
  EXPECT_EQ(resolve_scheduler("sgmuniform"), SchedulerKind::kSgmUniform);
  EXPECT_EQ(resolve_scheduler("AUTOMATIC"), SchedulerKind::kAutomatic);
}

TEST(SamplerCatalog, UnknownNamesListWhatExists) {
  try {
    resolve_sampler("Euler b");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(e.key(), "--sampler");
    EXPECT_EQ(e.found(), "Euler b");
    EXPECT_NE(std::string(e.what()).find("\"DPM++ 2M SDE\" (dpmpp_2m_sde)"), std::string::npos);
  }
  try {
    resolve_scheduler("karas");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(e.key(), "--scheduler");
    EXPECT_NE(std::string(e.what()).find("\"KL Optimal\" (kl_optimal)"), std::string::npos);
  }
}

TEST(SamplerCatalog, ApiOptionsAsA1111ReportsThem) {
  const auto o = sampler_api_options(sampler_info(SamplerId::kDpm2A));
  const std::vector<std::pair<std::string, std::string>> want = {
      {"scheduler", "karras"},
      {"discard_next_to_last_sigma", "True"},
      {"uses_ensd", "True"},
      {"second_order", "True"}};
  EXPECT_EQ(o, want);
  EXPECT_TRUE(sampler_api_options(sampler_info(SamplerId::kEuler)).empty());
}

}  // namespace
}  // namespace sdc::sampling

namespace sdc::sampling {
namespace {

TEST(ImageRngTest, DrawsPerSeedAndReseedsWithEnsd) {
  const size_t n = 4 * 8 * 8;
  ImageRng cpu(RngSource::kCpu, {5, 6}, n);
  const std::vector<float> first = cpu.first();
  std::vector<float> next(2 * n);
  cpu.next(next);
  TorchGenerator g5(5), g6(6);
  const std::vector<float> a5 = g5.randn(n), a6 = g6.randn(n), b5 = g5.randn(n);
  EXPECT_TRUE(std::equal(a5.begin(), a5.end(), first.begin()));
  EXPECT_TRUE(std::equal(a6.begin(), a6.end(), first.begin() + long(n)));
  EXPECT_TRUE(std::equal(b5.begin(), b5.end(), next.begin()));

  ImageRng ensd(RngSource::kCpu, {5}, n, 31337);
  ensd.first();
  std::vector<float> after(n);
  ensd.next(after);
  EXPECT_EQ(after, TorchGenerator(5 + 31337).randn(n));

  ImageRng nv(RngSource::kNv, {42}, n);
  EXPECT_EQ(nv.first(), PhiloxGenerator(42).randn(n));
  EXPECT_EQ(parse_rng_source("NV"), RngSource::kNv);
  EXPECT_EQ(parse_rng_source("cpu"), RngSource::kCpu);
  EXPECT_THROW(parse_rng_source("gpu"), UsageError);
}

TEST(A1111Sampler, InfotextFieldsForNonDefaultOptions) {
  A1111Settings s;
  s.eta = 0.5;
  EXPECT_EQ(A1111Sampler(s).extra_infotext(),
            (std::vector<std::pair<std::string, std::string>>{{"Eta", "0.5"}}));
  s = {};
  s.sampler = SamplerId::kDdim;
  s.eta = 0.25;
  EXPECT_EQ(A1111Sampler(s).extra_infotext(),
            (std::vector<std::pair<std::string, std::string>>{{"Eta DDIM", "0.25"}}));
  s = {};
  s.sampler = SamplerId::kEuler;
  s.scheduler = SchedulerKind::kKarras;
  s.s_churn = 1.0;
  s.schedule.rho = 5.0;
  s.schedule.sigma_min = 0.1;
  const auto f = A1111Sampler(s).extra_infotext();
  const std::vector<std::pair<std::string, std::string>> want = {
      {"Schedule min sigma", "0.1"}, {"Schedule rho", "5.0"}, {"Sigma churn", "1.0"}};
  EXPECT_EQ(f, want);
  EXPECT_EQ(A1111Sampler(s).schedule_type_label(), "Karras");
}

// Churn adds noise from the draw Euler always consumes: it changes the result, deterministically.
TEST(A1111Sampler, ChurnUsesTheConsumedDraw) {
  auto run = [](double churn) {
    A1111Settings s;
    s.sampler = SamplerId::kEuler;
    s.steps = 4;
    s.s_churn = churn;
    const A1111Sampler sampler(s);
    ImageRng rng(RngSource::kCpu, {3}, 16);
    UnetEps unet = [](std::span<const float> x, float, std::span<float> c, std::span<float> u) {
      for (size_t k = 0; k < x.size(); ++k) c[k] = u[k] = 0.5f * x[k];
    };
    return sampler.run(sampler.start(rng.first()), unet, rng);
  };
  EXPECT_EQ(run(0.0), run(0.0));
  EXPECT_NE(run(0.0), run(2.0));
}

}  // namespace
}  // namespace sdc::sampling
