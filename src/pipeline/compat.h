// The --compat switch: which reference a GenerationRequest's numbers follow, and the sampler
// settings each side derives from the request.
//   a1111      A1111 v1.10.1 / Forge: its 20 samplers and 12 schedulers (sampling/a1111_sampler.h),
//              continuous UNet timesteps, x_T = noise * sigma_max, CFG on every step (on the
//              denoised values for k-diffusion), ImageRNG "cpu" or "nv" (default nv), img2img
//              from A1111's VAE posterior draw, 8-bit conversion by truncation
//   diffusers  diffusers 0.28's pipelines (sampling/sampler.h): "leading" timesteps, integer
//              UNet timesteps, x_T = noise * init_noise_sigma, CFG only above scale 1, rounding
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/generation_request.h"
#include "sampling/a1111_sampler.h"
#include "sampling/rng/image_rng.h"
#include "sampling/sampler.h"

namespace sdc::pipeline {

enum class Compat { kA1111, kDiffusers };

// "a1111" | "diffusers" (case-insensitive); throws sdc::UsageError naming --compat.
Compat parse_compat(const std::string& name);
inline Compat compat_of(const GenerationRequest& r) {
  return parse_compat(r.compat);
}

// Whether the UNet runs the negative prompt too: a1111 guides at every scale except exactly 1
// (where the guided value is the conditional one); diffusers only above 1.
inline bool uses_cfg(const GenerationRequest& r) {
  return compat_of(r) == Compat::kA1111 ? r.cfg_scale != 1.0f : r.cfg_scale > 1.0f;
}

// The random source, with the default of each side (a1111: nv; diffusers: cpu, its only one).
sampling::RngSource rng_source(const GenerationRequest& r);

// a1111: sampler, scheduler (a suffix of the sampler name counts when --scheduler is
// automatic), options; throws sdc::UsageError for unknown names and bad combinations.
sampling::A1111Settings a1111_settings(const GenerationRequest& r);

// diffusers: the sampler by its sdc id or A1111 name where diffusers has it (Euler a, Euler,
// DDIM, LCM, DPM++ 2M, "DPM++ 2M Karras").
sampling::SamplerSettings diffusers_settings(const GenerationRequest& r);

// Checks every sampler-related field for the request's compat (cheap: builds the schedule).
void validate_sampling(const GenerationRequest& r);

// The infotext fields of the sampler part: display name, schedule type, RNG, extra fields.
struct SamplerDescription {
  std::string sampler, schedule_type, rng;
  int64_t ensd = 0;  // written only for the samplers A1111 marks uses_ensd
  std::vector<std::pair<std::string, std::string>> extra;
};
SamplerDescription describe_sampling(const GenerationRequest& r);

}  // namespace sdc::pipeline
