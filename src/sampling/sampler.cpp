// The sampler loop and each scheduler's step, in float32 with the operation order of diffusers'
// torch code (scalar coefficients as 0-dim float32 tensors, then elementwise updates).

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/sampler.h"

#include <cmath>
#include <string>

#include "common/error.h"
#include "sampling/noise_schedule.h"

namespace sdc::sampling {
namespace {

using Span = std::span<float>;
using CSpan = std::span<const float>;

// ---- DDIM / LCM: variance-preserving x_t -------------------------------------------------------

// x0 = (x - sqrt(1 - a_t) * eps) / sqrt(a_t)
void predict_x0(CSpan x, CSpan eps, float a_t, Span x0) {
  const float sqrt_b = std::sqrt(1.0f - a_t), sqrt_a = std::sqrt(a_t);
  for (size_t i = 0; i < x.size(); ++i) x0[i] = (x[i] - sqrt_b * eps[i]) / sqrt_a;
}

void ddim_step(Span x, CSpan eps, float a_t, float a_prev, Span x0) {
  predict_x0(x, eps, a_t, x0);
  const float c_x0 = std::sqrt(a_prev);
  const float c_eps = std::sqrt(1.0f - a_prev - 0.0f);  // eta 0: std_dev_t = 0
  for (size_t i = 0; i < x.size(); ++i) x[i] = c_x0 * x0[i] + c_eps * eps[i];
}

// LCMScheduler.get_scalings_for_boundary_condition_discrete: the timestep is an int64 tensor, so
// (10 t)^2 is exact in int64 and rounded to float when sigma_data^2 is added.
void lcm_scalings(int t, float* c_skip, float* c_out) {
  const int64_t scaled = static_cast<int64_t>(t) * static_cast<int64_t>(kLcmTimestepScaling);
  const float denom = static_cast<float>(scaled * scaled) + 0.25f;
  *c_skip = 0.25f / denom;
  *c_out = static_cast<float>(scaled) / std::sqrt(denom);
}

// ---- Euler family: k-diffusion x at noise level sigma ------------------------------------------

void euler_step(Span x, CSpan eps, float sigma, float sigma_next) {
  const float dt = sigma_next - sigma;
  for (size_t i = 0; i < x.size(); ++i) {
    const float x0 = x[i] - sigma * eps[i];
    const float derivative = (x[i] - x0) / sigma;
    x[i] = x[i] + derivative * dt;
  }
}

void euler_ancestral_step(Span x, CSpan eps, float sigma, float sigma_next,
                          const NoiseSource& noise_source, Span noise) {
  const float from2 = sigma * sigma, to2 = sigma_next * sigma_next;
  const float sigma_up = std::sqrt(to2 * (from2 - to2) / from2);
  const float sigma_down = std::sqrt(to2 - sigma_up * sigma_up);
  const float dt = sigma_down - sigma;
  for (size_t i = 0; i < x.size(); ++i) {
    const float x0 = x[i] - sigma * eps[i];
    const float derivative = (x[i] - x0) / sigma;
    x[i] = x[i] + derivative * dt;
  }
  noise_source(noise);
  for (size_t i = 0; i < x.size(); ++i) x[i] = x[i] + noise[i] * sigma_up;
}

// ---- DPM-Solver++ 2M: variance-preserving x_t, indexed by k-diffusion sigma ---------------------

struct VpPoint {
  float alpha, sigma, lambda;  // alpha_t, sigma_t, log(alpha_t) - log(sigma_t)
};

VpPoint vp_point(float k_sigma) {
  VpPoint p;
  p.alpha = 1.0f / std::sqrt(k_sigma * k_sigma + 1.0f);
  p.sigma = k_sigma * p.alpha;
  p.lambda = std::log(p.alpha) - std::log(p.sigma);  // +inf at sigma 0: exp(-h) becomes 0
  return p;
}

// First order (DDIM-like): x = (sigma_t / sigma_s) x - alpha_t (e^-h - 1) x0.
void dpm_first_order(Span x, CSpan x0, const VpPoint& s, const VpPoint& t) {
  const float h = t.lambda - s.lambda;
  const float c_x = t.sigma / s.sigma;
  const float c_d = t.alpha * (std::exp(-h) - 1.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = c_x * x[i] - c_d * x0[i];
}

// Second order multistep (midpoint): D1 = (m0 - m1) / r0, x = c_x x - c_d D0 - 0.5 c_d D1.
void dpm_second_order(Span x, CSpan m0, CSpan m1, const VpPoint& s1, const VpPoint& s0,
                      const VpPoint& t) {
  const float h = t.lambda - s0.lambda, h_0 = s0.lambda - s1.lambda;
  const float r0 = h_0 / h;
  const float inv_r0 = 1.0f / r0;
  const float c_x = t.sigma / s0.sigma;
  const float c_d = t.alpha * (std::exp(-h) - 1.0f);
  const float c_d1 = 0.5f * c_d;
  for (size_t i = 0; i < x.size(); ++i) {
    const float d1 = inv_r0 * (m0[i] - m1[i]);
    x[i] = c_x * x[i] - c_d * m0[i] - c_d1 * d1;
  }
}

// x0 from eps in VP form: (x - sigma_t eps) / alpha_t.
void dpm_x0(CSpan x, CSpan eps, const VpPoint& s, Span x0) {
  for (size_t i = 0; i < x.size(); ++i) x0[i] = (x[i] - s.sigma * eps[i]) / s.alpha;
}

void check_same_size(const char* what, size_t found, size_t expected) {
  if (found != expected)
    throw Error("", what, std::to_string(expected) + " values (as the latents)",
                std::to_string(found));
}

}  // namespace

NoiseSource noise_from(TorchGenerator& generator) {
  return [&generator](std::span<float> out) { generator.randn(out.data(), out.size()); };
}

NoiseSource noise_per_image(std::span<TorchGenerator> generators) {
  return [generators](std::span<float> out) {
    const size_t count = generators.size();
    if (count == 0 || out.size() % count != 0)
      throw Error("", "per-image noise",
                  "latents divisible into " + std::to_string(count) + " images",
                  std::to_string(out.size()) + " values");
    const size_t per_image = out.size() / count;
    for (size_t b = 0; b < count; ++b) generators[b].randn(out.data() + b * per_image, per_image);
  };
}

Sampler::Sampler(const SamplerSettings& settings)
    : settings_(settings),
      schedule_(make_schedule(settings.sampler, settings.schedule, settings.steps)) {}

std::vector<float> Sampler::txt2img_latents(std::vector<float> noise) const {
  for (float& v : noise) v = v * schedule_.init_noise_sigma;
  return noise;
}

int Sampler::img2img_first_step() const {
  return sampling::img2img_first_step(settings_.sampler, settings_.steps, settings_.strength);
}

std::vector<float> Sampler::img2img_latents(std::span<const float> init_latents,
                                            std::span<const float> noise) const {
  return noised_latents(init_latents, noise, img2img_first_step());
}

std::vector<float> Sampler::noised_latents(std::span<const float> init_latents,
                                           std::span<const float> noise, int first) const {
  check_same_size("img2img noise", noise.size(), init_latents.size());
  if (first < 0 || first > settings_.steps)
    throw Error("", "schedule index", "0.." + std::to_string(settings_.steps),
                std::to_string(first));
  if (first == settings_.steps) return {init_latents.begin(), init_latents.end()};
  std::vector<float> x(init_latents.size());
  if (uses_sigmas(settings_.sampler)) {
    const float sigma = schedule_.sigmas[first];
    for (size_t i = 0; i < x.size(); ++i) x[i] = init_latents[i] + noise[i] * sigma;
    if (settings_.sampler == SamplerKind::kDpmpp2m) {
      const float scale = std::sqrt(sigma * sigma + 1.0f);
      for (float& v : x) v = v / scale;
    }
  } else {
    const float a_t =
        NoiseSchedule::sd15().alphas_cumprod(static_cast<int>(schedule_.timesteps[first]));
    const float c_init = std::sqrt(a_t), c_noise = std::sqrt(1.0f - a_t);
    for (size_t i = 0; i < x.size(); ++i) x[i] = c_init * init_latents[i] + c_noise * noise[i];
  }
  return x;
}

std::vector<float> Sampler::run(std::vector<float> latents, int first_step,
                                const Denoiser& denoiser, TorchGenerator& generator,
                                const StepCallback& on_step) const {
  return run(std::move(latents), first_step, denoiser, noise_from(generator), on_step);
}

std::vector<float> Sampler::run(std::vector<float> latents, int first_step,
                                const Denoiser& denoiser, const NoiseSource& noise_source,
                                const StepCallback& on_step) const {
  const int steps = schedule_.steps;
  if (first_step < 0 || first_step >= steps)
    throw Error("", "sampler first step", "0 to " + std::to_string(steps - 1),
                std::to_string(first_step));
  if (latents.empty()) throw Error("", "sampler latents", "at least one value", "none");
  const NoiseSchedule& ns = NoiseSchedule::sd15();
  const SamplerKind kind = settings_.sampler;
  const size_t n = latents.size();
  Span x(latents);
  std::vector<float> model_in(n), eps(n), x0(n), noise(n), prev_x0;  // prev_x0: DPM's last x0
  const int total = steps - first_step;

  for (int i = first_step; i < steps; ++i) {
    const float t = schedule_.timesteps[i];

    // scale_model_input
    if (kind == SamplerKind::kEuler || kind == SamplerKind::kEulerA) {
      const float sigma = schedule_.sigmas[i];
      const float scale = std::sqrt(sigma * sigma + 1.0f);
      for (size_t k = 0; k < n; ++k) model_in[k] = x[k] / scale;
    } else {
      std::copy(x.begin(), x.end(), model_in.begin());
    }
    std::fill(eps.begin(), eps.end(), 0.0f);
    denoiser(model_in, t, eps);

    switch (kind) {
      case SamplerKind::kDdim: {
        const int t_int = static_cast<int>(t);
        const int prev_t = t_int - NoiseSchedule::kTrainSteps / steps;
        const float a_prev = ns.alphas_cumprod(prev_t >= 0 ? prev_t : 0);  // set_alpha_to_one false
        ddim_step(x, eps, ns.alphas_cumprod(t_int), a_prev, x0);
        break;
      }
      case SamplerKind::kLcm: {
        const int t_int = static_cast<int>(t);
        const int next_t = i + 1 < steps ? static_cast<int>(schedule_.timesteps[i + 1]) : t_int;
        float c_skip, c_out;
        lcm_scalings(t_int, &c_skip, &c_out);
        predict_x0(x, eps, ns.alphas_cumprod(t_int), x0);
        for (size_t k = 0; k < n; ++k) x[k] = c_out * x0[k] + c_skip * x[k];  // denoised
        if (i != steps - 1) {
          const float a_next = ns.alphas_cumprod(next_t);
          const float c_d = std::sqrt(a_next), c_noise = std::sqrt(1.0f - a_next);
          noise_source(noise);
          for (size_t k = 0; k < n; ++k) x[k] = c_d * x[k] + c_noise * noise[k];
        }
        break;
      }
      case SamplerKind::kEuler:
        euler_step(x, eps, schedule_.sigmas[i], schedule_.sigmas[i + 1]);
        break;
      case SamplerKind::kEulerA:
        euler_ancestral_step(x, eps, schedule_.sigmas[i], schedule_.sigmas[i + 1], noise_source,
                             noise);
        break;
      case SamplerKind::kDpmpp2m: {
        const VpPoint s0 = vp_point(schedule_.sigmas[i]);
        const VpPoint to = vp_point(schedule_.sigmas[i + 1]);
        dpm_x0(x, eps, s0, x0);
        // The first step of a run has no previous x0; the last one is first order too
        // (lower_order_final, and final_sigmas_type "zero" forces it).
        if (prev_x0.empty() || i == steps - 1) {
          dpm_first_order(x, x0, s0, to);
        } else {
          dpm_second_order(x, x0, prev_x0, vp_point(schedule_.sigmas[i - 1]), s0, to);
        }
        prev_x0 = x0;
        break;
      }
    }

    if (on_step) {
      StepProgress p;
      p.step = i - first_step + 1;
      p.total = total;
      p.schedule_index = i;
      p.timestep = t;
      p.latents = latents;
      on_step(p);
    }
  }
  return latents;
}

std::vector<float> run_sampler(const SamplerSettings& settings, std::vector<float> noise,
                               const Denoiser& denoiser, TorchGenerator& generator,
                               const StepCallback& on_step) {
  const Sampler sampler(settings);
  return sampler.run(sampler.txt2img_latents(std::move(noise)), 0, denoiser, generator, on_step);
}

std::vector<float> run_sampler_img2img(const SamplerSettings& settings,
                                       std::span<const float> init_latents,
                                       std::span<const float> noise, const Denoiser& denoiser,
                                       TorchGenerator& generator, const StepCallback& on_step) {
  const Sampler sampler(settings);
  return sampler.run(sampler.img2img_latents(init_latents, noise), sampler.img2img_first_step(),
                     denoiser, generator, on_step);
}

}  // namespace sdc::sampling
