// Inpainting as A1111 v1.10.1 runs it (StableDiffusionProcessingImg2Img with a mask), the image
// side: the mask made grey (create_binary_mask), inverted, blurred; either "Whole picture" (mask
// and init image fitted to the output size with the resize mode, the overlay mask doubled) or
// "Only masked" (the mask's box plus padding, widened to the output's aspect, cropped from both
// and fitted with "resize and fill"; the result pasted back into the original image); the
// masked content filled ("fill"); and the overlay of the original that restores every unmasked
// pixel at the end. The latent side (the nmask blend during and after sampling, "latent noise" /
// "latent nothing", an inpainting UNet's conditioning) lives in StableDiffusion.
#pragma once

#include <optional>

#include "imaging/a1111_masking.h"
#include "io/image.h"
#include "pipeline/generation_request.h"

namespace sdc::pipeline {

struct A1111Inpaint {
  io::Image image;    // what is encoded: the init image at the output size (cropped, filled)
  io::Image mask;     // A1111's image_mask: grey, the output size
  io::Image overlay;  // RGBA, pasted over the generated image
  std::optional<imaging::CropRegion> paste_to;  // "Only masked": where the result goes back
  int fill = 1;                                 // inpainting_fill: 0 fill … 3 latent nothing
};

// `init` with its alpha already flattened. nullopt when "Only masked" meets an all-black mask:
// A1111 then runs plain img2img (its "Unable to perform Inpaint Only mask" comment).
std::optional<A1111Inpaint> prepare_a1111_inpaint(const io::Image& init, const io::Image& mask,
                                                  const GenerationRequest& request);

// The final image: the generated one under the overlay (at the init image's size for "Only
// masked", the output size otherwise).
io::Image finish_a1111_inpaint(const io::Image& generated, const A1111Inpaint& inpaint);

}  // namespace sdc::pipeline
