// SD1.5's training schedule in PyTorch's float32 arithmetic; see noise_schedule.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/noise_schedule.h"

#include <algorithm>
#include <cmath>

#include "sampling/torch_float.h"

namespace sdc::sampling {

NoiseSchedule::NoiseSchedule() {
  constexpr int n = kTrainSteps;
  const std::vector<float> sqrt_betas = torch_linspace_f32(static_cast<float>(std::sqrt(0.00085)),
                                                           static_cast<float>(std::sqrt(0.012)), n);
  alphas_cumprod_.resize(n);
  sigmas_.resize(n);
  log_sigmas_.resize(n);
  double cumprod = 1.0;  // torch.cumprod on the CPU accumulates float in double
  for (int i = 0; i < n; ++i) {
    const float beta = sqrt_betas[i] * sqrt_betas[i];
    const float alpha = 1.0f - beta;
    cumprod *= static_cast<double>(alpha);
    const float ac = static_cast<float>(cumprod);
    alphas_cumprod_[i] = ac;
    sigmas_[i] = std::sqrt((1.0f - ac) / ac);
    log_sigmas_[i] = static_cast<float>(std::log(static_cast<double>(sigmas_[i])));
  }
}

const NoiseSchedule& NoiseSchedule::sd15() {
  static const NoiseSchedule schedule;
  return schedule;
}

double NoiseSchedule::sigma_to_t(double sigma) const {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  // Last index whose log-sigma is <= log_sigma (0 if none), at most n - 2.
  const int n = static_cast<int>(log_sigmas_.size());
  int low = 0;
  for (int i = 0; i < n; ++i)
    if (log_sigma - static_cast<double>(log_sigmas_[i]) >= 0) low = i;
  low = std::min(low, n - 2);
  const double lo = log_sigmas_[low], hi = log_sigmas_[low + 1];
  const double w = std::clamp((lo - log_sigma) / (lo - hi), 0.0, 1.0);
  return (1.0 - w) * low + w * (low + 1);
}

std::vector<double> NoiseSchedule::karras_sigmas(double sigma_min, double sigma_max, int n) {
  constexpr double rho = 7.0;
  const double min_inv_rho = std::pow(sigma_min, 1.0 / rho);
  const double max_inv_rho = std::pow(sigma_max, 1.0 / rho);
  std::vector<double> out(static_cast<size_t>(std::max(n, 0)));
  for (int i = 0; i < n; ++i) {
    // np.linspace(0, 1, n): i * (1 / (n - 1)), the last one exactly 1.
    const double ramp = n == 1 ? 0.0 : (i == n - 1 ? 1.0 : i * (1.0 / (n - 1)));
    out[i] = std::pow(max_inv_rho + ramp * (min_inv_rho - max_inv_rho), rho);
  }
  return out;
}

}  // namespace sdc::sampling
