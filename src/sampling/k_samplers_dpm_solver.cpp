// k-diffusion's DPM-Solver samplers (DPM fast: fixed orders 3, ..., 3, 2/1 over evenly spaced
// t = -log sigma; DPM adaptive: embedded 2/3-order pairs under a PID step-size controller) and
// A1111's Restart sampler, in float32 with PyTorch's operation order.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "common/error.h"
#include "sampling/k_samplers_internal.h"
#include "sampling/schedulers.h"
#include "sampling/torch_float.h"

namespace sdc::sampling::kdiff {
namespace {

float sigma_of(float t) {
  return t_exp(-t);
}
float t_of(float sigma) {
  return -t_log(sigma);
}

// DPMSolver with its per-step cache of eps evaluations (keys: the step's eps, eps_r1, eps_r2).
class DpmSolver {
 public:
  explicit DpmSolver(const KSamplerContext& ctx) : ctx_(ctx) {}

  void new_step() { cache_.clear(); }

  // eps = (x - D(x, sigma(t))) / sigma(t), cached under `key`.
  const Vec& eps(const char* key, const Vec& x, float t) {
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    const float sigma = sigma_of(t);
    const Vec denoised = denoise(ctx_, x, sigma);
    Vec e(x.size());
    for (size_t k = 0; k < x.size(); ++k) e[k] = (x[k] - denoised[k]) / sigma;
    return cache_[key] = std::move(e);
  }

  Vec step1(const Vec& x, float t, float t_next) {
    const float h = t_next - t;
    const Vec& e = eps("eps", x, t);
    const float c = sigma_of(t_next) * t_expm1(h);
    Vec out(x.size());
    for (size_t k = 0; k < x.size(); ++k) out[k] = x[k] - c * e[k];
    return out;
  }

  Vec step2(const Vec& x, float t, float t_next, double r1) {
    const float h = t_next - t;
    const Vec e = eps("eps", x, t);
    const float r1f = static_cast<float>(r1);
    const float s1 = t + r1f * h;
    const float c1 = sigma_of(s1) * t_expm1(r1f * h);
    Vec u1(x.size());
    for (size_t k = 0; k < x.size(); ++k) u1[k] = x[k] - c1 * e[k];
    const Vec e_r1 = eps("eps_r1", u1, s1);
    const float a = sigma_of(t_next) * t_expm1(h);
    const float b = sigma_of(t_next) / static_cast<float>(2.0 * r1) * t_expm1(h);
    Vec out(x.size());
    for (size_t k = 0; k < x.size(); ++k) out[k] = x[k] - a * e[k] - b * (e_r1[k] - e[k]);
    return out;
  }

  Vec step3(const Vec& x, float t, float t_next) {
    constexpr double r1 = 1.0 / 3.0, r2 = 2.0 / 3.0;
    const float h = t_next - t;
    const Vec e = eps("eps", x, t);
    const float s1 = t + static_cast<float>(r1) * h;
    const float s2 = t + static_cast<float>(r2) * h;
    const float c1 = sigma_of(s1) * t_expm1(static_cast<float>(r1) * h);
    Vec u1(x.size());
    for (size_t k = 0; k < x.size(); ++k) u1[k] = x[k] - c1 * e[k];
    const Vec e_r1 = eps("eps_r1", u1, s1);
    const float r2h = static_cast<float>(r2) * h;
    const float a2 = sigma_of(s2) * t_expm1(r2h);
    const float b2 = sigma_of(s2) * static_cast<float>(r2 / r1) * (t_expm1(r2h) / r2h - 1.0f);
    Vec u2(x.size());
    for (size_t k = 0; k < x.size(); ++k) u2[k] = x[k] - a2 * e[k] - b2 * (e_r1[k] - e[k]);
    const Vec e_r2 = eps("eps_r2", u2, s2);
    const float a = sigma_of(t_next) * t_expm1(h);
    const float b = sigma_of(t_next) / static_cast<float>(r2) * (t_expm1(h) / h - 1.0f);
    Vec out(x.size());
    for (size_t k = 0; k < x.size(); ++k) out[k] = x[k] - a * e[k] - b * (e_r2[k] - e[k]);
    return out;
  }

 private:
  const KSamplerContext& ctx_;
  std::map<std::string, Vec> cache_;
};

// With eta: the ancestral split of a step t -> t_next, returned as (t_next_, su).
struct EtaSplit {
  float t_next_, su;
};
EtaSplit eta_split(float t, float t_next, float t_end, double eta) {
  if (eta == 0.0) return {t_next, 0.0f};
  const AncestralStep a = ancestral_step(sigma_of(t), sigma_of(t_next), eta);
  const float t_down = t_of(a.down);
  const float t_next_ = std::min(t_end, t_down);  // torch.minimum (inf when sd = 0)
  const float s_tn = sigma_of(t_next), s_tn_ = sigma_of(t_next_);
  return {t_next_, std::sqrt(s_tn * s_tn - s_tn_ * s_tn_)};
}

}  // namespace

Vec sample_dpm_fast(const KSamplerContext& ctx, Vec x, float sigma_min, float sigma_max, int n,
                    const KSamplerOptions& o) {
  if (!(sigma_min > 0) || !(sigma_max > 0))
    throw Error("", "DPM fast", "sigma_min and sigma_max above 0",
                std::to_string(sigma_min) + ", " + std::to_string(sigma_max));
  const float t_start = t_of(sigma_max), t_end = t_of(sigma_min);
  const int m = n / 3 + 1;
  const std::vector<float> ts = torch_linspace_f32(t_start, t_end, m + 1);
  std::vector<int> orders;
  if (n % 3 == 0) {
    orders.assign(size_t(std::max(m - 2, 0)), 3);
    orders.push_back(2);
    orders.push_back(1);
  } else {
    orders.assign(size_t(m - 1), 3);
    orders.push_back(n % 3);
  }
  DpmSolver solver(ctx);
  const float s_noise = static_cast<float>(o.s_noise);
  for (size_t i = 0; i < orders.size(); ++i) {
    solver.new_step();
    const float t = ts[i], t_next = ts[i + 1];
    const EtaSplit split = eta_split(t, t_next, t_end, o.eta);
    const Vec& e = solver.eps("eps", x, t);
    Vec denoised(x.size());
    const float sigma_t = sigma_of(t);
    for (size_t k = 0; k < x.size(); ++k) denoised[k] = x[k] - sigma_t * e[k];
    report(ctx, int(i), denoised);
    if (orders[i] == 1)
      x = solver.step1(x, t, split.t_next_);
    else if (orders[i] == 2)
      x = solver.step2(x, t, split.t_next_, 0.5);
    else
      x = solver.step3(x, t, split.t_next_);
    const Vec noise = randn_like(ctx, x);
    const float c = split.su * s_noise;
    for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + c * noise[k];
  }
  return x;
}

Vec sample_dpm_adaptive(const KSamplerContext& ctx, Vec x, float sigma_min, float sigma_max,
                        const KSamplerOptions& o) {
  if (!(sigma_min > 0) || !(sigma_max > 0))
    throw Error("", "DPM adaptive", "sigma_min and sigma_max above 0",
                std::to_string(sigma_min) + ", " + std::to_string(sigma_max));
  constexpr double kRtol = 0.05, kAtol = 0.0078, kHInit = 0.05, kAcceptSafety = 0.81;
  constexpr int kMaxAttempts = 10000;  // the controller always converges long before
  const float t_start = t_of(sigma_max), t_end = t_of(sigma_min);
  const float atol = static_cast<float>(kAtol), rtol = static_cast<float>(kRtol);
  // PIDStepSizeController(h, pcoeff 0, icoeff 1, dcoeff 0, order 1.5 with eta else 3).
  const double order = o.eta != 0.0 ? 1.5 : 3.0;
  const double b1 = 1.0 / order, b2 = -0.0 / order, b3 = 0.0 / order;
  double h = kHInit;
  std::vector<double> errs;
  DpmSolver solver(ctx);
  const float s_noise = static_cast<float>(o.s_noise);
  float s = t_start;
  Vec x_prev = x;
  int step = 0;
  for (int attempt = 0; s < t_end - 1e-5f; ++attempt) {
    if (attempt >= kMaxAttempts)
      throw Error("", "DPM adaptive", "convergence", std::to_string(attempt) + " attempts");
    solver.new_step();
    const float t = std::min(t_end, s + static_cast<float>(h));
    const EtaSplit split = eta_split(s, t, t_end, o.eta);
    const Vec& e = solver.eps("eps", x, s);
    Vec denoised(x.size());
    const float sigma_s = sigma_of(s);
    for (size_t k = 0; k < x.size(); ++k) denoised[k] = x[k] - sigma_s * e[k];
    const Vec x_low = solver.step2(x, s, split.t_next_, 1.0 / 3.0);
    const Vec x_high = solver.step3(x, s, split.t_next_);
    double sum_sq = 0;
    for (size_t k = 0; k < x.size(); ++k) {
      const float delta =
          std::max(atol, rtol * std::max(std::fabs(x_low[k]), std::fabs(x_prev[k])));
      const float q = (x_low[k] - x_high[k]) / delta;
      sum_sq += double(q) * double(q);
    }
    const float error = static_cast<float>(std::sqrt(sum_sq)) /
                        static_cast<float>(std::sqrt(static_cast<double>(x.size())));
    // propose_step
    const double inv_error = 1.0 / (static_cast<double>(error) + 1e-8);
    if (errs.empty()) errs.assign(3, inv_error);
    errs[0] = inv_error;
    double factor = std::pow(errs[0], b1) * std::pow(errs[1], b2) * std::pow(errs[2], b3);
    factor = 1.0 + std::atan(factor - 1.0);
    const bool accept = factor >= kAcceptSafety;
    if (accept) {
      errs[2] = errs[1];
      errs[1] = errs[0];
    }
    h *= factor;
    if (accept) {
      x_prev = x_low;
      const Vec noise = randn_like(ctx, x);
      const float c = split.su * s_noise;
      x = x_high;
      for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + c * noise[k];
      s = t;
      report(ctx, step++, denoised);
    }
  }
  return x;
}

Vec sample_restart(const KSamplerContext& ctx, Vec x, const std::vector<float>& sigmas_in,
                   const KSamplerOptions& o) {
  std::vector<float> sigmas = sigmas_in;
  const int steps = int(sigmas.size()) - 1;
  struct Restart {
    int steps, times, max_idx;
  };
  std::map<int, Restart> restarts;  // by the index of the sigma where the jump happens
  if (steps >= 20) {
    int restart_steps = 9, restart_times = 1;
    if (steps >= 36) {
      restart_steps = steps / 4;
      restart_times = 2;
    }
    ScheduleOptions karras;
    karras.sigma_min = sigmas[sigmas.size() - 2];
    karras.sigma_max = sigmas[0];
    sigmas =
        scheduler_sigmas(SchedulerKind::kKarras, steps - restart_steps * restart_times, karras);
    // {0.1: [restart_steps + 1, restart_times, 2]}, keyed by the sigma nearest 0.1.
    auto nearest = [&](float target) {
      int best = 0;
      float best_d = std::fabs(sigmas[0] - target);
      for (size_t k = 1; k < sigmas.size(); ++k) {
        const float d = std::fabs(sigmas[k] - target);
        if (d < best_d) best_d = d, best = int(k);
      }
      return best;
    };
    restarts[nearest(0.1f)] = {restart_steps + 1, restart_times, nearest(2.0f)};
  }
  std::vector<std::pair<float, float>> plan;
  for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
    plan.emplace_back(sigmas[i], sigmas[i + 1]);
    auto it = restarts.find(int(i) + 1);
    if (it == restarts.end()) continue;
    const int min_idx = int(i) + 1, max_idx = it->second.max_idx;
    if (max_idx < min_idx) {
      ScheduleOptions k;
      k.sigma_min = sigmas[size_t(min_idx)];
      k.sigma_max = sigmas[size_t(max_idx)];
      std::vector<float> sub = scheduler_sigmas(SchedulerKind::kKarras, it->second.steps, k);
      sub.pop_back();  // [:-1]
      for (int rep = 0; rep < it->second.times; ++rep)
        for (size_t k2 = 0; k2 + 1 < sub.size(); ++k2) plan.emplace_back(sub[k2], sub[k2 + 1]);
    }
  }
  const float s_noise = static_cast<float>(o.s_noise);
  bool have_last = false;
  float last_sigma = 0;
  int step = 0;
  for (const auto& [old_sigma, new_sigma] : plan) {
    if (!have_last) {
      last_sigma = old_sigma;
      have_last = true;
    } else if (last_sigma < old_sigma) {
      const Vec noise = randn_like(ctx, x);
      const float amount = std::sqrt(old_sigma * old_sigma - last_sigma * last_sigma);
      for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + noise[k] * s_noise * amount;
    }
    // heun_step
    const Vec denoised = denoise(ctx, x, old_sigma);
    const Vec d = to_d(x, old_sigma, denoised);
    report(ctx, step++, denoised);
    const float dt = new_sigma - old_sigma;
    if (new_sigma == 0) {
      x = add_scaled(x, d, dt);
    } else {
      const Vec x2 = add_scaled(x, d, dt);
      const Vec denoised2 = denoise(ctx, x2, new_sigma);
      const Vec d2 = to_d(x2, new_sigma, denoised2);
      for (size_t k = 0; k < x.size(); ++k) x[k] = x[k] + (d[k] + d2[k]) / 2.0f * dt;
    }
    last_sigma = new_sigma;
  }
  return x;
}

}  // namespace sdc::sampling::kdiff
