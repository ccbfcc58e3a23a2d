// The dispatcher and the Euler family (euler, euler_a, heun, dpm2, dpm2_a, lms, lcm) of
// k-diffusion v0.0.16, plus the helpers every sampler file shares; see k_samplers.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/k_samplers.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "sampling/k_samplers_internal.h"
#include "sampling/torch_float.h"

namespace sdc::sampling {
namespace kdiff {

Vec denoise(const KSamplerContext& ctx, const Vec& x, float sigma) {
  Vec out(x.size());
  ctx.denoise(x, sigma, out);
  return out;
}

Vec randn_like(const KSamplerContext& ctx, const Vec& x) {
  if (!ctx.randn) throw Error("", "sampler", "an image random number source", "none");
  Vec out(x.size());
  ctx.randn(out);
  return out;
}

Vec brownian(const KSamplerContext& ctx, const Vec& x, float sigma, float sigma_next) {
  if (!ctx.brownian) throw Error("", "sampler", "a Brownian noise source", "none");
  Vec out(x.size());
  ctx.brownian(sigma, sigma_next, out);
  return out;
}

void report(const KSamplerContext& ctx, int step, const Vec& denoised) {
  if (ctx.on_step) ctx.on_step(step, denoised);
}

Vec to_d(const Vec& x, float sigma, const Vec& denoised) {
  Vec d(x.size());
  for (size_t i = 0; i < x.size(); ++i) d[i] = (x[i] - denoised[i]) / sigma;
  return d;
}

Vec add_scaled(const Vec& x, const Vec& d, float dt) {
  Vec out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] + d[i] * dt;
  return out;
}

AncestralStep ancestral_step(float sigma_from, float sigma_to, double eta) {
  if (eta == 0.0) return {sigma_to, 0.0f};
  const float from2 = sigma_from * sigma_from, to2 = sigma_to * sigma_to;
  const float inner = to2 * (from2 - to2) / from2;
  const float up_eta = static_cast<float>(eta) * std::sqrt(inner);
  const float up = up_eta < sigma_to ? up_eta : sigma_to;  // Python min(sigma_to, ...)
  return {std::sqrt(to2 - up * up), up};
}

float lerp_half(float a, float b) {
  return b - (b - a) * 0.5f;
}

namespace {

// s_churn (Karras et al. Algorithm 2): gamma for step i, 0 outside [s_tmin, s_tmax].
double churn_gamma(const KSamplerOptions& o, float sigma, size_t n_sigmas) {
  const bool in_range =
      static_cast<float>(o.s_tmin) <= sigma && sigma <= static_cast<float>(o.s_tmax);
  if (!in_range) return 0.0;
  return std::min(o.s_churn / static_cast<double>(n_sigmas - 1), std::sqrt(2.0) - 1.0);
}

// The churn prologue shared by euler, heun and dpm2: draws eps (always), returns sigma_hat and
// adds the churn noise when gamma > 0.
float churn(const KSamplerContext& ctx, Vec& x, float sigma, size_t n_sigmas,
            const KSamplerOptions& o) {
  const double gamma = churn_gamma(o, sigma, n_sigmas);
  Vec eps = randn_like(ctx, x);
  const float s_noise = static_cast<float>(o.s_noise);
  for (float& e : eps) e = e * s_noise;
  const float sigma_hat = sigma * static_cast<float>(gamma + 1.0);
  if (gamma > 0) {
    const float amount = std::sqrt(sigma_hat * sigma_hat - sigma * sigma);
    for (size_t i = 0; i < x.size(); ++i) x[i] = x[i] + eps[i] * amount;
  }
  return sigma_hat;
}

Vec sample_euler(const KSamplerContext& ctx, Vec x, const std::vector<float>& s,
                 const KSamplerOptions& o) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const float sigma_hat = churn(ctx, x, s[i], s.size(), o);
    const Vec denoised = denoise(ctx, x, sigma_hat);
    const Vec d = to_d(x, sigma_hat, denoised);
    report(ctx, int(i), denoised);
    x = add_scaled(x, d, s[i + 1] - sigma_hat);
  }
  return x;
}

Vec sample_euler_ancestral(const KSamplerContext& ctx, Vec x, const std::vector<float>& s,
                           const KSamplerOptions& o) {
  const float s_noise = static_cast<float>(o.s_noise);
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const Vec denoised = denoise(ctx, x, s[i]);
    const AncestralStep a = ancestral_step(s[i], s[i + 1], o.eta);
    report(ctx, int(i), denoised);
    const Vec d = to_d(x, s[i], denoised);
    x = add_scaled(x, d, a.down - s[i]);
    if (s[i + 1] > 0) {
      const Vec noise = randn_like(ctx, x);
      for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + noise[k] * s_noise * a.up;
    }
  }
  return x;
}

Vec sample_heun(const KSamplerContext& ctx, Vec x, const std::vector<float>& s,
                const KSamplerOptions& o) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const float sigma_hat = churn(ctx, x, s[i], s.size(), o);
    const Vec denoised = denoise(ctx, x, sigma_hat);
    const Vec d = to_d(x, sigma_hat, denoised);
    report(ctx, int(i), denoised);
    const float dt = s[i + 1] - sigma_hat;
    if (s[i + 1] == 0) {
      x = add_scaled(x, d, dt);
    } else {
      const Vec x2 = add_scaled(x, d, dt);
      const Vec denoised2 = denoise(ctx, x2, s[i + 1]);
      const Vec d2 = to_d(x2, s[i + 1], denoised2);
      for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + (d[k] + d2[k]) / 2.0f * dt;
    }
  }
  return x;
}

Vec sample_dpm2(const KSamplerContext& ctx, Vec x, const std::vector<float>& s,
                const KSamplerOptions& o) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const float sigma_hat = churn(ctx, x, s[i], s.size(), o);
    const Vec denoised = denoise(ctx, x, sigma_hat);
    const Vec d = to_d(x, sigma_hat, denoised);
    report(ctx, int(i), denoised);
    if (s[i + 1] == 0) {
      x = add_scaled(x, d, s[i + 1] - sigma_hat);
    } else {
      const float sigma_mid = t_exp(lerp_half(t_log(sigma_hat), t_log(s[i + 1])));
      const Vec x2 = add_scaled(x, d, sigma_mid - sigma_hat);
      const Vec denoised2 = denoise(ctx, x2, sigma_mid);
      const Vec d2 = to_d(x2, sigma_mid, denoised2);
      x = add_scaled(x, d2, s[i + 1] - sigma_hat);
    }
  }
  return x;
}

Vec sample_dpm2_ancestral(const KSamplerContext& ctx, Vec x, const std::vector<float>& s,
                          const KSamplerOptions& o) {
  const float s_noise = static_cast<float>(o.s_noise);
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const Vec denoised = denoise(ctx, x, s[i]);
    const AncestralStep a = ancestral_step(s[i], s[i + 1], o.eta);
    report(ctx, int(i), denoised);
    const Vec d = to_d(x, s[i], denoised);
    if (a.down == 0) {
      x = add_scaled(x, d, a.down - s[i]);
    } else {
      const float sigma_mid = t_exp(lerp_half(t_log(s[i]), t_log(a.down)));
      const Vec x2 = add_scaled(x, d, sigma_mid - s[i]);
      const Vec denoised2 = denoise(ctx, x2, sigma_mid);
      const Vec d2 = to_d(x2, sigma_mid, denoised2);
      x = add_scaled(x, d2, a.down - s[i]);
      const Vec noise = randn_like(ctx, x);
      for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + noise[k] * s_noise * a.up;
    }
  }
  return x;
}

Vec sample_lms(const KSamplerContext& ctx, Vec x, const std::vector<float>& s) {
  constexpr int kOrder = 4;
  std::vector<Vec> ds;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const Vec denoised = denoise(ctx, x, s[i]);
    ds.push_back(to_d(x, s[i], denoised));
    if (ds.size() > kOrder) ds.erase(ds.begin());
    report(ctx, int(i), denoised);
    const int order = std::min(int(i) + 1, kOrder);
    Vec sum(x.size(), 0.0f);
    for (int j = 0; j < order; ++j) {
      const float c = static_cast<float>(linear_multistep_coeff(order, s, int(i), j));
      const Vec& d = ds[ds.size() - 1 - size_t(j)];
      for (size_t k = 0; k < x.size(); ++k) sum[k] = sum[k] + c * d[k];
    }
    for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + sum[k];
  }
  return x;
}

// A1111's sample_lcm: x = denoised, plus sigmas[i + 1] * noise while that sigma is above 0.
Vec sample_lcm(const KSamplerContext& ctx, Vec x, const std::vector<float>& s) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    Vec denoised = denoise(ctx, x, s[i]);
    report(ctx, int(i), denoised);
    x = std::move(denoised);
    if (s[i + 1] > 0) {
      const Vec noise = randn_like(ctx, x);
      for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + s[i + 1] * noise[k];
    }
  }
  return x;
}

// QUADPACK's 21-point Gauss-Kronrod rule (what scipy's quad evaluates first; it integrates
// polynomials of degree <= 31 exactly, so its first estimate is accepted here).
double gauss_kronrod_21(const std::function<double(double)>& f, double a, double b) {
  static const double xgk[11] = {
      0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
      0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
      0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
      0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
      0.294392862701460198131126603103866, 0.148874338981631210884826001129720,
      0.000000000000000000000000000000000};
  static const double wgk[11] = {
      0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
      0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
      0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
      0.123491976262065851077208980357007, 0.134709217311473325928054001771707,
      0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
      0.149445554002916905664936468389821};
  const double centr = 0.5 * (a + b), hlgth = 0.5 * (b - a);
  double resk = wgk[10] * f(centr);
  // Fortran order: the Gauss nodes (even 1-based indices) first, then the Kronrod-only ones.
  for (int j = 1; j <= 5; ++j) {
    const int jtw = 2 * j - 1;  // 0-based index of xgk(2j)
    const double absc = hlgth * xgk[jtw];
    resk += wgk[jtw] * (f(centr - absc) + f(centr + absc));
  }
  for (int j = 1; j <= 5; ++j) {
    const int jtwm1 = 2 * j - 2;  // 0-based index of xgk(2j - 1)
    const double absc = hlgth * xgk[jtwm1];
    resk += wgk[jtwm1] * (f(centr - absc) + f(centr + absc));
  }
  return resk * hlgth;
}

}  // namespace
}  // namespace kdiff

double linear_multistep_coeff(int order, const std::vector<float>& t, int i, int j) {
  if (order - 1 > i)
    throw Error("", "LMS order", "at most " + std::to_string(i + 1), std::to_string(order));
  auto fn = [&](double tau) {
    double prod = 1.0;
    for (int k = 0; k < order; ++k) {
      if (j == k) continue;
      // numpy: float64 tau minus a float32 node, over a float32 difference of nodes.
      const float denom = t[size_t(i - j)] - t[size_t(i - k)];
      prod *= (tau - static_cast<double>(t[size_t(i - k)])) / static_cast<double>(denom);
    }
    return prod;
  };
  return kdiff::gauss_kronrod_21(fn, t[size_t(i)], t[size_t(i + 1)]);
}

std::vector<float> run_k_sampler(KSampler sampler, std::vector<float> x,
                                 const std::vector<float>& sigmas, const KSamplerContext& ctx,
                                 const KSamplerOptions& o, float sigma_min, float sigma_max) {
  using namespace kdiff;
  if (sigmas.size() < 2)
    throw Error("", "sigmas", "at least 2 values (one step)", std::to_string(sigmas.size()));
  switch (sampler) {
    case KSampler::kEuler:
      return sample_euler(ctx, std::move(x), sigmas, o);
    case KSampler::kEulerAncestral:
      return sample_euler_ancestral(ctx, std::move(x), sigmas, o);
    case KSampler::kLms:
      return sample_lms(ctx, std::move(x), sigmas);
    case KSampler::kHeun:
      return sample_heun(ctx, std::move(x), sigmas, o);
    case KSampler::kDpm2:
      return sample_dpm2(ctx, std::move(x), sigmas, o);
    case KSampler::kDpm2Ancestral:
      return sample_dpm2_ancestral(ctx, std::move(x), sigmas, o);
    case KSampler::kDpmpp2sAncestral:
      return sample_dpmpp_2s_ancestral(ctx, std::move(x), sigmas, o);
    case KSampler::kDpmpp2m:
      return sample_dpmpp_2m(ctx, std::move(x), sigmas);
    case KSampler::kDpmppSde:
      return sample_dpmpp_sde(ctx, std::move(x), sigmas, o);
    case KSampler::kDpmpp2mSde:
      return sample_dpmpp_2m_sde(ctx, std::move(x), sigmas, o, false);
    case KSampler::kDpmpp2mSdeHeun:
      return sample_dpmpp_2m_sde(ctx, std::move(x), sigmas, o, true);
    case KSampler::kDpmpp3mSde:
      return sample_dpmpp_3m_sde(ctx, std::move(x), sigmas, o);
    case KSampler::kDpmFast:
      return sample_dpm_fast(ctx, std::move(x), sigma_min, sigma_max, int(sigmas.size()) - 1, o);
    case KSampler::kDpmAdaptive:
      return sample_dpm_adaptive(ctx, std::move(x), sigma_min, sigma_max, o);
    case KSampler::kRestart:
      return sample_restart(ctx, std::move(x), sigmas, o);
    case KSampler::kLcm:
      return sample_lcm(ctx, std::move(x), sigmas);
  }
  throw Error("", "sampler", "a known k-diffusion sampler", std::to_string(int(sampler)));
}

}  // namespace sdc::sampling
