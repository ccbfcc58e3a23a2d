// A1111's noise schedulers (modules/sd_schedulers.py, v1.10.1) for SD1.5: each turns a number of
// steps into the sigma list a k-diffusion sampler walks, exactly as A1111 computes it in float32
// (values checked against A1111's own output for every scheduler at 4, 7 and 20 steps).
//
//   uniform          DiscreteSchedule.get_sigmas(n): t = linspace(999, 0, n) -> sigma, then 0
//   karras           (max^(1/rho) + linspace(0, 1, n) (min^(1/rho) - max^(1/rho)))^rho, then 0
//   exponential      exp(linspace(log max, log min, n)), then 0
//   polyexponential  exp(linspace(1, 0, n)^rho (log max - log min) + log min), then 0
//   sgm_uniform      t = linspace(t(max), t(min), n + 1) without the last -> sigma, then 0
//   kl_optimal       tan(linspace(atan max, atan min, n + 1)): ends at sigma_min, not 0
//   align_your_steps NVIDIA's 11 SD1.5 sigmas, log-linearly resampled to n, then 0
//   simple           every (1000 / n)-th training sigma from the top, then 0
//   normal           t = linspace(t(max), t(min), n) -> sigma, then 0
//   ddim             training sigmas 1, 1 + 1000//n, ... (more than n when n does not divide
//                    1000), reversed, then 0
//   beta             min + ppf(1 - linspace(0, 1, n); alpha, beta) (max - min), then 0
//
// "Automatic" is not a function: it means the sampler's own default (see sampler_catalog.h).
#pragma once

#include <string>
#include <vector>

namespace sdc::sampling {

enum class SchedulerKind {
  kAutomatic,
  kUniform,
  kKarras,
  kExponential,
  kPolyexponential,
  kSgmUniform,
  kKlOptimal,
  kAlignYourSteps,
  kSimple,
  kNormal,
  kDdim,
  kBeta,
};

// A1111's option values that shape a schedule; 0 means "the model's / the scheduler's default".
struct ScheduleOptions {
  double sigma_min =
      0.0;  // opts.sigma_min (karras, exponential, polyexponential, kl_optimal, beta)
  double sigma_max = 0.0;   // opts.sigma_max
  double rho = 0.0;         // opts.rho: karras (default 7) and polyexponential (default 1)
  double beta_alpha = 0.6;  // opts.beta_dist_alpha
  double beta_beta = 0.6;   // opts.beta_dist_beta
};

struct SchedulerInfo {
  SchedulerKind kind;
  const char* name;   // A1111's id: "sgm_uniform"
  const char* label;  // A1111's label (UI, infotext "Schedule type"): "SGM Uniform"
  std::vector<std::string> aliases;
  double default_rho;  // -1: the scheduler takes no rho
};

// All 12, in A1111's order (Automatic first).
const std::vector<SchedulerInfo>& all_schedulers();
const SchedulerInfo& scheduler_info(SchedulerKind kind);

// The sigma list of `kind` (not kAutomatic) for `steps` steps: steps + 1 values, the last one 0
// (kl_optimal: sigma_min). With `discard_penultimate` (A1111's discard_next_to_last_sigma) the
// list is made for steps + 1 and its next-to-last value dropped. Throws sdc::UsageError for
// steps < 1 or options out of range.
std::vector<float> scheduler_sigmas(SchedulerKind kind, int steps, const ScheduleOptions& options,
                                    bool discard_penultimate = false);

}  // namespace sdc::sampling
