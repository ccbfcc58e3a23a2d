// A1111's hires fix: txt2img at the base size, the result upscaled to the hires size, then a
// second pass as img2img of it with the same seeds at the hires denoising strength.
//   latent   the first pass's latents resized bilinearly (A1111's "Latent"); the second pass
//            draws its noise from fresh generators at the new shape (A1111's ImageRNG.next() on a
//            new ImageRNG) and encodes nothing
//   lanczos  the first pass's images resized with PIL's Lanczos and run through sdc's img2img
//            (VAE posterior draw, then the noise), one image at a time
// So the second pass is, by construction, the img2img run sdc would make of the upscaled first
// result with the same seeds.
#pragma once

#include <cstdint>

#include "pipeline/generation_control.h"
#include "pipeline/generation_request.h"
#include "pipeline/stable_diffusion.h"

namespace sdc::pipeline {

// The batch of `request` (enable_hr set) whose first image has seed `first_seed`. A stop during
// the first pass returns its result as it is (interrupted), as A1111 skips the second pass then.
// `release` applies to the second pass's last image (the first pass needs everything again).
BatchResult generate_hires(StableDiffusion& sd, const GenerationRequest& request,
                           int64_t first_seed, const GenerationObserver& observer = {},
                           ReleaseAfterUse release = {});

}  // namespace sdc::pipeline
