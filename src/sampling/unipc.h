// A1111's UniPC sampler (modules/models/diffusion/uni_pc, as sd_samplers_timesteps_impl.unipc
// drives it with A1111's defaults: variant bh1, skip type time_uniform, order 3, lower order at
// the end, multistep, data prediction, no thresholding), in float32 with PyTorch's operations.
//
// The model's discrete schedule becomes continuous time t in [1/1000, 1]: log alpha_t is the
// piecewise-linear interpolation of 0.5 log(alphas_cumprod) at t_n = (n + 1) / 1000. N steps
// walk t = linspace(1, 1/1000, N + 1) (img2img: from timesteps[-1] / 1000 + 1/1000), the UNet
// seeing (t - 1/1000) * 1000. Each step is a UniPC predictor with the B(h) = h corrector (no
// corrector on the last step), of order 1, 2, then 3, falling back at the end: N evaluations.
// With A1111's step list, N = len(timesteps) (steps = 8 -> 8; 11 -> 12).
#pragma once

#include <optional>
#include <vector>

#include "sampling/timestep_samplers.h"

namespace sdc::sampling {

// Runs N = `steps` UniPC steps from x; `t_start` is the start time (default 1).
// ctx.eps gets the continuous model time. Throws sdc::UsageError for fewer than 3 steps.
std::vector<float> run_unipc(std::vector<float> x, int steps, std::optional<float> t_start,
                             const TimestepSamplerContext& ctx);

// The time grid (N + 1 values) and the model times (N values, as the UNet receives them on the
// first evaluation of each step; exposed for tests).
std::vector<float> unipc_time_grid(int steps, std::optional<float> t_start = {});

}  // namespace sdc::sampling
