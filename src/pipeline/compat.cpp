// Request -> sampler settings for each compat side; see compat.h.

#include "pipeline/compat.h"

#include <cctype>
#include <cmath>

#include "common/error.h"
#include "sampling/sampler_catalog.h"
#include "sampling/sampler_kind.h"

namespace sdc::pipeline {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string num(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void check_non_negative(const char* key, double v) {
  if (!std::isfinite(v) || v < 0.0) throw UsageError("", key, "a number >= 0", num(v));
}

}  // namespace

Compat parse_compat(const std::string& name) {
  const std::string l = lower(name);
  if (l == "a1111") return Compat::kA1111;
  if (l == "diffusers") return Compat::kDiffusers;
  throw UsageError("", "--compat", "a1111 (same image as A1111/Forge) or diffusers", name);
}

sampling::RngSource rng_source(const GenerationRequest& r) {
  const Compat c = compat_of(r);
  if (r.rng.empty())
    return c == Compat::kA1111 ? sampling::RngSource::kNv : sampling::RngSource::kCpu;
  const sampling::RngSource s = sampling::parse_rng_source(r.rng);
  if (c == Compat::kDiffusers && s != sampling::RngSource::kCpu)
    throw UsageError("", "--rng", "cpu with --compat diffusers", r.rng);
  return s;
}

sampling::A1111Settings a1111_settings(const GenerationRequest& r) {
  const sampling::ResolvedSampler resolved = sampling::resolve_sampler(r.sampler);
  sampling::A1111Settings s;
  s.sampler = resolved.sampler->id;
  s.scheduler = sampling::resolve_scheduler(r.scheduler);
  if (s.scheduler == sampling::SchedulerKind::kAutomatic && resolved.scheduler)
    s.scheduler = *resolved.scheduler;
  s.steps = r.steps;
  s.cfg_scale = r.cfg_scale;
  check_non_negative("--sigma-min", r.sigma_min);
  check_non_negative("--sigma-max", r.sigma_max);
  check_non_negative("--rho", r.rho);
  check_non_negative("--s-churn", r.s_churn);
  check_non_negative("--s-tmin", r.s_tmin);
  check_non_negative("--s-tmax", r.s_tmax);
  check_non_negative("--s-noise", r.s_noise);
  if (r.eta) check_non_negative("--eta", *r.eta);
  if (r.ensd < 0) throw UsageError("", "--ensd", "0 or more", std::to_string(r.ensd));
  s.schedule.sigma_min = r.sigma_min;
  s.schedule.sigma_max = r.sigma_max;
  s.schedule.rho = r.rho;
  s.eta = r.eta;
  s.s_churn = r.s_churn;
  s.s_tmin = r.s_tmin;
  s.s_tmax = r.s_tmax;
  s.s_noise = r.s_noise;
  s.img2img = is_img2img(r);
  s.strength = r.strength;
  s.fix_steps = r.img2img_fix_steps;
  return s;
}

sampling::SamplerSettings diffusers_settings(const GenerationRequest& r) {
  // A1111-only options have no meaning here: refuse them rather than ignore them.
  if (r.eta || r.s_churn != 0.0 || r.s_tmin != 0.0 || r.s_tmax != 0.0 || r.s_noise != 1.0 ||
      r.ensd != 0 || r.sigma_min != 0.0 || r.sigma_max != 0.0 || r.rho != 0.0)
    throw UsageError("", "--compat",
                     "a1111 for --eta/--s-churn/--s-tmin/--s-tmax/--s-noise/--ensd/--sigma-min/"
                     "--sigma-max/--rho",
                     r.compat);
  sampling::SamplerSettings s;
  sampling::ScheduleKind schedule = sampling::parse_schedule(r.scheduler);
  try {
    s.sampler = sampling::parse_sampler(r.sampler);
  } catch (const UsageError&) {
    // A1111 names of the five diffusers samplers.
    const sampling::ResolvedSampler a = sampling::resolve_sampler(r.sampler);
    using sampling::SamplerId;
    using sampling::SamplerKind;
    switch (a.sampler->id) {
      case SamplerId::kEulerA:
        s.sampler = SamplerKind::kEulerA;
        break;
      case SamplerId::kEuler:
        s.sampler = SamplerKind::kEuler;
        break;
      case SamplerId::kDdim:
        s.sampler = SamplerKind::kDdim;
        break;
      case SamplerId::kLcm:
        s.sampler = SamplerKind::kLcm;
        break;
      case SamplerId::kDpmpp2m:
        s.sampler = SamplerKind::kDpmpp2m;
        break;
      default:
        throw UsageError("", "--sampler",
                         "lcm, ddim, euler, euler_a or dpmpp_2m with --compat diffusers",
                         r.sampler);
    }
    if (a.scheduler) {
      if (*a.scheduler != sampling::SchedulerKind::kKarras)
        throw UsageError("", "--sampler", "no scheduler suffix but Karras with --compat diffusers",
                         r.sampler);
      schedule = sampling::ScheduleKind::kKarras;
    }
  }
  s.schedule = schedule;
  s.steps = r.steps;
  s.strength = is_img2img(r) ? r.strength : 1.0;
  return s;
}

void validate_sampling(const GenerationRequest& r) {
  rng_source(r);
  if (compat_of(r) == Compat::kA1111)
    sampling::A1111Sampler{a1111_settings(r)};
  else
    sampling::Sampler{diffusers_settings(r)};
}

SamplerDescription describe_sampling(const GenerationRequest& r) {
  SamplerDescription d;
  d.rng = sampling::rng_infotext_name(rng_source(r));
  if (compat_of(r) == Compat::kDiffusers) {
    const sampling::SamplerSettings s = diffusers_settings(r);
    d.sampler = sampling::a1111_sampler_name(s.sampler, s.schedule);
    return d;
  }
  const sampling::A1111Sampler run(a1111_settings(r));
  d.sampler = run.info().name;
  d.schedule_type = run.schedule_type_label();
  d.extra = run.extra_infotext();
  if (run.info().uses_ensd) d.ensd = r.ensd;
  return d;
}

}  // namespace sdc::pipeline
