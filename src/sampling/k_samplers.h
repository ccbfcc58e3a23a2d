// The k-diffusion samplers A1111 v1.10.1 offers (k-diffusion v0.0.16 sampling.py, plus A1111's
// Restart and LCM samplers), in float32 with PyTorch's operation order: every scalar is a 0-dim
// float32 tensor (log/exp/expm1 through SLEEF as PyTorch does), every update an element-wise
// pass over the latents. They see the model only as a denoiser D(x, sigma) -> x0 (CFG applied),
// never a UNet.
//
// Each sampler walks a sigma list (sigmas[0] down to the last, usually 0) and returns the final
// latents. Image-RNG draws (A1111's torch.randn_like hijack) are taken, in k-diffusion's order:
//   euler, heun, dpm2          one at the start of every step (used only with s_churn > 0)
//   euler_a, dpm2_a, dpmpp_2s_a, lcm   one after each step whose next sigma is > 0
//   dpm_fast                   one per solver step; dpm_adaptive one per accepted step
//   restart                    one per restart jump
//   lms, dpmpp_2m              none
//   dpmpp_sde, dpmpp_2m_sde(_heun), dpmpp_3m_sde   Brownian-tree noise instead (ctx.brownian)
// Model evaluations per step: one, two for heun/dpm2/dpm2_a/dpmpp_2s_a/dpmpp_sde (one on a step
// ending at sigma 0), three for dpm_fast's third-order steps.
#pragma once

#include <functional>
#include <limits>
#include <span>
#include <vector>

namespace sdc::sampling {

enum class KSampler {
  kEuler,
  kEulerAncestral,
  kLms,
  kHeun,
  kDpm2,
  kDpm2Ancestral,
  kDpmpp2sAncestral,
  kDpmpp2m,
  kDpmppSde,
  kDpmpp2mSde,
  kDpmpp2mSdeHeun,
  kDpmpp3mSde,
  kDpmFast,
  kDpmAdaptive,
  kRestart,
  kLcm,
};

struct KSamplerContext {
  // denoised = D(x, sigma), CFG applied (fills `denoised`, the size of x).
  std::function<void(std::span<const float> x, float sigma, std::span<float> denoised)> denoise;
  // The next image-RNG draw, latent-sized (all images of the batch).
  std::function<void(std::span<float> out)> randn;
  // SDE samplers: the Brownian noise for the step sigma -> sigma_next.
  std::function<void(float sigma, float sigma_next, std::span<float> out)> brownian;
  // Optional, after each denoiser call that completes a step: (step index, its denoised x0).
  std::function<void(int step, std::span<const float> denoised)> on_step;
};

// A1111's options (shared_options.py defaults).
struct KSamplerOptions {
  double eta = 1.0;  // eta_ancestral: ancestral and SDE samplers, dpm_fast/adaptive
  double s_churn = 0.0, s_tmin = 0.0;  // euler, heun, dpm2
  double s_tmax = std::numeric_limits<double>::infinity();
  double s_noise = 1.0;
};

// Runs `sampler` from x (already x_T = noise * sigmas[0], or the img2img start) along `sigmas`.
// dpm_fast and dpm_adaptive ignore the list except for its length and take sigma_min/sigma_max
// (A1111: the model's for txt2img, the sliced schedule's ends for img2img).
std::vector<float> run_k_sampler(KSampler sampler, std::vector<float> x,
                                 const std::vector<float>& sigmas, const KSamplerContext& ctx,
                                 const KSamplerOptions& options, float sigma_min = 0.0f,
                                 float sigma_max = 0.0f);

// k-diffusion's linear_multistep_coeff: the integral over [t[i], t[i+1]] of the j-th Lagrange
// basis polynomial through t[i], t[i-1], ..., t[i-order+1] (scipy's quad; exact for these
// polynomials), with float32 node differences as numpy computes them.
double linear_multistep_coeff(int order, const std::vector<float>& t, int i, int j);

}  // namespace sdc::sampling
