// How A1111 wraps the UNet for its samplers, with classifier-free guidance (CFGDenoiser): one
// UNet evaluation on the batch [x (cond), x (uncond)] per call, then
//   guided = uncond + (cond - uncond) * cfg_scale          (combine_denoised; also at cfg 1)
// applied to what the wrapper returns:
//   KDiffusionDenoiser  k-diffusion's CompVisDenoiser: the UNet gets x / sqrt(sigma^2 + 1) at the
//                       continuous timestep sigma_to_t(sigma) (integer with --quantize), returns
//                       denoised = x - sigma * eps; CFG on the denoised values
//   LcmDenoiser         A1111's LCMCompVisDenoiser: 50 of the 1000 alphas (t = 19, 39, ..., 999),
//                       t quantised to them, output c_out * denoised + c_skip * x with
//                       sigma_data 0.5 and the scaled timestep 10 t
//   TimestepEpsModel    CompVisTimestepsDenoiser: the UNet at integer timesteps on x itself, CFG
//                       on eps; for DDIM CFG++ the scale is cfg / 12.5 and the unconditional eps
//                       is handed back too
// All in float32 with PyTorch's operation order.
#pragma once

#include <functional>
#include <span>
#include <vector>

namespace sdc::sampling {

// One UNet evaluation of the latents `x_in` (all images of the batch) at `timestep`, for the
// prompt and for the negative prompt: writes eps_cond and eps_uncond (each the size of x_in).
using UnetEps = std::function<void(std::span<const float> x_in, float timestep,
                                   std::span<float> eps_cond, std::span<float> eps_uncond)>;

class KDiffusionDenoiser {
 public:
  KDiffusionDenoiser(UnetEps unet, double cfg_scale, bool quantize = false);
  void operator()(std::span<const float> x, float sigma, std::span<float> denoised) const;

 private:
  UnetEps unet_;
  float cfg_;
  bool quantize_;
};

class LcmDenoiser {
 public:
  LcmDenoiser(UnetEps unet, double cfg_scale);
  void operator()(std::span<const float> x, float sigma, std::span<float> out) const;

  // LCMCompVisDenoiser.get_sigmas(n): t = linspace(999, 19, n) -> sigma in the 50-value table,
  // then 0.
  static std::vector<float> sigmas(int n);
  // sigma -> the nearest of the 50 LCM timesteps (19 + 20 k).
  static int sigma_to_t(float sigma);

 private:
  UnetEps unet_;
  float cfg_;
};

class TimestepEpsModel {
 public:
  // cfgpp: DDIM CFG++ (scale multiplied by 1/12.5, unconditional eps returned).
  TimestepEpsModel(UnetEps unet, double cfg_scale, bool cfgpp = false);
  void operator()(std::span<const float> x, float t, std::span<float> eps,
                  std::span<float> eps_uncond) const;

 private:
  UnetEps unet_;
  float cfg_;
};

}  // namespace sdc::sampling
