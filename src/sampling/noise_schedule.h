// The SD1.5 training noise schedule as diffusers builds it (scaled_linear betas from 0.00085 to
// 0.012 over 1000 steps), in float32 exactly as PyTorch computes it, plus the two conversions the
// sigma-based schedules need: Karras sigmas and sigma -> fractional timestep.
//
//   betas           = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, float32) ** 2
//   alphas_cumprod  = torch.cumprod(1 - betas)     (float32 result, accumulated in double)
//   sigma(t)        = ((1 - alphas_cumprod[t]) / alphas_cumprod[t]) ** 0.5   (float32)
#pragma once

#include <vector>

namespace sdc::sampling {

class NoiseSchedule {
 public:
  static constexpr int kTrainSteps = 1000;

  // The SD1.5 schedule (built once).
  static const NoiseSchedule& sd15();

  float alphas_cumprod(int t) const { return alphas_cumprod_[t]; }  // t in [0, 1000)
  float sigma(int t) const { return sigmas_[t]; }                   // increases with t
  const std::vector<float>& sigmas() const { return sigmas_; }

  // diffusers' _sigma_to_t: the fractional timestep whose log-sigma lies at `sigma` by linear
  // interpolation between the two neighbouring training log-sigmas (clamped to [0, 999]).
  double sigma_to_t(double sigma) const;

  // diffusers' _convert_to_karras: n sigmas from sigma_max down to sigma_min, evenly spaced in
  // sigma^(1/rho), rho = 7 (computed in double as numpy does).
  static std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int n);

 private:
  NoiseSchedule();
  std::vector<float> alphas_cumprod_, sigmas_, log_sigmas_;
};

}  // namespace sdc::sampling
