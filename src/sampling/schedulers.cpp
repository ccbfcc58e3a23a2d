// A1111's schedulers in PyTorch/numpy arithmetic; see schedulers.h. Each line says which
// precision A1111 computes in: Python floats and numpy are float64, torch tensors float32 (a
// Python float meeting a float32 tensor is rounded to float32 first).

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/schedulers.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "sampling/beta_distribution.h"
#include "sampling/compvis_schedule.h"
#include "sampling/torch_float.h"

namespace sdc::sampling {
namespace {

using Sigmas = std::vector<float>;

Sigmas append_zero(Sigmas s) {
  s.push_back(0.0f);
  return s;
}

Sigmas karras(int n, double sigma_min, double sigma_max, double rho) {
  const double min_inv_rho = std::pow(sigma_min, 1.0 / rho);  // Python floats
  const double max_inv_rho = std::pow(sigma_max, 1.0 / rho);
  const float span = static_cast<float>(min_inv_rho - max_inv_rho);
  const float top = static_cast<float>(max_inv_rho);
  Sigmas out;
  for (float r : torch_linspace_f32(0.0f, 1.0f, n)) out.push_back(top + r * span);
  torch_pow_f32(out, rho);
  return append_zero(std::move(out));
}

Sigmas exponential(int n, double sigma_min, double sigma_max) {
  Sigmas out = torch_linspace_f32(static_cast<float>(std::log(sigma_max)),
                                  static_cast<float>(std::log(sigma_min)), n);
  torch_exp_f32(out);
  return append_zero(std::move(out));
}

Sigmas polyexponential(int n, double sigma_min, double sigma_max, double rho) {
  const float span = static_cast<float>(std::log(sigma_max) - std::log(sigma_min));
  const float low = static_cast<float>(std::log(sigma_min));
  Sigmas out = torch_linspace_f32(1.0f, 0.0f, n);
  torch_pow_f32(out, rho);
  for (float& r : out) r = r * span + low;
  torch_exp_f32(out);
  return append_zero(std::move(out));
}

// sgm_uniform (n + 1 points, the last dropped) and normal (n points): evenly spaced continuous
// timesteps between those of sigma_max and sigma_min.
Sigmas timestep_spaced(int n, double sigma_min, double sigma_max, bool sgm) {
  const CompVisSchedule& m = CompVisSchedule::sd15();
  const float start = m.sigma_to_t(static_cast<float>(sigma_max));
  const float end = m.sigma_to_t(static_cast<float>(sigma_min));
  std::vector<float> ts = torch_linspace_f32(start, end, sgm ? n + 1 : n);
  if (sgm) ts.pop_back();
  Sigmas out;
  for (float t : ts) out.push_back(m.t_to_sigma(t));
  return append_zero(std::move(out));
}

Sigmas kl_optimal(int n, double sigma_min, double sigma_max) {
  const float alpha_min = std::atan(static_cast<float>(sigma_min));
  const float alpha_max = std::atan(static_cast<float>(sigma_max));
  Sigmas out;
  for (int i = 0; i <= n; ++i) {
    const float frac = static_cast<float>(i) / static_cast<float>(n);  // int64 / int -> float32
    out.push_back(frac * alpha_min + (1.0f - frac) * alpha_max);
  }
  torch_tan_f32(out);
  return out;
}

Sigmas align_your_steps(int n) {
  // NVIDIA's published SD1.5 sigmas (research.nvidia.com/labs/toronto-ai/AlignYourSteps).
  static const std::vector<double> kSd15 = {14.615, 6.475, 3.861, 2.697, 1.886, 1.396,
                                            0.963,  0.652, 0.399, 0.152, 0.029};
  std::vector<double> values;
  if (static_cast<size_t>(n) == kSd15.size()) {
    values = kSd15;
  } else {
    // numpy: xs = linspace(0, 1, 11), ys = log(reversed sigmas), interp at linspace(0, 1, n),
    // exp, reversed back.
    const int k = static_cast<int>(kSd15.size());
    const std::vector<double> xs = numpy_linspace(0.0, 1.0, k);
    std::vector<double> ys(kSd15.size());
    for (int i = 0; i < k; ++i) ys[i] = std::log(kSd15[static_cast<size_t>(k - 1 - i)]);
    for (double x : numpy_linspace(0.0, 1.0, n)) {
      double y;
      if (x >= xs.back()) {
        y = ys.back();
      } else if (x <= xs.front()) {
        y = ys.front();
      } else {
        int j = static_cast<int>(std::upper_bound(xs.begin(), xs.end(), x) - xs.begin()) - 1;
        if (xs[j] == x) {
          y = ys[j];
        } else {
          const double slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]);
          y = slope * (x - xs[j]) + ys[j];
        }
      }
      values.push_back(std::exp(y));
    }
    std::reverse(values.begin(), values.end());
  }
  Sigmas out;
  for (double v : values) out.push_back(static_cast<float>(v));
  return append_zero(std::move(out));
}

Sigmas simple(int n) {
  const std::vector<float>& s = CompVisSchedule::sd15().sigmas();
  const double ss = static_cast<double>(s.size()) / n;
  Sigmas out;
  for (int x = 0; x < n; ++x) {
    const size_t back = 1 + static_cast<size_t>(x * ss);
    out.push_back(s[s.size() - back]);
  }
  return append_zero(std::move(out));
}

Sigmas ddim(int n) {
  const std::vector<float>& s = CompVisSchedule::sd15().sigmas();
  const size_t ss = std::max<size_t>(s.size() / static_cast<size_t>(n), 1);
  Sigmas out;
  for (size_t x = 1; x < s.size(); x += ss) out.push_back(s[x]);
  std::reverse(out.begin(), out.end());
  return append_zero(std::move(out));
}

Sigmas beta(int n, double sigma_min, double sigma_max, double alpha, double beta_param) {
  Sigmas out;
  for (double x : numpy_linspace(0.0, 1.0, n)) {
    const double q = beta_ppf(1.0 - x, alpha, beta_param);
    out.push_back(static_cast<float>(sigma_min + q * (sigma_max - sigma_min)));
  }
  return append_zero(std::move(out));
}

void check_positive(const char* key, double value) {
  if (!(value > 0.0) || !std::isfinite(value))
    throw UsageError("", key, "a positive number", std::to_string(value));
}

}  // namespace

const std::vector<SchedulerInfo>& all_schedulers() {
  static const std::vector<SchedulerInfo> kAll = {
      {SchedulerKind::kAutomatic, "automatic", "Automatic", {}, -1.0},
      {SchedulerKind::kUniform, "uniform", "Uniform", {}, -1.0},
      {SchedulerKind::kKarras, "karras", "Karras", {}, 7.0},
      {SchedulerKind::kExponential, "exponential", "Exponential", {}, -1.0},
      {SchedulerKind::kPolyexponential, "polyexponential", "Polyexponential", {}, 1.0},
      {SchedulerKind::kSgmUniform, "sgm_uniform", "SGM Uniform", {"SGMUniform"}, -1.0},
      {SchedulerKind::kKlOptimal, "kl_optimal", "KL Optimal", {}, -1.0},
      {SchedulerKind::kAlignYourSteps, "align_your_steps", "Align Your Steps", {}, -1.0},
      {SchedulerKind::kSimple, "simple", "Simple", {}, -1.0},
      {SchedulerKind::kNormal, "normal", "Normal", {}, -1.0},
      {SchedulerKind::kDdim, "ddim", "DDIM", {}, -1.0},
      {SchedulerKind::kBeta, "beta", "Beta", {}, -1.0},
  };
  return kAll;
}

const SchedulerInfo& scheduler_info(SchedulerKind kind) {
  for (const SchedulerInfo& s : all_schedulers())
    if (s.kind == kind) return s;
  throw Error("", "scheduler", "a known scheduler kind", std::to_string(static_cast<int>(kind)));
}

std::vector<float> scheduler_sigmas(SchedulerKind kind, int steps, const ScheduleOptions& options,
                                    bool discard_penultimate) {
  if (steps < 1) throw UsageError("", "--steps", "at least 1", std::to_string(steps));
  const int n = discard_penultimate ? steps + 1 : steps;
  const CompVisSchedule& model = CompVisSchedule::sd15();
  // A1111 passes the model's sigma range as Python floats unless the options override it.
  const double sigma_min = options.sigma_min != 0.0 ? options.sigma_min : model.sigma_min();
  const double sigma_max = options.sigma_max != 0.0 ? options.sigma_max : model.sigma_max();
  check_positive("--sigma-min", sigma_min);
  check_positive("--sigma-max", sigma_max);
  if (sigma_min >= sigma_max)
    throw UsageError("", "--sigma-min", "less than sigma max (" + std::to_string(sigma_max) + ")",
                     std::to_string(sigma_min));
  const double default_rho = scheduler_info(kind).default_rho;
  const double rho = options.rho != 0.0 && default_rho != -1.0 ? options.rho : default_rho;
  if (default_rho != -1.0) check_positive("--rho", rho);

  Sigmas s;
  switch (kind) {
    case SchedulerKind::kAutomatic:
      throw Error("", "scheduler", "a concrete scheduler (Automatic is resolved per sampler)",
                  "automatic");
    case SchedulerKind::kUniform:
      s = model.get_sigmas(n);
      break;
    case SchedulerKind::kKarras:
      s = karras(n, sigma_min, sigma_max, rho);
      break;
    case SchedulerKind::kExponential:
      s = exponential(n, sigma_min, sigma_max);
      break;
    case SchedulerKind::kPolyexponential:
      s = polyexponential(n, sigma_min, sigma_max, rho);
      break;
    case SchedulerKind::kSgmUniform:
      s = timestep_spaced(n, sigma_min, sigma_max, true);
      break;
    case SchedulerKind::kKlOptimal:
      s = kl_optimal(n, sigma_min, sigma_max);
      break;
    case SchedulerKind::kAlignYourSteps:
      s = align_your_steps(n);
      break;
    case SchedulerKind::kSimple:
      s = simple(n);
      break;
    case SchedulerKind::kNormal:
      s = timestep_spaced(n, sigma_min, sigma_max, false);
      break;
    case SchedulerKind::kDdim:
      s = ddim(n);
      break;
    case SchedulerKind::kBeta:
      check_positive("--beta-alpha", options.beta_alpha);
      check_positive("--beta-beta", options.beta_beta);
      s = beta(n, sigma_min, sigma_max, options.beta_alpha, options.beta_beta);
      break;
  }
  if (discard_penultimate && s.size() >= 2) s.erase(s.end() - 2);
  return s;
}

}  // namespace sdc::sampling
