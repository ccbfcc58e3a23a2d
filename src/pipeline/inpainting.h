// Inpainting as diffusers' StableDiffusionInpaintPipeline runs it, over the staged pipeline:
//  - a 9-channel inpainting UNet gets cat([scaled noisy latents, latent mask, masked-image
//    latents]) on the channel axis at every step (the mask and masked latents unscaled, the same
//    for both CFG halves);
//  - a normal 4-channel UNet never sees the mask: after each step the latents outside the latent
//    mask are replaced by the init image's latents re-noised with the initial noise draw at the
//    next step's noise level (clean after the last step).
// Draw order per image generator: 9-channel at strength 1: noise, masked-image posterior; else:
// init-image posterior, noise, masked-image posterior (drawn by the 4-channel pipeline too).
#pragma once

#include <span>
#include <vector>

#include "imaging/inpaint_mask.h"
#include "sampling/sampler.h"

namespace sdc::pipeline {

struct InpaintState {
  imaging::InpaintMask mask;
  bool nine_channel = false;
  std::vector<float> image_latents;   // [B,4,h,w] init posterior samples × scaling (4-ch blend)
  std::vector<float> noise;           // [B,4,h,w] the initial noise draw (4-ch blend)
  std::vector<float> masked_latents;  // [B,4,h,w] masked-image posterior samples × scaling (9-ch)
};

// The 9-channel UNet input [B, 9, h, w] for model input `x_in` [B, 4, h, w].
void inpaint_unet_input(const InpaintState& s, std::span<const float> x_in, int batch,
                        std::vector<float>& out);

// The 4-channel blend after the step whose schedule index is `index`: latents = (1 − m)·proper +
// m·latents with proper = the init latents noised for index + 1.
void blend_known_region(const InpaintState& s, const sampling::Sampler& sampler, int index,
                        std::span<float> latents);

}  // namespace sdc::pipeline
