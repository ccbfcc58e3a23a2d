// A cheap preview of SD1.5 latents while sampling: a fixed linear map from the 4 latent channels to
// RGB (the projection A1111 calls "Approx cheap"), no network, at latent resolution (1/8 of the
// image). Good enough to see composition and colour emerge; the final image comes from the VAE.
#pragma once

#include <span>

#include "io/image.h"

namespace sdc::pipeline {

// `latents` is one image's [4, h, w] NCHW latents in the sampler's (VAE-scaled) space.
io::Image preview_latents(std::span<const float> latents, int h, int w);

}  // namespace sdc::pipeline
