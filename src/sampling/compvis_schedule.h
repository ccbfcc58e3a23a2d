// SD1.5's discrete noise schedule as A1111 sees it: ldm's alphas_cumprod (float64 betas and
// cumulative product, stored as a float32 buffer) and k-diffusion's CompVisDenoiser view of it
// (DiscreteSchedule: 1000 float32 sigmas, their logs, and the continuous sigma <-> timestep maps),
// all in PyTorch's float32 arithmetic so that every schedule built on it is bit-identical to
// A1111's.
//
//   betas          = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, float64) ** 2
//   alphas_cumprod = float32(numpy.cumprod(1 - betas))
//   sigmas[t]      = ((1 - a[t]) / a[t]) ** 0.5        log_sigmas = log(sigmas)      (float32)
//
// This differs from diffusers' schedule (noise_schedule.h: float32 betas) in the last bits, which
// matters: sigma_min is 0.0291675329 here.
#pragma once

#include <span>
#include <vector>

namespace sdc::sampling {

class CompVisSchedule {
 public:
  static constexpr int kTrainSteps = 1000;

  static const CompVisSchedule& sd15();

  float alphas_cumprod(int t) const { return alphas_cumprod_[static_cast<size_t>(t)]; }
  const std::vector<float>& alphas_cumprod() const { return alphas_cumprod_; }
  const std::vector<float>& sigmas() const { return sigmas_; }  // increasing with t
  const std::vector<float>& log_sigmas() const { return log_sigmas_; }
  float sigma_min() const { return sigmas_.front(); }
  float sigma_max() const { return sigmas_.back(); }

  // DiscreteSchedule.sigma_to_t (quantize off): the fractional timestep whose log-sigma lies at
  // log(sigma) by linear interpolation between the neighbouring training log-sigmas.
  float sigma_to_t(float sigma) const;
  // quantize on (A1111 option enable_quantization): the index of the nearest log-sigma.
  int sigma_to_t_quantized(float sigma) const;
  // DiscreteSchedule.t_to_sigma on one value (a 0-dim tensor): exp of the log-sigma interpolated
  // at fractional t.
  float t_to_sigma(float t) const;
  float t_to_log_sigma(float t) const;  // the interpolated log-sigma, before exp

  // DiscreteSchedule.get_sigmas(n): t = linspace(999, 0, n), their sigmas, then 0 (n + 1 values).
  std::vector<float> get_sigmas(int n) const;

 private:
  CompVisSchedule();
  std::vector<float> alphas_cumprod_, sigmas_, log_sigmas_;
};

}  // namespace sdc::sampling
