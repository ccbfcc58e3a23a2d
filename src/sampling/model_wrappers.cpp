// A1111's CFG model wrappers in PyTorch's float32 arithmetic; see model_wrappers.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/model_wrappers.h"

#include <cmath>

#include "sampling/compvis_schedule.h"
#include "sampling/torch_float.h"

namespace sdc::sampling {
namespace {

constexpr int kLcmSkip = 20;  // 1000 // 50 original LCM timesteps
constexpr int kLcmTimesteps = 50;

// combine_denoised: uncond + (cond - uncond) * scale.
void combine(std::span<const float> cond, std::span<const float> uncond, float scale,
             std::span<float> out) {
  for (size_t k = 0; k < out.size(); ++k) out[k] = uncond[k] + (cond[k] - uncond[k]) * scale;
}

// 1 / (sigma ** 2 + 1) ** 0.5 (k-diffusion's c_in with sigma_data 1).
float c_in(float sigma) {
  return 1.0f / std::sqrt(sigma * sigma + 1.0f);
}

struct LcmTable {
  std::vector<float> sigmas, log_sigmas;
};

const LcmTable& lcm_table() {
  static const LcmTable table = [] {
    const CompVisSchedule& m = CompVisSchedule::sd15();
    LcmTable t;
    for (int k = 0; k < kLcmTimesteps; ++k) {
      const float a = m.alphas_cumprod(kLcmSkip - 1 + kLcmSkip * k);
      t.sigmas.push_back(std::sqrt((1.0f - a) / a));
    }
    t.log_sigmas = t.sigmas;
    torch_log_f32(t.log_sigmas);
    return t;
  }();
  return table;
}

// DiscreteSchedule.t_to_sigma over the LCM table (fractional index), before the exp.
float lcm_log_sigma_at(float index) {
  const LcmTable& t = lcm_table();
  const int low = static_cast<int>(std::floor(index)), high = static_cast<int>(std::ceil(index));
  const float w = index - std::trunc(index);
  return (1.0f - w) * t.log_sigmas[size_t(low)] + w * t.log_sigmas[size_t(high)];
}

}  // namespace

KDiffusionDenoiser::KDiffusionDenoiser(UnetEps unet, double cfg_scale, bool quantize)
    : unet_(std::move(unet)), cfg_(static_cast<float>(cfg_scale)), quantize_(quantize) {}

void KDiffusionDenoiser::operator()(std::span<const float> x, float sigma,
                                    std::span<float> denoised) const {
  const CompVisSchedule& m = CompVisSchedule::sd15();
  const float scale = c_in(sigma);
  std::vector<float> x_in(x.size());
  for (size_t k = 0; k < x.size(); ++k) x_in[k] = x[k] * scale;
  const float t =
      quantize_ ? static_cast<float>(m.sigma_to_t_quantized(sigma)) : m.sigma_to_t(sigma);
  std::vector<float> eps_c(x.size()), eps_u(x.size());
  unet_(x_in, t, eps_c, eps_u);
  const float c_out = -sigma;
  for (size_t k = 0; k < x.size(); ++k) {
    eps_c[k] = x[k] + eps_c[k] * c_out;
    eps_u[k] = x[k] + eps_u[k] * c_out;
  }
  combine(eps_c, eps_u, cfg_, denoised);
}

LcmDenoiser::LcmDenoiser(UnetEps unet, double cfg_scale)
    : unet_(std::move(unet)), cfg_(static_cast<float>(cfg_scale)) {}

int LcmDenoiser::sigma_to_t(float sigma) {
  const LcmTable& t = lcm_table();
  const float log_sigma = t_log(sigma);
  int best = 0;
  float best_d = std::fabs(log_sigma - t.log_sigmas[0]);
  for (size_t k = 1; k < t.log_sigmas.size(); ++k) {
    const float d = std::fabs(log_sigma - t.log_sigmas[k]);
    if (d < best_d) best_d = d, best = int(k);
  }
  return best * kLcmSkip + (kLcmSkip - 1);
}

std::vector<float> LcmDenoiser::sigmas(int n) {
  const LcmTable& table = lcm_table();
  const float start = static_cast<float>(sigma_to_t(table.sigmas.back()));
  const float end = static_cast<float>(sigma_to_t(table.sigmas.front()));
  std::vector<float> out;
  for (float t : torch_linspace_f32(start, end, n)) {
    // clamp(((t - 19) / 20).float(), 0, 49)
    float index = (t - static_cast<float>(kLcmSkip - 1)) / static_cast<float>(kLcmSkip);
    index = std::fmin(std::fmax(index, 0.0f), static_cast<float>(kLcmTimesteps - 1));
    out.push_back(lcm_log_sigma_at(index));
  }
  torch_exp_f32(out);
  out.push_back(0.0f);
  return out;
}

void LcmDenoiser::operator()(std::span<const float> x, float sigma, std::span<float> out) const {
  const float scale = c_in(sigma);
  std::vector<float> x_in(x.size());
  for (size_t k = 0; k < x.size(); ++k) x_in[k] = x[k] * scale;
  const int t = sigma_to_t(sigma);
  std::vector<float> eps_c(x.size()), eps_u(x.size());
  unet_(x_in, static_cast<float>(t), eps_c, eps_u);
  // get_scaled_out: scaled timestep 10 t (int64 * 10.0 -> float32), sigma_data 0.5.
  const float st = static_cast<float>(t) * 10.0f;
  const float denom = st * st + 0.25f;
  const float c_skip = (1.0f / denom) * 0.25f;  // python 0.25 / tensor: reciprocal, then * 0.25
  const float c_out = st / std::sqrt(denom);
  const float c_eps = -sigma;
  for (size_t k = 0; k < x.size(); ++k) {
    const float dc = x[k] + eps_c[k] * c_eps, du = x[k] + eps_u[k] * c_eps;
    eps_c[k] = c_out * dc + c_skip * x[k];
    eps_u[k] = c_out * du + c_skip * x[k];
  }
  combine(eps_c, eps_u, cfg_, out);
}

TimestepEpsModel::TimestepEpsModel(UnetEps unet, double cfg_scale, bool cfgpp)
    : unet_(std::move(unet)),
      cfg_(static_cast<float>(cfgpp ? cfg_scale * (1 / 12.5) : cfg_scale)) {}

void TimestepEpsModel::operator()(std::span<const float> x, float t, std::span<float> eps,
                                  std::span<float> eps_uncond) const {
  std::vector<float> eps_c(x.size()), eps_u(x.size());
  unet_(x, t, eps_c, eps_u);
  combine(eps_c, eps_u, cfg_, eps);
  if (!eps_uncond.empty()) std::copy(eps_u.begin(), eps_u.end(), eps_uncond.begin());
}

}  // namespace sdc::sampling
