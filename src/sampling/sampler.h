// The denoising loop of every sampler, independent of any network: the caller supplies a Denoiser
// (the UNet's epsilon prediction, classifier-free guidance already combined) and the sampler does
// the rest as diffusers 0.28's StableDiffusion(Img2Img)Pipeline + scheduler do for SD1.5:
// scale_model_input, the timestep handed to the model, scheduler.step, and every extra randn the
// scheduler draws from the same generator.
//
// Latents are NCHW float32 of any batch (every operation is elementwise); they stay in diffusers'
// space throughout: for euler/euler_a the k-diffusion "x" (noise scale sigma), for ddim, lcm and
// dpmpp_2m the variance-preserving x_t. The final latents are the denoised SD latents (divide by
// the VAE scaling factor 0.18215 before decoding).
//
// Per step i (t = schedule.timesteps[i], sigma = schedule.sigmas[i], a = alphas_cumprod):
//   model input  euler, euler_a: x / sqrt(sigma^2 + 1); the others: x
//   ddim         x0 = (x - sqrt(1 - a_t) eps) / sqrt(a_t); x = sqrt(a_p) x0 + sqrt(1 - a_p) eps
//                with p = t - 1000 // steps (a_0 when p < 0); eta 0
//   lcm          x0 as ddim; denoised = c_out x0 + c_skip x (c from 10 t, sigma_data 0.5);
//                x = sqrt(a_n) denoised + sqrt(1 - a_n) randn, n the next timestep; the last
//                step returns denoised (no noise, no draw)
//   euler        x += (x - x0) / sigma * (sigma_next - sigma), x0 = x - sigma eps
//                (diffusers also draws an unused randn per step; sdc does not)
//   euler_a      x += (x - x0) / sigma * (sigma_down - sigma) + randn * sigma_up
//   dpmpp_2m     DPM-Solver++ (midpoint) on x_t with alpha = 1 / sqrt(sigma^2 + 1): first order
//                on the first step of a run and on the last (lower_order_final, final sigma 0),
//                second order otherwise
//
// Noise drawn during run() (one latent-sized randn each): lcm steps - 1 - first_step, euler_a
// steps - first_step, the others none. The caller draws the initial noise (txt2img: 1 + those in
// all, as diffusers; img2img: diffusers draws the VAE posterior sample, then the noise).
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "sampling/rng/torch_generator.h"
#include "sampling/sampler_kind.h"
#include "sampling/schedule.h"

namespace sdc::sampling {

// Writes the noise prediction for model input `x_in` at `timestep` into `eps_out` (same size).
using Denoiser =
    std::function<void(std::span<const float> x_in, float timestep, std::span<float> eps_out)>;

struct StepProgress {
  int step = 0;            // steps done in this run: 1..total
  int total = 0;           // denoiser calls in this run
  int schedule_index = 0;  // index in Schedule::timesteps of the step just taken
  float timestep = 0;      // its timestep
  // The latents after it (diffusers' `latents` after step()). The callback may change them in
  // place before the next step (inpainting blends the unmasked area back in).
  std::span<float> latents;
};
using StepCallback = std::function<void(const StepProgress&)>;

// Where the sampler's own noise (lcm, euler_a) comes from: fills `out`, the size of the latents,
// with standard normal values.
using NoiseSource = std::function<void(std::span<float> out)>;
// diffusers: one torch.randn of the whole (batched) latent tensor from one generator.
NoiseSource noise_from(TorchGenerator& generator);
// A1111-style batches (image b seeded with seed + b): image b's equal slice of the latents from
// generators[b]. The generators must outlive the NoiseSource.
NoiseSource noise_per_image(std::span<TorchGenerator> generators);

struct SamplerSettings {
  SamplerKind sampler = SamplerKind::kEulerA;
  ScheduleKind schedule = ScheduleKind::kDefault;
  int steps = 20;
  // img2img denoising strength in (0, 1]; see img2img_first_step() in schedule.h for what it
  // means per sampler. Ignored by txt2img.
  double strength = 1.0;
};

class Sampler {
 public:
  // Builds the schedule; throws sdc::UsageError for invalid settings.
  explicit Sampler(const SamplerSettings& settings);

  const SamplerSettings& settings() const { return settings_; }
  const Schedule& schedule() const { return schedule_; }

  // txt2img start: `noise` is the caller's randn draw of the latent shape; returns
  // noise * init_noise_sigma (run it from step 0).
  std::vector<float> txt2img_latents(std::vector<float> noise) const;

  // img2img: the first step (from settings().strength) and the start latents from the encoded
  // init latents (already x 0.18215) and a randn draw of the same size:
  //   ddim, lcm:                  diffusers add_noise at t = timesteps[first]:
  //                               sqrt(a_t) init + sqrt(1 - a_t) noise
  //   euler, euler_a:             A1111: init + noise * sigmas[first]
  //   dpmpp_2m:                   A1111's k-diffusion start, expressed in diffusers' VP space:
  //                               (init + noise * sigma) / sqrt(sigma^2 + 1), sigma = sigmas[first]
  int img2img_first_step() const;
  std::vector<float> img2img_latents(std::span<const float> init_latents,
                                     std::span<const float> noise) const;
  // The same noising at any schedule index (0..steps; `steps` = after the last step: the clean
  // latents). Inpainting re-noises the original latents with it at the next step's noise level.
  std::vector<float> noised_latents(std::span<const float> clean, std::span<const float> noise,
                                    int schedule_index) const;

  // Runs steps first_step .. steps-1 on `latents` and returns the final latents. Draws the
  // sampler's own noise from `generator`. `on_step` (optional) is called after every step; it may
  // throw to cancel.
  std::vector<float> run(std::vector<float> latents, int first_step, const Denoiser& denoiser,
                         TorchGenerator& generator, const StepCallback& on_step = {}) const;
  std::vector<float> run(std::vector<float> latents, int first_step, const Denoiser& denoiser,
                         const NoiseSource& noise, const StepCallback& on_step = {}) const;

 private:
  SamplerSettings settings_;
  Schedule schedule_;
};

// txt2img in one call: latents = noise * init_noise_sigma, then the whole schedule.
std::vector<float> run_sampler(const SamplerSettings& settings, std::vector<float> noise,
                               const Denoiser& denoiser, TorchGenerator& generator,
                               const StepCallback& on_step = {});

// img2img in one call: start latents from init + noise at settings.strength, then the rest.
std::vector<float> run_sampler_img2img(const SamplerSettings& settings,
                                       std::span<const float> init_latents,
                                       std::span<const float> noise, const Denoiser& denoiser,
                                       TorchGenerator& generator, const StepCallback& on_step = {});

}  // namespace sdc::sampling
