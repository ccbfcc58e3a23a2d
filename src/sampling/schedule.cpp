// Timestep and sigma schedules per sampler (diffusers 0.28 set_timesteps, SD1.5 config).

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/error.h"
#include "sampling/noise_schedule.h"

namespace sdc::sampling {
namespace {

constexpr int kTrain = NoiseSchedule::kTrainSteps;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
constexpr int kStepsOffset = 1;

// "leading" spacing: (0..n-1) * (1000 // n), reversed, + steps_offset.
std::vector<int> leading_timesteps(int n) {
  const int ratio = kTrain / n;
  std::vector<int> t(n);
  for (int i = 0; i < n; ++i) t[i] = (n - 1 - i) * ratio + kStepsOffset;
  return t;
}

std::vector<int> lcm_timesteps(int n) {
  constexpr int k = kTrain / kLcmOriginalSteps;  // 20
  // Origin schedule 19, 39, ..., 999 reversed; then indices floor(i * (50 / n)) as numpy's
  // linspace(0, 50, n, endpoint=False) computes them.
  const double step = static_cast<double>(kLcmOriginalSteps) / n;
  std::vector<int> t(n);
  for (int i = 0; i < n; ++i) {
    const int index = static_cast<int>(std::floor(i * step));
    t[i] = (kLcmOriginalSteps - index) * k - 1;
  }
  return t;
}

// Euler-family init_noise_sigma for "leading" spacing, in float32 as the torch property does.
float euler_init_noise_sigma(const std::vector<float>& sigmas) {
  const float max_sigma = *std::max_element(sigmas.begin(), sigmas.end());
  return std::sqrt(max_sigma * max_sigma + 1.0f);
}

void check_steps(SamplerKind sampler, ScheduleKind kind, int steps) {
  if (sampler == SamplerKind::kLcm) {
    if (steps < 1 || steps > kLcmOriginalSteps)
      throw UsageError("", "--steps",
                       "1 to " + std::to_string(kLcmOriginalSteps) +
                           " for the lcm sampler (its original_inference_steps)",
                       std::to_string(steps));
  } else if (steps < 1 || steps > kMaxSamplerSteps) {
    throw UsageError("", "--steps", "1 to " + std::to_string(kMaxSamplerSteps),
                     std::to_string(steps));
  }
  if (kind == ScheduleKind::kKarras && !uses_sigmas(sampler))
    throw UsageError("", "--scheduler",
                     std::string("default for the ") + sampler_name(sampler) +
                         " sampler (karras applies to euler, euler_a, dpmpp_2m)",
                     "karras");
}

}  // namespace

Schedule make_schedule(SamplerKind sampler, ScheduleKind kind, int steps) {
  check_steps(sampler, kind, steps);
  const NoiseSchedule& ns = NoiseSchedule::sd15();
  Schedule s;
  s.sampler = sampler;
  s.kind = kind;
  s.steps = steps;
  switch (sampler) {
    case SamplerKind::kDdim:
      for (int t : leading_timesteps(steps)) s.timesteps.push_back(static_cast<float>(t));
      break;
    case SamplerKind::kLcm:
      for (int t : lcm_timesteps(steps)) s.timesteps.push_back(static_cast<float>(t));
      break;
    case SamplerKind::kEuler:
    case SamplerKind::kEulerA: {
      const std::vector<int> ts = leading_timesteps(steps);
      if (kind == ScheduleKind::kDefault) {
        for (int t : ts) {
          s.timesteps.push_back(static_cast<float>(t));
          s.sigmas.push_back(ns.sigma(t));
        }
      } else {
        // Karras between the sigmas of the first and last leading timesteps.
        const double sigma_max = ns.sigma(ts.front()), sigma_min = ns.sigma(ts.back());
        for (double sigma : NoiseSchedule::karras_sigmas(sigma_min, sigma_max, steps)) {
          s.timesteps.push_back(static_cast<float>(ns.sigma_to_t(sigma)));
          s.sigmas.push_back(static_cast<float>(sigma));
        }
      }
      s.sigmas.push_back(0.0f);
      s.init_noise_sigma = euler_init_noise_sigma(s.sigmas);
      break;
    }
    case SamplerKind::kDpmpp2m: {
      if (kind == ScheduleKind::kDefault) {
        const int ratio = kTrain / (steps + 1);
        for (int i = 0; i < steps; ++i) {
          const int t = (steps - i) * ratio + kStepsOffset;
          s.timesteps.push_back(static_cast<float>(t));
          s.sigmas.push_back(ns.sigma(t));
        }
      } else {
        // Karras over the whole training range, timesteps rounded half to even (np.round).
        const double sigma_max = ns.sigma(kTrain - 1), sigma_min = ns.sigma(0);
        for (double sigma : NoiseSchedule::karras_sigmas(sigma_min, sigma_max, steps)) {
          s.timesteps.push_back(static_cast<float>(std::nearbyint(ns.sigma_to_t(sigma))));
          s.sigmas.push_back(static_cast<float>(sigma));
        }
      }
      s.sigmas.push_back(0.0f);
      s.init_noise_sigma = 1.0f;
      break;
    }
  }
  return s;
}

int img2img_first_step(SamplerKind sampler, int steps, double strength) {
  if (!(strength > 0.0 && strength <= 1.0))
    throw UsageError("", "--strength", "a value in (0, 1]", num(strength));
  if (uses_sigmas(sampler)) {
    const int t_enc = static_cast<int>(std::min(strength, 0.999) * steps);
    return steps - t_enc - 1;
  }
  const int init_timestep = std::min(static_cast<int>(steps * strength), steps);
  if (init_timestep == 0)
    throw UsageError("", "--strength",
                     "at least 1/" + std::to_string(steps) + " with " + std::to_string(steps) +
                         " " + sampler_name(sampler) + " steps (no denoising step is left)",
                     num(strength));
  return steps - init_timestep;
}

}  // namespace sdc::sampling
