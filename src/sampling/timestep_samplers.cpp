// DDIM, DDIM CFG++ and PLMS as A1111 runs them; see timestep_samplers.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/timestep_samplers.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "sampling/compvis_schedule.h"

namespace sdc::sampling {
namespace {

using Vec = std::vector<float>;

struct StepCoefficients {
  float a_t, a_prev, sigma_t, sqrt_one_minus_at;
};

// alphas = ac[timesteps]; alphas_prev = ac[[0] + timesteps[:-1]] (through float64: the same
// values); sigmas in numpy float64 from those.
StepCoefficients coefficients(const std::vector<int>& ts, size_t index, double eta) {
  const CompVisSchedule& m = CompVisSchedule::sd15();
  StepCoefficients c;
  c.a_t = m.alphas_cumprod(ts[index]);
  c.a_prev = m.alphas_cumprod(index == 0 ? 0 : ts[index - 1]);
  const double ap = c.a_prev, at = c.a_t;
  c.sigma_t = static_cast<float>(eta * std::sqrt((1.0 - ap) / (1.0 - at) * (1.0 - at / ap)));
  c.sqrt_one_minus_at = std::sqrt(1.0f - c.a_t);
  return c;
}

Vec pred_x0(const Vec& x, const Vec& e, const StepCoefficients& c) {
  const float sqrt_at = std::sqrt(c.a_t);
  Vec out(x.size());
  for (size_t k = 0; k < x.size(); ++k) out[k] = (x[k] - c.sqrt_one_minus_at * e[k]) / sqrt_at;
  return out;
}

Vec run_ddim(Vec x, const std::vector<int>& ts, const TimestepSamplerContext& ctx, double eta,
             bool cfgpp) {
  Vec e(x.size()), e_uncond(cfgpp ? x.size() : 0), noise(x.size());
  for (size_t i = 0; i + 1 < ts.size(); ++i) {
    const size_t index = ts.size() - 1 - i;
    ctx.eps(x, static_cast<float>(ts[index]), e, e_uncond);
    const StepCoefficients c = coefficients(ts, index, eta);
    const Vec x0 = pred_x0(x, e, c);
    const float c_dir = std::sqrt(1.0f - c.a_prev - c.sigma_t * c.sigma_t);
    const Vec& direction = cfgpp ? e_uncond : e;
    ctx.randn(noise);
    const float sqrt_prev = std::sqrt(c.a_prev);
    for (size_t k = 0; k < x.size(); ++k)
      x[k] = sqrt_prev * x0[k] + c_dir * direction[k] + c.sigma_t * noise[k];
    if (ctx.on_step) ctx.on_step(int(i), x0);
  }
  return x;
}

Vec run_plms(Vec x, const std::vector<int>& ts, const TimestepSamplerContext& ctx) {
  std::vector<Vec> old_eps;
  auto x_prev_and_x0 = [&](const Vec& e, size_t index, Vec* x0_out) {
    const StepCoefficients c = coefficients(ts, index, 0.0);
    const Vec x0 = pred_x0(x, e, c);
    const float c_dir = std::sqrt(1.0f - c.a_prev), sqrt_prev = std::sqrt(c.a_prev);
    Vec out(x.size());
    for (size_t k = 0; k < x.size(); ++k) out[k] = sqrt_prev * x0[k] + c_dir * e[k];
    if (x0_out) *x0_out = x0;
    return out;
  };
  for (size_t i = 0; i + 1 < ts.size(); ++i) {
    const size_t index = ts.size() - 1 - i;
    const float t = static_cast<float>(ts[index]);
    const float t_next = static_cast<float>(ts[index == 0 ? 0 : index - 1]);
    Vec e(x.size());
    ctx.eps(x, t, e, {});
    Vec e_prime(x.size());
    if (old_eps.empty()) {
      const Vec x_prev = x_prev_and_x0(e, index, nullptr);
      Vec e_next(x.size());
      ctx.eps(x_prev, t_next, e_next, {});
      for (size_t k = 0; k < x.size(); ++k) e_prime[k] = (e[k] + e_next[k]) / 2.0f;
    } else if (old_eps.size() == 1) {
      const Vec& o1 = old_eps.back();
      for (size_t k = 0; k < x.size(); ++k) e_prime[k] = (3.0f * e[k] - o1[k]) / 2.0f;
    } else if (old_eps.size() == 2) {
      const Vec &o1 = old_eps[1], &o2 = old_eps[0];
      for (size_t k = 0; k < x.size(); ++k)
        e_prime[k] = (23.0f * e[k] - 16.0f * o1[k] + 5.0f * o2[k]) / 12.0f;
    } else {
      const Vec &o1 = old_eps[2], &o2 = old_eps[1], &o3 = old_eps[0];
      for (size_t k = 0; k < x.size(); ++k)
        e_prime[k] = (55.0f * e[k] - 59.0f * o1[k] + 37.0f * o2[k] - 9.0f * o3[k]) / 24.0f;
    }
    Vec x0;
    Vec x_prev = x_prev_and_x0(e_prime, index, &x0);
    old_eps.push_back(std::move(e));
    if (old_eps.size() >= 4) old_eps.erase(old_eps.begin());
    x = std::move(x_prev);
    if (ctx.on_step) ctx.on_step(int(i), x0);
  }
  return x;
}

}  // namespace

std::vector<int> a1111_timesteps(int steps) {
  if (steps < 1 || steps > 1000)
    throw UsageError("", "--steps", "1 to 1000 for this sampler", std::to_string(steps));
  std::vector<int> ts;
  for (int t = 0; t < 1000; t += 1000 / steps) ts.push_back(std::clamp(t + 1, 0, 999));
  return ts;
}

std::vector<float> run_timestep_sampler(TimestepSampler sampler, std::vector<float> x,
                                        const std::vector<int>& timesteps,
                                        const TimestepSamplerContext& ctx, double eta) {
  if (timesteps.size() < 2)
    throw UsageError("", "--steps", "a schedule with at least one step",
                     std::to_string(timesteps.size()) + " timesteps");
  switch (sampler) {
    case TimestepSampler::kDdim:
      return run_ddim(std::move(x), timesteps, ctx, eta, false);
    case TimestepSampler::kDdimCfgpp:
      return run_ddim(std::move(x), timesteps, ctx, eta, true);
    case TimestepSampler::kPlms:
      return run_plms(std::move(x), timesteps, ctx);
  }
  throw Error("", "sampler", "a known timestep sampler", std::to_string(int(sampler)));
}

std::vector<float> timestep_img2img_start(std::span<const float> init, std::span<const float> noise,
                                          int timestep) {
  const float a = CompVisSchedule::sd15().alphas_cumprod(timestep);
  const float sqrt_a = std::sqrt(a), sqrt_one_minus = std::sqrt(1.0f - a);
  std::vector<float> x(init.size());
  for (size_t k = 0; k < x.size(); ++k) x[k] = init[k] * sqrt_a + noise[k] * sqrt_one_minus;
  return x;
}

}  // namespace sdc::sampling
