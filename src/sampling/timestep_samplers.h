// A1111's timestep samplers (modules/sd_samplers_timesteps_impl.py, v1.10.1): DDIM, DDIM CFG++
// and PLMS over the integer timestep list of CompVisSampler.get_timesteps, in float32 with
// PyTorch's operation order. The model is seen as eps(x, t) with CFG applied (no input scaling).
//
//   timesteps = clip(range(0, 1000, 1000 // steps) + 1, 0, 999)      10 steps: 1, 101, ..., 901
//   The loop makes len(timesteps) - 1 model steps from timesteps[-1] down, the last one landing
//   on t = 1 (alphas_cumprod[1]); so 'DDIM, 10 steps' evaluates the UNet 9 times and 11 steps
//   (12 timesteps) 11 times. PLMS evaluates once more on its first step.
//   DDIM:     x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t); x = sqrt(a_prev) x0 + sqrt(1 - a_prev -
//             sigma_t^2) e + sigma_t noise (one image-RNG draw per step, multiplied by
//             sigma_t = eta sqrt((1 - a_prev)/(1 - a_t) (1 - a_t/a_prev)); eta defaults to 0)
//   CFG++:    the same with the direction term on the unconditional eps, CFG scale / 12.5
//   PLMS:     pseudo improved Euler on the first step, then Adams-Bashforth of order 2, 3, 4 on
//             the eps history
#pragma once

#include <functional>
#include <span>
#include <vector>

namespace sdc::sampling {

struct TimestepSamplerContext {
  // The guided eps at (x, t) into `eps`; when `eps_uncond` is not empty (CFG++), also the
  // unconditional prediction.
  std::function<void(std::span<const float> x, float t, std::span<float> eps,
                     std::span<float> eps_uncond)>
      eps;
  std::function<void(std::span<float> out)> randn;  // the next image-RNG draw
  std::function<void(int step, std::span<const float> denoised)> on_step;  // optional
};

// CompVisSampler.get_timesteps(steps) (steps + 1 with discard_next_to_last_sigma).
std::vector<int> a1111_timesteps(int steps);

enum class TimestepSampler { kDdim, kDdimCfgpp, kPlms };

// Runs the sampler over `timesteps` (txt2img: all; img2img: the first t_enc) from x.
std::vector<float> run_timestep_sampler(TimestepSampler sampler, std::vector<float> x,
                                        const std::vector<int>& timesteps,
                                        const TimestepSamplerContext& ctx, double eta);

// A1111's DDIM/PLMS img2img start: x = init * sqrt(a) + noise * sqrt(1 - a), a =
// alphas_cumprod[timesteps[t_enc]].
std::vector<float> timestep_img2img_start(std::span<const float> init, std::span<const float> noise,
                                          int timestep);

}  // namespace sdc::sampling
