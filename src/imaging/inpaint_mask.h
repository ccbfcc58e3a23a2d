// Inpainting masks as diffusers' StableDiffusionInpaintPipeline prepares them (its
// VaeImageProcessor with do_binarize, do_convert_grayscale):
//   1. the 8-bit mask is resized to the output size with PIL's Lanczos when its size differs
//      (before any thresholding);
//   2. converted to grey as PIL's convert("L") does (L = (19595 R + 38470 G + 7471 B + 2^15) >>
//   16);
//   3. optionally inverted (A1111's "inpainting mask invert": 255 − L) and blurred (A1111's
//      "mask blur", a Gaussian on the 8-bit mask before use; diffusers never blurs);
//   4. binarised: L ≥ 128 → 1 (repaint), ≤ 127 → 0 (keep).
// The latent-size mask is the nearest-neighbour sample mask[8i, 8j] (F.interpolate's default
// 'nearest': the top-left pixel of each 8×8 block), and the masked image keeps the init image
// where the mask is 0 and puts 0 (mid-grey in [-1, 1]) where it is 1.
#pragma once

#include <vector>

#include "io/image.h"

namespace sdc::imaging {

struct InpaintMask {
  int width = 0, height = 0;
  std::vector<float> pixels;  // [H, W], 0 = keep, 1 = repaint
  std::vector<float> latent;  // [H/8, W/8], sampled from `pixels`

  bool all_zero() const;
};

// Steps 1–4 and the latent sample for an output of width × height (multiples of 8). `blur_sigma`
// 0: none. The mask image's alpha is ignored (PIL's convert("L") drops it).
InpaintMask prepare_inpaint_mask(const io::Image& mask, int width, int height, bool invert,
                                 float blur_sigma);

// init_signed [3, H, W] in [-1, 1] × (mask < 0.5) → the masked image the UNet's extra channels see.
std::vector<float> masked_image(const std::vector<float>& init_signed, const InpaintMask& mask);

}  // namespace sdc::imaging
