// A1111's txt2img/img2img sampling runs; see a1111_sampler.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/a1111_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <string>

#include "common/error.h"
#include "sampling/compvis_schedule.h"
#include "sampling/rng/brownian_tree.h"
#include "sampling/timestep_samplers.h"
#include "sampling/unipc.h"

namespace sdc::sampling {
namespace {

KSampler k_sampler_of(SamplerId id) {
  switch (id) {
    case SamplerId::kEulerA:
      return KSampler::kEulerAncestral;
    case SamplerId::kEuler:
      return KSampler::kEuler;
    case SamplerId::kLms:
      return KSampler::kLms;
    case SamplerId::kHeun:
      return KSampler::kHeun;
    case SamplerId::kDpm2:
      return KSampler::kDpm2;
    case SamplerId::kDpm2A:
      return KSampler::kDpm2Ancestral;
    case SamplerId::kDpmpp2sA:
      return KSampler::kDpmpp2sAncestral;
    case SamplerId::kDpmpp2m:
      return KSampler::kDpmpp2m;
    case SamplerId::kDpmppSde:
      return KSampler::kDpmppSde;
    case SamplerId::kDpmpp2mSde:
      return KSampler::kDpmpp2mSde;
    case SamplerId::kDpmpp2mSdeHeun:
      return KSampler::kDpmpp2mSdeHeun;
    case SamplerId::kDpmpp3mSde:
      return KSampler::kDpmpp3mSde;
    case SamplerId::kDpmFast:
      return KSampler::kDpmFast;
    case SamplerId::kDpmAdaptive:
      return KSampler::kDpmAdaptive;
    case SamplerId::kRestart:
      return KSampler::kRestart;
    case SamplerId::kLcm:
      return KSampler::kLcm;
    default:
      break;
  }
  throw Error("", "sampler", "a k-diffusion sampler", sampler_info(id).name);
}

// Python's repr of a float as A1111 writes option values: shortest round-trip, "0.6", "7.0".
std::string py_float(double v) {
  std::ostringstream os;
  os.precision(17);
  for (int p = 1; p <= 17; ++p) {
    std::ostringstream t;
    t.precision(p);
    t << v;
    if (std::stod(t.str()) == v) {
      std::string s = t.str();
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
      return s;
    }
  }
  os << v;
  return os.str();
}

int t_enc_of(int steps, double strength) {
  return static_cast<int>(std::min(strength, 0.999) * steps);
}

// A1111 hands the churn options to euler/heun/dpm2 only and s_noise to those plus the samplers
// listed in sampler_extra_params; the others run with k-diffusion's defaults.
KSamplerOptions k_options(const A1111Settings& s, const SamplerInfo& info) {
  KSamplerOptions o;
  o.eta = s.eta.value_or(1.0);
  if (info.uses_churn) {
    o.s_churn = s.s_churn;
    o.s_tmin = s.s_tmin;
    o.s_tmax = s.s_tmax == 0.0 ? std::numeric_limits<double>::infinity() : s.s_tmax;
  }
  if (info.uses_s_noise) o.s_noise = s.s_noise;
  return o;
}

}  // namespace

A1111Sampler::A1111Sampler(const A1111Settings& settings)
    : settings_(settings), info_(&sampler_info(settings.sampler)) {
  if (settings.steps < 1 || settings.steps > 1000)
    throw UsageError("", "--steps", "1 to 1000", std::to_string(settings.steps));
  const bool zero_ok = settings.img2img && settings.fix_steps;
  if (settings.img2img && !((settings.strength > 0.0 || (zero_ok && settings.strength == 0.0)) &&
                            settings.strength <= 1.0))
    throw UsageError("", "--strength", zero_ok ? "a number in [0, 1]" : "a number in (0, 1]",
                     std::to_string(settings.strength));
  if (settings.eta && !(*settings.eta >= 0.0 && std::isfinite(*settings.eta)))
    throw UsageError("", "--eta", "a number >= 0", std::to_string(*settings.eta));
  if (!(settings.s_noise >= 0.0) || !(settings.s_churn >= 0.0) || !(settings.s_tmin >= 0.0) ||
      !(settings.s_tmax >= 0.0))
    throw UsageError("", "--s-churn/--s-tmin/--s-tmax/--s-noise", "numbers >= 0",
                     "a negative value");
  if (info_->family != SamplerFamily::kKDiffusion &&
      settings.scheduler != SchedulerKind::kAutomatic)
    throw UsageError("", "--scheduler",
                     std::string("Automatic: ") + info_->name + " walks its own step list",
                     scheduler_info(settings.scheduler).label);
  // `steps`: the length of the schedule; t_enc: how much of it img2img runs.
  int steps = settings.steps;
  int t_enc = steps;
  if (settings.img2img && settings.fix_steps) {
    t_enc = settings.steps - 1;
    steps = settings.strength > 0.0
                ? static_cast<int>(settings.steps / std::min(settings.strength, 0.999))
                : 0;
  } else if (settings.img2img) {
    t_enc = t_enc_of(steps, settings.strength);
  }
  t_enc_ = t_enc;
  if (steps == 0) {
    // A schedule of no steps: sigmas [0], nothing runs and the init latents come back (A1111's
    // timestep, SDE and DPM fast/adaptive samplers fail on such a schedule instead).
    if (info_->family == SamplerFamily::kTimesteps || info_->brownian_noise ||
        settings.sampler == SamplerId::kDpmFast || settings.sampler == SamplerId::kDpmAdaptive)
      throw UsageError("", "--hires-denoise",
                       std::string("above 0 for ") + info_->name +
                           " (A1111 fails there too: its schedule has no steps)",
                       "0");
    full_sigmas_ = run_sigmas_ = {0.0f};
    return;
  }

  if (info_->family == SamplerFamily::kTimesteps) {
    full_timesteps_ = a1111_timesteps(steps);
    if (settings.img2img) {
      if (t_enc < 2)
        throw UsageError("", "--strength",
                         "at least 2 / steps for " + std::string(info_->name) +
                             " (int(strength * steps) timesteps, one step fewer)",
                         std::to_string(settings.strength));
      run_timesteps_.assign(full_timesteps_.begin(), full_timesteps_.begin() + t_enc);
    } else {
      run_timesteps_ = full_timesteps_;
    }
    if (settings.sampler == SamplerId::kUnipc) {
      // UniPC runs len(timesteps) steps of its own time grid, one evaluation each.
      if (run_timesteps_.size() < 3)
        throw UsageError("", "--steps", "at least 3 UniPC steps (its order)",
                         std::to_string(run_timesteps_.size()));
      planned_ = int(run_timesteps_.size());
      return;
    }
    planned_ = int(run_timesteps_.size()) - 1 + (settings.sampler == SamplerId::kPlms ? 1 : 0);
    return;
  }

  if (info_->family == SamplerFamily::kLcm) {
    full_sigmas_ = LcmDenoiser::sigmas(steps);
  } else {
    const SchedulerKind kind = effective_scheduler(*info_, settings.scheduler);
    if (kind == SchedulerKind::kAutomatic) {
      full_sigmas_ =
          CompVisSchedule::sd15().get_sigmas(info_->discard_next_to_last_sigma ? steps + 1 : steps);
      if (info_->discard_next_to_last_sigma) full_sigmas_.erase(full_sigmas_.end() - 2);
    } else {
      full_sigmas_ =
          scheduler_sigmas(kind, steps, settings.schedule, info_->discard_next_to_last_sigma);
    }
  }
  if (settings.img2img) {
    // A1111 indexes the schedule with `steps`; schedulers that give more (DDIM with steps not
    // dividing 1000) start that much later.
    const size_t first = size_t(std::max(0, steps - t_enc - 1));
    if (first + 1 >= full_sigmas_.size())
      throw UsageError("", "--strength", "a strength leaving at least one step",
                       std::to_string(settings.strength));
    run_sigmas_.assign(full_sigmas_.begin() + long(first), full_sigmas_.end());
  } else {
    run_sigmas_ = full_sigmas_;
  }
  // Count the model evaluations with a dry run on one value (DPM adaptive decides while running).
  if (settings.sampler != SamplerId::kDpmAdaptive) {
    KSamplerContext dry;
    dry.denoise = [&](std::span<const float>, float, std::span<float> out) {
      std::fill(out.begin(), out.end(), 0.0f);
      ++planned_;
    };
    dry.randn = [](std::span<float> out) { std::fill(out.begin(), out.end(), 0.0f); };
    dry.brownian = [](float, float, std::span<float> out) {
      std::fill(out.begin(), out.end(), 0.0f);
    };
    const float smin = CompVisSchedule::sd15().sigma_min(), smax = run_sigmas_.front();
    run_k_sampler(k_sampler_of(settings.sampler), {1.0f}, run_sigmas_, dry,
                  k_options(settings, *info_), smin, smax);
  }
}

std::vector<float> A1111Sampler::start(std::span<const float> noise,
                                       std::span<const float> init) const {
  if (settings_.img2img && init.size() != noise.size())
    throw Error("", "img2img init latents", std::to_string(noise.size()) + " values",
                std::to_string(init.size()));
  std::vector<float> x(noise.size());
  if (info_->family == SamplerFamily::kTimesteps) {
    if (!settings_.img2img) return std::vector<float>(noise.begin(), noise.end());
    return timestep_img2img_start(init, noise, full_timesteps_[size_t(t_enc_)]);
  }
  const float s0 = run_sigmas_.front();
  for (size_t k = 0; k < x.size(); ++k)
    x[k] = settings_.img2img ? init[k] + noise[k] * s0 : noise[k] * s0;
  return x;
}

void LatentBlend::apply(std::span<float> x) const {
  const size_t plane = nmask.size();
  if (plane == 0 || x.size() != init.size() || x.size() % plane != 0)
    throw Error("", "inpainting blend", std::to_string(init.size()) + " latent values",
                std::to_string(x.size()));
  for (size_t k = 0; k < x.size(); ++k) {
    const float n = nmask[k % plane];
    const float m = 1.0f - n;
    x[k] = x[k] * n + init[k] * m;
  }
}

std::vector<float> A1111Sampler::run(std::vector<float> x, const UnetEps& unet, ImageRng& rng,
                                     const EvaluationCallback& on_eval,
                                     const DenoisedCallback& on_step,
                                     const LatentBlend* blend) const {
  if (info_->family != SamplerFamily::kTimesteps && run_sigmas_.size() < 2) return x;
  int done = 0;
  std::vector<float> blended;
  const bool blend_input = blend && info_->family == SamplerFamily::kTimesteps;
  UnetEps counted = [&](std::span<const float> x_in, float t, std::span<float> c,
                        std::span<float> u) {
    if (blend_input) {
      blended.assign(x_in.begin(), x_in.end());
      blend->apply(blended);
      unet(blended, t, c, u);
    } else {
      unet(x_in, t, c, u);
    }
    ++done;
    if (on_eval) on_eval(done, planned_);
  };
  if (info_->family == SamplerFamily::kTimesteps) {
    const bool cfgpp = settings_.sampler == SamplerId::kDdimCfgpp;
    const TimestepEpsModel model(counted, settings_.cfg_scale, cfgpp);
    TimestepSamplerContext ctx;
    ctx.eps = [&](std::span<const float> in, float t, std::span<float> e, std::span<float> eu) {
      model(in, t, e, eu);
    };
    ctx.randn = [&](std::span<float> out) { rng.next(out); };
    ctx.on_step = on_step;
    if (settings_.sampler == SamplerId::kUnipc) {
      // img2img: from timesteps[-1] / 1000 + 1 / 1000 of the sliced list.
      std::optional<float> t_start;
      if (settings_.img2img)
        t_start = static_cast<float>(run_timesteps_.back()) / 1000.0f + static_cast<float>(0.001);
      return run_unipc(std::move(x), int(run_timesteps_.size()), t_start, ctx);
    }
    const TimestepSampler which = settings_.sampler == SamplerId::kPlms ? TimestepSampler::kPlms
                                  : cfgpp ? TimestepSampler::kDdimCfgpp
                                          : TimestepSampler::kDdim;
    return run_timestep_sampler(which, std::move(x), run_timesteps_, ctx,
                                settings_.eta.value_or(0.0));
  }

  KSamplerContext ctx;
  std::unique_ptr<KDiffusionDenoiser> kd;
  std::unique_ptr<LcmDenoiser> lcm;
  if (info_->family == SamplerFamily::kLcm) {
    lcm = std::make_unique<LcmDenoiser>(counted, settings_.cfg_scale);
    ctx.denoise = [&](std::span<const float> in, float s, std::span<float> out) {
      (*lcm)(in, s, out);
      if (blend) blend->apply(out);
    };
  } else {
    kd = std::make_unique<KDiffusionDenoiser>(counted, settings_.cfg_scale, settings_.quantize);
    ctx.denoise = [&](std::span<const float> in, float s, std::span<float> out) {
      (*kd)(in, s, out);
      if (blend) blend->apply(out);
    };
  }
  ctx.randn = [&](std::span<float> out) { rng.next(out); };
  ctx.on_step = on_step;
  std::unique_ptr<BrownianNoiseSampler> brownian;
  if (info_->brownian_noise) {
    float smin = std::numeric_limits<float>::infinity(), smax = 0.0f;
    for (float s : full_sigmas_) {
      if (s > 0.0f) smin = std::min(smin, s);
      smax = std::max(smax, s);
    }
    const size_t images = rng.seeds().size();
    if (images == 0 || x.size() % images != 0)
      throw Error("", "latents", "a multiple of the image count", std::to_string(x.size()));
    brownian = std::make_unique<BrownianNoiseSampler>(x.size() / images, smin, smax, rng.seeds(),
                                                      rng.seeded_randn());
    ctx.brownian = [&](float s, float sn, std::span<float> out) { (*brownian)(s, sn, out); };
  }
  // DPM fast/adaptive: the model's sigma range for txt2img, the sliced schedule's for img2img.
  const CompVisSchedule& m = CompVisSchedule::sd15();
  const float smin = settings_.img2img ? run_sigmas_[run_sigmas_.size() - 2] : m.sigma_min();
  const float smax = settings_.img2img ? run_sigmas_.front() : m.sigma_max();
  return run_k_sampler(k_sampler_of(settings_.sampler), std::move(x), run_sigmas_, ctx,
                       k_options(settings_, *info_), smin, smax);
}

std::string A1111Sampler::schedule_type_label() const {
  if (info_->family != SamplerFamily::kKDiffusion) return "Automatic";
  return scheduler_info(effective_scheduler(*info_, settings_.scheduler)).label;
}

std::vector<std::pair<std::string, std::string>> A1111Sampler::extra_infotext() const {
  std::vector<std::pair<std::string, std::string>> f;
  const SchedulerKind kind = info_->family == SamplerFamily::kKDiffusion
                                 ? effective_scheduler(*info_, settings_.scheduler)
                                 : SchedulerKind::kAutomatic;
  const CompVisSchedule& m = CompVisSchedule::sd15();
  const bool takes_range = kind == SchedulerKind::kKarras || kind == SchedulerKind::kExponential ||
                           kind == SchedulerKind::kPolyexponential ||
                           kind == SchedulerKind::kSgmUniform ||
                           kind == SchedulerKind::kKlOptimal || kind == SchedulerKind::kNormal ||
                           kind == SchedulerKind::kBeta;
  if (takes_range && settings_.schedule.sigma_min != 0.0 &&
      settings_.schedule.sigma_min != double(m.sigma_min()))
    f.emplace_back("Schedule min sigma", py_float(settings_.schedule.sigma_min));
  if (takes_range && settings_.schedule.sigma_max != 0.0 &&
      settings_.schedule.sigma_max != double(m.sigma_max()))
    f.emplace_back("Schedule max sigma", py_float(settings_.schedule.sigma_max));
  if (kind != SchedulerKind::kAutomatic && scheduler_info(kind).default_rho != -1.0 &&
      settings_.schedule.rho != 0.0)
    f.emplace_back("Schedule rho", py_float(settings_.schedule.rho));
  if (kind == SchedulerKind::kBeta) {
    f.emplace_back("Beta schedule alpha", py_float(settings_.schedule.beta_alpha));
    f.emplace_back("Beta schedule beta", py_float(settings_.schedule.beta_beta));
  }
  if (info_->uses_eta && settings_.eta) {
    if (info_->family == SamplerFamily::kTimesteps) {
      if (*settings_.eta != 0.0) f.emplace_back("Eta DDIM", py_float(*settings_.eta));
    } else if (*settings_.eta != 1.0) {
      f.emplace_back("Eta", py_float(*settings_.eta));
    }
  }
  if (info_->uses_churn) {
    if (settings_.s_churn != 0.0) f.emplace_back("Sigma churn", py_float(settings_.s_churn));
    if (settings_.s_tmin != 0.0) f.emplace_back("Sigma tmin", py_float(settings_.s_tmin));
    if (settings_.s_tmax != 0.0) f.emplace_back("Sigma tmax", py_float(settings_.s_tmax));
  }
  if (info_->uses_s_noise && settings_.s_noise != 1.0)
    f.emplace_back("Sigma noise", py_float(settings_.s_noise));
  return f;
}

}  // namespace sdc::sampling
