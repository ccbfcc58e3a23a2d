// Timestep/sigma schedules of each sampler for a number of steps, reproducing diffusers 0.28's
// set_timesteps() with SD1.5's scheduler config (timestep_spacing "leading", steps_offset 1), and
// where an img2img run starts in them.
//
//  ddim      timesteps (0..steps-1) * (1000 // steps), reversed, + 1        e.g. 10: 901 801 ... 1
//  lcm       LCM origin timesteps k*20-1 (k = 1..50), reversed, taken at floor(i * 50 / steps)
//                                                                        e.g. 4: 999 759 499 259
//  euler,    timesteps as ddim (as floats); sigmas = sigma(t) at them, then 0;
//  euler_a   init_noise_sigma = sqrt(sigma_max^2 + 1)
//    karras: Karras sigmas between sigma(t_last) and sigma(t_first) of those timesteps; timesteps
//            = sigma_to_t(sigma), fractional (not rounded) — EulerDiscreteScheduler's
//            use_karras_sigmas; euler_a uses the same (0.28's ancestral scheduler has no karras)
//  dpmpp_2m  timesteps (0..steps) * (1000 // (steps + 1)), reversed, last dropped, + 1;
//            sigmas = sigma(t) at them, then 0 (final_sigmas_type "zero"); init_noise_sigma 1
//    karras: Karras sigmas between sigma(0) and sigma(999) of the training schedule;
//            timesteps = round(sigma_to_t(sigma)) (half to even), then sigma 0 appended
//
// Karras is an error for ddim and lcm (they are not sigma-based).
#pragma once

#include <vector>

#include "sampling/sampler_kind.h"

namespace sdc::sampling {

inline constexpr int kMaxSamplerSteps = 999;  // 1000 // steps must leave room for steps_offset
inline constexpr int kLcmOriginalSteps = 50;  // LCMScheduler original_inference_steps
inline constexpr double kLcmTimestepScaling = 10.0;

struct Schedule {
  SamplerKind sampler = SamplerKind::kEulerA;
  ScheduleKind kind = ScheduleKind::kDefault;
  int steps = 0;
  // The timestep given to the model at each step (integers except euler/euler_a with karras).
  std::vector<float> timesteps;
  // euler, euler_a, dpmpp_2m: k-diffusion sigma at each step and after the last (steps + 1
  // values, the last one 0). Empty for ddim and lcm.
  std::vector<float> sigmas;
  // txt2img initial latents = randn * init_noise_sigma.
  float init_noise_sigma = 1.0f;
};

// Throws sdc::UsageError for steps outside 1..999 (1..50 for lcm) or karras with ddim/lcm.
Schedule make_schedule(SamplerKind sampler, ScheduleKind kind, int steps);

// The index of the first step an img2img run takes for `strength` in (0, 1] (throws
// sdc::UsageError otherwise, or when no step would be left):
//  ddim, lcm (diffusers StableDiffusionImg2ImgPipeline.get_timesteps):
//      init_timestep = min(int(steps * strength), steps); first = steps - init_timestep
//      — strength so small that int(steps * strength) == 0 is an error (no step left).
//  euler, euler_a, dpmpp_2m (A1111 img2img without "fix steps"):
//      t_enc = int(min(strength, 0.999) * steps); first = steps - t_enc - 1 (at least one step).
// `strength` is a double on purpose: int(10 * 0.6) must be computed as Python does.
int img2img_first_step(SamplerKind sampler, int steps, double strength);

}  // namespace sdc::sampling
