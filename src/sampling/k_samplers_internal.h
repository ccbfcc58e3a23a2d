// Shared float32 helpers of the k-diffusion sampler files (not part of the public interface).
#pragma once

#include <span>
#include <vector>

#include "sampling/k_samplers.h"

namespace sdc::sampling::kdiff {

using Vec = std::vector<float>;

// model(x, sigma) into a new vector.
Vec denoise(const KSamplerContext& ctx, const Vec& x, float sigma);
// torch.randn_like(x) from the image RNG.
Vec randn_like(const KSamplerContext& ctx, const Vec& x);
Vec brownian(const KSamplerContext& ctx, const Vec& x, float sigma, float sigma_next);
void report(const KSamplerContext& ctx, int step, const Vec& denoised);

// to_d: (x - denoised) / sigma.
Vec to_d(const Vec& x, float sigma, const Vec& denoised);
// x + d * dt, element-wise (two roundings).
Vec add_scaled(const Vec& x, const Vec& d, float dt);

// get_ancestral_step(sigma_from, sigma_to, eta): (sigma_down, sigma_up).
struct AncestralStep {
  float down, up;
};
AncestralStep ancestral_step(float sigma_from, float sigma_to, double eta);

// torch.lerp(a, b, 0.5) as PyTorch's scalar kernel: b - (b - a) * 0.5.
float lerp_half(float a, float b);

Vec sample_dpmpp_2s_ancestral(const KSamplerContext& ctx, Vec x, const std::vector<float>& sigmas,
                              const KSamplerOptions& o);
Vec sample_dpmpp_sde(const KSamplerContext& ctx, Vec x, const std::vector<float>& sigmas,
                     const KSamplerOptions& o);
Vec sample_dpmpp_2m(const KSamplerContext& ctx, Vec x, const std::vector<float>& sigmas);
Vec sample_dpmpp_2m_sde(const KSamplerContext& ctx, Vec x, const std::vector<float>& sigmas,
                        const KSamplerOptions& o, bool heun);
Vec sample_dpmpp_3m_sde(const KSamplerContext& ctx, Vec x, const std::vector<float>& sigmas,
                        const KSamplerOptions& o);
Vec sample_dpm_fast(const KSamplerContext& ctx, Vec x, float sigma_min, float sigma_max, int n,
                    const KSamplerOptions& o);
Vec sample_dpm_adaptive(const KSamplerContext& ctx, Vec x, float sigma_min, float sigma_max,
                        const KSamplerOptions& o);
Vec sample_restart(const KSamplerContext& ctx, Vec x, const std::vector<float>& sigmas,
                   const KSamplerOptions& o);

}  // namespace sdc::sampling::kdiff
