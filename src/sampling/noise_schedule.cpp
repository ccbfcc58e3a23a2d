// SD1.5's training schedule in PyTorch's float32 arithmetic; see noise_schedule.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/noise_schedule.h"

#include <algorithm>
#include <cmath>

namespace sdc::sampling {

namespace {

// torch.linspace(start, end, n) in float32 as PyTorch 1.13's AVX2 CPU kernel computes it (the
// fixtures' reference; later versions dropped the vectorised path): step = (end - start) / (n - 1);
// elements come in vectors of 8 whose base is start + step * v (v < n / 2) or
// end - step * (n - 1 - v) otherwise, lane j adding j * step; the elements past the last pair of
// vectors use the scalar formula. GCC fused each multiply-add; std::fma reproduces that, and the
// sigmas then equal the fixture's bit for bit.
std::vector<float> torch_linspace_f32(float start, float end, int n) {
  constexpr int kLanes = 8;
  const float step = (end - start) / static_cast<float>(n - 1);
  const int halfway = n / 2;
  const int vectorised = n / (2 * kLanes) * (2 * kLanes);  // whole pairs of vectors
  auto scalar = [&](int i) {
    return i < halfway ? std::fma(step, static_cast<float>(i), start)
                       : std::fma(-step, static_cast<float>(n - 1 - i), end);
  };
  std::vector<float> out(n);
  for (int i = 0; i < n; ++i) {
    if (i >= vectorised) {
      out[i] = scalar(i);
      continue;
    }
    const int lane = i % kLanes;
    const float base = scalar(i - lane);
    out[i] = lane == 0   ? base
             : lane == 1 ? base + step
                         : std::fma(static_cast<float>(lane), step, base);
  }
  return out;
}

}  // namespace

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
