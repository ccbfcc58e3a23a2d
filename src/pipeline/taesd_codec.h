// TAESD as the pipeline uses it: decode one image's latents, encode one image, and draw a
// preview, each through the model's PlanCache (plans built on first use per size).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "io/image.h"
#include "pipeline/plan_cache.h"

namespace sdc::pipeline {

// latents [4, h, w] NCHW as the UNet has them (not divided by the VAE's scaling factor) ->
// image [3, 8h, 8w] in nominal [0, 1], unclamped (taesd.py Decoder()).
std::vector<float> taesd_decode(PlanCache& plans, std::span<const float> latents, int h, int w);
// image [3, H, W] in [0, 1] -> latents [4, ceil(H/8), ceil(W/8)] on the UNet's scale (taesd.py
// Encoder(); no posterior, no scaling factor).
std::vector<float> taesd_encode(PlanCache& plans, std::span<const float> image, int height,
                                int width);

// A preview of one image's latents [4, h, w]: TAESD at full size (clamp(x, 0, 1)·255 rounded,
// as A1111's TAESD live preview) or the cheap linear map at latent size (preview_latents).
// `method`: GenerationRequest::preview_method.
io::Image preview_image(PlanCache& plans, const std::string& method, std::span<const float> latents,
                        int h, int w);

}  // namespace sdc::pipeline
