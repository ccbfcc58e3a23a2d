// DPM-Solver++ samplers of k-diffusion v0.0.16: 2S ancestral, SDE, 2M, 2M SDE (midpoint and
// Heun) and 3M SDE, in float32 with PyTorch's operation order (t = -log sigma, sigma = exp(-t)).

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include <cmath>

#include "sampling/k_samplers_internal.h"
#include "sampling/torch_float.h"

namespace sdc::sampling::kdiff {
namespace {

float t_of(float sigma) {
  return -t_log(sigma);
}
float sigma_of(float t) {
  return t_exp(-t);
}

// x = a * x - b * d, element-wise (the DPM-Solver++ first-order update form).
void first_order(Vec& x, float a, float b, const Vec& d) {
  for (size_t k = 0; k < x.size(); ++k) x[k] = a * x[k] - b * d[k];
}

void add_noise(Vec& x, const Vec& noise, float c1, float c2, float c3) {
  for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + noise[k] * c1 * c2 * c3;
}

}  // namespace

Vec sample_dpmpp_2s_ancestral(const KSamplerContext& ctx, Vec x, const std::vector<float>& s,
                              const KSamplerOptions& o) {
  const float s_noise = static_cast<float>(o.s_noise);
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const Vec denoised = denoise(ctx, x, s[i]);
    const AncestralStep a = ancestral_step(s[i], s[i + 1], o.eta);
    report(ctx, int(i), denoised);
    if (a.down == 0) {
      const Vec d = to_d(x, s[i], denoised);
      x = add_scaled(x, d, a.down - s[i]);
    } else {
      const float t = t_of(s[i]), t_next = t_of(a.down);
      const float h = t_next - t;
      const float s_mid = t + 0.5f * h;
      Vec x2 = x;
      first_order(x2, sigma_of(s_mid) / sigma_of(t), t_expm1(-h * 0.5f), denoised);
      const Vec denoised2 = denoise(ctx, x2, sigma_of(s_mid));
      first_order(x, sigma_of(t_next) / sigma_of(t), t_expm1(-h), denoised2);
    }
    if (s[i + 1] > 0) add_noise(x, randn_like(ctx, x), s_noise, a.up, 1.0f);
  }
  return x;
}

Vec sample_dpmpp_sde(const KSamplerContext& ctx, Vec x, const std::vector<float>& s,
                     const KSamplerOptions& o) {
  const float s_noise = static_cast<float>(o.s_noise);
  constexpr double r = 0.5;
  const float fac = static_cast<float>(1.0 / (2.0 * r));
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const Vec denoised = denoise(ctx, x, s[i]);
    report(ctx, int(i), denoised);
    if (s[i + 1] == 0) {
      const Vec d = to_d(x, s[i], denoised);
      x = add_scaled(x, d, s[i + 1] - s[i]);
      continue;
    }
    const float t = t_of(s[i]), t_next = t_of(s[i + 1]);
    const float h = t_next - t;
    const float s_mid = t + h * static_cast<float>(r);
    // Step 1: to the midpoint, with its share of Brownian noise.
    AncestralStep a = ancestral_step(sigma_of(t), sigma_of(s_mid), o.eta);
    const float s_ = t_of(a.down);
    Vec x2 = x;
    first_order(x2, sigma_of(s_) / sigma_of(t), t_expm1(t - s_), denoised);
    add_noise(x2, brownian(ctx, x, sigma_of(t), sigma_of(s_mid)), s_noise, a.up, 1.0f);
    const Vec denoised2 = denoise(ctx, x2, sigma_of(s_mid));
    // Step 2: the full step from the blend of both denoised values.
    a = ancestral_step(sigma_of(t), sigma_of(t_next), o.eta);
    const float t_next_ = t_of(a.down);
    Vec blend(x.size());
    for (size_t k = 0; k < x.size(); ++k)
      blend[k] = (1.0f - fac) * denoised[k] + fac * denoised2[k];
    first_order(x, sigma_of(t_next_) / sigma_of(t), t_expm1(t - t_next_), blend);
    add_noise(x, brownian(ctx, x, sigma_of(t), sigma_of(t_next)), s_noise, a.up, 1.0f);
  }
  return x;
}

Vec sample_dpmpp_2m(const KSamplerContext& ctx, Vec x, const std::vector<float>& s) {
  Vec old_denoised;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    Vec denoised = denoise(ctx, x, s[i]);
    report(ctx, int(i), denoised);
    const float t = t_of(s[i]), t_next = t_of(s[i + 1]);
    const float h = t_next - t;
    const float a = sigma_of(t_next) / sigma_of(t), b = t_expm1(-h);
    if (old_denoised.empty() || s[i + 1] == 0) {
      first_order(x, a, b, denoised);
    } else {
      const float h_last = t - t_of(s[i - 1]);
      const float r = h_last / h;
      const float inv_2r = 1.0f / (2.0f * r);
      const float c_new = 1.0f + inv_2r;
      Vec blend(x.size());
      for (size_t k = 0; k < x.size(); ++k)
        blend[k] = c_new * denoised[k] - inv_2r * old_denoised[k];
      first_order(x, a, b, blend);
    }
    old_denoised = std::move(denoised);
  }
  return x;
}

Vec sample_dpmpp_2m_sde(const KSamplerContext& ctx, Vec x, const std::vector<float>& s,
                        const KSamplerOptions& o, bool heun) {
  const float eta = static_cast<float>(o.eta), s_noise = static_cast<float>(o.s_noise);
  Vec old_denoised;
  float h_last = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    Vec denoised = denoise(ctx, x, s[i]);
    report(ctx, int(i), denoised);
    float h = 0;
    if (s[i + 1] == 0) {
      x = denoised;  // the final denoising step
    } else {
      const float t = -t_log(s[i]), s_next = -t_log(s[i + 1]);
      h = s_next - t;
      const float eta_h = eta * h;
      const float c_x = s[i + 1] / s[i] * t_exp(-eta_h);
      const float c_d = -t_expm1(-h - eta_h);
      for (size_t k = 0; k < x.size(); ++k) x[k] = c_x * x[k] + c_d * denoised[k];
      if (!old_denoised.empty()) {
        const float r = h_last / h;
        const float inv_r = 1.0f / r;
        const float c = heun ? (c_d / (-h - eta_h) + 1.0f) * inv_r : 0.5f * c_d * inv_r;
        for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + c * (denoised[k] - old_denoised[k]);
      }
      if (o.eta != 0.0) {
        const float amount = std::sqrt(-t_expm1(-2.0f * eta_h));
        add_noise(x, brownian(ctx, x, s[i], s[i + 1]), s[i + 1], amount, s_noise);
      }
    }
    old_denoised = std::move(denoised);
    h_last = h;
  }
  return x;
}

Vec sample_dpmpp_3m_sde(const KSamplerContext& ctx, Vec x, const std::vector<float>& s,
                        const KSamplerOptions& o) {
  const float s_noise = static_cast<float>(o.s_noise);
  Vec denoised_1, denoised_2;
  float h_1 = 0, h_2 = 0;
  bool have_h1 = false, have_h2 = false;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    Vec denoised = denoise(ctx, x, s[i]);
    report(ctx, int(i), denoised);
    float h = 0;
    if (s[i + 1] == 0) {
      x = denoised;
    } else {
      const float t = -t_log(s[i]), s_next = -t_log(s[i + 1]);
      h = s_next - t;
      const float h_eta = h * static_cast<float>(o.eta + 1.0);
      const float c_x = t_exp(-h_eta), c_d = -t_expm1(-h_eta);
      for (size_t k = 0; k < x.size(); ++k) x[k] = c_x * x[k] + c_d * denoised[k];
      const float phi_2 = t_expm1(-h_eta) / h_eta + 1.0f;
      if (have_h2) {
        const float r0 = h_1 / h, r1 = h_2 / h;
        const float phi_3 = phi_2 / h_eta - 0.5f;
        for (size_t k = 0; k < x.size(); ++k) {
          const float d1_0 = (denoised[k] - denoised_1[k]) / r0;
          const float d1_1 = (denoised_1[k] - denoised_2[k]) / r1;
          const float d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1);
          const float d2 = (d1_0 - d1_1) / (r0 + r1);
          x[k] = x[k] + phi_2 * d1 - phi_3 * d2;
        }
      } else if (have_h1) {
        const float r = h_1 / h;
        for (size_t k = 0; k < x.size(); ++k) {
          const float d = (denoised[k] - denoised_1[k]) / r;
          x[k] = x[k] + phi_2 * d;
        }
      }
      if (o.eta != 0.0) {
        const float amount = std::sqrt(-t_expm1(-2.0f * h * static_cast<float>(o.eta)));
        add_noise(x, brownian(ctx, x, s[i], s[i + 1]), s[i + 1], amount, s_noise);
      }
    }
    denoised_2 = std::move(denoised_1);
    denoised_1 = std::move(denoised);
    h_2 = h_1;
    have_h2 = have_h1;
    h_1 = h;
    have_h1 = true;
  }
  return x;
}

}  // namespace sdc::sampling::kdiff
