// Every k-diffusion sampler case of the A1111 references replayed without the UNet: recorded
// denoiser outputs and RNG draws in, the sampler's arithmetic checked call by call (inputs and
// sigmas) and on the final latents.
#include <gtest/gtest.h>

#include <map>

#include "sampling/a1111_fixture.h"
#include "sampling/a1111_replay.h"
#include "sampling/compvis_schedule.h"
#include "sampling/k_samplers.h"
#include "sampling/rng/brownian_tree.h"
#include "sampling/rng/philox.h"
#include "sampling/rng/torch_generator.h"

namespace sdc::sampling {
namespace {

const std::map<std::string, KSampler>& k_samplers() {
  static const std::map<std::string, KSampler> m = {
      {"euler", KSampler::kEuler},
      {"euler_a", KSampler::kEulerAncestral},
      {"lms", KSampler::kLms},
      {"heun", KSampler::kHeun},
      {"dpm2", KSampler::kDpm2},
      {"dpm2_a", KSampler::kDpm2Ancestral},
      {"dpmpp_2s_a", KSampler::kDpmpp2sAncestral},
      {"dpmpp_2m", KSampler::kDpmpp2m},
      {"dpmpp_sde", KSampler::kDpmppSde},
      {"dpmpp_2m_sde", KSampler::kDpmpp2mSde},
      {"dpmpp_2m_sde_heun", KSampler::kDpmpp2mSdeHeun},
      {"dpmpp_3m_sde", KSampler::kDpmpp3mSde},
      {"dpm_fast", KSampler::kDpmFast},
      {"dpm_adaptive", KSampler::kDpmAdaptive},
      {"restart", KSampler::kRestart},
      {"lcm", KSampler::kLcm},
  };
  return m;
}

struct Outcome {
  double latents_rel = 0, worst_input = 0;
  int calls = 0, expected_calls = 0, draws = 0, expected_draws = 0, sigma_mismatches = 0;
};

Outcome replay_case(const std::string& name) {
  test::Replay r(name);
  const auto& info = r.info();
  const KSampler sampler = k_samplers().at(info["sampler_id"].get<std::string>());
  const std::vector<float> sigmas = r.tensor("sigmas");
  const std::vector<float> noise = r.tensor("initial_noise");
  std::vector<float> x(noise.size());
  if (info["mode"] == "txt2img") {
    for (size_t i = 0; i < x.size(); ++i) x[i] = noise[i] * sigmas[0];
  } else {
    const std::vector<float> init = r.tensor("init_latent");
    for (size_t i = 0; i < x.size(); ++i) x[i] = init[i] + noise[i] * sigmas[0];
  }
  KSamplerContext ctx;
  ctx.denoise = [&](std::span<const float> in, float sigma, std::span<float> out) {
    r.call(in, sigma, out);
  };
  ctx.randn = [&](std::span<float> out) { r.draw(out); };
  std::unique_ptr<BrownianNoiseSampler> bns;
  if (info.contains("brownian_tree") && !info["brownian_tree"].is_null()) {
    const auto& bt = info["brownian_tree"];
    const bool philox = info["rng"] == "philox";
    SeededRandn randn = [philox](uint64_t s, std::span<float> out) {
      if (philox)
        PhiloxGenerator(s).randn(out.data(), out.size());
      else
        TorchGenerator(s).randn(out.data(), out.size());
    };
    bns = std::make_unique<BrownianNoiseSampler>(r.per_image(), bt["sigma_min"].get<float>(),
                                                 bt["sigma_max"].get<float>(),
                                                 std::vector<uint64_t>{bt["seeds"][0]}, randn);
    ctx.brownian = [&](float s, float sn, std::span<float> out) { (*bns)(s, sn, out); };
  }
  const CompVisSchedule& m = CompVisSchedule::sd15();
  const std::vector<float> out =
      run_k_sampler(sampler, x, sigmas, ctx, KSamplerOptions{}, m.sigma_min(), m.sigma_max());
  Outcome o;
  o.latents_rel = test::rel_diff(out, r.tensor("latents"));
  o.worst_input = r.worst_input_error();
  o.calls = r.calls();
  o.expected_calls = r.expected_calls();
  o.draws = r.draws();
  o.expected_draws = r.expected_draws();
  o.sigma_mismatches = r.sigma_mismatches();
  return o;
}

TEST(KSamplerReplay, EveryKDiffusionCaseFollowsA1111CallByCall) {
  int checked = 0;
  for (const auto& [name, c] : test::sampler_cases()["cases"].items()) {
    if (!k_samplers().count(c["sampler_id"].get<std::string>())) continue;
    SCOPED_TRACE(name);
    const Outcome o = replay_case(name);
    EXPECT_EQ(o.calls, o.expected_calls);
    EXPECT_EQ(o.draws, o.expected_draws);
    EXPECT_EQ(o.sigma_mismatches, 0);
    // The recorded outputs leave the sampler's own arithmetic as the only difference: it is
    // bit-identical to A1111's, except DPM adaptive's error norm (PyTorch's reduction order).
    const double tol = c["sampler_id"] == "dpm_adaptive" ? 1e-6 : 0.0;
    EXPECT_LE(o.worst_input, tol);
    EXPECT_LE(o.latents_rel, tol);
    ++checked;
  }
  EXPECT_EQ(checked, 34);
}

TEST(KSamplerReplay, LinearMultistepCoefficientsIntegrateLagrangeBasis) {
  // Order 1: the interval length; order 2 on t = (3, 2, 1): basis of t[i] over [2, 1].
  const std::vector<float> t = {3.0f, 2.0f, 1.0f, 0.0f};
  EXPECT_DOUBLE_EQ(linear_multistep_coeff(1, t, 0, 0), -1.0);
  // l_0(tau) = (tau - 3) / (2 - 3) over [2, 1]: integral = -[(tau-3)^2/2]... = -1.5
  EXPECT_NEAR(linear_multistep_coeff(2, t, 1, 0), -1.5, 1e-15);
  EXPECT_NEAR(linear_multistep_coeff(2, t, 1, 1), 0.5, 1e-15);
  // The coefficients of one step sum to the step (the basis sums to 1).
  double sum = 0;
  for (int j = 0; j < 3; ++j) sum += linear_multistep_coeff(3, t, 2, j);
  EXPECT_NEAR(sum, -1.0, 1e-15);
}

}  // namespace
}  // namespace sdc::sampling
