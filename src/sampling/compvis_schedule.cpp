// A1111's view of SD1.5's schedule in PyTorch's float32 arithmetic; see compvis_schedule.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/compvis_schedule.h"

#include <cmath>

#include "sampling/torch_float.h"

namespace sdc::sampling {
namespace {

// torch.linspace in float64: the same AVX2 kernel as torch_linspace_f32 with 4 lanes per vector.
std::vector<double> torch_linspace_f64(double start, double end, int n) {
  constexpr int kLanes = 4;
  const double step = (end - start) / static_cast<double>(n - 1);
  const int halfway = n / 2;
  const int vectorised = n / (2 * kLanes) * (2 * kLanes);
  auto scalar = [&](int i) {
    return i < halfway ? std::fma(step, static_cast<double>(i), start)
                       : std::fma(-step, static_cast<double>(n - 1 - i), end);
  };
  std::vector<double> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (i >= vectorised) {
      out[i] = scalar(i);
      continue;
    }
    const int lane = i % kLanes;
    const double base = scalar(i - lane);
    out[i] = lane == 0   ? base
             : lane == 1 ? base + step
                         : std::fma(static_cast<double>(lane), step, base);
  }
  return out;
}

}  // namespace

CompVisSchedule::CompVisSchedule() {
  constexpr int n = kTrainSteps;
  const std::vector<double> sqrt_betas =
      torch_linspace_f64(std::sqrt(0.00085), std::sqrt(0.012), n);
  alphas_cumprod_.resize(n);
  sigmas_.resize(n);
  log_sigmas_.resize(n);
  double cumprod = 1.0;
  for (int i = 0; i < n; ++i) {
    const double beta = sqrt_betas[i] * sqrt_betas[i];
    cumprod *= 1.0 - beta;
    const float a = static_cast<float>(cumprod);
    alphas_cumprod_[i] = a;
    sigmas_[i] = std::sqrt((1.0f - a) / a);
  }
  log_sigmas_ = sigmas_;
  torch_log_f32(log_sigmas_);  // sigmas.log(): SLEEF on 992 of the 1000 values
}

const CompVisSchedule& CompVisSchedule::sd15() {
  static const CompVisSchedule schedule;
  return schedule;
}

float CompVisSchedule::sigma_to_t(float sigma) const {
  float log_sigma = sigma;
  torch_log_f32({&log_sigma, 1});
  const int n = static_cast<int>(log_sigmas_.size());
  // argmax of cumsum(dists >= 0): the last index whose log-sigma is <= log_sigma (0 if none).
  int low = 0;
  for (int i = 0; i < n; ++i)
    if (log_sigma - log_sigmas_[i] >= 0.0f) low = i;
  if (low > n - 2) low = n - 2;
  const float lo = log_sigmas_[low], hi = log_sigmas_[low + 1];
  float w = (lo - log_sigma) / (lo - hi);
  w = w < 0.0f ? 0.0f : (w > 1.0f ? 1.0f : w);
  return (1.0f - w) * static_cast<float>(low) + w * static_cast<float>(low + 1);
}

int CompVisSchedule::sigma_to_t_quantized(float sigma) const {
  float log_sigma = sigma;
  torch_log_f32({&log_sigma, 1});
  int best = 0;
  float best_dist = std::fabs(log_sigma - log_sigmas_[0]);
  for (size_t i = 1; i < log_sigmas_.size(); ++i) {
    const float d = std::fabs(log_sigma - log_sigmas_[i]);
    if (d < best_dist) best_dist = d, best = static_cast<int>(i);  // first minimum, as argmin
  }
  return best;
}

float CompVisSchedule::t_to_log_sigma(float t) const {
  const int low = static_cast<int>(std::floor(t)), high = static_cast<int>(std::ceil(t));
  const float w = t - std::trunc(t);
  return (1.0f - w) * log_sigmas_[static_cast<size_t>(low)] +
         w * log_sigmas_[static_cast<size_t>(high)];
}

float CompVisSchedule::t_to_sigma(float t) const {
  float sigma = t_to_log_sigma(t);
  torch_exp_f32({&sigma, 1});
  return sigma;
}

std::vector<float> CompVisSchedule::get_sigmas(int n) const {
  // One tensor: the exp of all n log-sigmas is vectorised when n >= 16.
  std::vector<float> out;
  for (float t : torch_linspace_f32(static_cast<float>(kTrainSteps - 1), 0.0f, n))
    out.push_back(t_to_log_sigma(t));
  torch_exp_f32(out);
  out.push_back(0.0f);
  return out;
}

}  // namespace sdc::sampling
